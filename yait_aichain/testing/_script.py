"""Which requests get a fault, and how long each reply waits."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from ._checks import NUMBER, checked
from ._faults import Fault
from ._wire import ReplyInfo

#: What ``fail_when`` matches: a substring of the last user text, or a predicate.
Match = str | Callable[[ReplyInfo], bool]


def _check_fault(fault: Any) -> Fault:
    if not isinstance(fault, Fault):
        raise ConfigurationError(f"expected a Fault (e.g. Fault.rate_limit()), got "
                                 f"{type(fault).__name__}")
    return fault


class FaultScript:
    """The scripted faults of one simulator. Order of precedence per request: the
    ``fail_next`` queue, then the first matching ``fail_when`` rule, then one seeded
    draw against the ``fail_rate`` shares."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        # Separate generators, so changing the jitter never shifts which requests fail.
        self._fault_rng = random.Random(seed)
        self._delay_rng = random.Random(None if seed is None else f"{seed}:delay")
        self._next: deque[list[Any]] = deque()
        self._when: list[list[Any]] = []
        self._rates: list[tuple[float, Fault]] = []
        # Read without the lock on the hot path: a stale False only delays a fault that
        # is being added by another thread at that very moment.
        self._armed = False

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        entry = [_check_fault(fault), checked(times, "times", low=1)]
        with self._lock:
            self._next.append(entry)
            self._armed = True

    def fail_rate(self, share: float, fault: Fault) -> None:
        share = checked(share, "share", NUMBER, high=1)
        _check_fault(fault)
        with self._lock:
            total = sum(s for s, _ in self._rates) + share
            if total > 1 + 1e-9:
                raise ConfigurationError(f"fail_rate shares add up to {total:g}; they must "
                                         "not exceed 1")
            self._rates.append((share, fault))
            self._armed = True

    def fail_when(self, match: Match, fault: Fault, times: int | None = None) -> None:
        if not (isinstance(match, str) and match) and not callable(match):
            raise ConfigurationError("match must be a non-empty str or a callable(info) -> bool")
        entry = [match, _check_fault(fault), checked(times, "times", low=1, none=True)]
        with self._lock:
            self._when.append(entry)
            self._armed = True

    def clear(self) -> None:
        with self._lock:
            self._next.clear()
            self._when.clear()
            self._rates.clear()
            self._armed = False

    def pending(self) -> int:
        """How many ``fail_next`` faults are still queued."""
        with self._lock:
            return sum(entry[1] for entry in self._next)

    def pick(self, info: ReplyInfo) -> Fault | None:
        """The fault for this request, or None."""
        if not self._armed:
            return None
        with self._lock:
            if self._next:
                entry = self._next[0]
                entry[1] -= 1
                if entry[1] == 0:
                    self._next.popleft()
                fault: Fault | None = entry[0]
                return fault
            rules = list(self._when)
        # A user predicate runs outside the lock: it may be slow or call back into us.
        for rule in rules:
            match = rule[0]
            hit = match in info.last_user_text if isinstance(match, str) else bool(match(info))
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
                self._when = [r for r in self._when if r is not rule]
            return True

    def delay(self, latency: float, jitter: float) -> float:
        """Seconds to wait before a reply: ``latency`` plus uniform(0, ``jitter``)."""
        if jitter <= 0:
            return latency
        with self._lock:
            return latency + self._delay_rng.uniform(0.0, jitter)
