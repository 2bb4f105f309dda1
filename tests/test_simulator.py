"""Integration tests of the loopback LLM simulator, with plain ``requests`` and raw
sockets against the real server."""

from __future__ import annotations

import http.client
import json
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from yait_aichain import testing
from yait_aichain.errors import ConfigurationError
from yait_aichain.testing import Fault, ReplyInfo, Simulator, summary

PROVIDERS = ["anthropic", "openai", "gemini"]


@pytest.fixture
def sim():
    with Simulator() as s:
        yield s


def call(sim, provider, text="hello", *, key="k", session=None, timeout=5, **extra):
    """POST one prompt in the provider's wire format."""
    post = (session or requests).post
    if provider == "anthropic":
        body = {"model": "claude-x", "max_tokens": 10,
                "messages": [{"role": "user", "content": text}], **extra}
        return post(sim.anthropic_base_url + "/v1/messages", json=body, timeout=timeout,
                    headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    if provider == "openai":
        body = {"model": "gpt-x", "messages": [{"role": "user", "content": text}], **extra}
        return post(sim.openai_base_url + "/chat/completions", json=body, timeout=timeout,
                    headers={"Authorization": f"Bearer {key}"})
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}
    return post(sim.gemini_base_url + "/v1beta/models/gemini-x:generateContent", json=body,
                timeout=timeout, headers={"x-goog-api-key": key})


def text_of(provider, data):
    if provider == "anthropic":
        return data["content"][0]["text"]
    if provider == "openai":
        return data["choices"][0]["message"]["content"]
    return data["candidates"][0]["content"]["parts"][0]["text"]


def error_of(provider, data):
    """(kind, message) from an error body in the provider's real shape."""
    if provider == "anthropic":
        assert data["type"] == "error"
        return data["error"]["type"], data["error"]["message"]
    if provider == "openai":
        return data["error"]["code"] or data["error"]["type"], data["error"]["message"]
    return data["error"]["status"], data["error"]["message"]


def test_public_names_are_sorted_and_importable():
    assert testing.__all__ == sorted(testing.__all__)
    assert all(hasattr(testing, name) for name in testing.__all__)


# ------------------------------------------------------------------ wire formats


def test_anthropic_reply_and_usage(sim):
    body = {"system": "Be terse and polite", "messages": [
        {"role": "user", "content": "first question here"},
        {"role": "assistant", "content": [{"type": "text", "text": "an answer"}]},
        {"role": "user", "content": [{"type": "text", "text": "Document  7:\n the   end"}]}]}
    r = requests.post(sim.url + "/v1/messages", json={"model": "claude-x", **body})
    data = r.json()
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    assert data["type"] == "message" and data["role"] == "assistant" and data["model"] == "claude-x"
    assert data["content"] == [{"type": "text", "text": "Summary: Document 7: the end"}]
    assert data["stop_reason"] == "end_turn"
    assert data["usage"] == {"input_tokens": 4 + 3 + 2 + 4, "output_tokens": 5}


def test_openai_reply_and_usage(sim):
    messages = [{"role": "system", "content": "secret system words"},
                {"role": "user", "content": [{"type": "text", "text": "item 42 please"}]}]
    r = requests.post(sim.openai_base_url + "/chat/completions",
                      json={"model": "gpt-x", "messages": messages})
    data = r.json()
    assert r.headers["x-request-id"] and data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Summary: item 42 please"}
    assert choice["finish_reason"] == "stop" and choice["index"] == 0
    assert data["usage"] == {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}


def test_gemini_reply_and_usage(sim):
    body = {"systemInstruction": {"parts": [{"text": "sys"}]},
            "contents": [{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}]}
    r = requests.post(sim.url + "/v1beta/models/gemini-2.5-flash:generateContent", json=body)
    data = r.json()
    assert data["candidates"][0]["content"] == {"role": "model",
                                                "parts": [{"text": "Summary: one two"}]}
    assert data["candidates"][0]["finishReason"] == "STOP"
    assert data["usageMetadata"] == {"promptTokenCount": 3, "candidatesTokenCount": 3,
                                     "totalTokenCount": 6}
    assert sim.requests_log[-1].model == "gemini-2.5-flash"


def test_long_prompt_is_capped_keeping_both_ends():
    text = "start " + "x" * 1000 + " end"
    out = summary(text)
    flat = " ".join(text.split())
    assert out == "Summary: " + flat[:200] + " ... " + flat[-195:]
    assert len(out) == len("Summary: ") + 400 and summary("a\n\tb") == "Summary: a b"


SCHEMA = {"type": "object", "required": ["title", "score", "tags", "kind", "when", "sub"],
          "properties": {"title": {"type": "string", "maxLength": 12},
                         "score": {"type": "integer", "minimum": 3, "maximum": 9},
                         "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                         "kind": {"enum": ["a", "b"]}, "when": {"type": "string", "format": "date"},
                         "sub": {"$ref": "#/$defs/Sub"},
                         "opt": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}},
          "$defs": {"Sub": {"type": "object", "properties": {"x": {"type": "number",
                                                                   "exclusiveMinimum": 1}}}}}


def check_schema_value(value):
    assert value["title"] == "Summary: it"[:12] and value["score"] == 3
    assert value["tags"] == ["Summary: it", "Summary: it"] and value["kind"] == "a"
    assert value["when"] == "2024-01-01" and value["sub"]["x"] > 1 and value["opt"] is True


def test_json_and_schema_modes(sim):
    r = call(sim, "openai", "it", response_format={"type": "json_object"})
    assert json.loads(text_of("openai", r.json())) == {"summary": "Summary: it"}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
    check_schema_value(json.loads(text_of("openai", call(sim, "openai", "it",
                                                         response_format=fmt).json())))
    config = {"responseMimeType": "application/json"}
    r = call(sim, "gemini", "it", generationConfig=config)
    assert json.loads(text_of("gemini", r.json())) == {"summary": "Summary: it"}
    config = {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}
    check_schema_value(json.loads(text_of("gemini", call(sim, "gemini", "it",
                                                         generationConfig=config).json())))
    upper = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}, "ok": {"type": "BOOLEAN"}}}
    r = call(sim, "gemini", "it", generationConfig={"responseSchema": upper})
    assert json.loads(text_of("gemini", r.json())) == {"n": 0, "ok": True}
    # A schema whose one instance is null is answered with it (it once got no reply at all).
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "null"}}}
    assert text_of("openai", call(sim, "openai", "it", response_format=fmt).json()) == "null"


def test_anthropic_forced_tool_use(sim):
    tools = [{"name": "other", "input_schema": {"type": "object"}},
             {"name": "record", "input_schema": SCHEMA}]
    r = call(sim, "anthropic", "it", tools=tools, tool_choice={"type": "tool", "name": "record"})
    data = r.json()
    assert data["stop_reason"] == "tool_use" and len(data["content"]) == 1
    block = data["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "record" and block["id"]
    check_schema_value(block["input"])


def test_reply_callable_sees_request_and_may_return_json_or_fault():
    seen = []

    def reply(info: ReplyInfo):
        seen.append(info)
        if "fail" in info.last_user_text:
            return Fault.server_error(503)
        return {"n": info.sequence} if info.output == "json" else info.default_text.upper()

    with Simulator(reply=reply) as sim:
        r = call(sim, "anthropic", "abc", system="the system")
        assert text_of("anthropic", r.json()) == "SUMMARY: ABC"
        r = call(sim, "openai", "x", response_format={"type": "json_object"})
        assert json.loads(text_of("openai", r.json())) == {"n": 2}
        assert call(sim, "gemini", "please fail").status_code == 503
        sim.reply = lambda info: 1 / 0
        r = call(sim, "openai")
        assert r.status_code == 500 and "ZeroDivisionError" in r.json()["error"]["message"]
    first = seen[0]
    assert (first.provider, first.model, first.last_user_text, first.system_text) == (
        "anthropic", "claude-x", "abc", "the system")
    assert first.body["max_tokens"] == 10 and [i.provider for i in seen[1:]] == PROVIDERS[1:]


# ------------------------------------------------------------------ request errors


@pytest.mark.parametrize("provider,kind", [("anthropic", "invalid_request_error"),
                                           ("openai", "invalid_request_error"),
                                           ("gemini", "INVALID_ARGUMENT")])
def test_invalid_json_is_400_in_provider_shape(sim, provider, kind):
    path = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions",
            "gemini": "/v1beta/models/g:generateContent"}[provider]
    r = requests.post(sim.url + path, data=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error_of(provider, r.json())[0] == kind


_HOSTILE_BODIES = {"deep nesting": b"[" * 100_000 + b"]" * 100_000,
                   "bad UTF-8": b'{"model": "m", "messages": "\xff"}',
                   # The real APIs: "no low surrogate in string".
                   "a lone surrogate": b'{"model": "m", "system": "\\ud83d", '
                                       b'"messages": [{"role": "user", "content": "\\ud83d"}]}'}


@pytest.mark.parametrize("body", _HOSTILE_BODIES.values(), ids=list(_HOSTILE_BODIES))
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/chat/completions",
                                  "/v1/messages/batches", "/v1beta/models/g:batchGenerateContent"])
def test_a_body_the_real_apis_refuse_is_a_400_and_the_server_goes_on(sim, path, body):
    r = requests.post(sim.url + path, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.text
    assert requests.post(sim.url + "/v1/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200


_LINE = (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": '
         b'{"model": "m", "messages": [{"role": "system", "content": "%s"}]}}')


@pytest.mark.parametrize("line", [b"[" * 100_000, _LINE % b"\xff", _LINE % b"\\ud83d"],
                         ids=list(_HOSTILE_BODIES))
def test_a_batch_input_line_the_real_api_refuses_is_a_400(sim, line):
    file = requests.post(sim.openai_base_url + "/files", data={"purpose": "batch"},
                         files={"file": ("in.jsonl", line + b"\n")}).json()
    r = requests.post(sim.openai_base_url + "/batches", json={
        "input_file_id": file["id"], "endpoint": "/v1/chat/completions"})
    assert r.status_code == 400 and "line 1 of the input file" in r.json()["error"]["message"]


def test_deep_nesting_in_a_schema_note_or_a_tool_reply_is_no_crash(sim):
    deep = "[" * 100_000 + "]"
    schema = {"type": "string", "description": f"a date (format: {deep})"}
    r = requests.post(sim.openai_base_url + "/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {
            "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert r.status_code == 200 and "hi" in r.json()["choices"][0]["message"]["content"]
    sim.reply = lambda info: deep
    r = requests.post(sim.url + "/v1/messages", json={
        "model": "c", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "t"}})
    assert r.status_code == 500 and "unusable value" in r.json()["error"]["message"]


_ODD_SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": [[1]]}


@pytest.mark.parametrize("path,body", [
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": 5}),
    ("/v1/chat/completions", {"model": "m", "messages": 5, "tools": 5}),
    ("/v1/messages/batches", {"requests": [{"custom_id": "a", "params": {"messages": 5}}]}),
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                              "response_format": {"type": "json_schema", "json_schema": {
                                  "name": "x", "schema": _ODD_SCHEMA}}}),
])
def test_odd_shapes_in_a_lenient_request_still_get_an_answer(sim, path, body):
    sim.invalid_answers(None)
    assert requests.post(sim.url + path, json=body).status_code == 200
    assert requests.get(sim.url + "/v1/messages/batches").status_code == 200


def test_unknown_path_and_wrong_method(sim):
    r = requests.post(sim.url + "/chat/completions", json={})
    assert r.status_code == 404 and "Unknown path" in r.json()["error"]["message"]
    r = requests.get(sim.url + "/v1/messages")
    assert r.status_code == 405 and r.json()["type"] == "error" and r.headers["Allow"] == "POST"
    assert sim.stats.by_status == {404: 1, 405: 1}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_require_key(provider):
    with Simulator(require_key="right") as sim:
        assert call(sim, provider, key="right").status_code == 200
        r = call(sim, provider, key="wrong")
        # What each provider really answers: Gemini a 400 whose ErrorInfo names the key.
        expected = {"anthropic": (401, "authentication_error"),
                    "openai": (401, "invalid_api_key"),
                    "gemini": (400, "INVALID_ARGUMENT")}[provider]
        assert (r.status_code, error_of(provider, r.json())[0]) == expected
    if provider == "gemini":  # a key in the URL is not accepted
        assert r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        with Simulator(require_key="right") as sim:
            url = sim.url + "/v1beta/models/g:generateContent?key=right"
            assert requests.post(url, json={"contents": []}).status_code == 400


def test_strict_mode_rejects_what_providers_reject(sim):
    r = call(sim, "openai", stream=True)  # refused even when not strict
    assert r.status_code == 400 and "stream" in r.json()["error"]["message"]
    with Simulator(strict=True) as strict:
        assert call(strict, "anthropic").status_code == 200
        r = requests.post(strict.url + "/v1/messages", json={"model": "c", "messages": []})
        assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]
        assert call(strict, "gemini", contents=[]).status_code == 400


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize("provider,kind", [("anthropic", "rate_limit_error"),
                                           ("openai", "rate_limit_exceeded"),
                                           ("gemini", "RESOURCE_EXHAUSTED")])
def test_rate_limit(sim, provider, kind):
    sim.fail_next(Fault.rate_limit(retry_after=2, retry_after_ms=1500, should_retry=True))
    r = call(sim, provider)
    assert r.status_code == 429 and error_of(provider, r.json())[0] == kind
    assert (r.headers["Retry-After"], r.headers["retry-after-ms"]) == ("2", "1500")
    assert r.headers["x-should-retry"] == "true"
    if provider == "gemini":
        details = {d["@type"].rsplit(".", 1)[-1]: d for d in r.json()["error"]["details"]}
        assert details["RetryInfo"]["retryDelay"] == "2s"
        assert "PerMinute" in details["QuotaFailure"]["violations"][0]["quotaId"]
        assert r.json()["error"]["message"].startswith("You exceeded your current quota")
    assert call(sim, provider).status_code == 200


@pytest.mark.parametrize("fault,expected", [
    (Fault.billing(), {"anthropic": (402, "billing_error"), "openai": (429, "insufficient_quota"),
                       "gemini": (429, "RESOURCE_EXHAUSTED")}),
    (Fault.rate_limit(body_kind="insufficient_quota"), {"openai": (429, "insufficient_quota")}),
    (Fault.server_error(), {"anthropic": (500, "api_error"), "openai": (500, "server_error"),
                            "gemini": (500, "INTERNAL")}),
    (Fault.server_error(503), {"gemini": (503, "UNAVAILABLE")}),
    (Fault.overloaded(), {"anthropic": (529, "overloaded_error"),
                          "openai": (503, "server_error"), "gemini": (503, "UNAVAILABLE")}),
    (Fault.unauthorized(), {"openai": (401, "invalid_api_key"),
                            "anthropic": (401, "authentication_error"),
                            "gemini": (400, "INVALID_ARGUMENT")}),
    (Fault.request_too_large(), {"anthropic": (413, "request_too_large"),
                                 "gemini": (400, "INVALID_ARGUMENT")}),
])
def test_error_faults_in_provider_shape(sim, fault, expected):
    for provider, (status, kind) in expected.items():
        sim.fail_next(fault)
        r = call(sim, provider)
        assert (r.status_code, error_of(provider, r.json())[0]) == (status, kind)
        assert "(simulated)" in error_of(provider, r.json())[1]


def test_status_fault_with_custom_body_and_headers(sim):
    sim.fail_next(Fault.status(503, {"X-Thing": "1"}, "<html>down</html>", should_retry=False))
    r = call(sim, "anthropic")
    assert (r.status_code, r.text, r.headers["X-Thing"]) == (503, "<html>down</html>", "1")
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["x-should-retry"] == "false"
    sim.fail_next(Fault.status(418, body={"odd": True}))
    assert call(sim, "openai").json() == {"odd": True}
    assert Fault.billing(status=400).code == 400 and Fault.drop().code is None


def test_fail_next_is_fifo_and_counts(sim):
    sim.fail_next(Fault.rate_limit(retry_after=1), times=2)
    sim.fail_next(Fault.server_error())
    assert sim.pending_faults == 3
    assert [call(sim, "openai").status_code for _ in range(4)] == [429, 429, 500, 200]
    stats = sim.stats
    assert stats.faults == 3 and stats.by_status == {429: 2, 500: 1, 200: 1}


def test_fail_rate_is_seeded_and_bounded():
    def run():
        with Simulator(seed=7) as sim:
            sim.fail_rate(0.3, Fault.rate_limit(retry_after=1))
            with requests.Session() as s:
                return [call(sim, "openai", session=s).status_code for _ in range(200)]

    first = run()
    assert first == run() and 35 <= first.count(429) <= 85 and set(first) == {200, 429}
    with Simulator() as sim:
        sim.fail_rate(0.6, Fault.drop())
        with pytest.raises(ConfigurationError):
            sim.fail_rate(0.5, Fault.drop())


def test_fail_when_matches_text_or_predicate_and_clears(sim):
    sim.fail_when("Document 7", Fault.server_error())
    sim.fail_when(lambda info: info.provider == "gemini", Fault.overloaded(), times=1)
    assert call(sim, "openai", "see Document 7 now").status_code == 500
    assert call(sim, "openai", "Document 8").status_code == 200
    assert [call(sim, "gemini", "x").status_code for _ in range(2)] == [503, 200]
    sim.clear_faults()
    assert call(sim, "anthropic", "Document 7").status_code == 200


def test_hang_until_time_passes_or_client_times_out(sim):
    sim.fail_next(Fault.hang(0.3))
    with pytest.raises(requests.ReadTimeout):
        call(sim, "openai", timeout=(1, 0.1))
    sim.fail_next(Fault.hang(0.2))
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        call(sim, "openai")
    assert time.monotonic() - started >= 0.19
    assert sim.wait_for(lambda s: s.by_status.get(0) == 2, timeout=2)


@pytest.mark.parametrize("fault,error", [(Fault.drop(), requests.ConnectionError),
                                         (Fault.truncated(),
                                          requests.exceptions.ChunkedEncodingError)])
def test_broken_exchanges(sim, fault, error):
    sim.fail_next(fault)
    with pytest.raises(error):
        call(sim, "anthropic")
    assert call(sim, "anthropic").status_code == 200


def test_malformed_is_200_with_cut_json(sim):
    sim.fail_next(Fault.malformed())
    r = call(sim, "openai")
    assert r.status_code == 200 and r.text.startswith('{"id"')
    assert int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        r.json()


def test_slow_drip_trickles_the_body(sim):
    sim.fail_next(Fault.slow_drip(1000))
    started = time.monotonic()
    r = call(sim, "openai")
    elapsed = time.monotonic() - started
    assert text_of("openai", r.json()) == "Summary: hello"
    assert elapsed >= len(r.content) / 1000 * 0.8


@pytest.mark.parametrize("provider,check", [
    ("anthropic", lambda d: d["content"] == []), ("openai", lambda d: d["choices"] == []),
    ("gemini", lambda d: "candidates" not in d)])
def test_empty_reply(sim, provider, check):
    sim.fail_next(Fault.empty_reply())
    r = call(sim, provider)
    assert r.status_code == 200 and check(r.json())


def test_bad_fault_arguments_fail_at_once(sim):
    for make in (lambda: Fault.status(99), lambda: Fault.slow_drip(0), lambda: Fault.hang(-1),
                 lambda: Fault.rate_limit(body_kind="x"), lambda: sim.fail_next("429"),
                 lambda: sim.fail_next(Fault.drop(), times=0), lambda: Simulator(latency=-1)):
        with pytest.raises(ConfigurationError):
            make()


# ------------------------------------------------------------------ counters and timing


def test_connections_count_keep_alive_reuse(sim):
    with requests.Session() as s:
        for _ in range(5):
            assert call(sim, "openai", session=s).status_code == 200
    assert sim.stats.connections == 1
    for _ in range(3):
        call(sim, "gemini")
    stats = sim.stats
    assert (stats.requests, stats.connections) == (8, 4)
    assert stats.by_path == {"/v1/chat/completions": 5,
                             "/v1beta/models/gemini-x:generateContent": 3}


def test_peak_concurrency():
    with Simulator(latency=0.3) as sim:
        call(sim, "openai")
        call(sim, "openai")
        assert sim.stats.peak_concurrency == 1
        barrier = threading.Barrier(50)

        def one(i):
            barrier.wait()
            return call(sim, "anthropic", f"item {i}").json()

        started = time.monotonic()
        with ThreadPoolExecutor(50) as pool:
            replies = list(pool.map(one, range(50)))
        assert time.monotonic() - started < 3  # the waits overlap (15 s if serialised)
        texts = [text_of("anthropic", d) for d in replies]
        assert texts == [f"Summary: item {i}" for i in range(50)]
        stats = sim.stats
        assert 40 <= stats.peak_concurrency <= 50 and stats.in_flight == 0


def test_latency_and_jitter_are_settable(sim):
    sim.latency, sim.jitter = 0.15, 0.05
    started = time.monotonic()
    call(sim, "openai")
    assert 0.15 <= time.monotonic() - started < 1.0
    sim.latency = sim.jitter = 0
    started = time.monotonic()
    call(sim, "openai")
    assert time.monotonic() - started < 0.1
    with pytest.raises(ConfigurationError):
        sim.latency = -1


def test_requests_log_and_reset():
    with Simulator(max_log=2) as sim:
        sim.fail_next(Fault.rate_limit())
        for text in ("a", "b", "c"):
            call(sim, "anthropic", text, key="sk-1")
        log = sim.requests_log
        assert [r.last_user_text for r in log] == ["b", "c"]
        assert log[0].status == 200 and log[0].headers["x-api-key"] == "sk-1"
        assert log[0].provider == "anthropic" and log[0].body["messages"][0]["content"] == "b"
        sim.reset()
        assert sim.requests_log == [] and sim.stats.requests == 0 and sim.stats.by_status == {}
    with Simulator(record=False) as sim:
        call(sim, "openai")
        assert sim.requests_log == [] and sim.stats.requests == 1


def _raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            pytest.skip(f"needs {needed} file descriptors, the limit is {target}")


def test_500_concurrent_connections_held_open():
    _raise_fd_limit(2048)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               b"\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    gate = threading.Event()

    def held(info):  # every reply waits until all 500 requests are in flight at once
        gate.wait(20)
        return info.default_text

    with Simulator(reply=held) as sim:
        started = time.monotonic()  # a short listen backlog shows up as slow connects
        socks = [socket.create_connection(("127.0.0.1", sim.port), timeout=20) for _ in range(500)]
        try:
            for s in socks:
                s.sendall(request)
            assert sim.wait_for(lambda st: st.in_flight == 500, timeout=15)
            gate.set()
            for s in socks:
                response = http.client.HTTPResponse(s)
                response.begin()
                assert response.status == 200 and b"Summary: hi" in response.read()
            elapsed = time.monotonic() - started
            stats = sim.stats
            assert (stats.connections, stats.open_connections, stats.requests) == (500, 500, 500)
            assert stats.peak_concurrency == 500 and elapsed < 10
        finally:
            gate.set()
            for s in socks:
                s.close()


def test_close_is_prompt_with_hung_requests_and_idle_connections():
    sim = Simulator().start()
    idle = requests.Session()
    call(sim, "openai", session=idle)  # leaves a keep-alive connection open
    sim.fail_next(Fault.hang(), times=3)
    errors = []

    def hung():
        try:
            call(sim, "anthropic", timeout=30)
        except requests.RequestException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hung) for _ in range(3)]
    for t in threads:
        t.start()
    assert sim.wait_for(lambda s: s.in_flight == 3)
    started = time.monotonic()
    sim.close()
    assert time.monotonic() - started < 1.0
    for t in threads:
        t.join(2)
    assert len(errors) == 3 and not sim.running
    assert sim.wait_for(lambda s: s.in_flight == 0, timeout=1)  # the handlers woke up too
    sim.close()  # idempotent
    with pytest.raises(requests.ConnectionError):
        call(sim, "openai", session=idle)
    idle.close()


def test_lifecycle_and_addresses():
    sim = Simulator(latency=0.2)
    with pytest.raises(RuntimeError):
        _ = sim.url
    with sim:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url) and sim.port > 0
        assert sim.anthropic_base_url == sim.gemini_base_url == sim.url
        assert sim.openai_base_url == sim.url + "/v1"
        assert sim.env() == {"ANTHROPIC_BASE_URL": sim.url, "OPENAI_BASE_URL": sim.url + "/v1",
                             "GEMINI_BASE_URL": sim.url, "GOOGLE_GEMINI_BASE_URL": sim.url}
        assert sim.env(api_key="k")["OPENAI_API_KEY"] == "k"
        with pytest.raises(RuntimeError):
            sim.start()
    with pytest.raises(RuntimeError):
        sim.start()


def test_command_line_serves_until_interrupted():
    proc = subprocess.Popen([sys.executable, "-m", "yait_aichain.testing", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("export GEMINI_API_KEY"):
            lines.append(proc.stdout.readline())
        url = re.search(r"http://[\d.:]+", lines[0]).group(0)
        r = requests.post(url + "/v1/messages", json={"messages": [{"role": "user",
                                                                    "content": "cli"}]})
        assert r.json()["content"][0]["text"] == "Summary: cli"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
        out = "".join(lines) + proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert f"export OPENAI_BASE_URL={url}/v1" in out and "stopped: 1 requests" in out
