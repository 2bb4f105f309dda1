"""Retries: the only module that imports ``tenacity``, and the only retry layer.

What is retried is declared by the error itself (:attr:`APIError.retryable`): 408, 409,
429, 5xx and 529 responses, connection errors and timeouts, and a 2xx body that was not
JSON; never other 4xx, billing, TLS or proxy errors; ``x-should-retry`` from the server
overrides the status.

How long we wait: the server's hint (``retry-after-ms``, ``Retry-After`` seconds or date,
Gemini's RetryInfo) when there is one, else exponential backoff with "equal jitter" (half
fixed, half random: N threads hitting one rate limit must not retry in lockstep). A hint
longer than ``max_retry_after``, or longer than the time budget left, fails fast with the
:class:`RateLimitError` (its ``retry_after`` says how long) instead of parking a thread.

The pause a 429 imposes on everyone using the same account lives with the rate limits
(:func:`yait_aichain.ratelimit._limiter.account_limit`), not here.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from .. import _context
from ..errors import APIError, ConfigurationError

__all__ = ["RetryPolicy", "call_with_retries"]

logger = logging.getLogger("yait_aichain.retry")
T = TypeVar("T")

DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 20.0
DEFAULT_MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How a Model retries. Immutable; share one between models freely.

    Args:
        max_retries: retries after the first attempt (0 disables retrying).
        backoff_initial: the first backoff step in seconds; each retry doubles it.
        backoff_max: the largest backoff step.
        max_retry_after: the longest server-requested wait we honour; a longer one fails
            fast with ``RateLimitError(retry_after=...)``.
        sleep: ``sleep(seconds)``; None uses the current Pool item's interruptible sleep
            (tests inject one that never waits).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    sleep: Callable[[float], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) \
                or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        for name in ("backoff_initial", "backoff_max", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt: the error says so, and any wait it
        asks for is within ``max_retry_after``."""
        if not isinstance(exc, APIError) or not exc.retryable:
            return False
        return exc.retry_after is None or exc.retry_after <= self.max_retry_after

    @functools.cached_property
    def wait(self) -> tenacity.wait.wait_base:
        """The wait before a retry, as a tenacity strategy: the hint, else the backoff."""
        half, cap = self.backoff_initial / 2, self.backoff_max / 2
        backoff = tenacity.wait_exponential(multiplier=half, max=cap) \
            + tenacity.wait_random_exponential(multiplier=half, max=cap)
        return _WaitForHint(backoff)

    @functools.cached_property
    def _retrying(self) -> tenacity.Retrying:
        # Built once per policy: tenacity keeps per-call state in a thread-local, so one
        # object serves every thread, and building it costs as much CPU as a whole call.
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1) | _OutOfBudget(),
            wait=self.wait,
            retry=tenacity.retry_if_exception(self.should_retry),
            sleep=_scope_sleep if self.sleep is None else self.sleep,
            reraise=True,
            before_sleep=_log_retry,
        )

    def __getstate__(self) -> dict[str, Any]:
        # The cached strategies hold a threading.local; a copy builds its own.
        return {k: v for k, v in self.__dict__.items() if k not in ("wait", "_retrying")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _WaitForHint(tenacity.wait.wait_base):
    """The server's hint when the error carries one, else ``fallback``. A little jitter on
    top, so that threads told "1 s" do not all return at once."""

    def __init__(self, fallback: tenacity.wait.wait_base):
        self.fallback = fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        hint = getattr(_exception(retry_state), "retry_after", None)
        if hint is not None and hint > 0:
            return float(hint + random.random() * min(1.0, hint * 0.1))
        return float(self.fallback(retry_state))


class _OutOfBudget(tenacity.stop.stop_base):
    """Stop when the next wait would not end before the call's time budget does."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        left = _context.current().remaining()
        return left is not None and (retry_state.upcoming_sleep or 0.0) >= left


def _scope_sleep(seconds: float) -> None:
    _context.current().sleep(seconds)


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy) -> tuple[T, int, float]:
    """Run ``attempt`` until it succeeds or retrying stops, within the current scope's
    budget; return (result, attempts, seconds slept between attempts).

    The last error is raised as it is (never tenacity's RetryError), with ``attempts`` set
    on it and ``waited`` (the seconds slept) beside it.
    """
    retrying = policy._retrying
    try:
        result = retrying(attempt)
    except APIError as exc:
        exc.attempts = retrying.statistics.get("attempt_number", 1)
        raise
    stats = retrying.statistics
    return result, stats["attempt_number"], stats.get("idle_for", 0.0)


def retry_wait_seconds(policy: RetryPolicy) -> float:
    """Seconds the calling thread's last :func:`call_with_retries` slept between attempts."""
    return float(policy._retrying.statistics.get("idle_for", 0.0))


def _exception(state: tenacity.RetryCallState) -> BaseException | None:
    return None if state.outcome is None else state.outcome.exception()


def _log_retry(state: tenacity.RetryCallState) -> None:
    # Our exceptions never hold a key, so their text is safe to log.
    exc = _exception(state)
    logger.info(
        "retrying in %.2fs after %s (attempt %d): %s",
        state.upcoming_sleep, type(exc).__name__, state.attempt_number, exc,
    )
