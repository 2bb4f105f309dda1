"""An HTTP adapter that connects to an address chosen before the request is sent.

``requests`` and ``urllib3`` resolve the host name when they open a socket; a check made
before that is a check-then-connect race (DNS rebinding). Here the pool is keyed by the
checked IP address, the socket is opened to it without any lookup, and for https SNI and
the certificate check still use the real host name (the caller sets ``Host``). A request
without a pinned address is refused, so a path that forgets the guard fails closed.
"""

from __future__ import annotations

import functools
import socket
from typing import Any

from requests.adapters import HTTPAdapter
from requests.exceptions import InvalidURL
from requests.models import PreparedRequest
from urllib3.connectionpool import HTTPConnectionPool

from ..models._connect import BudgetedConnectionMixin, Dialer, default_dialer, pools_for

__all__ = ["Dialer", "PinnedAdapter", "default_dialer", "pin"]

_PIN_ATTR = "_yait_pinned_address"


def pin(request: PreparedRequest, ip: str, hostname: str) -> PreparedRequest:
    """Mark ``request`` to be sent to ``ip``, with ``hostname`` for TLS."""
    setattr(request, _PIN_ATTR, (ip, hostname))
    return request


class _PinnedConnectionMixin(BudgetedConnectionMixin):
    """Dials the pool's host, a checked IP address, with the adapter's dialer: no lookup."""

    def __init__(self, *args: Any, dialer: Dialer, **kwargs: Any) -> None:
        self._dialer = dialer
        super().__init__(*args, **kwargs)

    def _addresses(self, timeout: float | None) -> list[tuple[Any, ...]]:
        return [(self.host.strip("[]"), self.port)]

    def _dial(self, address: tuple[Any, ...], timeout: float | None) -> socket.socket:
        return self._dialer(address, timeout)


_POOLS = pools_for(_PinnedConnectionMixin, "Pinned")


class PinnedAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connections go to the address set by :func:`pin`.

    Pools are keyed by (scheme, IP, port, TLS host name), so kept-alive connections are
    reused across requests and threads. Proxies are never used.
    """

    def __init__(self, *, dialer: Dialer | None = None, pool_maxsize: int = 64) -> None:
        self._dialer = dialer or default_dialer  # read by init_poolmanager below
        super().__init__(pool_connections=32, pool_maxsize=pool_maxsize, max_retries=0,
                         pool_block=False)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        # The dialer reaches each connection through the pool's conn_kw, outside the pool
        # key (a PoolManager refuses keys it does not know; one adapter has one dialer).
        # urllib3 only ever calls these "classes", so a partial will do.
        self.poolmanager.pool_classes_by_scheme = {
            scheme: functools.partial(pool, dialer=self._dialer)  # type: ignore[misc]
            for scheme, pool in _POOLS.items()
        }

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
