"""Thread-safe counters and the bounded request log of a simulator."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from copy import copy
from dataclasses import dataclass, field, fields
from typing import Any

from ._faults import Fault

__all__ = ["RequestRecord", "Stats"]

#: How many request records a simulator keeps by default (oldest dropped first).
DEFAULT_MAX_LOG = 100_000


@dataclass(frozen=True)
class Stats:
    """A snapshot of a simulator's counters: ``requests`` received (any path), TCP
    ``connections`` accepted, requests ``in_flight`` now and at most at once
    (``peak_concurrency``), replies ``by_status`` (0: the connection closed with no status
    line, as ``drop`` and ``hang`` do), and how many requests got a fault."""

    requests: int = 0
    connections: int = 0
    open_connections: int = 0
    in_flight: int = 0
    peak_concurrency: int = 0
    faults: int = 0
    by_status: Mapping[int, int] = field(default_factory=dict)
    by_path: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestRecord:
    """One handled request. ``headers`` have lower-case names; ``body`` is the parsed
    JSON (None when it did not parse); ``time`` is when it arrived (epoch seconds) and
    ``duration`` how long until the reply was sent."""

    time: float
    path: str
    provider: str | None
    model: str | None
    headers: dict[str, str]
    body: Any
    status: int
    last_user_text: str | None
    duration: float
    fault: Fault | None = None


class Counters:
    """Counters shared by every handler thread; each update is a few operations under
    one lock, so the cost per request stays negligible."""

    def __init__(self, record: bool, max_log: int) -> None:
        self._lock = threading.Lock()
        self._log: deque[RequestRecord] = deque(maxlen=max_log if record else 0)
        self._sockets: set[Any] = set()  # the open connections, which close() cuts
        self._zero(0)

    def _zero(self, in_flight: int) -> None:
        self.requests = self.connections = self.faults = 0
        self.in_flight = self.peak_concurrency = in_flight
        self.by_status: dict[int, int] = {}
        self.by_path: dict[str, int] = {}

    @property
    def open_connections(self) -> int:
        return len(self._sockets)

    def connection_opened(self, sock: Any) -> None:
        with self._lock:
            self.connections += 1
            self._sockets.add(sock)

    def connection_closed(self, sock: Any) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def open_sockets(self) -> list[Any]:
        with self._lock:
            return list(self._sockets)

    def begin(self, path: str) -> int:
        """Count an arriving request; returns its sequence number (from 1)."""
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
            self.by_path[path] = self.by_path.get(path, 0) + 1
            return self.requests

    def end(self, status: int, faulted: bool, record: Callable[[], RequestRecord]) -> None:
        """Count a finished request (called before its last byte is sent, so a client
        that has its reply also sees it counted); ``record()`` builds its log entry."""
        entry = record() if self._log.maxlen else None
        with self._lock:
            self.in_flight -= 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.faults += faulted
            if entry is not None:
                self._log.append(entry)

    def snapshot(self) -> Stats:
        with self._lock:
            return Stats(**{f.name: copy(getattr(self, f.name)) for f in fields(Stats)})

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        with self._lock:
            # Requests still in flight will call end(); keep them counted so in_flight
            # never goes negative, and let the peak restart from them.
            self._zero(self.in_flight)
            self._log.clear()
