"""The simulator's HTTP layer: a threading server whose connections close() can cut, and
a lean HTTP/1.1 request parser. (The stdlib parses headers with the ``email`` package,
about 55 µs a request, a fifth of the simulator's CPU, taken from the benchmarks that run
in the same process. Here headers are a dict of lower-case names; a repeated header keeps
its last value, which no provider API relies on.)"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The stdlib's limits, so oversize requests are refused the same way.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_BLANK = (b"\r\n", b"\n", b"")


class LeanRequestHandler(BaseHTTPRequestHandler):
    """BaseHTTPRequestHandler with ``request_headers``, a ``dict`` of lower-case names
    (``headers``, the stdlib's ``email`` message, is not parsed)."""

    protocol_version = "HTTP/1.1"

    def parse_request(self) -> bool:
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")  # type: ignore[attr-defined]
        self.requestline = line
        words = line.split()
        if len(words) != 3:
            self.send_error(400, f"Bad request line {line[:100]!r}")
            return False
        command, path, version = words
        if not version.startswith("HTTP/1."):
            code = 505 if version.startswith("HTTP/") else 400
            self.send_error(code, f"Unsupported HTTP version {version[:20]!r}")
            return False
        self.command, self.path, self.request_version = command, path, version
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            raw = self.rfile.readline(_MAX_LINE + 1)
            if len(raw) > _MAX_LINE:
                self.send_error(431, "Header line too long")
                return False
            if raw in _BLANK:
                break
            name, sep, value = str(raw, "iso-8859-1").partition(":")
            if not sep or not name.strip():
                self.send_error(400, "Malformed header line")
                return False
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(431, "Too many headers")
            return False
        self.request_headers = headers
        connection = headers.get("connection", "").lower()
        # HTTP/1.1 keeps the connection unless asked not to; 1.0 only when asked to.
        if "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection):
            self.close_connection = False
        if version != "HTTP/1.0" and headers.get("expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def read_body(self) -> bytes:
        """The request body (Content-Length or chunked). Raises ValueError for a length
        or chunk size that does not parse, ConnectionResetError for a body cut short."""
        if "chunked" in self.request_headers.get("transfer-encoding", "").lower():
            pieces: list[bytes] = []
            while size := self._chunk_size():
                pieces.append(self._read_exactly(size))
                self.rfile.readline(_MAX_LINE + 1)
            while self.rfile.readline(_MAX_LINE + 1) not in _BLANK:
                pass  # trailers
            return b"".join(pieces)
        return self._read_exactly(int(self.request_headers.get("content-length") or 0))

    def _chunk_size(self) -> int:
        line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            raise ConnectionResetError("the client closed the connection mid-body")
        return int(line.split(b";", 1)[0].strip(), 16)

    def _read_exactly(self, size: int) -> bytes:
        if size < 0:  # read(-1) would wait for the client to close
            raise ValueError(f"negative Content-Length or chunk size {size}")
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionResetError("the client closed the connection mid-body")
        return data


class Server(ThreadingHTTPServer):
    """An HTTP server whose connections can all be cut by :meth:`close_connections`."""

    # close() must not wait for handlers (a hung one never ends by itself).
    block_on_close = False
    # The kernel's queue before accept(): hundreds of clients connecting at once must not
    # see refused connections.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], core: Any,
                 handler: type[BaseHTTPRequestHandler]) -> None:
        self.core = core  # the handlers' shared state: counters (and the open sockets), stop
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host's FQDN, a reverse DNS lookup
        # that can stall start-up; nothing here needs the name.
        socketserver.TCPServer.server_bind(self)
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        self.core.counters.connection_opened(request)
        if self.core.stop.is_set():
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.core.counters.connection_closed(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection, waking handlers blocked on a read."""
        for sock in self.core.counters.open_sockets():
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Resets and broken pipes are the clients' business (and half the fault
        # catalogue); anything else is a simulator bug worth a traceback.
        if not (self.core.stop.is_set() or isinstance(sys.exc_info()[1], OSError)):
            super().handle_error(request, client_address)
