"""The only module of the models package that imports ``requests``; every
``requests``/``urllib3`` exception becomes one of ours here.

One :class:`Transport` per Model: a connection pool that grows with the threads using it,
connect and read timeouts, one deadline that holds in every phase (DNS, connect, TLS,
headers, body: see :mod:`._connect`), a cap on the decoded body, no redirects, no urllib3
retries (the retry module is the one retry layer), proxy settings read once. It calls the
adapter, not ``Session.request``: merging environment settings and cookies on every call
costs more CPU than the rest of the call, and an API client needs neither.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import requests.utils
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from .. import _watchdog
from ..errors import (
    APIError, APITimeoutError, ConfigurationError, NetworkError, ResponseTooLargeError,
)
from ._connect import POOL_CLASSES
from ._status import redact

#: Connections kept per host before the pool grows; above requests' default of 10 so that
#: the common "50 threads" case never sees "Connection pool is full".
DEFAULT_POOL_SIZE = 64
_READ_CHUNK = 65536
_LONG_FLOAT = re.compile(r"(?<![\w.])\d+\.\d{4,}(?![\w.])")


def ca_bundle(verify: bool | str = True) -> bool | str:
    """``verify`` for requests: when True, the CA bundle named by ``REQUESTS_CA_BUNDLE`` or
    ``CURL_CA_BUNDLE`` if set (read here, once, not by requests on every call)."""
    if verify is not True:
        return verify
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes

    def __repr__(self) -> str:
        # The body may echo the key before the Model scrubs it: frames that hold this
        # object (tracebacks with locals) show its size only.
        return f"RawResponse(status={self.status}, {len(self.content)} bytes)"


class Transport:
    """Sends API requests. Thread-safe: one instance serves every flow of a Pool. The
    connection pool starts at ``DEFAULT_POOL_SIZE`` and doubles whenever more requests are in
    flight than it holds, so no caller ever has to size it."""

    def __init__(self, base_url: str, *, verify: bool | str = True):
        self._lock = threading.Lock()
        self._base_url = base_url
        self._in_flight = 0
        # Proxies and CA bundle come from the environment once, here; requests would look
        # them up again on every call.
        self._proxies = requests.utils.get_environ_proxies(base_url) if base_url else {}
        self._verify = ca_bundle(verify)
        self._pool_size = 0
        self._grow(DEFAULT_POOL_SIZE)

    def _grow(self, n: int) -> None:
        # Called with the lock held (or from __init__). The old adapter is not closed:
        # requests still using it finish on their connections, then it is dropped.
        if n > self._pool_size:
            self._pool_size = max(n, self._pool_size * 2)
            self._adapter = _ApiAdapter(pool_connections=4, pool_maxsize=self._pool_size,
                                        max_retries=0, pool_block=False)

    def reserve(self, n: int) -> None:
        """Make sure ``n`` concurrent requests can each keep their connection."""
        with self._lock:
            self._grow(n)

    def post(self, url: str, headers: Mapping[str, str], body: bytes, *,
             connect_timeout: float, read_timeout: float, deadline: float | None,
             method: str = "POST", max_bytes: int | None = None) -> RawResponse:
        """Send ``body`` with ``method`` and read the whole response before ``deadline``
        (monotonic; it holds in every phase, name resolution included). ``max_bytes``
        caps the decoded body (None: no cap).

        Raises:
            APITimeoutError: connect/read timeout, or the deadline passed (in any phase).
            NetworkError: no usable response (DNS, refused, reset, TLS, proxy).
            ResponseTooLargeError: the decoded body is over ``max_bytes``.
            ConfigurationError: the URL cannot be used.
        """
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url, prepared.body = method, url, body
        prepared.headers = CaseInsensitiveDict(headers)
        prepared.headers["Content-Length"] = str(len(body))
        with self._lock:
            self._in_flight += 1
            self._grow(self._in_flight)
            adapter = self._adapter
        try:
            with _watchdog.deadline_alarm(deadline) as alarm:
                try:
                    response = adapter.send(prepared, stream=True, verify=self._verify,
                                            timeout=(connect_timeout, read_timeout),
                                            proxies=self._proxies)
                    try:
                        content = _read_body(response, deadline, max_bytes)
                    finally:
                        response.close()
                except _TRANSPORT_ERRORS as exc:
                    raise self._translate(exc, url, alarm is not None and alarm.fired) from None
                if alarm is not None and alarm.fired:
                    # A socket shut down by the alarm can look like the normal end of a body
                    # (close-delimited, or cut in a chunk-size line): never trust it.
                    raise APITimeoutError("the response did not finish within the time budget")
        finally:
            with self._lock:
                self._in_flight -= 1
        return RawResponse(response.status_code, response.headers, content)

    def _translate(self, exc: BaseException, url: str,
                   fired: bool) -> APIError | ConfigurationError:
        """Our error for a requests/urllib3/socket exception (``fired``: the deadline alarm
        shut the socket down, whatever the exception says)."""
        if not fired and isinstance(exc, requests.exceptions.ConnectionError) \
                and not isinstance(exc, requests.exceptions.ProxyError) \
                and any(isinstance(err, ConnectionRefusedError) for err in _causes(exc)):
            # Nothing listens at the base URL. On this machine (a local server that is not
            # running) that will not change within a retry's backoff, so it is not
            # retried; a remote host may be restarting behind a load balancer.
            base = redact(self._base_url)
            return NetworkError(f"connection refused by {base}: nothing listens there "
                                f"({_describe(exc)})", refused=True, base_url=base,
                                retryable=not _is_loopback(self._base_url))
        if fired or isinstance(exc, (requests.exceptions.Timeout,
                                     urllib3.exceptions.TimeoutError, TimeoutError)):
            return APITimeoutError(f"timed out: {_describe(exc)}")
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                            requests.exceptions.InvalidSchema)):
            return ConfigurationError(f"cannot use the URL {redact(url)!r}: {_describe(exc)}")
        if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
            kind = "TLS" if isinstance(exc, requests.exceptions.SSLError) else "proxy"
            # a bad certificate or proxy does not fix itself
            return NetworkError(f"{kind} error: {_describe(exc)}", retryable=False)
        if isinstance(exc, (ValueError, LookupError, http.client.HTTPException)):
            return NetworkError(f"malformed response: {_describe(exc)}")
        return NetworkError(f"connection failed: {_describe(exc)}")


class _ApiAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter that works out once what requests works out on every send: the
    urllib3 pool and the request target (requests parses the URL twice per call), and no
    cookie jar (never read). With the single read in ``_read_body`` this took 15% off
    Model.generate's CPU per call, measured against the plain adapter (benchmarks/)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._pools: dict[tuple[str, Any], Any] = {}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools dial through the proxy
            manager.pool_classes_by_scheme = dict(POOL_CLASSES)
        return manager

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        if proxies or cert is not None:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        url = request.url or ""
        end = url.find("/", url.find("//") + 2)
        key = (url if end < 0 else url[:end], verify)
        pool = self._pools.get(key)
        # A pool the manager evicted or closed has pool.pool = None.
        if pool is None or getattr(pool, "pool", None) is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._pools[key] = pool
        return pool

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        return super().request_url(request, proxies) if proxies else request.path_url

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = resp.status
        response.headers = resp.headers  # urllib3's HTTPHeaderDict: already case-insensitive
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url or ""
        response.request = req
        response.connection = self
        return response


def _read_body(response: requests.Response, deadline: float | None,
               max_bytes: int | None) -> bytes:
    """Read the body, giving up at ``deadline`` even when the server drips bytes slowly
    enough that no single read times out, and at ``max_bytes`` of decoded body (``read1``
    decodes one chunk at a time: a compression bomb is never inflated past the cap)."""
    raw = response.raw
    length = response.headers.get("content-length", "").strip()
    if max_bytes is not None and length.isdigit() and int(length) > max_bytes:
        raise _too_large(f"the response announces {int(length)} bytes", max_bytes,
                         response.status_code)
    # With no content coding, a closed stream after a read means the body is complete:
    # skip the extra read that would only confirm it (a few per cent of a call's CPU).
    identity = not response.headers.get("content-encoding")
    body = bytearray()
    while chunk := raw.read1(_READ_CHUNK, decode_content=True):
        body += chunk
        if max_bytes is not None and len(body) > max_bytes:
            raise _too_large("the decoded response is larger", max_bytes, response.status_code)
        if deadline is not None and time.monotonic() > deadline:
            raise requests.exceptions.ReadTimeout(
                "the response did not finish within the time budget")
        if identity and raw.closed:
            break
    return bytes(body)


def _too_large(what: str, max_bytes: int, status: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"{what} than the {max_bytes}-byte cap; raise Model(max_response_bytes=...) if the "
        f"answer really is this big", status=status, limit=max_bytes)


# What sending and reading may raise; each becomes one of our errors in _translate.
_TRANSPORT_ERRORS = (
    requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError,
    http.client.HTTPException, ValueError, LookupError,
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception inside it (args, ``reason``, cause, context), once."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        err = stack.pop()
        if id(err) not in seen:
            seen.add(id(err))
            yield err
            stack.extend(i for i in (*err.args, getattr(err, "reason", None), err.__cause__,
                                     err.__context__) if isinstance(i, BaseException))


def _is_loopback(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _describe(exc: BaseException) -> str:
    """A short, key-free description of a requests/urllib3 exception."""
    # The innermost reason is the informative part ("Connection refused", "Name or service
    # not known"); the outer layers only repeat the URL and pool details.
    reason, seen = exc, {id(exc)}
    while True:
        inner = next((e for e in (getattr(reason, "reason", None), *reason.args)
                      if isinstance(e, BaseException)), None)
        if inner is None or id(inner) in seen:
            break
        seen.add(id(inner))
        reason = inner
    text = re.sub(r"<urllib3\.[^>]*>:\s*", "", str(reason) or type(reason).__name__)
    # urllib3 prints the computed budget in full ("read timeout=1.9998692529998152").
    text = _LONG_FLOAT.sub(lambda m: f"{float(m.group(0)):.2f}", text)
    return redact(text)[:300]
