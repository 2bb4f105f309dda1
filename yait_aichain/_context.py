"""The per-run scope that travels from a Pool item down to every HTTP call it makes.

A Pool worker opens a :func:`scope` around an item; everything below it (Chain steps,
Skill runs, Model calls, retry sleeps) reads its own thread's scope. The item's remaining
budget bounds each HTTP timeout and backoff sleep; a cancel event (Ctrl-C,
``on_error="raise"``) wakes sleeping retries at once; a Pool's ``rate_limit`` rides along.
Every call adds its usage and attempts to the tallies of the scopes it runs in (a Skill
run's, a Chain step's, a Pool item's), never to a shared attribute: the one channel usage
travels by, so 50 flows sharing one Skill never mix their numbers.

Scopes nest: an inner scope keeps the tighter deadline, sees the outer cancel events, and
its usage also counts in the outer tallies. Outside any scope nothing is limited.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import CancelledError
from ._usage import Usage


@dataclass(slots=True)
class Tally:
    """What the calls made inside one scope cost; written by one thread at a time.
    ``wait_seconds``: time spent waiting for rate limits; ``waiting``: waits under way now
    (read by the Pool's progress line from another thread); ``reasks``: a Skill's re-asks."""

    usage: Usage = Usage()  # frozen: one shared zero is safe
    requests: int = 0
    wait_seconds: float = 0.0
    waiting: int = 0
    reasks: int = 0
    budget: Any = None  # the Pool run's _budget.Budget: each model call reserves in it


@dataclass(frozen=True)
class Scope:
    deadline: float | None = None  # time.monotonic() value, or None for no limit
    cancels: tuple[threading.Event, ...] = ()
    tallies: tuple[Tally, ...] = ()
    rate_limits: tuple[Any, ...] = ()  # RateLimit objects every Model call here waits for
    # Told how each HTTP attempt went (max_flows="auto" Pools' flow controllers); a call
    # with observers also waits for its account's learned rate limit.
    observers: tuple[Any, ...] = ()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be <= 0), or None without a deadline."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def cancelled(self) -> bool:
        return any(ev.is_set() for ev in self.cancels)

    def check(self) -> None:
        if self.cancelled():
            raise CancelledError("the run was cancelled", reason="cancelled")

    def sleep(self, seconds: float) -> None:
        """Sleep, up to the deadline (the caller checks the budget afterwards), but wake
        and raise at once when the scope is cancelled."""
        left = self.remaining()
        end = time.monotonic() + (seconds if left is None else min(seconds, left))
        while (wait := end - time.monotonic()) > 0 and not self.cancelled():
            if not self.cancels:
                time.sleep(wait)
            else:  # several events cannot be waited on together: poll them in short slices
                self.cancels[0].wait(wait if len(self.cancels) == 1 else min(wait, 0.05))
        self.check()

    def child(self, *, timeout: float | None = None, cancel: threading.Event | None = None,
              tally: Tally | None = None, rate_limits: tuple[Any, ...] = (),
              observers: tuple[Any, ...] = ()) -> Scope:
        """A scope inside this one: the tighter deadline, this one's cancel events, tallies,
        rate limits and observers plus the given ones."""
        deadline = self.deadline
        if timeout is not None:
            limit = time.monotonic() + timeout
            deadline = limit if deadline is None else min(deadline, limit)
        tallies = self.tallies if tally is None else (*self.tallies, tally)
        cancels = self.cancels if cancel is None else _plus(self.cancels, (cancel,))
        return Scope(deadline, cancels, tallies, _plus(self.rate_limits, rate_limits),
                     _plus(self.observers, observers))

    def record(self, usage: Usage, requests: int, waited: float = 0.0) -> None:
        """Count one call (its usage, requests sent and rate-limit wait) in every tally."""
        for tally in self.tallies:
            tally.usage += usage
            tally.requests += requests
            tally.wait_seconds += waited

    def record_reask(self) -> None:
        for tally in self.tallies:
            tally.reasks += 1

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Mark the enclosed block as a rate-limit wait in every tally (for progress)."""
        for tally in self.tallies:
            tally.waiting += 1
        try:
            yield
        finally:
            for tally in self.tallies:
                tally.waiting -= 1


def _plus(old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
    return old + tuple(x for x in new if x not in old) if new else old


_EMPTY = Scope()  # frozen: one shared default is safe
_current: contextvars.ContextVar[Scope] = contextvars.ContextVar("yait_aichain_scope",
                                                                 default=_EMPTY)


def current() -> Scope:
    """The scope of the running thread (an unlimited one outside any :func:`scope`)."""
    return _current.get()


class scope:  # lower case: used like a function, ``with scope(timeout=...) as s``
    """Open a nested scope (see :meth:`Scope.child`) for the block. Not a generator: every
    Model call, Skill run and Chain step opens one, so it must be cheap."""

    def __init__(self, **settings: Any):
        self._settings = settings

    def __enter__(self) -> Scope:
        inner = _current.get().child(**self._settings)
        self._token = _current.set(inner)
        return inner

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)
