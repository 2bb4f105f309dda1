"""One whole-call deadline in every phase (DNS, status line, headers, chunk sizes, body),
for Model calls and convertToMD fetches; a decoded-size cap that no bomb gets past."""

from __future__ import annotations

import gzip
import json
import socket
import time
import tracemalloc

import pytest

from yait_aichain import Model
from yait_aichain.errors import (
    APIError,
    APITimeoutError,
    ConfigurationError,
    FetchError,
    FetchTimeoutError,
    ResponseTooLargeError,
)
from yait_aichain.models import RetryPolicy
from yait_aichain.tools import convertToMD

from ._rawserver import RawServer, drip, response

OK = json.dumps({"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                           "total_tokens": 2}}).encode()
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"p" * 40


def _status_line(sock, req):
    drip(sock, b"HTTP/1.1 200 OK\r\n", 1.0)


def _headers(sock, req):
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    drip(sock, b"Content-Type: application/json\r\nX-Slow: " + b"s" * 40 + b"\r\n", 1.0)


def _chunk_sizes(sock, req):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    drip(sock, b"000000000000000000000000000000000000000001\r\n{\r\n", 1.0)


def _body(sock, req):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 60\r\n"
                 b"\r\n")
    drip(sock, b" " * 60, 0.9)


@pytest.mark.parametrize("phase", [_status_line, _headers, _chunk_sizes, _body],
                         ids=["status line", "headers", "chunk-size lines", "body"])
def test_a_dripping_server_cannot_outlive_model_timeout(phase):
    with RawServer(phase) as srv:
        model = Model("gpt-4o", api_key="sk-test-0123456789", base_url=srv.url + "/v1",
                      timeout=2)
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            model.generate("x")
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"took {elapsed:.1f}s"
    assert info.value.attempts == 1  # the deadline is spent: no retry


def _hanging_resolver(monkeypatch, seconds: float = 30.0):
    real = socket.getaddrinfo
    calls = []

    def slow(host, *args, **kwargs):
        calls.append(host)
        if host.endswith(".example"):
            time.sleep(seconds)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    return calls


def test_a_hanging_dns_lookup_honours_model_timeout(monkeypatch):
    calls = _hanging_resolver(monkeypatch)
    model = Model("gpt-4o", api_key="sk-test-0123456789", base_url="http://dns-hangs.example/v1",
                  timeout=2)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        model.generate("x")
    assert time.monotonic() - started < 3.0 and calls == ["dns-hangs.example"]


def test_an_ip_base_url_is_never_looked_up(monkeypatch):
    calls = _hanging_resolver(monkeypatch)
    with RawServer(lambda s, r: s.sendall(response(200, OK))) as srv:
        model = Model("gpt-4o", api_key="sk-test-0123456789", base_url=srv.url + "/v1")
        assert model.generate("x").output == "fine"
    assert calls == []


def test_a_hanging_dns_lookup_honours_convert_timeout(monkeypatch):
    _hanging_resolver(monkeypatch)
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError):
        convertToMD(timeout=2).run("http://dns-hangs.example/page")
    assert time.monotonic() - started < 3.0


def _nested_bomb(layers: int = 3, size: int = 600 * 1024 * 1024) -> bytes:
    data = gzip.compress(b"\0" * size, 9)
    for _ in range(layers - 1):
        data = gzip.compress(data, 9)
    return data


@pytest.fixture(scope="module")
def bomb():
    data = _nested_bomb()
    assert len(data) < 500
    return data


def test_a_500_byte_nested_gzip_bomb_costs_little_and_one_attempt(bomb):
    def serve(sock, req):
        sock.sendall(response(200, bomb, {"Content-Type": "application/json",
                                          "Content-Encoding": "gzip, gzip, gzip"}))

    with RawServer(serve) as srv:
        model = Model("gpt-4o", api_key="sk-test-0123456789", base_url=srv.url + "/v1")
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLargeError) as info:
                model.generate("x")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    assert info.value.attempts == 1 and len(srv.requests) == 1
    assert info.value.limit == 32 * 1024 * 1024 and info.value.status == 200


def test_the_cap_is_configurable_and_an_announced_size_is_refused_unread():
    big = b'{"x": "' + b"a" * 200_000 + b'"}'
    with RawServer(lambda s, r: s.sendall(response(500, big))) as srv:
        model = Model("gpt-4o", api_key="sk-test-0123456789", base_url=srv.url + "/v1",
                      max_response_bytes=100_000, retry=RetryPolicy(sleep=lambda s: None))
        with pytest.raises(ResponseTooLargeError, match="announces 200009 bytes"):
            model.generate("x")
    assert len(srv.requests) == 1  # a 500 is retried, an oversized body is not

    def unannounced(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big)

    with RawServer(unannounced) as srv:
        model = Model("gpt-4o", api_key="sk-test-0123456789", base_url=srv.url + "/v1",
                      max_response_bytes=100_000)
        with pytest.raises(ResponseTooLargeError, match="100000-byte cap"):
            model.generate("x")
    with RawServer(lambda s, r: s.sendall(response(200, OK))) as srv:
        model = Model("gpt-4o", api_key="k", base_url=srv.url + "/v1", max_response_bytes=len(OK))
        assert model.generate("x").output == "fine"  # exactly at the cap is fine


@pytest.mark.parametrize("bad", [0, -1, 1.5, "32M", True, None])
def test_a_bad_cap_is_a_configuration_error(bad):
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        Model("gpt-4o", api_key="k", max_response_bytes=bad)


def test_response_too_large_is_both_an_api_and_a_fetch_error_and_never_retried():
    exc = ResponseTooLargeError("too big", status=503, limit=10)
    assert isinstance(exc, APIError) and isinstance(exc, FetchError)
    assert not exc.retryable and not RetryPolicy().should_retry(exc)
    assert str(exc) == "too big"


def test_a_spent_budget_at_connect_time_is_a_timeout_not_a_value_error():
    from yait_aichain import _watchdog
    from yait_aichain.models._connect import POOL_CLASSES

    conn = POOL_CLASSES["http"].ConnectionCls("127.0.0.1", 9, timeout=5)
    with _watchdog.deadline_alarm(time.monotonic() - 1), pytest.raises(Exception) as info:
        conn.connect()
    assert "timed out" in str(info.value).lower() and not isinstance(info.value, ValueError)
