"""Connections for API calls that keep the call's deadline in every phase.

urllib3 opens a connection with ``socket.create_connection``, which resolves the host
with the system resolver: no socket timeout applies to that, so a hanging DNS server
held ``Model(timeout=2)`` indefinitely. Here the name is resolved under the call's
remaining budget (:func:`yait_aichain._watchdog.resolve_within`) and the socket opened
to the answers directly. The pools hand each connection to the call's deadline alarm,
which shuts the socket down when the budget is spent, whether the server is dripping the
status line, the headers, a chunk-size line or the body.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .. import _watchdog

__all__ = ["POOL_CLASSES"]


class _BudgetedConnectionMixin:
    host: str
    port: int
    timeout: Any
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        connect = self.timeout if isinstance(self.timeout, (int, float)) else None
        try:
            infos = _watchdog.resolve_within(self._dns_host, self.port,
                                             _watchdog.remaining(connect))
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"DNS: {exc}") from exc
        except (socket.gaierror, UnicodeError) as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        error: OSError | None = None
        for family, _, _, _, address in infos:
            try:
                sock = self._open(family, address, _watchdog.remaining(connect))
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={connect})"
                ) from exc
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {error}",  # type: ignore[arg-type]
        ) from error

    def _open(self, family: int, address: Any, timeout: float | None) -> socket.socket:
        if timeout is not None and timeout <= 0:
            raise TimeoutError("no time left to connect")  # settimeout() refuses <= 0
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            for opt in self.socket_options or ():
                sock.setsockopt(*opt)
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock


class _HTTPConnection(_BudgetedConnectionMixin, HTTPConnection):
    pass


class _HTTPSConnection(_BudgetedConnectionMixin, HTTPSConnection):
    pass


class _HTTPPool(_watchdog.AlarmedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_watchdog.AlarmedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


#: for ``PoolManager.pool_classes_by_scheme``
POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}
