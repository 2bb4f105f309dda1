"""Retries: the only module that imports ``tenacity``, and the only retry layer.

What is retried is declared by the error (:attr:`APIError.retryable`: 408, 409, 429, 5xx,
529, connection errors, timeouts, a 2xx body that was not JSON; ``x-should-retry`` from
the server overrides the status). The wait is the server's hint (``retry-after-ms``,
``Retry-After``, Gemini's RetryInfo), else exponential backoff with "equal jitter" (half
fixed, half random: N threads hitting one rate limit must not retry in lockstep). A hint
over ``max_retry_after``, or over the time budget left, fails fast with the
:class:`RateLimitError` (``retry_after`` says how long) instead of parking a thread. The
pause a 429 imposes on the whole account lives with the rate limits, not here.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from .. import _context
from .._checks import NUMBER, checked
from ..errors import APIError
from ..ratelimit._limiter import DEFAULT_MAX_PAUSE

__all__ = ["RetryPolicy", "call_with_retries"]

logger = logging.getLogger("yait_aichain.retry")
T = TypeVar("T")

DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 20.0


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
    # The same bound as the longest 429 pause a shared rate limit passes on.
    max_retry_after: float = DEFAULT_MAX_PAUSE
    sleep: Callable[[float], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        checked(self.max_retries, "max_retries")
        for name in ("backoff_initial", "backoff_max", "max_retry_after"):
            checked(getattr(self, name), name, NUMBER)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt: the error says so, and any wait it
        asks for is within ``max_retry_after``."""
        if not isinstance(exc, APIError) or not exc.retryable:
            return False
        return exc.retry_after is None or exc.retry_after <= self.max_retry_after

    def wait(self, retry_state: tenacity.RetryCallState) -> float:
        """The wait before a retry: the server's hint when the error carries one, with a
        little jitter on top (threads told "1 s" must not all return at once), else the
        exponential backoff (tenacity's)."""
        outcome = retry_state.outcome
        hint = getattr(outcome and outcome.exception(), "retry_after", None)
        if hint is not None and hint > 0:
            return float(hint + random.random() * min(1.0, hint * 0.1))
        half, cap = self.backoff_initial / 2, self.backoff_max / 2
        backoff = (tenacity.wait_exponential(multiplier=half, max=cap)
                   + tenacity.wait_random_exponential(multiplier=half, max=cap))
        return float(backoff(retry_state))

    # tenacity's own predicate and stop strategies, built once per policy, not per call.
    @functools.cached_property
    def _strategies(self) -> tuple[tenacity.retry_base, tenacity.stop.stop_base]:
        return (tenacity.retry_if_exception(self.should_retry),
                tenacity.stop_after_attempt(self.max_retries + 1) | _OutOfBudget())


class _OutOfBudget(tenacity.stop.stop_base):
    """Stop when the next wait would not end before the call's time budget does."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        left = _context.current().remaining()
        return left is not None and (retry_state.upcoming_sleep or 0.0) >= left


_given_up = threading.local()  # the seconds this thread's last failed call slept


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy) -> tuple[T, int, float]:
    """Run ``attempt`` until it succeeds or ``policy`` gives up; return (result, attempts,
    seconds slept).

    Every attempt runs the same way; tenacity's retry state is built only once one fails,
    so a call that succeeds at once costs nothing here. The last error is raised as it is
    (never tenacity's RetryError), with ``attempts`` set on it.
    """
    state: tenacity.RetryCallState | None = None
    while True:
        try:
            result = attempt()
        except APIError as exc:
            state = state or tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
            exc.attempts = state.attempt_number
            state.set_exception((type(exc), exc, exc.__traceback__))
            state.upcoming_sleep = policy.wait(state)
            retry, stop = policy._strategies
            if not retry(state) or stop(state):
                _given_up.idle_for = state.idle_for
                raise
            # Our exceptions never hold a key, so their text is safe to log.
            logger.info("retrying in %.2fs after %s (attempt %d): %s", state.upcoming_sleep,
                        type(exc).__name__, state.attempt_number, exc)
            sleep = _context.current().sleep if policy.sleep is None else policy.sleep
            sleep(state.upcoming_sleep)
            state.idle_for += state.upcoming_sleep
            state.prepare_for_next_attempt()
            continue
        if state is None:
            return result, 1, 0.0
        return result, state.attempt_number, state.idle_for


def retry_wait_seconds() -> float:
    """Seconds the calling thread's last failed :func:`call_with_retries` slept."""
    return float(getattr(_given_up, "idle_for", 0.0))
