"""The run's guards, one scheduling policy: the circuit breaker (stop starting items that
all fail in a way nothing in the run can fix; see the README's "Guardrails for money") and
the budget that every model call reserves from.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from .._budget import Budget
from .._checks import checked
from .._runner import user_stacklevel
from .._usage import Usage
from ..errors import (APIError, AuthenticationError, CancelledError, ConfigurationError,
                      InsufficientCreditsError, NetworkError, NotFoundError, RateLimitError,
                      ServerError)

__all__ = ["CircuitBreaker", "Guards", "check_breaker"]

DEFAULT_SYSTEMIC = 3
DEFAULT_SAME_ERROR = 5
_DIGITS = re.compile(r"\d+")
# Why an item did not run, or not to its end (see Guards.cancelled).
WHY = {
    "stop": "not started: an earlier item failed and on_error='stop'",
    "deadline": "not finished: the run's deadline was spent",
    "budget": "not started: the run's budget (max_cost / max_tokens) was spent",
    "systemic": "not started: the items before it all failed the same way",
    "raise": "cancelled: an item failed and on_error='raise'",
    "interrupt": "cancelled: the run was interrupted (Ctrl-C, or an error in the caller)",
    "cancelled": "cancelled: the enclosing run was cancelled",
}
_LOCAL_HINTS = {"11434": "try `ollama serve`", "1234": "start LM Studio's server",
                "8080": "start the llama.cpp server", "8000": "start the vLLM server"}


@dataclass(frozen=True)
class CircuitBreaker:
    """When a Pool stops starting items that all fail the same way (``Pool(breaker=...)``).

    Args:
        systemic: items in a row failing with an error nothing in the run can fix (key,
            permission, billing, unknown model or endpoint, connection refused).
        same_error: items in a row failing with the same error a retry would not fix.

    Raises:
        ConfigurationError: a count that is not an int >= 1.
    """

    systemic: int = DEFAULT_SYSTEMIC
    same_error: int = DEFAULT_SAME_ERROR

    def __post_init__(self) -> None:
        for name in ("systemic", "same_error"):
            checked(getattr(self, name), f"CircuitBreaker {name}", low=1)


def check_breaker(value: Any) -> CircuitBreaker | None:
    """``True`` (the default) -> the default breaker; ``False``/None -> off."""
    if value is True or value is False or value is None:
        return CircuitBreaker() if value else None
    if isinstance(value, CircuitBreaker):
        return value
    raise ConfigurationError(
        f"breaker must be True, False or a CircuitBreaker(...); got {type(value).__name__}")


def root_error(error: BaseException | None) -> BaseException | None:
    """The provider error behind a wrapper (a Chain's ChainStepError, a tool's error)."""
    seen = 0
    while error is not None and not isinstance(error, APIError) and seen < 10:
        error = error.__cause__ or error.__context__
        seen += 1
    return error


def is_refused(error: BaseException) -> bool:
    return isinstance(error, NetworkError) and bool(getattr(error, "refused", False))


def is_systemic(error: BaseException) -> bool:
    """An error every other item would meet too: nothing in this run can fix it."""
    return isinstance(error, (AuthenticationError, InsufficientCreditsError, NotFoundError)) \
        or is_refused(error)


def _signature(error: BaseException) -> tuple[str, int, str] | None:
    """What "the same error" means: class, status and message with numbers blurred. None
    for errors a retry or a later item may well not meet (rate limits, 5xx, timeouts)."""
    if not isinstance(error, APIError) or isinstance(error, (RateLimitError, ServerError)):
        return None
    if isinstance(error, NetworkError) and not is_refused(error):
        return None
    return type(error).__name__, error.status or 0, _DIGITS.sub("#", str(error))[:200]


def advice(error: BaseException) -> str:
    """What to fix, in one sentence."""
    provider = getattr(error, "provider", None) or "the provider"
    model = getattr(error, "model", None)
    if is_refused(error):
        url = getattr(error, "base_url", None) or "the base URL"
        port = url.rsplit(":", 1)[-1].split("/", 1)[0] if ":" in url else ""
        hint = _LOCAL_HINTS.get(port, "start it, or check base_url=")
        return f"is the server running at {url}? {hint}"
    if isinstance(error, AuthenticationError):
        return (f"{provider} refused the API key (HTTP {error.status}): set a valid key "
                "(the provider's *_API_KEY variable or api_key=) with access to this model")
    if isinstance(error, InsufficientCreditsError):
        return f"the {provider} account is out of credit: add credit or raise its spending limit"
    if isinstance(error, NotFoundError):
        from ..models.registry import suggest_model

        what = f"the model {model!r}" if model else "the model"
        near = suggest_model(model) if model else None
        hint = f" (did you mean {near!r}?)" if near else ""
        return (f"{provider} does not know {what} or this endpoint (HTTP 404){hint}: check "
                "the model name and the base URL")
    return "every item fails the same way: fix the request (see the error) and run again"


class Guards:
    """One run's breaker and budget: the scheduler asks ``doubtful`` (should new starts wait
    for the items in flight?) and ``stop_reason`` (should nothing new start?), and feeds
    ``observe`` each ended item."""

    def __init__(self, config: CircuitBreaker | None, max_cost: float | None = None,
                 max_tokens: int | None = None):
        self.config = config
        self.tripped: BaseException | None = None  # the error that stopped the run
        self._systemic: tuple[Any, int] = (None, 0)
        self._same: tuple[Any, int] = (None, 0)
        self._failed_in_a_row = 0
        self.max_cost, self.max_tokens = max_cost, max_tokens
        self._cost_warned = False
        use_budget = max_cost is not None or max_tokens is not None
        self.budget = Budget(max_cost, max_tokens) if use_budget else None

    @property
    def doubtful(self) -> bool:
        """A systemic failure is unconfirmed: hold new starts until the items in flight
        have reported, so a revoked key costs at most one wave of requests."""
        return self.config is not None and self.tripped is None and self._systemic[1] > 0

    def observe(self, done: bool, error: BaseException | None) -> BaseException | None:
        """Feed one ended item (DONE, or FAILED with ``error``); returns the error that
        trips the breaker, once."""
        self._failed_in_a_row = 0 if done else self._failed_in_a_row + 1
        cfg = self.config
        if cfg is None or self.tripped is not None:
            return None
        if done:
            self._systemic = self._same = (None, 0)
            return None
        root = root_error(error)
        if root is None:
            return None
        sig = _signature(root)
        if sig is not None:
            self._same = (sig, self._same[1] + 1 if self._same[0] == sig else 1)
        if is_systemic(root):
            key = (type(root).__name__, getattr(root, "status", 0))
            self._systemic = (key, self._systemic[1] + 1 if self._systemic[0] == key else 1)
        same = sig is not None and self._same[1] >= cfg.same_error
        if self._systemic[1] >= cfg.systemic or same:
            self.tripped = root
            return root
        return None

    def stop_reason(self) -> str | None:
        """"budget" once a call did not fit (a trip is the scheduler's to act on, as observed)."""
        return "budget" if self.budget is not None and self.budget.refused is not None else None

    def over_budget(self, spent: Usage) -> bool:
        """After an item ended: is the run's spend at its budget? This catches what no
        reservation saw (a runner that reports usage itself, items on other processes)."""
        if self.max_tokens is not None and spent.total_tokens >= self.max_tokens:
            return True
        if self.max_cost is None:
            return False
        if spent.cost is None:
            if spent.total_tokens and self.max_tokens is None and not self._cost_warned:
                self._cost_warned = True
                warnings.warn(
                    "max_cost is set but the runner reports tokens without a cost (unknown "
                    "price), so the cost budget cannot be enforced; set max_tokens as well",
                    RuntimeWarning, stacklevel=user_stacklevel())
            return False
        return spent.cost >= self.max_cost

    def cancelled(self, why: str) -> CancelledError:
        """The error of an item that will not run (or not to its end) because of ``why``."""
        if why == "systemic" and self.tripped is not None:
            cause = self.tripped
            return CancelledError(
                f"not started: {self._failed_in_a_row} items in a row failed with "
                f"{type(cause).__name__}: {cause}. To fix: {advice(cause)}; then "
                "retry_failed() (or --resume) runs the items that did not start",
                reason="systemic", cause=cause)
        if why == "budget" and self.budget is not None and self.budget.refused is not None:
            return CancelledError(f"not started: the run's budget is spent: a call was "
                                  f"{self.budget.refused}", reason="budget")
        return CancelledError(WHY[why], reason=why)
