"""GCRA buckets (the generic cell rate algorithm) for requests and tokens.

GCRA is a token bucket in one number per bucket (the "theoretical arrival time", ``tat``):
no polling, no thundering herd on wake-up, first come first served, and the same arithmetic
runs as one short Lua script in Redis. A bucket whose burst is one request keeps every
window of any length at ``rate * length + 1`` requests (a window log would let a minute's
budget go out in its first second).

A reservation is made before the caller sleeps: ``new_tat = max(tat, now) + cost *
interval``, and the caller may go at ``new_tat - tolerance``. Sending later than that never
breaks the limit, so several limits are reserved one after another and the caller waits for
the latest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

__all__ = ["Buckets", "BucketSpec", "LocalBackend", "TooLong"]


@dataclass(frozen=True)
class BucketSpec:
    """``interval`` seconds per unit (request or token); ``tolerance`` seconds of credit a
    caller may use at once (the burst, in time)."""

    interval: float
    tolerance: float


class TooLong(Exception):
    """Internal: the wait is longer than the caller may wait; nothing was reserved."""

    def __init__(self, wait: float):
        super().__init__(wait)
        self.wait = wait


class Buckets:
    """What both backends share: the (requests, tokens) specs, which headers may retune."""

    def __init__(self, requests: BucketSpec | None, tokens: BucketSpec | None):
        self._specs = (requests, tokens)

    def retune(self, requests: BucketSpec | None, tokens: BucketSpec | None) -> None:
        """New rates from now on; waits already reserved stand, as the provider counted."""
        self._specs = (requests, tokens)

    def _spans(self, requests: int, tokens: int) -> tuple[float, float]:
        # The seconds each reservation takes, kept in its handle: giving it back stays
        # exact even when the rates are retuned in between.
        s0, s1 = (0.0 if spec is None or cost <= 0 else cost * spec.interval
                  for spec, cost in zip(self._specs, (requests, tokens), strict=True))
        return s0, s1

    def adjust(self, tokens: int) -> None:
        """Charge ``tokens`` more (a refund when negative) once the real usage is known."""
        spec = self._specs[1]
        if spec is not None and tokens != 0:
            self._shift(tokens * spec.interval)

    def _shift(self, seconds: float) -> None:
        raise NotImplementedError


class LocalBackend(Buckets):
    """Thread-safe bucket state for one process. ``clock`` is a monotonic clock."""

    def __init__(self, requests: BucketSpec | None, tokens: BucketSpec | None,
                 clock: Callable[[], float]):
        super().__init__(requests, tokens)
        self._tats = [0.0, 0.0]
        self._paused_until = 0.0
        self._clock = clock
        self._lock = threading.Lock()

    def reserve(self, requests: int, tokens: int, max_wait: float | None) -> tuple[float, object]:
        """Reserve ``requests`` and ``tokens``; return (seconds to wait, handle).

        Raises:
            TooLong: the wait would exceed ``max_wait``; nothing is reserved then.
        """
        spans = self._spans(requests, tokens)
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            new: list[float | None] = [None, None]
            for i, spec in enumerate(self._specs):
                if spec is not None and spans[i] > 0:
                    tat = max(self._tats[i], now) + spans[i]
                    new[i] = tat
                    wait = max(wait, tat - spec.tolerance - now)
            if max_wait is not None and wait > max_wait:
                raise TooLong(wait)
            for i, reserved in enumerate(new):
                if reserved is not None:
                    self._tats[i] = reserved
        return wait, (new, spans)

    def cancel(self, handle: object) -> None:
        """Give a reservation back, but only while nobody reserved after it: handing back
        a slot in the middle of the queue would let a newcomer go beside a waiter."""
        new, spans = cast("tuple[list[float | None], tuple[float, float]]", handle)
        with self._lock:
            for i, (tat, span) in enumerate(zip(new, spans, strict=True)):
                if tat is not None and self._tats[i] == tat:
                    self._tats[i] = tat - span

    def _shift(self, seconds: float) -> None:
        with self._lock:
            now = self._clock()
            # A refund never creates credit older than "now": an idle bucket is full anyway.
            self._tats[1] = max(max(self._tats[1], now) + seconds, now)

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when none). One float read: no lock."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Nobody may go for ``seconds`` from now (the provider answered 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
