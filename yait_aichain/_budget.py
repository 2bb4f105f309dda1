"""Budgets that hold (``Pool(max_cost=, max_tokens=)``): before it is sent, each model call
reserves its worst case in every budget of the Pools around it (the items' scope), and
settles with the usage the provider reported; one that does not fit is not sent. Items on
another process (``Pool(executor=...)``) are checked after they end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import threading
from collections.abc import Sequence
from typing import Any

from ._messages import estimate_input_tokens
from ._usage import Usage
from .errors import APITimeoutError, CancelledError, ConfigurationError

__all__ = ["Budget", "Hold", "worst_case"]

#: Output tokens reserved for a call that sets no ``max_tokens`` (its real bound is the
#: model's own limit, which we do not know): set ``max_tokens`` for an exact guarantee.
DEFAULT_RESERVED_OUTPUT = 4096
#: Characters per input token for the reservation. Real tokenizers give 3-4 characters
#: per token of English; 2 keeps code, numbers and other scripts inside the estimate too.
INPUT_CHARS_PER_TOKEN = 2
_WAIT_SLICE = 0.05  # seconds between checks for a cancelled run while waiting for room
_PER_MESSAGE_TOKENS = 8
_PRICE_HINT = ("Model(..., price=(input_usd, output_usd)) per million tokens, or budget in tokens "
               "with max_tokens=")


def worst_case(price: Any, messages: Sequence[dict[str, Any]], max_tokens: int | None) -> Usage:
    """The most a call can use: a generous input estimate plus its ``max_tokens``, priced
    with ``price`` (a Price with ``cost(usage)``, or None: cost unknown)."""
    prompt = (estimate_input_tokens(messages, INPUT_CHARS_PER_TOKEN)
              + _PER_MESSAGE_TOKENS * len(messages))
    output = DEFAULT_RESERVED_OUTPUT if max_tokens is None else int(max_tokens)
    usage = Usage(prompt, output, prompt + output)
    return usage if price is None else dataclasses.replace(usage, cost=price.cost(usage))


@dataclasses.dataclass
class Hold:
    """One call's reservation."""

    budget: Budget
    cost: float
    tokens: int
    settled: bool = False

    def settle(self, usage: Usage | None) -> None:
        """Replace the reservation with what the call really used (None: nothing)."""
        budget, usage = self.budget, usage or Usage()
        with budget._lock:
            if not self.settled:
                self.settled = True
                budget._open -= 1
                budget._cost += (usage.cost or 0.0) - self.cost
                budget._tokens += usage.total_tokens - self.tokens
                budget._lock.notify_all()


class Budget:
    """The money (``max_cost``, USD) and tokens (``max_tokens``) one run may spend, None
    for no limit, reserved call by call. Thread-safe."""

    def __init__(self, max_cost: float | None = None, max_tokens: int | None = None):
        self.max_cost, self.max_tokens = max_cost, max_tokens
        self._lock = threading.Condition()  # settling wakes the calls waiting for room
        self._open = 0  # reservations not settled yet
        self._cost = 0.0  # settled spend plus open reservations
        self._tokens = 0
        self.refused: CancelledError | None = None  # set once a call did not fit

    def __repr__(self) -> str:
        return f"Budget(max_cost={self.max_cost!r}, max_tokens={self.max_tokens!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # On another process the budget cannot be shared: the copy reserves nothing there
        # and the Pool checks those items after they end.
        return (type(None), ())

    def reserve(self, worst: Usage, model: str = "the model", scope: Any = None) -> Hold:
        """Reserve a call's worst case; while it does not fit but other calls hold
        reservations, wait for them to settle (their real usage is usually far below), and
        refuse only when it cannot fit with none open.

        Raises:
            ConfigurationError: ``max_cost`` is set but the model's price is unknown.
            CancelledError: the worst case does not fit in what is left (reason "budget").
        """
        if self.max_cost is not None and worst.cost is None and self.max_tokens is None:
            raise ConfigurationError(f"max_cost cannot be enforced: the price of {model} is not "
                                     f"known; pass {_PRICE_HINT}")
        cost = worst.cost or 0.0
        with self._lock:
            while True:
                problem = self._does_not_fit(cost, worst.total_tokens)
                if problem is None:
                    self._cost += cost
                    self._tokens += worst.total_tokens
                    self._open += 1
                    return Hold(self, cost, worst.total_tokens)
                if self._open == 0 or self.refused is not None:
                    break
                self._lock.wait(_WAIT_SLICE)
                if scope is not None:
                    _still_waiting(scope)
            err = CancelledError(f"not sent: {problem}", reason="budget")
            if self.refused is None:
                self.refused = err
                self._lock.notify_all()  # the other waiters will not fit either
        raise err

    def _does_not_fit(self, cost: float, tokens: int) -> str | None:
        if self.max_cost is not None and self._cost + cost > self.max_cost:
            left = max(0.0, self.max_cost - self._cost)
            return (f"its worst case (${cost:.4f}) does not fit in what is left of "
                    f"max_cost=${self.max_cost:g} (${left:.4f})")
        if self.max_tokens is not None and self._tokens + tokens > self.max_tokens:
            left = max(0, self.max_tokens - self._tokens)
            return (f"its worst case ({tokens:,} tokens) does not fit in what is left of "
                    f"max_tokens={self.max_tokens:,} ({left:,})")
        return None


def _still_waiting(scope: Any) -> None:
    """A call waiting for budget room stops at Ctrl-C and at the end of its time."""
    scope.check()
    left = scope.remaining()
    if left is not None and left <= 0:
        raise APITimeoutError("the call's time ran out while it waited for room in the "
                              "run's budget (other calls held it)", retryable=False)


def models_in(runner: Any, _depth: int = 0) -> list[Any]:
    """The Models a runner calls, as far as can be seen without running it: a Model, a
    Skill's model, a Chain's steps, a Pool's or wrapper's runner, a partial's function, and
    the runners a plain function reaches through its closure or globals."""
    from .chain import Chain
    from .models import Model
    from .pool import Pool
    from .skills import Skill

    if _depth > 20:
        return []
    if isinstance(runner, Model):
        return [runner]
    model, steps = getattr(runner, "model", None), getattr(runner, "steps", None)
    inner = [s[0] if isinstance(s, tuple) else s for s in steps] if isinstance(steps, tuple) else []
    inner += [getattr(runner, attr, None) for attr in ("runner", "func")]  # Pool, partial...
    with contextlib.suppress(TypeError, ValueError):  # not a plain function; an empty cell
        seen = inspect.getclosurevars(runner)
        inner += [v for v in (*seen.nonlocals.values(), *seen.globals.values())
                  if isinstance(v, (Chain, Model, Pool, Skill))]
    found = [model] if isinstance(model, Model) else []
    for value in inner:
        if value is not None and value is not runner:
            found += models_in(value, _depth + 1)
    return found


def check_prices(runner: Any, max_cost: float | None, max_tokens: int | None) -> None:
    """Before any request: a ConfigurationError when ``max_cost`` cannot hold over a
    model whose price is unknown (it names the model and the two ways out)."""
    if max_cost is None or max_tokens is not None:
        return
    for model in models_in(runner):
        if getattr(model, "price", None) is None:
            raise ConfigurationError(
                f"max_cost={max_cost:g} cannot be enforced: the price of model "
                f"{model.name!r} ({model.provider}) is not known. Pass {_PRICE_HINT}"
            )


def reserve_call(scope: Any, price: Any, messages: Sequence[dict[str, Any]],
                 max_tokens: int | None, model: str) -> list[Hold]:
    """Reserve one call's worst case in every budget of the Pools around it (the scope's
    tallies'); returns the holds to settle. Raises as :meth:`Budget.reserve`."""
    budgets = dict.fromkeys(t.budget for t in scope.tallies if t.budget is not None)  # in order
    if not budgets:
        return []
    worst = worst_case(price, messages, max_tokens)
    holds: list[Hold] = []
    try:
        for budget in budgets:
            holds.append(budget.reserve(worst, f"model {model!r}", scope))
    except BaseException:
        settle_all(holds, None)
        raise
    return holds


def settle_all(holds: list[Hold], usage: Usage | None) -> None:
    for hold in holds:
        hold.settle(usage)
