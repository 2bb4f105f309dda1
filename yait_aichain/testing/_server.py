"""The threading HTTP server: one daemon thread per connection, tracked so that
close() can end idle keep-alive connections at once."""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import sys
import threading
from typing import Any

from ._handler import Core, Handler

#: Pending connections the kernel may queue before accept(); bursts of hundreds of
#: clients connecting at once must not see refused connections.
LISTEN_BACKLOG = 1024


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTPServer whose connections can all be cut by :meth:`close_connections`."""

    daemon_threads = True
    # close() must not wait for handlers (a hung one never ends by itself).
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], core: Core) -> None:
        self.core = core
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host's FQDN, a reverse DNS lookup
        # that can stall start-up; nothing here needs the name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        self.core.counters.connection_opened()
        if self.core.stop.is_set():
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            known = request in self._open
            self._open.discard(request)
        if known:
            self.core.counters.connection_closed()
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection, waking handlers blocked on a read."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Resets and broken pipes are the clients' business (and half the fault
        # catalogue); anything else is a simulator bug worth a traceback.
        if self.core.stop.is_set() or isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
