"""Which requests get a fault, and how long each reply waits: latency, jitter, and a slot
when the server saturates (``capacity=``), as local model servers (vLLM, Ollama,
llama.cpp) do: a fixed number of sequences at once, more wait in line (so past it the
round trip grows with the load while throughput stays flat), and a 503 once the line is
full (``OLLAMA_MAX_QUEUE``)."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from .._checks import NUMBER, checked
from ._faults import Fault
from ._wire import ReplyInfo

#: What ``fail_when`` matches: a substring of the last user text, or a predicate.
Match = str | Callable[[ReplyInfo], bool]


def setting(holder: str, name: str, doc: str, check: Callable[[Any], Any] | None = None) -> Any:
    """A property kept as ``name`` on the owner's ``holder`` attribute, checked on every
    write (by default as a number >= 0)."""
    def write(owner: Any, value: Any) -> None:
        value = check(value) if check else checked(value, name, NUMBER)
        setattr(getattr(owner, holder), name, value)
    return property(lambda owner: getattr(getattr(owner, holder), name), write, doc=doc)


def _check_fault(fault: Any) -> Fault:
    if not isinstance(fault, Fault):
        raise ConfigurationError(f"expected a Fault (e.g. Fault.rate_limit()), got "
                                 f"{type(fault).__name__}")
    return fault


class FaultScript:
    """The scripted faults of one simulator. Order of precedence per request: the
    ``fail_next`` queue, then the first matching ``fail_when`` rule, then one seeded
    draw against the ``fail_rate`` shares. Rules are ``[match, fault, times left]``, the
    queued ones first with ``match`` None."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        # Separate generators, so changing the jitter never shifts which requests fail.
        self._fault_rng = random.Random(seed)
        self._delay_rng = random.Random(None if seed is None else f"{seed}:delay")
        self._rules: list[list[Any]] = []
        self._rates: list[tuple[float, Fault]] = []

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        rule = [None, _check_fault(fault), checked(times, "times", low=1)]
        with self._lock:
            self._rules.insert(sum(r[0] is None for r in self._rules), rule)

    def fail_rate(self, share: float, fault: Fault) -> None:
        share = checked(share, "share", NUMBER, high=1)
        _check_fault(fault)
        with self._lock:
            total = sum(s for s, _ in self._rates) + share
            if total > 1 + 1e-9:
                raise ConfigurationError(f"fail_rate shares add up to {total:g}; they must "
                                         "not exceed 1")
            self._rates.append((share, fault))

    def fail_when(self, match: Match, fault: Fault, times: int | None = None) -> None:
        if not (isinstance(match, str) and match) and not callable(match):
            raise ConfigurationError("match must be a non-empty str or a callable(info) -> bool")
        rule = [match, _check_fault(fault), checked(times, "times", low=1, none=True)]
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._rates.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(r[2] for r in self._rules if r[0] is None)

    def pick(self, info: ReplyInfo) -> Fault | None:
        # Read without the lock on the hot path: a stale empty list only delays a fault
        # that another thread is adding at that very moment.
        if not (self._rules or self._rates):
            return None
        with self._lock:
            rules = list(self._rules)
        # A user predicate runs outside the lock: it may be slow or call back into us.
        for rule in rules:
            match = rule[0]
            hit = match is None or (match in info.last_user_text if isinstance(match, str)
                                    else bool(match(info)))
            if hit and self._claim(rule):
                claimed: Fault | None = rule[1]
                return claimed
        with self._lock:
            if not self._rates:
                return None
            draw = self._fault_rng.random()
            for share, fault in self._rates:
                if draw < share:
                    return fault
                draw -= share
        return None

    def _claim(self, rule: list[Any]) -> bool:
        with self._lock:
            if rule[2] is None:
                return True
            if rule[2] <= 0:
                return False
            rule[2] -= 1
            if rule[2] == 0:
                # By identity: two rules may hold equal values.
                self._rules = [r for r in self._rules if r is not rule]
            return True

    def delay(self, latency: float, jitter: float) -> float:
        """Seconds to wait before a reply: ``latency`` plus uniform(0, ``jitter``)."""
        if jitter <= 0:
            return latency
        with self._lock:
            return latency + self._delay_rng.uniform(0.0, jitter)


def check_capacity(capacity: Any, queue: Any) -> Capacity | None:
    """A :class:`Capacity` for the simulator's settings, or None for unlimited."""
    checked(capacity, "capacity", low=1, none=True)
    checked(queue, "queue", none=True)
    if capacity is None:
        if queue is not None:
            raise ConfigurationError("queue= needs capacity= (how many are served at once)")
        return None
    return Capacity(capacity, math.inf if queue is None else queue)


class Capacity:
    """``slots`` requests in service at once, at most ``queue`` more waiting (FIFO)."""

    def __init__(self, slots: int, queue: float):
        self.slots, self.queue = slots, queue
        self._cond = threading.Condition()
        self._busy = 0
        self._next_ticket = 0  # the ticket the next arrival draws
        self._serving = 0  # the lowest ticket not yet admitted

    def enter(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when the line is full (answer 503) or the simulator is
        closing."""
        with self._cond:
            waiting = self._next_ticket - self._serving
            if self._busy >= self.slots and waiting >= self.queue:
                return False
            ticket = self._next_ticket
            self._next_ticket += 1
            # First come, first served: a slot goes to the oldest ticket waiting.
            while not (ticket == self._serving and self._busy < self.slots):
                if stop.is_set():
                    # A waiter that leaves (closing) must not hold up the line behind it.
                    if ticket == self._serving:
                        self._serving += 1
                    self._cond.notify_all()
                    return False
                self._cond.wait(0.05)
            self._serving += 1
            self._busy += 1
            self._cond.notify_all()
            return True

    def leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()
