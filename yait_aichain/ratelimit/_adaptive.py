"""How many items a ``max_flows="auto"`` Pool keeps in flight: a gradient controller.

Pure state fed by what requests report, on the clock it is given. Per window of completed
requests (about one round trip; their mean round trip grows with a queue, by Little's law):

- **overload** (a 429, 503 or 529): the limit times ``BACKOFF``; slow start ends.
- **budget-bound** (most waited for a rate-limit budget): move toward ``rate x round trip x
  HEADROOM + 2`` flows; fewer leave the budget idle, more only wait.
- **slow start**: double while the round trip stays within ``SLOW_START_TOLERANCE`` of the
  best seen, as TCP does.
- **gradient** (Netflix concurrency-limits): ``limit x min(1, TOLERANCE x best / now) +
  sqrt(limit)``, smoothed, settles where the terms balance (AIMD's halving would saw).

A request sent before the last change says nothing about the new limit, so it is left out;
and the limit grows only when the Pool used it (``saw_in_flight``).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._checks import checked
from ..errors import ConfigurationError

__all__ = ["AutoFlows", "FlowController", "FlowDecision", "OVERLOAD_STATUSES", "check_auto"]

#: Statuses that say "too much, slow down": rate limited, unavailable, overloaded.
OVERLOAD_STATUSES = frozenset({429, 503, 529})
DEFAULT_INITIAL_FLOWS = 4
DEFAULT_AUTO_MAX_FLOWS = 256
TOLERANCE = 1.25  # a round trip up to 25% over the best seen counts as flat
SLOW_START_TOLERANCE = 1.1
BACKOFF = 0.75
SMOOTHING = 0.3
HEADROOM = 1.5
MIN_WINDOW = 4  # requests per window, at least
BASELINE_WINDOWS = 200  # the best round trip is the best of this many windows
MAX_LOG = 5000  # decisions kept per run (the oldest go first)


@dataclass(frozen=True)
class AutoFlows:
    """``Pool(max_flows=AutoFlows(max=500))``: adapt the flows between 1 and ``max`` (each a
    thread), from ``initial``; ``max_flows="auto"`` is ``AutoFlows()``. Raises
    ConfigurationError for a bound not an int from 1 to ``MAX_FLOWS_LIMIT``, or ``initial``
    above ``max``."""

    max: int = DEFAULT_AUTO_MAX_FLOWS
    initial: int = DEFAULT_INITIAL_FLOWS

    def __post_init__(self) -> None:
        from ..pool._config import MAX_FLOWS_LIMIT

        for name in ("max", "initial"):
            checked(getattr(self, name), f"AutoFlows({name}=...)", int, 1, MAX_FLOWS_LIMIT)
        if self.initial > self.max:
            raise ConfigurationError(
                f"AutoFlows(initial={self.initial}) is above max={self.max}; lower initial "
                f"or raise max"
            )


def check_auto(value: Any) -> AutoFlows | None:
    """``value`` as an :class:`AutoFlows` when it asks for adaptive flows, else None."""
    if isinstance(value, AutoFlows):
        return value
    if isinstance(value, str) and value.strip().lower() == "auto":
        return AutoFlows()
    return None


@dataclass(frozen=True)
class FlowDecision:
    """One decision of a ``max_flows="auto"`` run, for records, progress and the report."""

    at: float  # seconds since the run began
    flows: int  # the flow limit decided
    round_trip: float | None  # the window's mean round trip (None: no answer yet)
    requests_per_minute: float | None  # the tightest limits the headers taught (None: none)
    tokens_per_minute: float | None
    waited: float  # seconds the run's calls had waited for a budget so far


class FlowController:
    """The adaptive flow limit of one Pool run, on a monotonic ``clock``. Thread-safe:
    requests report from the Pool's worker threads, the Pool reads :attr:`limit`."""

    def __init__(self, config: AutoFlows, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = float(config.initial)
        self._slow_start = True
        self._best: deque[float] = deque(maxlen=BASELINE_WINDOWS)
        self._rtts: list[float] = []  # the open window: round trips, overloads, waits, peak
        self._overloads = self._waited = self._peak = 0
        self._opened = self._changed = self._began = clock()
        self.decisions = 0  # windows closed so far
        self.believed: tuple[float | None, float | None] = (None, None)
        self.waited = 0.0  # seconds the calls waited for a budget, in total
        self.log: deque[FlowDecision] = deque(maxlen=MAX_LOG)

    @property
    def limit(self) -> int:
        """How many items may be in flight now."""
        return max(1, min(self.config.max, int(self._limit)))

    @property
    def phase(self) -> str:
        return "slow start" if self._slow_start else "steady"

    def saw_in_flight(self, count: int) -> None:
        """The Pool had ``count`` items in flight (evidence that the limit was used)."""
        self._peak = max(self._peak, count)

    def observe(
        self, seconds: float, *, status: int = 200, waited: float = 0.0,
        believed: tuple[float | None, float | None] | None = None,
    ) -> None:
        """One request ended after ``seconds`` at the server with HTTP ``status`` (0: a
        network failure), having waited ``waited`` seconds for a budget first; ``believed``
        is the tightest (requests, tokens) per minute its rate limits pace by."""
        with self._lock:
            self.waited += waited
            if believed is not None:
                self.believed = believed
            if status in OVERLOAD_STATUSES:
                self._overloads += 1
            elif 200 <= status < 300:
                if self._clock() - seconds < self._changed:
                    return  # sent under the previous limit: says nothing about this one
                self._rtts.append(max(0.0, seconds))
            if waited > 0:
                self._waited += 1
            count = len(self._rtts) + self._overloads
            # Slow start decides on half a window: requests sent before the last doubling
            # are left out, so the first half of the new ones to finish is one round trip.
            size = self.limit // 2 if self._slow_start else self.limit
            if count >= max(MIN_WINDOW, size):
                self._close_window(count)

    def _close_window(self, count: int) -> None:
        now = self._clock()
        rtt = statistics.fmean(self._rtts) if self._rtts else None
        if self._overloads:
            self._slow_start = False
            self._set(self._limit * BACKOFF)
        elif rtt is not None and self._waited * 2 >= count:
            # Budget-bound: too few flows leave the budget idle between waits, too many
            # only wait; move toward what Little's law says the pace needs.
            self._slow_start = False
            rate = count / max(now - self._opened, 1e-6)
            self._set((self._limit + rate * rtt * HEADROOM + 2) / 2)
        elif rtt is not None:
            self._best.append(rtt)
            self._adjust(rtt, min(self._best))
        self.decisions += 1
        self.log.append(FlowDecision(now - self._began, self.limit, rtt, *self.believed,
                                     self.waited))
        self._rtts, self._overloads, self._waited, self._peak = [], 0, 0, 0
        self._opened = now

    def _adjust(self, rtt: float, best: float) -> None:
        used = self._peak >= 0.8 * self.limit
        if self._slow_start:
            if rtt <= best * SLOW_START_TOLERANCE:
                if used:
                    self._set(self._limit * 2)
                return
            self._slow_start = False
        gradient = min(1.0, TOLERANCE * best / rtt) if rtt > 0 else 1.0
        new = self._limit * gradient + math.sqrt(self._limit)
        if not used:
            new = min(new, self._limit)
        self._set((1 - SMOOTHING) * self._limit + SMOOTHING * new)

    def _set(self, value: float) -> None:
        before = self.limit
        self._limit = max(1.0, min(float(self.config.max), value))
        if self.limit != before:
            self._changed = self._clock()

    def describe(self) -> str:
        """For the progress line: ``auto 12 flows, limit 600 req/min 100k tok/min, 31 s
        waiting``."""
        text = [f"auto {self.limit} flows"]
        stated = [f"{_short(rate)} {unit}/min"
                  for rate, unit in zip(self.believed, ("req", "tok"), strict=True) if rate]
        if stated:
            text.append("limit " + " ".join(stated))
        if self.waited >= 1:
            text.append(f"{self.waited:.0f} s waiting")
        return ", ".join(text)

    def __repr__(self) -> str:
        return f"FlowController(limit={self.limit}, {self.phase}, max={self.config.max})"


def _short(value: float) -> str:
    for size, unit in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"
