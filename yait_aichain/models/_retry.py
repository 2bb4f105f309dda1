"""Retries: the only module that imports ``tenacity``, and the only retry layer.

What is retried: 408, 409, 429, 5xx and 529 responses, connection errors and timeouts, and a
2xx body that was not JSON. Never other 4xx, billing errors, TLS or proxy errors.
``x-should-retry: true|false`` from the server overrides the status.

How long we wait: the server's hint (``retry-after-ms``, ``Retry-After`` seconds or date,
Gemini's RetryInfo) when there is one, else exponential backoff with jitter (N threads
hitting one rate limit must not retry in lockstep). A hint longer than
``max_retry_after``, or longer than the time budget left, fails fast with the
:class:`RateLimitError` (its ``retry_after`` says how long) instead of parking a thread.

Shared cool-down: a 429 with a hint makes every thread that uses the same provider, base
URL and key wait until then before its next request, instead of each finding the limit
on its own.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from ..errors import APIError, InsufficientCreditsError, InvalidResponseError, NetworkError, RateLimitError

__all__ = ["RetryPolicy", "CoolDown", "cooldown_for", "call_with_retries", "is_retryable"]

logger = logging.getLogger("yait_aichain.retry")
T = TypeVar("T")

DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 20.0
DEFAULT_MAX_RETRY_AFTER = 60.0
_RETRY_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How a Model retries. Immutable; share one between models freely.

    Args:
        max_retries: retries after the first attempt (0 disables retrying).
        backoff_initial: the first backoff step in seconds; each retry doubles it.
        backoff_max: the largest backoff step.
        max_retry_after: the longest server-requested wait we honour; a longer one fails
            fast with ``RateLimitError(retry_after=...)``.
        sleep: ``sleep(seconds)``; None uses the current Pool item's interruptible sleep.
        clock: a monotonic clock; tests inject a fake one together with ``sleep``.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    sleep: Callable[[float], None] | None = field(default=None, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ..errors import ConfigurationError

        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        for name in ("backoff_initial", "backoff_max", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Wait before retry ``retry_number`` (1-based) when the server gave no hint:
        "equal jitter", half fixed and half random, so it is never near zero and N
        threads spread out."""
        step = min(self.backoff_max, self.backoff_initial * 2 ** min(retry_number - 1, 30))
        return step / 2 + rand() * step / 2


def is_retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``exc`` is worth another attempt under ``policy``."""
    if not isinstance(exc, APIError) or isinstance(exc, InsufficientCreditsError):
        return False
    hint = getattr(exc, "_should_retry", None)
    if hint is not None:
        return bool(hint)
    if exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
        return False
    if isinstance(exc, NetworkError):
        return getattr(exc, "_transient", True)
    if isinstance(exc, InvalidResponseError):
        return exc.reason == "malformed"
    return exc.status in _RETRY_STATUSES or exc.status >= 500


def wait_before_retry(exc: BaseException, retry_number: int, policy: RetryPolicy) -> float:
    """Seconds to wait before retry ``retry_number``: the server's hint, else backoff."""
    hint = getattr(exc, "retry_after", None)
    if hint is not None and hint > 0:
        # A little jitter on top so that threads told "1 s" do not all return at once.
        return hint + random.random() * min(1.0, hint * 0.1)
    return policy.backoff(retry_number)


class CoolDown:
    """A moment before which nobody should call a provider account again."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float, clock: Callable[[], float]) -> None:
        with self._lock:
            self._until = max(self._until, clock() + seconds)

    def remaining(self, clock: Callable[[], float]) -> float:
        return max(0.0, self._until - clock())


_cooldowns: dict[str, CoolDown] = {}
_cooldowns_lock = threading.Lock()


def cooldown_for(provider: str, base_url: str, api_key: str | None) -> CoolDown:
    """The cool-down shared by every Model that uses this account. Keyed by a hash, so
    the key itself is never stored here."""
    digest = hashlib.sha256(f"{provider}\0{base_url}\0{api_key or ''}".encode()).hexdigest()
    with _cooldowns_lock:
        return _cooldowns.setdefault(digest, CoolDown())


def call_with_retries(
    attempt: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    deadline: float | None,
    cooldown: CoolDown | None = None,
) -> tuple[T, int]:
    """Run ``attempt`` until it succeeds or retrying stops; return (result, attempts).

    The last error is raised as it is (never tenacity's RetryError), with ``attempts``
    set on it.
    """
    clock = policy.clock
    count = 0

    def one_attempt() -> T:
        nonlocal count
        if cooldown is not None:
            wait = cooldown.remaining(clock)
            if wait > 0:
                if deadline is not None and clock() + wait > deadline:
                    raise RateLimitError(
                        "the provider asked every caller to wait longer than the time budget left",
                        status=429, retry_after=wait, attempts=count,
                    )
                sleep(wait)
        count += 1
        try:
            return attempt()
        except APIError as exc:
            exc.attempts = count
            if isinstance(exc, RateLimitError) and exc.retry_after and cooldown is not None:
                if exc.retry_after <= policy.max_retry_after:
                    cooldown.hold(exc.retry_after, clock)
            raise

    # Fast path: most calls succeed at once, and building a tenacity loop costs about as
    # much CPU as the rest of the call (benchmarks/bench_model.py). Only a retryable first
    # failure enters the loop, which replays it as its own first attempt.
    try:
        return one_attempt(), count
    except APIError as exc:
        if policy.max_retries == 0 or not is_retryable(exc, policy):
            raise
        first: APIError | None = exc

    def replay_then_attempt() -> T:
        nonlocal first
        if first is not None:
            exc, first = first, None
            raise exc
        return one_attempt()

    def out_of_budget(state: tenacity.RetryCallState) -> bool:
        if deadline is None:
            return False
        return clock() + (state.upcoming_sleep or 0.0) >= deadline

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_retries + 1) | out_of_budget,
        wait=lambda state: wait_before_retry(_exception(state), state.attempt_number, policy),
        retry=tenacity.retry_if_exception(lambda exc: is_retryable(exc, policy)),
        sleep=sleep,
        reraise=True,
        before_sleep=_log_retry,
    )
    return retrying(replay_then_attempt), count


def _exception(state: tenacity.RetryCallState) -> BaseException:
    assert state.outcome is not None
    exc = state.outcome.exception()
    assert exc is not None
    return exc


def _log_retry(state: tenacity.RetryCallState) -> None:
    # Our exceptions never hold a key, so their text is safe to log.
    exc: Any = _exception(state)
    logger.info(
        "retrying in %.2fs after %s (attempt %d): %s",
        state.upcoming_sleep, type(exc).__name__, state.attempt_number, exc,
    )
