"""A whole-call deadline, enforced on the socket: for Model calls and page fetches.

A read timeout bounds each ``recv`` only: a server that drips a byte just inside it keeps a
plain ``requests`` call alive forever. Here a call arms an :class:`Alarm` (``with
deadline_alarm(deadline)``); every connection it checks out of a pool is attached, and at the
deadline one shared daemon thread shuts those sockets down, waking the blocked read. A
connection is detached when it goes back to its pool, so the alarm never touches one another
call is using. Name resolution runs under the same deadline (:func:`resolve_within`).
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["ACTIVE_ALARM", "Alarm", "AlarmedPoolMixin", "call_within", "deadline_alarm",
           "remaining", "resolve_within"]

T = TypeVar("T")

_LOCK = threading.Lock()  # guards every connection's owner and every alarm's state
_ATTR = "_yait_alarm"

ACTIVE_ALARM: contextvars.ContextVar[Alarm | None] = contextvars.ContextVar(
    "yait_aichain_fetch_alarm", default=None)


def _shutdown(conn: Any) -> None:
    # The plain-socket method, also for an SSLSocket: ssl.SSLSocket.shutdown would drop the
    # TLS object under the reading thread's feet. No socket (None) is a TypeError.
    with contextlib.suppress(OSError, TypeError, AttributeError):
        socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)


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
        """The call is over: forget its connections (a done alarm never fires, so the ones
        still naming it as their owner are safe; the next call to use one takes it over)."""
        with _LOCK:
            if not self._done:
                _WATCHDOG.cancelled += 1
            self._done = True
            self._conns.clear()

    def _fire(self) -> None:
        with _LOCK:
            if self._done:
                return
            self.fired = True
            victims = [c for c in self._conns if getattr(c, _ATTR, None) is self]
        for conn in victims:
            _shutdown(conn)


class AlarmedPoolMixin:
    """For a urllib3 connection pool: hands each checked-out connection to the running
    call's alarm, and takes it back when the connection returns to the pool."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        alarm = ACTIVE_ALARM.get()
        if alarm is not None:
            alarm.attach(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            with _LOCK:  # no alarm may shut it down any more
                setattr(conn, _ATTR, None)
        super()._put_conn(conn)  # type: ignore[misc]


class _Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._thread: threading.Thread | None = None
        # Most alarms are cancelled long before they are due (a Model call's default
        # budget is 600 s): count them, and drop them from the heap once they dominate.
        self.cancelled = 0

    def arm(self, deadline: float) -> Alarm:
        alarm = Alarm(deadline)
        with self._cond:
            if self.cancelled > 1024 and self.cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2]._done]
                heapq.heapify(self._heap)
                self.cancelled = 0
            heapq.heappush(self._heap, (deadline, id(alarm), alarm))  # never compares alarms
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="yait_aichain-deadline-watchdog")
                self._thread.start()
            if self._heap[0][2] is alarm:
                # Only an alarm due before all others changes how long the thread sleeps;
                # waking it for every call would cost a context switch per Model call.
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


@contextmanager
def deadline_alarm(deadline: float | None) -> Iterator[Alarm | None]:
    """Arm an alarm for the calls made inside the block (None: no deadline, no alarm)."""
    if deadline is None:
        yield None
        return
    alarm = _WATCHDOG.arm(deadline)
    token = ACTIVE_ALARM.set(alarm)
    try:
        yield alarm
    finally:
        ACTIVE_ALARM.reset(token)
        alarm.cancel()


def remaining(default: float | None) -> float | None:
    """Seconds left before the running call's deadline (``default`` without one)."""
    alarm = ACTIVE_ALARM.get()
    if alarm is None:
        return default
    left = alarm.deadline - time.monotonic()
    return left if default is None else min(left, default)


def call_within(fn: Callable[[], T], timeout: float | None, what: str) -> T:
    """``fn()``, given up after ``timeout`` seconds (None: no limit), for blocking calls no
    socket timeout bounds (name resolution): ``fn`` runs in a daemon thread, left behind if
    it overruns (it ends when ``fn`` does).

    Raises:
        TimeoutError: ``fn`` did not finish in time (``what`` says what it was doing).
        whatever ``fn`` raised.
    """
    if timeout is None:
        return fn()
    if timeout <= 0:
        raise TimeoutError(f"no time left for {what}")
    # A daemon thread, not an executor's: those are joined at exit, so a hung lookup
    # would keep the interpreter from ending.
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the caller, who raises it
            future.set_exception(exc)

    threading.Thread(target=run, name="yait_aichain-blocking-call", daemon=True).start()
    if not wait([future], timeout).done:
        raise TimeoutError(f"{what} took longer than {timeout:.1f} s")
    return future.result()


def resolve_within(host: str, port: int, timeout: float | None) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo(host, port, type=SOCK_STREAM)`` under ``timeout``; an IP
    address is never looked up. Raises TimeoutError, or socket.gaierror for a bad name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name
        return call_within(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                           timeout, f"resolving {host!r}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    addr = (str(ip), port) if ip.version == 4 else (str(ip), port, 0, 0)
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", addr)]
