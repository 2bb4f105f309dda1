"""Keys: normalised or refused at construction, masked in every frame, scrubbed from
every error whatever their shape."""

from __future__ import annotations

import json
import pickle
import traceback

import pytest

from yait_aichain import Model
from yait_aichain.errors import AuthenticationError, ConfigurationError, NetworkError
from yait_aichain.models import RetryPolicy

from ._rawserver import RawServer, response

ODD_KEY = "zz9-plural-Z-alpha-0000-1111-2222"  # not sk-shaped: no pattern can guess it
OPENAI_OK = {"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _locals_text(exc: BaseException) -> str:
    """What a traceback-with-locals reporter captures, leaving out this file's own frames
    (the test's locals hold the key on purpose)."""
    tbe = traceback.TracebackException.from_exception(exc, capture_locals=True)
    parts = []
    while tbe is not None:
        parts += list(tbe.format_exception_only())
        for frame in tbe.stack:
            if frame.filename != __file__:
                parts += [f"{frame.name}: {frame.locals!r}"]
        tbe = tbe.__cause__ or (None if tbe.__suppress_context__ else tbe.__context__)
    return "\n".join(parts)


@pytest.mark.parametrize("raw", [ODD_KEY + "\n", ODD_KEY + "\r\n", f" \t{ODD_KEY}\r\n "])
def test_surrounding_whitespace_is_stripped_before_sending(raw):
    with RawServer(lambda s, r: s.sendall(response(200, json.dumps(OPENAI_OK).encode()))) as srv:
        model = Model("gpt-4o", api_key=raw, base_url=srv.url + "/v1")
        assert model.generate("x").output == "fine"
    assert srv.requests[0].header("authorization") == f"Bearer {ODD_KEY}"


@pytest.mark.parametrize(
    "bad", ["\x00", "\n", "\r", "\x1b", "\x7f", "\x85", "\u2028", "\u00e9x\u20ac"]
)
def test_a_control_character_inside_the_key_is_refused_naming_the_source(bad, monkeypatch):
    key = ODD_KEY[:10] + bad + ODD_KEY[10:]
    with pytest.raises(ConfigurationError) as info:
        Model("gpt-4o", api_key=ODD_KEY[:10] + bad + ODD_KEY[10:])
    assert "api_key argument" in str(info.value)
    assert ODD_KEY[:10] not in _locals_text(info.value)
    if bad == "\x00":
        return  # an environment variable cannot hold a NUL
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(ConfigurationError) as info:
        Model("gpt-4o")
    assert "OPENAI_API_KEY" in str(info.value)
    assert ODD_KEY[:10] not in _locals_text(info.value)


def test_key_from_env_is_stripped_and_a_blank_one_counts_as_missing(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ODD_KEY + "\r\n")
    assert Model("claude-sonnet-4-6")._key.get() == ODD_KEY
    monkeypatch.setenv("ANTHROPIC_API_KEY", " \r\n")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        Model("claude-sonnet-4-6")


def test_the_headers_that_carry_the_key_mask_their_repr_and_still_pickle():
    model = Model("gpt-4o", api_key=ODD_KEY)
    assert ODD_KEY not in repr(vars(model)) and ODD_KEY not in repr(model._auth)
    assert model._auth["Authorization"] == f"Bearer {ODD_KEY}"
    clone = pickle.loads(pickle.dumps(model))
    assert clone._auth["Authorization"] == f"Bearer {ODD_KEY}"
    assert ODD_KEY not in repr(vars(clone))


def test_an_echoed_key_of_any_shape_is_scrubbed_from_errors_and_no_frame_shows_it():
    def echo(sock, req):
        body = json.dumps({"error": {"message": f"bad key {req.header('x-api-key')} (ok?)"}})
        sock.sendall(response(401, body.encode()))

    with RawServer(echo) as srv:
        model = Model("claude-sonnet-4-6", api_key=ODD_KEY + "\r\n", base_url=srv.url)
        with pytest.raises(AuthenticationError) as info:
            model.generate("x")
    exc = info.value
    assert ODD_KEY in srv.requests[0].head.decode()  # the server did get (and echo) it
    assert "bad key ***" in exc.message
    for text in (str(exc), repr(exc), repr(exc.args), exc.body or "", _locals_text(exc)):
        assert ODD_KEY not in text


def test_a_timeout_traceback_with_locals_never_shows_the_key():
    import time

    with RawServer(lambda s, r: time.sleep(3)) as srv:
        model = Model("gpt-4o", api_key=ODD_KEY, base_url=srv.url + "/v1", timeout=0.5,
                      retry=RetryPolicy(max_retries=0))
        with pytest.raises(NetworkError) as info:
            model.generate("x")
    assert ODD_KEY not in _locals_text(info.value)
    tb = info.tb
    while tb is not None:  # every frame the error passed through, by the locals' reprs
        if tb.tb_frame.f_code.co_filename != __file__:
            for value in tb.tb_frame.f_locals.values():
                assert ODD_KEY not in repr(value)
        tb = tb.tb_next
