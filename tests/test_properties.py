"""No bare exception from any input: every parser and boundary ends in a value or one
of our typed errors, and retryability follows the error's class.

Bounded example counts and no deadlines, so the whole file stays well under 30 s in CI.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yait_aichain import Model
from yait_aichain.errors import (
    AichainError,
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from yait_aichain.models import RetryPolicy
from yait_aichain.models._status import error_for_response, parse_retry_after
from yait_aichain.models._transport import RawResponse
from yait_aichain.models._values import output_spec
from yait_aichain.models.providers import ADAPTERS

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

# Any JSON: every type, any nesting (the recursion is bounded by Hypothesis' own sizes;
# the deep cases are added explicitly below).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
# JSON shaped like the three wire formats, with every field of any type.
FIELDS = ["choices", "message", "content", "text", "parts", "candidates", "usage",
          "finish_reason", "stop_reason", "finishReason", "usageMetadata", "type", "role",
          "refusal", "tool_calls", "promptFeedback", "input_tokens", "output_tokens",
          "prompt_tokens", "completion_tokens", "error", "id", "model"]
WIRE = st.recursive(
    JSON,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(FIELDS), children, max_size=5),
    max_leaves=30,
)
DEEP = [b"[" * 5_000, b'{"a":' * 3_000, b"[" * 5_000 + b"]" * 5_000,
        json.dumps({"choices": [{"message": {"content": "x"}}]}).encode()[:-3]]
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6", "gemini": "gemini-2.5-flash"}


def _model(provider: str) -> Model:
    return Model(MODELS[provider], api_key="sk-prop-0123456789", base_url="http://127.0.0.1:9")


@pytest.mark.parametrize("provider", sorted(MODELS))
@pytest.mark.parametrize("output", ["text", "json"])
@SETTINGS
@given(data=WIRE | JSON)
def test_any_response_body_is_a_value_or_a_typed_error(provider, output, data):
    model = _model(provider)
    raw = RawResponse(200, {}, json.dumps(data).encode())
    with contextlib.suppress(APIError):
        model._parse(raw, output_spec(output))


@pytest.mark.parametrize("provider", sorted(MODELS))
@pytest.mark.parametrize("body", DEEP + [b"\xff\xfe\x00", b"", b"null", b"\x00" * 10])
def test_deep_truncated_or_binary_bodies_are_typed_errors(provider, body):
    with pytest.raises(APIError):
        _model(provider)._parse(RawResponse(200, {}, body), output_spec("text"))


HEADERS = st.dictionaries(
    st.sampled_from(["retry-after", "retry-after-ms", "x-should-retry", "content-type",
                     "request-id", "x-request-id"]),
    st.text(max_size=40) | st.sampled_from(["inf", "nan", "-1", "1e309", "99999999999999999",
                                            "Wed, 21 Oct 2015 07:28:00 GMT", "true", "false"]),
    max_size=4,
)
_NEVER_RETRIED = (AuthenticationError, InsufficientCreditsError, InvalidRequestError,
                  NotFoundError)


@pytest.mark.parametrize("provider", sorted(MODELS))
@SETTINGS
@given(status=st.integers(300, 599), headers=HEADERS,
       body=st.binary(max_size=200) | JSON.map(lambda d: json.dumps(d).encode())
       | st.sampled_from(DEEP))
def test_any_error_body_gives_an_api_error_whose_class_decides_retrying(provider, status,
                                                                         headers, body):
    err = error_for_response(status, headers, body, provider=provider, model="m",
                             error_details=ADAPTERS[provider].error_details)
    assert isinstance(err, APIError)
    assert err.retry_after is None or (math.isfinite(err.retry_after) and err.retry_after >= 0)
    retry = RetryPolicy().should_retry(err)
    assert retry == err.retryable or (err.retry_after or 0) > 60
    if err._retryable is None:  # no x-should-retry from the server: the class decides
        if isinstance(err, _NEVER_RETRIED):
            assert not err.retryable and not retry
        if isinstance(err, (ServerError, RateLimitError)):
            assert err.retryable and retry == ((err.retry_after or 0) <= 60)
    str(err), repr(err)


@SETTINGS
@given(headers=HEADERS)
def test_any_retry_hint_is_none_or_a_finite_wait(headers):
    value = parse_retry_after(headers)
    assert value is None or (math.isfinite(value) and value >= 0)


@SETTINGS
@given(delay=st.text(max_size=20) | JSON)
def test_any_gemini_retry_delay_is_read_safely(delay):
    body = {"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                   "retryDelay": delay}]}}
    err = error_for_response(429, {}, json.dumps(body).encode(), provider="gemini", model="m",
                             error_details=ADAPTERS["gemini"].error_details)
    assert err.retry_after is None or (math.isfinite(err.retry_after) and err.retry_after >= 0)


@SETTINGS
@given(template=st.text(max_size=60), values=st.dictionaries(
    st.sampled_from(["x", "name", "a_b", "text", "__class__"]), JSON, max_size=4))
def test_any_template_and_values_render_or_raise_a_template_error(template, values):
    from yait_aichain._template import render

    with contextlib.suppress(AichainError):
        assert isinstance(render(template, values), str)


def test_very_deep_template_values_are_a_template_error():
    from yait_aichain._template import render
    from yait_aichain.errors import TemplateError

    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(TemplateError, match="nested too deeply"):
        render("{x}", {"x": deep})


@SETTINGS
@given(data=st.binary(max_size=300), charset=st.none() | st.text(max_size=20)
       | st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-7", "rot13", "hex", "base64",
                          "idna", "punycode", "undefined", "uu_codec", "zlib"]))
def test_any_page_bytes_and_charset_decode_to_text(data, charset):
    from yait_aichain.tools._html import decode_body

    assert isinstance(decode_body(data, charset), str)


@SETTINGS
@given(page=st.text(max_size=300) | st.binary(max_size=300).map(
    lambda b: b.decode("latin-1")))
def test_any_page_text_converts_or_raises_a_tool_error(page):
    from yait_aichain.tools import convertToMD

    with contextlib.suppress(AichainError):
        assert isinstance(convertToMD().run("<html>" + page), str)


@SETTINGS
@given(lines=st.lists(st.binary(max_size=80) | JSON.map(lambda d: json.dumps(d).encode())
                      | st.sampled_from([b"[" * 5_000, b'{"v":1,"key":' * 2_000]),
                      max_size=6))
def test_any_checkpoint_lines_are_read_or_ignored(lines, tmp_path_factory):
    import warnings

    from yait_aichain import Pool

    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt"
    path.write_bytes(b"\n".join(lines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(AichainError):
            pool = Pool(lambda v: v["n"], [{"n": 1}, {"n": 2}], checkpoint=path,
                        checkpoint_key="v1")
            assert pool.run() == [1, 2]


@SETTINGS
@given(lines=st.lists(st.binary(max_size=80) | JSON.map(lambda d: json.dumps(d).encode())
                      | st.sampled_from([b"[" * 5_000, b"\xef\xbb\xbf{}", b"\xff"]),
                      max_size=6), fmt=st.sampled_from(["jsonl", "csv"]),
       id_column=st.none() | st.sampled_from(["id", "text"]))
def test_any_cli_input_lines_are_items_or_a_cli_error(lines, fmt, id_column, tmp_path_factory):
    from yait_aichain.cli._common import CliError
    from yait_aichain.cli._files import read_items, read_previous

    path: Path = tmp_path_factory.mktemp("cli") / f"in.{fmt}"
    path.write_bytes(b"\n".join(lines))
    with contextlib.suppress(CliError):
        read_items(str(path), fmt, id_column, None)
    read_previous(str(path))  # an earlier output file: unreadable lines are counted


@SETTINGS
@given(key=st.text(max_size=40))
def test_any_key_is_accepted_or_a_configuration_error(key):
    try:
        model = Model("gpt-4o-mini", api_key=key)
    except AichainError as exc:
        assert key.strip() == "" or key.strip() not in str(exc)
        return
    assert all(c.isprintable() or c == " " for c in model._key.get() or "")


_RAW_REPLIES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda status, head, body: b"HTTP/1.1 " + status + b"\r\n" + head + b"\r\n\r\n"
              + body,
              st.sampled_from([b"200 OK", b"500 X", b"429 X", b"999 X", b"20", b"abc", b""]),
              st.lists(st.sampled_from([b"Content-Length: 5", b"Content-Length: -1",
                                        b"Content-Length: 99999999999",
                                        b"Transfer-Encoding: chunked",
                                        b"Content-Encoding: gzip", b"Content-Encoding: br, gzip",
                                        b"Retry-After: nan", b"X: \xff\xfe", b"no colon",
                                        b"Content-Type: application/json; charset=rot13"]),
                       max_size=4).map(b"\r\n".join),
              st.binary(max_size=60) | st.sampled_from([b"zz\r\n", b"5\r\n{}", b"[" * 3000])),
)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(reply=_RAW_REPLIES)
def test_any_bytes_on_the_wire_end_in_a_typed_error_or_a_value(reply):
    from ._rawserver import RawServer

    with RawServer(lambda sock, req: sock.sendall(reply)) as srv:
        model = Model("gpt-4o-mini", api_key="sk-prop-0123456789", base_url=srv.url + "/v1",
                      timeout=3, retry=RetryPolicy(max_retries=0))
        with contextlib.suppress(APIError):
            model.generate("x")
