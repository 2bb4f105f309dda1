"""Realistic responses built from the official SDKs' own response models, served to our
Model over the wire: tool_use, thinking, citations, cache counters, refusals, safety
blocks, MAX_TOKENS without parts, promptFeedback.blockReason, and every stop or finish
reason each SDK lists (read from the SDK, so a new one joins the matrix by itself).

Each gives a value or the documented typed error (InvalidResponseError with a reason),
never a KeyError/TypeError/AttributeError.
"""

from __future__ import annotations

import typing

import pytest

pytest.importorskip("openai")
pytest.importorskip("anthropic")
pytest.importorskip("google.genai")

from anthropic.types import Message, StopReason  # noqa: E402
from google.genai import types as gtypes  # noqa: E402
from openai.types.chat import ChatCompletion  # noqa: E402
from openai.types.chat.chat_completion import Choice  # noqa: E402

from yait_aichain import Model  # noqa: E402
from yait_aichain.errors import InvalidResponseError  # noqa: E402
from yait_aichain.testing import Fault, Simulator  # noqa: E402

PERSON = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
OUTPUTS = {"text": None, "json": "json",
           "json_schema": {"type": "json_schema", "schema": PERSON, "name": "person"}}
REASONS = {"truncated", "empty", "refusal", "safety", "no_choices", "no_tool_output",
           "invalid_json", "invalid", "malformed"}


@pytest.fixture(scope="module")
def sim():
    with Simulator() as s:
        yield s


def serve(sim, provider, body, output):
    """Our Model's outcome for one served body: ("ok", output) or ("error", reason)."""
    sim.fail_next(Fault.status(200, body=body))
    base = sim.openai_base_url if provider == "openai" else sim.url
    model = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6",
             "gemini": "gemini-2.5-flash"}[provider]
    try:
        gen = Model(model, api_key="k", base_url=base, max_retries=0).generate(
            "Who wrote it? Answer in JSON.", output=output)
    except InvalidResponseError as exc:
        assert exc.reason in REASONS, exc.reason
        return "error", exc.reason
    return "ok", gen.output


def matrix(sim, provider, reasons, shapes, build):
    """Every (reason, shape, output) outcome for bodies ``build(shape, reason)``."""
    return {(reason, label, out_name): serve(sim, provider, build(content, reason), output)
            for reason in reasons for label, content in shapes.items()
            for out_name, output in OUTPUTS.items()}


# -- Anthropic ----------------------------------------------------------------------------

ANTHROPIC_USAGE = {"input_tokens": 12, "output_tokens": 7, "cache_creation_input_tokens": 100,
                   "cache_read_input_tokens": 2000, "server_tool_use": None,
                   "service_tier": "standard"}
ANTHROPIC_CONTENT = {
    "text": [{"type": "text", "text": '{"name": "Ann"}'}],
    "citations": [{"type": "text", "text": '{"name": "Ann"}', "citations": [{
        "type": "char_location", "cited_text": "Ann wrote it", "document_index": 0,
        "document_title": "doc", "start_char_index": 0, "end_char_index": 12,
        "file_id": None}]}],
    "thinking+text": [{"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
                      {"type": "text", "text": '{"name": "Ann"}'}],
    "redacted+text": [{"type": "redacted_thinking", "data": "opaque"},
                      {"type": "text", "text": '{"name": "Ann"}'}],
    "tool_use": [{"type": "tool_use", "id": "toolu_1", "name": "person",
                  "input": {"name": "Ann"}}],
    "cut json": [{"type": "text", "text": '{"name": "An'}],
    "thinking only": [{"type": "thinking", "thinking": "Hmm", "signature": "sig"}],
    "none": [],
}


def anthropic_body(content, stop):
    message = Message.model_validate({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
        "content": content, "stop_reason": stop, "stop_sequence": None,
        "usage": ANTHROPIC_USAGE})
    return message.model_dump(mode="json")


def test_every_anthropic_stop_reason_and_content_shape(sim):
    stops = typing.get_args(StopReason)
    assert {"end_turn", "max_tokens", "refusal", "model_context_window_exceeded"} <= set(stops)
    outcomes = matrix(sim, "anthropic", stops, ANTHROPIC_CONTENT, anthropic_body)
    assert outcomes["end_turn", "text", "text"] == ("ok", '{"name": "Ann"}')
    assert outcomes["end_turn", "citations", "json"] == ("ok", {"name": "Ann"})
    assert outcomes["end_turn", "thinking+text", "json"] == ("ok", {"name": "Ann"})
    assert outcomes["end_turn", "redacted+text", "text"] == ("ok", '{"name": "Ann"}')
    assert outcomes["tool_use", "tool_use", "json_schema"] == ("ok", {"name": "Ann"})
    for stop in stops:
        assert outcomes[stop, "none", "text"][0] == "error"
        if stop != "refusal":
            assert outcomes[stop, "tool_use", "json_schema"] == ("ok", {"name": "Ann"})
    assert outcomes["refusal", "text", "text"] == ("error", "refusal")
    for stop in ("max_tokens", "model_context_window_exceeded"):
        assert outcomes[stop, "cut json", "json"] == ("error", "truncated")
        assert outcomes[stop, "none", "text"] == ("error", "truncated")
        assert outcomes[stop, "thinking only", "json_schema"] == ("error", "truncated")
    assert outcomes["end_turn", "cut json", "json"] == ("error", "invalid_json")


def test_anthropic_cache_counters_count_as_input(sim):
    sim.fail_next(Fault.status(200, body=anthropic_body(ANTHROPIC_CONTENT["text"], "end_turn")))
    gen = Model("claude-sonnet-4-6", api_key="k", base_url=sim.url).generate("x")
    assert gen.usage.input_tokens >= 12 and gen.usage.output_tokens == 7


# -- OpenAI -------------------------------------------------------------------------------

OPENAI_MESSAGES = {
    "content": {"role": "assistant", "content": '{"name": "Ann"}'},
    "annotations": {"role": "assistant", "content": '{"name": "Ann"}', "annotations": [{
        "type": "url_citation", "url_citation": {"url": "https://example.com", "title": "t",
                                                 "start_index": 0, "end_index": 3}}]},
    "refusal": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
    "tool_calls": {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "f", "arguments": "{}"}}]},
    "cut json": {"role": "assistant", "content": '{"name": "An'},
    "empty": {"role": "assistant", "content": ""},
}


def openai_body(message, finish, n=1):
    completion = ChatCompletion.model_validate({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": i, "message": message, "finish_reason": finish,
                     "logprobs": None} for i in range(n)],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
                  "prompt_tokens_details": {"cached_tokens": 8},
                  "completion_tokens_details": {"reasoning_tokens": 2}}})
    return completion.model_dump(mode="json")


def test_every_openai_finish_reason_and_message_shape(sim):
    finishes = typing.get_args(Choice.model_fields["finish_reason"].annotation)
    assert {"stop", "length", "content_filter"} <= set(finishes)
    outcomes = matrix(sim, "openai", finishes, OPENAI_MESSAGES, openai_body)
    assert outcomes["stop", "content", "json"] == ("ok", {"name": "Ann"})
    assert outcomes["stop", "annotations", "json_schema"] == ("ok", {"name": "Ann"})
    for finish in finishes:
        assert outcomes[finish, "refusal", "text"] == ("error", "refusal")
        assert outcomes[finish, "tool_calls", "text"][0] == "error"
    assert outcomes["length", "cut json", "json"] == ("error", "truncated")
    assert outcomes["length", "empty", "text"] == ("error", "truncated")
    assert outcomes["content_filter", "content", "text"] == ("error", "safety")
    assert serve(sim, "openai", openai_body(OPENAI_MESSAGES["content"], "stop", n=2),
                 "json") == ("ok", {"name": "Ann"})
    no_choices = openai_body(OPENAI_MESSAGES["content"], "stop")
    no_choices["choices"] = []
    assert serve(sim, "openai", no_choices, None) == ("error", "no_choices")


# -- Gemini -------------------------------------------------------------------------------

GEMINI_CONTENT = {
    "text": {"role": "model", "parts": [{"text": '{"name": "Ann"}'}]},
    "thought+text": {"role": "model", "parts": [{"text": "thinking...", "thought": True},
                                                {"text": '{"name": "Ann"}'}]},
    "function call": {"role": "model", "parts": [{"functionCall": {"name": "f",
                                                                   "args": {}}}]},
    "no parts": {"role": "model"},
    "cut json": {"role": "model", "parts": [{"text": '{"name": "An'}]},
    None: None,
}
_BLOCKING = {"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
             "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR"}


def gemini_body(content, finish, feedback=None, candidates=True):
    raw: dict = {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3,
                                   "thoughtsTokenCount": 4, "cachedContentTokenCount": 2,
                                   "totalTokenCount": 12},
                 "modelVersion": "gemini-2.5-flash"}
    if candidates:
        cand: dict = {"index": 0, "finishReason": finish}
        if content is not None:
            cand["content"] = content
        raw["candidates"] = [cand]
    if feedback:
        raw["promptFeedback"] = {"blockReason": feedback}
    response = gtypes.GenerateContentResponse.model_validate(raw)
    return response.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_every_gemini_finish_reason_and_content_shape(sim):
    finishes = [f.value for f in gtypes.FinishReason]
    assert {"STOP", "MAX_TOKENS", "SAFETY"} <= set(finishes)
    outcomes = matrix(sim, "gemini", finishes, GEMINI_CONTENT, gemini_body)
    assert outcomes["STOP", "text", "json"] == ("ok", {"name": "Ann"})
    assert outcomes["STOP", "thought+text", "text"] == ("ok", '{"name": "Ann"}')
    assert outcomes["MAX_TOKENS", "no parts", "text"] == ("error", "truncated")
    assert outcomes["MAX_TOKENS", None, "json"] == ("error", "truncated")
    assert outcomes["MAX_TOKENS", "cut json", "json_schema"] == ("error", "truncated")
    for finish in _BLOCKING & set(finishes):
        assert outcomes[finish, "text", "text"] == ("error", "safety"), finish


def test_every_gemini_prompt_block_reason(sim):
    for reason in [r.value for r in gtypes.BlockedReason]:
        body = gemini_body(None, None, feedback=reason, candidates=False)
        assert body["promptFeedback"]["blockReason"] == reason
        assert serve(sim, "gemini", body, None) == ("error", "safety"), reason
    assert serve(sim, "gemini", gemini_body(None, None, candidates=False), None) == (
        "error", "no_choices")


def test_gemini_thinking_tokens_are_billed_as_output(sim):
    sim.fail_next(Fault.status(200, body=gemini_body(GEMINI_CONTENT["text"], "STOP")))
    gen = Model("gemini-2.5-flash", api_key="k", base_url=sim.url).generate("x")
    assert (gen.usage.input_tokens, gen.usage.output_tokens) == (5, 7)
