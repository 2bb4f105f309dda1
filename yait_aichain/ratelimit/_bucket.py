"""The in-process backend: two smooth token buckets (GCRA) behind one lock.

Why GCRA with reservations rather than a sliding-window log: each caller learns at once
*when* its turn is and sleeps exactly that long (no polling, no thundering herd on wake-up,
first come first served), the state is one number per bucket (the "theoretical arrival
time", ``tat``), and the same arithmetic runs as one short Lua script in Redis. A window
log would let a whole minute's budget go out in the first second; a bucket whose burst is
one request keeps every window of any length at ``rate * length + 1`` requests.

A reservation is made when a caller asks, before it sleeps: ``new_tat = max(tat, now) +
cost * interval`` and the caller may go at ``new_tat - tolerance``. Sending later than the
reserved moment never breaks the limit, which is why several limits can simply be reserved
one after another and the caller waits for the latest of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BucketSpec", "LocalBackend", "TooLong"]


@dataclass(frozen=True)
class BucketSpec:
    """One bucket: ``interval`` seconds per unit (request or token), ``tolerance`` seconds
    of credit a caller may use at once (the burst, expressed in time)."""

    interval: float
    tolerance: float


class TooLong(Exception):
    """Internal: the wait is longer than the caller may wait; nothing was reserved."""

    def __init__(self, wait: float):
        super().__init__(wait)
        self.wait = wait


class LocalBackend:
    """Thread-safe bucket state for one process. ``clock`` is a monotonic clock."""

    def __init__(
        self, requests: BucketSpec | None, tokens: BucketSpec | None,
        clock: Callable[[], float],
    ):
        self._specs = (requests, tokens)
        self._tats = [0.0, 0.0]
        self._paused_until = 0.0
        self._clock = clock
        self._lock = threading.Lock()

    def reserve(self, requests: int, tokens: int, max_wait: float | None) -> tuple[float, object]:
        """Reserve ``requests`` and ``tokens``; return (seconds to wait, handle).

        Raises:
            TooLong: the wait would exceed ``max_wait``; nothing is reserved then.
        """
        costs = (requests, tokens)
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            new: list[float | None] = [None, None]
            for i, spec in enumerate(self._specs):
                if spec is None or costs[i] <= 0:
                    continue
                new[i] = max(self._tats[i], now) + costs[i] * spec.interval
                wait = max(wait, new[i] - spec.tolerance - now)  # type: ignore[operator]
            if max_wait is not None and wait > max_wait:
                raise TooLong(wait)
            for i, tat in enumerate(new):
                if tat is not None:
                    self._tats[i] = tat
        # The handle keeps the time each reservation took, so that giving it back stays
        # exact even when the rates were retuned in between.
        spans = tuple(0.0 if spec is None else cost * spec.interval
                      for spec, cost in zip(self._specs, costs, strict=True))
        return wait, (new[0], new[1], spans)

    def retune(self, requests: BucketSpec | None, tokens: BucketSpec | None) -> None:
        """New rates from now on (a limit learned from the provider's headers); waits
        already reserved stand, as the provider counted them."""
        with self._lock:
            self._specs = (requests, tokens)

    def cancel(self, handle: object) -> None:
        """Give a reservation back, but only while nobody reserved after it: handing back
        a slot in the middle of the queue would let a newcomer go beside a waiter."""
        new, spans = handle[:2], handle[2]  # type: ignore[index]
        with self._lock:
            for i in range(2):
                if new[i] is not None and self._tats[i] == new[i]:
                    self._tats[i] = new[i] - spans[i]

    def adjust(self, tokens: int) -> None:
        """Charge ``tokens`` more (or refund when negative) once the real usage is known."""
        spec = self._specs[1]
        if spec is None or tokens == 0:
            return
        with self._lock:
            now = self._clock()
            # A refund never creates credit older than "now": an idle bucket is full anyway.
            self._tats[1] = max(max(self._tats[1], now) + tokens * spec.interval, now)

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when none). One float read: no lock."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Nobody may go for ``seconds`` from now (the provider answered 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
