"""Connections that keep a call's deadline in every phase: for Model calls and page fetches.

urllib3 resolves the host with the system resolver, which no socket timeout bounds (a
hanging DNS server held ``Model(timeout=2)`` indefinitely). Here the name is resolved
under the call's remaining budget (:func:`yait_aichain._watchdog.resolve_within`), or not
at all for a connection pinned to a checked address (:mod:`yait_aichain.tools._pinned`),
and the socket is dialled under the same budget. The pools hand each connection to the
call's deadline alarm, which shuts the socket down when the budget is spent, whatever
the server is dripping.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Callable
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .. import _watchdog

__all__ = ["POOL_CLASSES", "BudgetedConnectionMixin", "Dialer", "default_dialer", "pools_for"]

# dialer(sockaddr, timeout) -> a connected socket. The default opens a TCP socket;
# tests pass their own to record the target and serve it from 127.0.0.1.
Dialer = Callable[[tuple[Any, ...], "float | None"], socket.socket]


def default_dialer(address: tuple[Any, ...], timeout: float | None) -> socket.socket:
    """Open a TCP connection to an IP address (never a name: no DNS lookup here)."""
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


class BudgetedConnectionMixin:
    """Replaces urllib3's ``create_connection`` with a lookup and a dial under the budget."""

    host: str
    port: int
    timeout: Any
    socket_options: Any
    _dns_host: str

    def _addresses(self, timeout: float | None) -> list[tuple[Any, ...]]:
        try:
            infos = _watchdog.resolve_within(self._dns_host, self.port, timeout)
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"DNS: {exc}") from exc
        except (socket.gaierror, UnicodeError) as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        return [info[4] for info in infos]

    def _dial(self, address: tuple[Any, ...], timeout: float | None) -> socket.socket:
        return default_dialer(address, timeout)

    def _new_conn(self) -> socket.socket:
        connect = self.timeout if isinstance(self.timeout, (int, float)) else None
        error: OSError | None = None
        for address in self._addresses(_watchdog.remaining(connect)):
            timeout = _watchdog.remaining(connect)
            try:
                if timeout is not None and timeout <= 0:
                    raise TimeoutError("no time left to connect")  # settimeout() refuses <= 0
                sock = self._dial(address, timeout)
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={connect})"
                ) from exc
            except OSError as exc:
                error = exc
                continue
            for opt in self.socket_options or ():
                with contextlib.suppress(OSError):  # e.g. TCP_NODELAY on a socketpair double
                    sock.setsockopt(*opt)
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {error}",  # type: ignore[arg-type]
        ) from error


def pools_for(mixin: type, prefix: str) -> dict[str, type[HTTPConnectionPool]]:
    """http and https pool classes, under the deadline alarm, whose connections use ``mixin``."""
    pools: dict[str, type[HTTPConnectionPool]] = {}
    for scheme, conn, pool in (("http", HTTPConnection, HTTPConnectionPool),
                               ("https", HTTPSConnection, HTTPSConnectionPool)):
        module = {"__module__": mixin.__module__}
        conn_cls = type(f"{prefix}{conn.__name__}", (mixin, conn), module)
        pools[scheme] = type(f"{prefix}{pool.__name__}", (_watchdog.AlarmedPoolMixin, pool),
                             {**module, "ConnectionCls": conn_cls})
    return pools


#: for ``PoolManager.pool_classes_by_scheme``
POOL_CLASSES = pools_for(BudgetedConnectionMixin, "Budgeted")
