"""A server that saturates, as local model servers (vLLM, Ollama, llama.cpp) do: a fixed
number of sequences at once, more wait in line (so past it the round trip grows with the
load while throughput stays flat), and a 503 once the line is full (``OLLAMA_MAX_QUEUE``).
"""

from __future__ import annotations

import math
import threading
from typing import Any

from ..errors import ConfigurationError
from ._checks import checked

__all__ = ["Capacity", "check_capacity"]


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
        self.peak_waiting = 0

    def enter(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when the line is full (answer 503) or the simulator is
        closing."""
        with self._cond:
            waiting = self._next_ticket - self._serving
            if self._busy >= self.slots and waiting >= self.queue:
                return False
            ticket = self._next_ticket
            self._next_ticket += 1
            self.peak_waiting = max(self.peak_waiting, waiting + 1 - (self._busy < self.slots))
            # First come, first served: a slot goes to the oldest ticket waiting.
            while not (ticket == self._serving and self._busy < self.slots):
                if stop.is_set():
                    self._skip(ticket)
                    return False
                self._cond.wait(0.05)
            self._serving += 1
            self._busy += 1
            self._cond.notify_all()
            return True

    def _skip(self, ticket: int) -> None:
        # A waiter that leaves (closing) must not hold up the line behind it.
        if ticket == self._serving:
            self._serving += 1
        self._cond.notify_all()

    def leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        return self._busy
