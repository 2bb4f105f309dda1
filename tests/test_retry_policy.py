"""The retry policy as tables: (status, headers, attempt) -> decision and wait."""

import email.utils
import time

import pytest

from yait_aichain.errors import (
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
    InvalidRequestError,
    NetworkError,
    RateLimitError,
    ServerError,
)
from yait_aichain.models import RetryPolicy
import random

import tenacity

from yait_aichain import _context
from yait_aichain.models._retry import call_with_retries
from yait_aichain.models._status import error_for_response, parse_retry_after

POLICY = RetryPolicy()


def _err(status, headers=None, body=b'{"error": {"message": "x"}}'):
    return error_for_response(status, headers or {}, body, provider="openai", model="m")


@pytest.mark.parametrize(
    "status, headers, body, retry",
    [
        (429, {}, b"{}", True),
        (429, {"retry-after": "2"}, b"{}", True),
        (429, {"retry-after": "3600"}, b"{}", False),  # longer than the cap: fail fast
        (429, {}, b'{"error": {"code": "insufficient_quota"}}', False),
        (402, {}, b"{}", False),
        (400, {}, b'{"error": {"message": "Your credit balance is too low"}}', False),
        (408, {}, b"{}", True),
        (409, {}, b"{}", True),
        (500, {}, b"<html>oops</html>", True),
        (502, {}, b"{}", True),
        (503, {}, b"{}", True),
        (529, {}, b'{"type": "error", "error": {"type": "overloaded_error"}}', True),
        (400, {}, b"{}", False),
        (401, {}, b"{}", False),
        (403, {}, b"{}", False),
        (404, {}, b"{}", False),
        (413, {}, b"too large", False),
        (422, {}, b"{}", False),
        (500, {"x-should-retry": "false"}, b"{}", False),
        (400, {"x-should-retry": "true"}, b"{}", True),
    ],
)
def test_retry_decision_table(status, headers, body, retry):
    assert POLICY.should_retry(_err(status, headers, body)) is retry


@pytest.mark.parametrize(
    "status, cls",
    [(429, RateLimitError), (401, AuthenticationError), (403, AuthenticationError),
     (400, InvalidRequestError), (422, InvalidRequestError), (500, ServerError), (529, ServerError),
     (402, InsufficientCreditsError), (418, APIError)],
)
def test_status_mapping(status, cls):
    err = _err(status)
    assert type(err) is cls
    assert err.status == status and err.provider == "openai" and err.model == "m"


def test_network_errors_retry_unless_marked_permanent():
    assert POLICY.should_retry(NetworkError("reset"))
    assert not POLICY.should_retry(NetworkError("bad cert", retryable=False))
    assert not POLICY.should_retry(ValueError("not ours"))


def test_error_keeps_facts_and_a_sanitised_excerpt():
    err = error_for_response(
        500, {"x-request-id": "req_1", "content-type": "text/html"}, b"<html>" + b"x" * 5000 + b"</html>",
        provider="anthropic", model="claude-x",
    )
    assert err.request_id == "req_1"
    assert len(err.body) <= 500
    assert "non-JSON" in err.message
    assert str(err).startswith("[HTTP 500]")


def test_error_body_echoing_a_key_is_masked():
    body = b'{"error": {"message": "bad key sk-abcdefghijklmnopqrstuvwxyz123456"}}'
    err = _err(401, body=body)
    assert "abcdefghijklmnop" not in str(err) and "abcdefghijklmnop" not in err.body


NOW = 1_000_000.0


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-10"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "Mon, 99 Foo 2026 00:00:00 GMT"}, None),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, None),
        ({"retry-after": "Fri, 31 Dec 100000 23:59:59 GMT"}, None),
    ],
)
def test_parse_retry_after_table(headers, expected):
    got = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1.0)


def test_gemini_retry_info_in_the_body_is_used_when_no_header():
    def details(data):
        return "quota", 45.8

    err = error_for_response(429, {}, b'{"error": {}}', provider="gemini", model="g", error_details=details)
    assert err.retry_after == 45.8 and POLICY.should_retry(err)


def _wait(policy, exc, retry_number):
    """The wait the policy's tenacity strategy picks before retry ``retry_number``."""
    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = retry_number
    state.outcome = tenacity.Future(retry_number)
    state.outcome.set_exception(exc)
    return policy.wait(state)


@pytest.mark.parametrize("retry_number, low, high", [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (10, 10.0, 20.0), (1000, 10.0, 20.0)])
def test_backoff_is_jittered_exponential_and_capped(retry_number, low, high, monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda a, b: a)
    assert _wait(POLICY, _err(503), retry_number) == pytest.approx(low)
    monkeypatch.setattr(random, "uniform", lambda a, b: b)
    assert _wait(POLICY, _err(503), retry_number) == pytest.approx(high)


def test_server_hint_wins_over_backoff():
    err = _err(429, {"retry-after": "2"})
    for _ in range(20):
        assert 2.0 <= _wait(POLICY, err, 1) <= 2.2


class Script:
    """An attempt function that raises or returns from a list, counting calls."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


@pytest.mark.parametrize("failures", [0, 2, 4])
def test_retries_until_success(failures, sleeps):
    script = Script(*([_err(503)] * failures), "ok")
    result, attempts, slept = call_with_retries(script, RetryPolicy(sleep=sleeps))
    assert result == "ok" and attempts == failures + 1 and len(sleeps) == failures
    assert slept == pytest.approx(sum(sleeps))


def test_gives_up_after_max_retries_with_the_last_error(sleeps):
    script = Script(*[_err(503) for _ in range(10)])
    with pytest.raises(ServerError) as info:
        call_with_retries(script, RetryPolicy(max_retries=3, sleep=sleeps))
    assert script.calls == 4 and info.value.attempts == 4


def test_non_retryable_is_raised_after_one_attempt(sleeps):
    script = Script(_err(401), "never")
    with pytest.raises(AuthenticationError) as info:
        call_with_retries(script, RetryPolicy(sleep=sleeps))
    assert script.calls == 1 and info.value.attempts == 1 and sleeps == []


def test_hint_longer_than_budget_fails_fast(sleeps):
    script = Script(_err(429, {"retry-after": "30"}), "never")
    with pytest.raises(RateLimitError) as info:
        with _context.scope(timeout=5):
            call_with_retries(script, RetryPolicy(sleep=sleeps))
    assert script.calls == 1 and info.value.retry_after == 30.0 and sleeps == []


def test_hint_above_cap_fails_fast_without_sleeping(sleeps):
    script = Script(_err(429, {"retry-after": "3600"}), "never")
    with pytest.raises(RateLimitError) as info:
        call_with_retries(script, RetryPolicy(sleep=sleeps))
    assert script.calls == 1 and info.value.retry_after == 3600.0


def test_a_429_hint_pauses_other_callers_of_the_account():
    from yait_aichain.ratelimit._admit import Permit, admit
    from yait_aichain.ratelimit._limiter import account_limit

    slept = []
    account = account_limit("openai", "http://127.0.0.1:1", "sk-one")
    account.sleep = slept.append
    try:
        assert account_limit("openai", "http://127.0.0.1:1", "sk-one") is account
        assert account_limit("openai", "http://127.0.0.1:1", "sk-two") is not account
        with pytest.raises(RateLimitError), Permit([(account, None, 0)], 0.0):
            raise _err(429, {"retry-after": "2"})
        # Another caller of the same account waits out the pause before its request...
        assert admit((account,)).waited == pytest.approx(2.0, abs=0.1)
        # ...and one whose budget is shorter fails at once, without a request.
        with _context.scope(timeout=0.5), pytest.raises(RateLimitError) as info:
            admit((account,))
        assert info.value.retry_after == pytest.approx(2.0, abs=0.1)
        assert not POLICY.should_retry(info.value)
    finally:
        account.sleep = None


def test_the_account_registry_holds_only_accounts_in_use():
    import gc

    from yait_aichain import Model
    from yait_aichain.ratelimit import _limiter

    models = [Model("gpt-4o-mini", api_key=f"sk-{i}", base_url="http://127.0.0.1:9/v1")
              for i in range(200)]
    assert len({id(m._account) for m in models}) == 200
    held = len(_limiter._accounts)
    del models
    gc.collect()
    assert len(_limiter._accounts) <= held - 200  # the registry never grows for ever
