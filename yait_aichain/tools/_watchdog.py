"""A total deadline for a fetch, enforced on the socket.

A read timeout bounds each ``recv`` only: a server that drips one byte just inside it,
in the headers, in a chunk-size line or in the body, keeps a plain ``requests`` call
alive forever. Here a fetch arms an :class:`Alarm`; every connection the fetch checks out
of a pool is attached to it, and when the deadline passes one shared daemon thread shuts
those sockets down, which wakes the blocked read at once. A connection is detached when
it goes back to its pool, so the alarm can never touch a connection that another fetch
is using by then.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

__all__ = ["ACTIVE_ALARM", "Alarm", "arm", "attach", "detach"]

_LOCK = threading.Lock()  # guards every connection's owner and every alarm's state
_ATTR = "_yait_alarm"

ACTIVE_ALARM: contextvars.ContextVar[Alarm | None] = contextvars.ContextVar(
    "yait_aichain_fetch_alarm", default=None
)


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        # The plain-socket method, also for an SSLSocket: ssl.SSLSocket.shutdown would
        # drop the TLS object under the reading thread's feet.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass


class Alarm:
    """The deadline of one fetch and the connections it is using."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._done = False
        self._conns: list[Any] = []

    def attach(self, conn: Any) -> None:
        with _LOCK:
            setattr(conn, _ATTR, self)
            self._conns.append(conn)
            late = self.fired
        if late:
            _shutdown(conn)

    def cancel(self) -> None:
        """The fetch is over: forget its connections."""
        with _LOCK:
            self._done = True
            for conn in self._conns:
                if getattr(conn, _ATTR, None) is self:
                    setattr(conn, _ATTR, None)
            self._conns.clear()

    def _fire(self) -> None:
        with _LOCK:
            if self._done:
                return
            self.fired = True
            victims = [c for c in self._conns if getattr(c, _ATTR, None) is self]
        for conn in victims:
            _shutdown(conn)


def attach(conn: Any) -> None:
    """Attach ``conn`` to the running fetch's alarm, if there is one."""
    alarm = ACTIVE_ALARM.get()
    if alarm is not None:
        alarm.attach(conn)


def detach(conn: Any) -> None:
    """``conn`` goes back to its pool: no alarm may shut it down any more."""
    with _LOCK:
        if getattr(conn, _ATTR, None) is not None:
            setattr(conn, _ATTR, None)


class _Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float) -> Alarm:
        alarm = Alarm(deadline)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), alarm))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="yait_aichain-fetch-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return alarm

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, alarm = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            alarm._fire()


_WATCHDOG = _Watchdog()

if hasattr(os, "register_at_fork"):
    # The thread does not survive a fork; the child starts a fresh watchdog.
    os.register_at_fork(after_in_child=lambda: _WATCHDOG.__init__())  # type: ignore[misc]


def arm(deadline: float) -> Alarm:
    """An alarm that shuts down the attached connections at ``deadline`` (monotonic)."""
    return _WATCHDOG.arm(deadline)
