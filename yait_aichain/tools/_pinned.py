"""An HTTP adapter that connects to an address chosen before the request is sent.

``requests`` and ``urllib3`` resolve the host name themselves when they open a socket;
a check made before that is a check-then-connect race (DNS rebinding). Here the pool is
keyed by the checked IP address, the socket is opened to that address without any
lookup, and for https the TLS server name (SNI) and the certificate check still use the
real host name. The ``Host`` header is set by the caller.

A request that reaches this adapter without a pinned address is refused, so a code path
that forgets the guard fails closed.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from requests.exceptions import InvalidURL
from requests.models import PreparedRequest
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolManager

from .. import _watchdog

__all__ = ["Dialer", "PinnedAdapter", "default_dialer", "pin"]

# dialer((ip, port), timeout) -> a connected socket. The default opens a TCP socket;
# tests pass their own to record the target and serve it from 127.0.0.1.
Dialer = Callable[[tuple[str, int], "float | None"], socket.socket]

_PIN_ATTR = "_yait_pinned_address"


def pin(request: PreparedRequest, ip: str, hostname: str) -> PreparedRequest:
    """Mark ``request`` to be sent to ``ip``, with ``hostname`` for TLS."""
    setattr(request, _PIN_ATTR, (ip, hostname))
    return request


def default_dialer(address: tuple[str, int], timeout: float | None) -> socket.socket:
    """Open a TCP connection to an IP address (never a name: no DNS lookup here)."""
    ip, port = address
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedConnectionMixin:
    """Replaces urllib3's socket creation (which calls getaddrinfo) with the dialer."""

    host: str
    port: int
    timeout: Any
    socket_options: Any

    def __init__(self, *args: Any, dialer: Dialer = default_dialer, **kwargs: Any) -> None:
        self._dialer = dialer
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        ip = self.host.strip("[]")
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        try:
            sock = self._dialer((ip, self.port), timeout)
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {ip} timed out. (connect timeout={timeout})"
            ) from exc
        except OSError as exc:
            # self is an HTTPConnection: this mixin is only ever combined with one.
            message = f"Failed to establish a new connection: {exc}"
            raise NewConnectionError(self, message) from exc  # type: ignore[arg-type]
        for opt in self.socket_options or ():
            with contextlib.suppress(OSError):  # e.g. TCP_NODELAY on a socketpair double
                sock.setsockopt(*opt)
        sys.audit("http.client.connect", self, ip, self.port)
        return sock


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPPool(_watchdog.AlarmedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(_watchdog.AlarmedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedPoolManager(PoolManager):
    def __init__(self, *args: Any, dialer: Dialer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dialer = dialer
        self.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        # The dialer goes to each connection through the pool's conn_kw; it is not part
        # of the pool key (one PoolManager has one dialer).
        context = dict(request_context if request_context is not None else self.connection_pool_kw)
        context["dialer"] = self._dialer
        return super()._new_pool(scheme, host, port, context)


class PinnedAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connections go to the address set by :func:`pin`.

    Pools are keyed by (scheme, IP, port, TLS host name), so kept-alive connections are
    reused across requests and threads. Proxies are never used.
    """

    def __init__(self, *, dialer: Dialer | None = None, pool_connections: int = 32,
                 pool_maxsize: int = 64) -> None:
        self._dialer = dialer or default_dialer  # read by init_poolmanager below
        super().__init__(pool_connections=pool_connections, pool_maxsize=pool_maxsize,
                         max_retries=0, pool_block=False)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _PinnedPoolManager(
            num_pools=connections, maxsize=maxsize, block=block, dialer=self._dialer, **pool_kwargs
        )

    def get_connection_with_tls_context(
        self, request: PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> HTTPConnectionPool:
        pinned = getattr(request, _PIN_ATTR, None)
        if pinned is None:
            raise InvalidURL("refusing to connect: no checked address for this request",
                             request=request)
        ip, hostname = pinned
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        host_params["host"] = ip
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise InvalidURL("proxies are not used by the URL fetcher")
