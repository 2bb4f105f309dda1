"""Size, time and content-type caps of the URL fetcher (reliability catalogue 2.C, 56-61).

All served from the loopback page server, with private addresses allowed on purpose.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time

import psutil
import pytest

from yait_aichain._context import scope
from yait_aichain.errors import (
    CancelledError,
    FetchError,
    FetchTimeoutError,
    ResponseTooLargeError,
    UnsupportedContentTypeError,
)
from yait_aichain.tools import convertToMD
from yait_aichain.tools._fetch import Fetcher
from ._pageserver import PageServer

BOMB_SIZE = 64 * 1024 * 1024


def _endless(h):
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Connection", "close")
    h.end_headers()
    chunk = b"<p>" + b"a" * 65536 + b"</p>"
    for _ in range(100_000):
        h.wfile.write(chunk)


def _huge_length(h):
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "10737418240")
    h.end_headers()
    h.wfile.write(b"<p>start</p>")
    h.close_connection = True


def _drip_body(h):
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "100000")
    h.end_headers()
    for _ in range(100_000):
        h.wfile.write(b"a")
        h.wfile.flush()
        time.sleep(0.02)


def _drip_headers(h):
    h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(100_000):
        h.wfile.write(b"x")
        h.wfile.flush()
        time.sleep(0.02)


def _drip_chunks(h):
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(100_000):
        h.wfile.write(b"0")  # a chunk-size line that never ends
        h.wfile.flush()
        time.sleep(0.02)


@pytest.fixture(scope="module")
def server():
    bomb = gzip.compress(b"<p>" + b"a" * BOMB_SIZE, 6)
    with PageServer() as srv:
        srv.add_page("/page", "<p>fine page</p>")
        srv.add_route("/endless", _endless)
        srv.add_route("/huge-length", _huge_length)
        srv.add_route("/drip", _drip_body)
        srv.add_route("/drip-headers", _drip_headers)
        srv.add_route("/drip-chunks", _drip_chunks)
        srv.add_page("/bomb", bomb, headers={"Content-Encoding": "gzip"})
        for ctype in ("image/png", "video/mp4", "application/octet-stream", "application/pdf",
                      "application/zip"):
            srv.add_page(f"/type/{ctype}", b"\x89PNG\r\n\x1a\n\x00\x00", content_type=ctype)
        srv.add_page("/text", "plain *text* body", content_type="text/plain; charset=utf-8")
        srv.add_page("/markdown", "# Title\n\n\n\nbody", content_type="text/markdown")
        srv.add_page("/no-type", "<p>sniffed</p>", content_type=None)
        srv.add_page("/nul", b"<p>a\x00b</p>")
        srv.add_page("/status/404", "<p>gone</p>", status=404)
        srv.add_page("/status/500", "<p>boom</p>", status=500)
        srv.add_page("/latin1", "<p>caf\u00e9</p>".encode("latin-1"),
                     content_type="text/html; charset=iso-8859-1")
        srv.add_page("/meta-charset",
                     '<meta charset="windows-1252"><p>na\u00efve</p>'.encode("cp1252"),
                     content_type="text/html")
        srv.add_page("/bad-utf8", b"<p>ok \xff\xfe end</p>", content_type="text/html")
        yield srv


@pytest.fixture(autouse=True)
def _reset(server):
    server.reset()


def test_gzip_bomb_stops_at_the_decoded_cap(server):
    rss_before = psutil.Process().memory_info().rss
    fetcher = Fetcher(allow_private=True, max_bytes=1024 * 1024)
    started = time.monotonic()
    with pytest.raises(ResponseTooLargeError) as info:
        fetcher.fetch(server.url("/bomb"))
    assert "cap" in str(info.value) and "/bomb" in str(info.value)
    assert time.monotonic() - started < 2
    assert psutil.Process().memory_info().rss - rss_before < 100 * 1024 * 1024


def test_endless_body_stops_at_the_cap(server):
    with pytest.raises(ResponseTooLargeError):
        Fetcher(allow_private=True, max_bytes=2 * 1024 * 1024).fetch(server.url("/endless"))


def test_huge_content_length_is_refused_before_reading(server):
    started = time.monotonic()
    with pytest.raises(ResponseTooLargeError) as info:
        Fetcher(allow_private=True).fetch(server.url("/huge-length"))
    assert "10737418240" in str(info.value)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("path", ["/drip", "/drip-headers", "/drip-chunks"])
def test_slow_drip_is_cut_at_the_total_timeout(path, server):
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError) as info:
        Fetcher(allow_private=True, timeout=0.6).fetch(server.url(path))
    elapsed = time.monotonic() - started
    assert "timed out" in str(info.value)
    assert 0.5 < elapsed < 1.5


def test_pool_item_budget_bounds_the_fetch(server):
    tool = convertToMD(allow_private=True, timeout=20)
    started = time.monotonic()
    with scope(timeout=0.4), pytest.raises(FetchTimeoutError, match="timed out"):
        tool.run(server.url("/drip"))
    assert time.monotonic() - started < 1.2


def test_cancelled_scope_stops_before_fetching(server):
    cancel = threading.Event()
    cancel.set()
    with scope(cancel=cancel), pytest.raises(CancelledError):
        convertToMD(allow_private=True).run(server.url("/page"))
    assert server.hits["/page"] == 0


@pytest.mark.parametrize("ctype", ["image/png", "video/mp4"])
def test_unsupported_content_type(ctype, server):
    with pytest.raises(UnsupportedContentTypeError) as info:
        convertToMD(allow_private=True).run(server.url(f"/type/{ctype}"))
    assert ctype in str(info.value)


@pytest.mark.parametrize("ctype", ["application/octet-stream", "application/pdf",
                                   "application/zip"])
def test_document_types_whose_bytes_are_no_document_are_unsupported(ctype, server):
    # Document types are fetched (tests/test_documents.py), but the bytes decide: a PNG
    # is not converted whatever the server calls it.
    with pytest.raises(UnsupportedContentTypeError) as info:
        convertToMD(allow_private=True).run(server.url(f"/type/{ctype}"))
    assert "not a PDF, DOCX, XLSX or PPTX" in str(info.value)


def test_nul_bytes_in_html_are_unsupported(server):
    with pytest.raises(UnsupportedContentTypeError):
        convertToMD(allow_private=True).run(server.url("/nul"))


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_carry_the_status(status, server):
    with pytest.raises(FetchError) as info:
        convertToMD(allow_private=True).run(server.url(f"/status/{status}"))
    assert info.value.status == status
    assert f"HTTP {status}" in str(info.value)


def test_charsets_and_plain_text(server):
    tool = convertToMD(allow_private=True)
    assert tool.run(server.url("/latin1")) == "caf\u00e9"
    assert tool.run(server.url("/meta-charset")) == "na\u00efve"
    assert tool.run(server.url("/bad-utf8")) == "ok \ufffd\ufffd end"
    assert tool.run(server.url("/text")) == "plain *text* body"
    assert tool.run(server.url("/markdown")) == "# Title\n\nbody"
    assert tool.run(server.url("/no-type")) == "sniffed"


def test_refused_connection_is_a_fetch_error():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(FetchError, match="cannot fetch"):
        Fetcher(allow_private=True, timeout=2).fetch(f"http://127.0.0.1:{port}/")
