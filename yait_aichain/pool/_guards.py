"""The run's money guards, as one scheduling policy: the circuit breaker and the budget.

The scheduler (``_run.Run``) asks two questions of this object and tells it one thing:

- ``hold(in_flight)``: should new starts wait? (a systemic failure is unconfirmed and
  items are still in flight to confirm or refute it);
- ``stop_reason()``: should nothing new start at all? ("systemic" once the breaker
  tripped, "budget" once a call's worst case did not fit the budget);
- ``observe(record)``: an item ended.

And it makes the CancelledError of the items that will not run.
"""

from __future__ import annotations

import warnings
from typing import Any

from .._budget import Budget
from .._runner import user_stacklevel
from .._usage import Usage
from ..errors import CancelledError
from ._breaker import BreakerState, advice
from ._status import DONE, FAILED


class Guards:
    """One run's breaker and budget."""

    def __init__(self, breaker: Any, max_cost: float | None, max_tokens: int | None):
        self.max_cost, self.max_tokens = max_cost, max_tokens
        self._cost_warned = False
        self._breaker = BreakerState(breaker)
        use_budget = max_cost is not None or max_tokens is not None
        self.budget = Budget(max_cost, max_tokens) if use_budget else None
        self._failed_in_a_row = 0

    def hold(self, in_flight: int) -> bool:
        return in_flight > 0 and self._breaker.doubtful

    def stop_reason(self) -> str | None:
        if self._breaker.tripped is not None:
            return "systemic"
        if self.budget is not None and self.budget.refused is not None:
            return "budget"
        return None

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
                    RuntimeWarning, stacklevel=user_stacklevel(),
                )
            return False
        return spent.cost >= self.max_cost

    def observe(self, status: Any, error: BaseException | None) -> str | None:
        """Feed an ended item; returns "systemic" when this one trips the breaker."""
        if status not in (DONE, FAILED):
            return None
        self._failed_in_a_row = 0 if status == DONE else self._failed_in_a_row + 1
        tripped = self._breaker.observe(status == DONE, error)
        return None if tripped is None else "systemic"

    def cancelled(self, why: str, default: str) -> CancelledError:
        """The error of an item that will not run because of ``why``."""
        if why == "systemic" and self._breaker.tripped is not None:
            cause = self._breaker.tripped
            return CancelledError(
                f"not started: {self._failed_in_a_row} items in a row failed with "
                f"{type(cause).__name__}: {cause}. To fix: {advice(cause)}; then "
                "retry_failed() (or --resume) runs the items that did not start",
                reason="systemic", cause=cause,
            )
        if why == "budget" and self.budget is not None and self.budget.refused is not None:
            return CancelledError(f"not started: the run's budget is spent: a call was "
                                  f"{self.budget.refused}", reason="budget")
        return CancelledError(default, reason=why)
