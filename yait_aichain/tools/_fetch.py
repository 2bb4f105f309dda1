"""The guarded page fetcher used by convertToMD.

One fetch: parse the URL (:mod:`._netguard`), resolve the host once, check every
address, send the request to a checked address (:mod:`._pinned`), and follow redirects
by hand, checking each hop the same way. The body is streamed and capped by decoded
size, by total time (:mod:`yait_aichain._watchdog`) and by content type. All ``requests`` and
``urllib3`` errors become :class:`~yait_aichain.errors.FetchError` here and nowhere else.

Requests go straight to the adapter, not through ``requests.Session.send``: with
redirects off that method still reads a redirect's whole body, without a size or time
cap, and it merges cookies and environment settings (proxies, netrc) that the guard must
not see.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3.exceptions

from .. import __version__
from .._context import current
from ..errors import (
    ConfigurationError,
    FetchError,
    FetchTimeoutError,
    ResponseTooLargeError,
    UnsafeURLError,
    UnsupportedContentTypeError,
)
from .. import _watchdog
from ._netguard import (
    IPAddress,
    Resolver,
    Target,
    allow_private_from_env,
    parse_target,
    resolve_checked,
    short,
)
from ._pinned import Dialer, PinnedAdapter, pin

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "Fetcher",
    "Page",
]

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_USER_AGENT = f"yait_aichain/{__version__} (convertToMD)"
DEFAULT_POOL_MAXSIZE = 64
_CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# media type -> how the converter reads it
_KINDS = {
    "text/html": "html",
    "application/xhtml+xml": "xhtml",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    # Documents: the converter checks the bytes' signature agrees with the declared type.
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-word.document.macroenabled.12": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    # Generic binary types: the converter goes by the bytes' signature alone.
    "application/octet-stream": "binary",
    "binary/octet-stream": "binary",
    "application/zip": "binary",
    "application/msword": "binary",
    "application/vnd.ms-excel": "binary",
    "application/vnd.ms-powerpoint": "binary",
}
_ACCEPT = ("text/html,application/xhtml+xml,application/pdf;q=0.9,"
           "application/vnd.openxmlformats-officedocument.wordprocessingml.document;q=0.9,"
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;q=0.9,"
           "application/vnd.openxmlformats-officedocument.presentationml.presentation;q=0.9,"
           "text/markdown;q=0.9,text/plain;q=0.8")


@dataclass(frozen=True)
class Page:
    """A fetched body: ``kind`` is "html", "xhtml", "text", "markdown", a document kind
    ("pdf", "docx", "xlsx", "pptx"), "binary" (a generic binary type) or "" (no
    Content-Type)."""

    url: str
    kind: str
    body: bytes
    charset: str | None


def _media_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    media, *params = header.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower(), charset


def _fetch_error(message: str, *, url: str, status: int | None = None,
                 cls: type[FetchError] = FetchError) -> FetchError:
    return cls(message, url=url, status=status)


def _timeout_error(url: str, budget: float) -> FetchTimeoutError:
    return FetchTimeoutError(f"timed out after {budget:.1f} s fetching {short(url)}", url=url)


class Fetcher:
    """Fetches http(s) pages under the SSRF guard and the size/time/type caps.

    It holds one connection pool (``pool_maxsize`` kept-alive connections per address)
    and no per-fetch state, so one instance can be shared between threads.

    Args:
        allow_private: also allow loopback, private, link-local and other non-global
            addresses (trusted networks only). The environment variable
            ``AICHAIN_ALLOW_PRIVATE_URLS`` in {1, true, yes, on} does the same. Cloud
            metadata, multicast and unspecified addresses stay refused.
        timeout: total seconds for one fetch, redirects included; also bounded by the
            calling Pool item's remaining budget.
        max_bytes: cap on the decoded body.
        max_redirects: redirects followed before giving up.
        user_agent: the User-Agent header; no other identifying header is sent.
        pool_maxsize: connections kept per address; size it for the threads that share
            the fetcher.
        resolver: ``resolver(host, port) -> [ip, ...]``; default ``socket.getaddrinfo``.
        dialer: ``dialer((ip, port), timeout) -> socket``; a test seam, default TCP.
        verify: ``True`` (the CA bundle named by ``REQUESTS_CA_BUNDLE`` or
            ``CURL_CA_BUNDLE`` when set, as for model calls; else the default bundle) or
            the path of a CA bundle; never ``False`` (certificate checks cannot be turned
            off here).
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        user_agent: str = DEFAULT_USER_AGENT,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        resolver: Resolver | None = None,
        dialer: Dialer | None = None,
        verify: bool | str = True,
    ) -> None:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
            raise ConfigurationError(f"max_bytes must be an int > 0, got {max_bytes!r}")
        if (not isinstance(max_redirects, int) or isinstance(max_redirects, bool)
                or max_redirects < 0):
            raise ConfigurationError(f"max_redirects must be an int >= 0, got {max_redirects!r}")
        if not isinstance(user_agent, str) or "\n" in user_agent or "\r" in user_agent:
            raise ConfigurationError("user_agent must be a one-line string")
        if not isinstance(pool_maxsize, int) or pool_maxsize < 1:
            raise ConfigurationError(f"pool_maxsize must be an int >= 1, got {pool_maxsize!r}")
        if verify is False or not isinstance(verify, (bool, str)):
            raise ConfigurationError("verify must be True or the path of a CA bundle")
        self.allow_private = bool(allow_private)
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self.pool_maxsize = pool_maxsize
        self._resolver = resolver
        if verify is True:
            # Proxy variables are ignored on purpose (they would bypass the address guard),
            # but a corporate CA bundle only adds trust, so it is honoured like requests does.
            verify = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                      or True)
        self._verify = verify
        self._adapter = PinnedAdapter(dialer=dialer, pool_maxsize=pool_maxsize)

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._adapter.close()

    def fetch(self, url: str) -> Page:
        """Fetch ``url`` and return its body, following at most ``max_redirects``.

        Raises:
            UnsafeURLError: the URL or a redirect hop is not allowed (before any
                connection to it).
            ResponseTooLargeError: the decoded body is over ``max_bytes``.
            UnsupportedContentTypeError: not HTML, XHTML, plain text, Markdown or a
                document type (PDF, DOCX, XLSX, PPTX, generic binary).
            FetchError: HTTP error status, timeout, too many redirects, network error.
            CancelledError: the calling Pool run was cancelled.
        """
        scope = current()
        scope.check()
        budget = self.timeout
        left = scope.remaining()
        if left is not None:
            budget = min(budget, left)
        if budget <= 0:
            raise _fetch_error(f"no time left to fetch {short(url)}", url=url,
                               cls=FetchTimeoutError)
        deadline = time.monotonic() + budget
        allow_private = self.allow_private or allow_private_from_env()
        with _watchdog.deadline_alarm(deadline) as alarm:
            assert alarm is not None  # a deadline always arms one
            hop_url = url
            for hop in range(self.max_redirects + 1):
                scope.check()
                target, addresses = self._check_hop(hop_url, hop, allow_private)
                response = self._send(target, addresses, deadline, budget)
                try:
                    location = response.headers.get("Location")
                    if response.status_code in _REDIRECTS and location:
                        hop_url = urljoin(target.url, location.strip().replace("\\", "/"))
                        continue
                    return self._read(response, target, deadline, budget, alarm)
                finally:
                    response.close()
        raise _fetch_error(
            f"too many redirects (more than {self.max_redirects}) fetching {short(url)}",
            url=url,
        )

    def _check_hop(self, url: str, hop: int,
                   allow_private: bool) -> tuple[Target, list[IPAddress]]:
        try:
            target = parse_target(url)
            return target, resolve_checked(
                target, allow_private=allow_private, resolver=self._resolver
            )
        except UnsafeURLError as exc:
            if hop == 0:
                raise
            raise UnsafeURLError(f"redirect {hop} to {short(url, 80)} refused: {exc}") from exc

    def _headers(self, target: Target) -> dict[str, str]:
        return {
            "Host": target.netloc,
            "User-Agent": self.user_agent,
            "Accept": _ACCEPT,
            # Only decoders whose output read1() can bound chunk by chunk.
            "Accept-Encoding": "gzip, deflate",
        }

    def _send(self, target: Target, addresses: list[IPAddress], deadline: float,
              budget: float) -> requests.Response:
        request = requests.PreparedRequest()
        try:
            request.prepare(method="GET", url=target.url, headers=self._headers(target))
        except requests.RequestException as exc:
            raise _fetch_error(f"invalid URL {short(target.url)}: {exc}", url=target.url) from exc
        error: Exception | None = None
        for ip in addresses:  # all checked; the next one only if connecting fails
            left = deadline - time.monotonic()
            if left <= 0:
                break
            pin(request, str(ip), target.host)
            try:
                return self._adapter.send(
                    request, stream=True, timeout=(min(left, _CONNECT_TIMEOUT), left),
                    verify=self._verify, cert=None, proxies={},
                )
            except requests.ConnectionError as exc:
                error = exc
                continue
            except requests.RequestException as exc:
                raise self._translate(exc, target, ip, deadline, budget) from exc
        if error is None:
            raise _timeout_error(target.url, budget)
        raise self._translate(error, target, addresses[-1], deadline, budget) from error

    @staticmethod
    def _translate(exc: BaseException, target: Target, ip: Any, deadline: float,
                   budget: float) -> FetchError:
        url = target.url
        timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError)
        if isinstance(exc, timeouts) or time.monotonic() >= deadline:
            return _timeout_error(url, budget)
        reason = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps it
        where = target.host if target.ip is not None else f"{target.host} ({ip})"
        return _fetch_error(
            f"cannot fetch {short(url)} from {where}: {short(str(reason), 160)}", url=url
        )

    def _read(self, response: requests.Response, target: Target, deadline: float,
              budget: float, alarm: _watchdog.Alarm) -> Page:
        url = target.url
        status = response.status_code
        if not 200 <= status < 300:
            raise _fetch_error(f"HTTP {status} fetching {short(url)}", url=url, status=status)
        media, charset = _media_type(response.headers.get("Content-Type"))
        kind = _KINDS.get(media, "" if not media else None)
        if kind is None:
            raise _fetch_error(
                f"unsupported content type {short(media, 60)!r} from {short(url)}",
                url=url, status=status, cls=UnsupportedContentTypeError,
            )
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            raise _fetch_error(
                f"{short(url)} is {int(length)} bytes, over the {self.max_bytes}-byte cap",
                url=url, status=status, cls=ResponseTooLargeError,
            )
        body = bytearray()
        raw = response.raw
        scope = current()
        try:
            while True:
                scope.check()
                if time.monotonic() >= deadline:
                    raise _timeout_error(url, budget)
                # read1 returns as soon as some bytes arrive, so the deadline and the
                # cap are checked between small reads, and a gzip bomb is inflated
                # at most one chunk past the cap.
                chunk = raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_bytes:
                    raise _fetch_error(
                        f"{short(url)} is over the {self.max_bytes}-byte cap (decoded)",
                        url=url, status=status, cls=ResponseTooLargeError,
                    )
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise self._translate(exc, target, target.host, deadline, budget) from exc
        if alarm.fired or time.monotonic() >= deadline:
            # A socket shut down by the alarm can look like a normal end of the body
            # (close-delimited bodies, a half-read chunk-size line): never trust it.
            raise _timeout_error(url, budget)
        return Page(url=url, kind=kind, body=bytes(body), charset=charset)
