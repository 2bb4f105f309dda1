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
from yait_aichain.models._retry import CoolDown, call_with_retries, is_retryable, wait_before_retry
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
    assert is_retryable(_err(status, headers, body), POLICY) is retry


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
    assert is_retryable(NetworkError("reset"), POLICY)
    tls = NetworkError("bad cert")
    tls._transient = False
    assert not is_retryable(tls, POLICY)
    assert not is_retryable(ValueError("not ours"), POLICY)


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
    assert err.retry_after == 45.8 and is_retryable(err, POLICY)


@pytest.mark.parametrize("retry_number, low, high", [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (10, 10.0, 20.0), (1000, 10.0, 20.0)])
def test_backoff_is_jittered_exponential_and_capped(retry_number, low, high):
    assert POLICY.backoff(retry_number, rand=lambda: 0.0) == pytest.approx(low)
    assert POLICY.backoff(retry_number, rand=lambda: 1.0) == pytest.approx(high)


def test_server_hint_wins_over_backoff():
    err = _err(429, {"retry-after": "2"})
    for _ in range(20):
        assert 2.0 <= wait_before_retry(err, 1, POLICY) <= 2.2


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
    result, attempts = call_with_retries(script, policy=RetryPolicy(sleep=sleeps), sleep=sleeps, deadline=None)
    assert result == "ok" and attempts == failures + 1 and len(sleeps) == failures


def test_gives_up_after_max_retries_with_the_last_error(sleeps):
    script = Script(*[_err(503) for _ in range(10)])
    with pytest.raises(ServerError) as info:
        call_with_retries(script, policy=RetryPolicy(max_retries=3), sleep=sleeps, deadline=None)
    assert script.calls == 4 and info.value.attempts == 4


def test_non_retryable_is_raised_after_one_attempt(sleeps):
    script = Script(_err(401), "never")
    with pytest.raises(AuthenticationError) as info:
        call_with_retries(script, policy=POLICY, sleep=sleeps, deadline=None)
    assert script.calls == 1 and info.value.attempts == 1 and sleeps == []


def test_hint_longer_than_budget_fails_fast(sleeps):
    script = Script(_err(429, {"retry-after": "30"}), "never")
    with pytest.raises(RateLimitError) as info:
        call_with_retries(script, policy=POLICY, sleep=sleeps, deadline=time.monotonic() + 5)
    assert script.calls == 1 and info.value.retry_after == 30.0 and sleeps == []


def test_hint_above_cap_fails_fast_without_sleeping(sleeps):
    script = Script(_err(429, {"retry-after": "3600"}), "never")
    with pytest.raises(RateLimitError) as info:
        call_with_retries(script, policy=POLICY, sleep=sleeps, deadline=None)
    assert script.calls == 1 and info.value.retry_after == 3600.0


def test_a_429_hint_cools_down_other_callers(sleeps):
    clock = [0.0]
    policy = RetryPolicy(sleep=sleeps, clock=lambda: clock[0])
    cool = CoolDown()
    script = Script(_err(429, {"retry-after": "2"}), "ok")
    call_with_retries(script, policy=policy, sleep=sleeps, deadline=None, cooldown=cool)
    assert cool.remaining(lambda: clock[0]) == pytest.approx(2.0)
    # Another caller of the same account waits out the cool-down before its first request.
    other = Script("ok")
    sleeps.clear()
    call_with_retries(other, policy=policy, sleep=sleeps, deadline=None, cooldown=cool)
    assert sleeps == [pytest.approx(2.0)] and other.calls == 1
