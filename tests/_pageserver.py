"""A loopback HTTP/1.1 page server for the convertToMD tests and benchmark.

It binds 127.0.0.1 on a free port, serves registered routes from a thread per
connection (keep-alive), and counts requests per path and TCP connections, so a test can
prove that a refused URL never reached it and that connections are reused.
"""

from __future__ import annotations

import collections
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["PageServer"]

Route = Callable[[BaseHTTPRequestHandler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 50 threads connecting at once must not hit SYN retries

    def __init__(self, owner: PageServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (caps, deadlines, refused certificates) are expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle plus the client's
        # delayed ACK adds ~40 ms to every kept-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.owner._lock:
            self.server.owner.connections += 1

    def do_GET(self) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path
        with owner._lock:
            owner.hits[path] += 1
            owner.requests.append((path, dict(self.headers.items())))
        route = owner.routes.get(path)
        if route is None:
            owner.send(self, b"not found", status=404, content_type="text/plain")
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client gave up (cap, deadline): fine

    def log_message(self, format: str, *args: Any) -> None:
        pass


class PageServer:
    """Serve routes on 127.0.0.1 (https with ``ssl_context``); use as a context manager.

    ``add_page(path, body)`` registers a static response; ``add_route(path, fn)`` one
    written by ``fn(handler)``. ``hits[path]``, ``requests`` (every request, with its
    headers) and ``connections`` record what arrived.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.routes: dict[str, Route] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        """The server's URL for ``path``."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> PageServer:
        self._server = _Server(self)
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="yait_aichain-pageserver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> PageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget the counts."""
        with self._lock:
            self.hits.clear()
            self.requests.clear()
            self.connections = 0

    def add_route(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def add_page(self, path: str, body: bytes | str, *, status: int = 200,
                 content_type: str = "text/html; charset=utf-8",
                 headers: Mapping[str, str] | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = lambda h: self.send(h, data, status=status,
                                                content_type=content_type, headers=headers)

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, body: bytes, *, status: int = 200,
             content_type: str | None = "text/html; charset=utf-8",
             headers: Mapping[str, str] | None = None) -> None:
        """Write a complete response with a Content-Length."""
        handler.send_response(status)
        if content_type:
            handler.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if not any(k.lower() == "content-length" for k in headers or {}):
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
