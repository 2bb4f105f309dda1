"""The guarded page fetcher used by convertToMD.

A fetch parses the URL and checks every address of the host (:mod:`._netguard`), sends
the request to a checked address (:mod:`._pinned`) and follows redirects by hand,
checking each hop the same way. The body is streamed and capped by decoded size, total
time (:mod:`yait_aichain._watchdog`) and content type. ``requests`` and ``urllib3``
errors become FetchError here and nowhere else. Requests skip ``Session.send``: with
redirects off it still reads a redirect's whole body, uncapped, and merges cookies and
environment settings (proxies, netrc) that the guard must not see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3.exceptions

from .. import __version__, _watchdog
from .._checks import NUMBER, checked
from .._context import current
from ..errors import (ConfigurationError, FetchError, FetchTimeoutError, ResponseTooLargeError,
                      UnsafeURLError, UnsupportedContentTypeError)
from ..models._transport import ca_bundle
from ._netguard import (IPAddress, Resolver, Target, allow_private_from_env, parse_target,
                        resolve_checked, short)
from ._pinned import Dialer, PinnedAdapter, pin

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_REDIRECTS", "DEFAULT_POOL_MAXSIZE", "DEFAULT_TIMEOUT",
           "DEFAULT_USER_AGENT", "Fetcher", "Page"]

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_USER_AGENT = f"yait_aichain/{__version__} (convertToMD)"
DEFAULT_POOL_MAXSIZE = 64
_CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_OOXML = "application/vnd.openxmlformats-officedocument."
_OOXML_KINDS = {"wordprocessingml.document": "docx", "spreadsheetml.sheet": "xlsx",
                "presentationml.presentation": "pptx"}
# media type -> how the converter reads it
_KINDS = {
    "text/html": "html", "application/xhtml+xml": "xhtml", "text/plain": "text",
    "text/markdown": "markdown", "text/x-markdown": "markdown",
    # Documents: the converter checks the bytes' signature agrees with the declared type.
    "application/pdf": "pdf", "application/x-pdf": "pdf",
    **{_OOXML + name: kind for name, kind in _OOXML_KINDS.items()},
    "application/vnd.ms-word.document.macroenabled.12": "docx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    # Generic binary types: the converter goes by the bytes' signature alone.
    **dict.fromkeys(("application/octet-stream", "binary/octet-stream", "application/zip",
                     "application/msword", "application/vnd.ms-excel",
                     "application/vnd.ms-powerpoint"), "binary"),
}
_ACCEPT = ",".join(["text/html", "application/xhtml+xml", "application/pdf;q=0.9",
                    *(f"{_OOXML}{name};q=0.9" for name in _OOXML_KINDS),
                    "text/markdown;q=0.9", "text/plain;q=0.8"])


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
    media, *params = (header or "").split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower(), charset


def _timeout_error(url: str, budget: float) -> FetchTimeoutError:
    return FetchTimeoutError(f"timed out after {budget:.1f} s fetching {short(url)}", url=url)


@dataclass(kw_only=True, eq=False)
class Fetcher:
    """Fetches http(s) pages under the SSRF guard and the size/time/type caps.

    One connection pool and no per-fetch state: one instance can be shared between
    threads; a pickled copy opens its own connections. The settings are convertToMD's,
    plus test seams: ``resolver(host, port) -> [ip, ...]`` (default getaddrinfo),
    ``dialer(sockaddr, timeout) -> socket`` and ``verify``: True (the environment's CA
    bundle, as for model calls: ``models._transport.ca_bundle``) or a path, never False.
    """

    allow_private: bool = False
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    user_agent: str = DEFAULT_USER_AGENT
    pool_maxsize: int = DEFAULT_POOL_MAXSIZE
    resolver: Resolver | None = None
    dialer: Dialer | None = None
    verify: bool | str = True

    def __post_init__(self) -> None:
        self.timeout = checked(self.timeout, "timeout", NUMBER, above=True)
        checked(self.max_bytes, "max_bytes", low=1)
        checked(self.max_redirects, "max_redirects")
        checked(self.pool_maxsize, "pool_maxsize", low=1)
        agent = self.user_agent
        if not isinstance(agent, str) or "\n" in agent or "\r" in agent:
            raise ConfigurationError("user_agent must be a one-line string")
        if self.verify is False or not isinstance(self.verify, (bool, str)):
            raise ConfigurationError("verify must be True or the path of a CA bundle")
        self.allow_private = bool(self.allow_private)
        self._connect()

    def _connect(self) -> None:
        # Proxy variables are ignored on purpose (they would bypass the address guard),
        # but a corporate CA bundle only adds trust, so it is honoured like requests does.
        self._verify = ca_bundle(self.verify)
        self._adapter = PinnedAdapter(dialer=self.dialer, pool_maxsize=self.pool_maxsize)

    def __getstate__(self) -> dict[str, Any]:
        # Live sockets and the adapter's locks stay behind; a copy (say, on a Dask worker)
        # opens its own connections and reads its own CA bundle setting.
        return {k: v for k, v in self.__dict__.items() if k not in ("_adapter", "_verify")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._connect()

    def close(self) -> None:
        self._adapter.close()

    def budget(self) -> float:
        """Seconds one fetch or conversion may take: ``timeout``, or less when the calling
        Pool item has less left."""
        left = current().remaining()
        return self.timeout if left is None else min(self.timeout, left)

    def fetch(self, url: str) -> Page:
        """Fetch ``url`` and return its body, following at most ``max_redirects``; raises
        what convertToMD.run lists for URLs (UnsafeURLError before any connection to a
        refused hop), or CancelledError when the calling Pool run is cancelled."""
        scope = current()
        scope.check()
        budget = self.budget()
        if budget <= 0:
            raise FetchTimeoutError(f"no time left to fetch {short(url)}", url=url)
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
        raise FetchError(
            f"too many redirects (more than {self.max_redirects}) fetching {short(url)}", url=url
        )

    def _check_hop(self, url: str, hop: int,
                   allow_private: bool) -> tuple[Target, list[IPAddress]]:
        try:
            target = parse_target(url)
            return target, resolve_checked(
                target, allow_private=allow_private, resolver=self.resolver
            )
        except UnsafeURLError as exc:
            if hop == 0:
                raise
            raise UnsafeURLError(f"redirect {hop} to {short(url, 80)} refused: {exc}") from exc

    def _send(self, target: Target, addresses: list[IPAddress], deadline: float,
              budget: float) -> requests.Response:
        headers = {"Host": target.netloc, "User-Agent": self.user_agent, "Accept": _ACCEPT,
                   # Only decoders whose output read1() can bound chunk by chunk.
                   "Accept-Encoding": "gzip, deflate"}
        request = requests.PreparedRequest()
        try:
            request.prepare(method="GET", url=target.url, headers=headers)
        except requests.RequestException as exc:
            raise FetchError(f"invalid URL {short(target.url)}: {exc}", url=target.url) from exc
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
            except requests.RequestException as exc:
                raise self._translate(exc, target, ip, deadline, budget) from exc
        if error is None:
            raise _timeout_error(target.url, budget)
        raise self._translate(error, target, addresses[-1], deadline, budget) from error

    @staticmethod
    def _translate(exc: BaseException, target: Target, ip: Any, deadline: float,
                   budget: float) -> FetchError:
        timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError)
        if isinstance(exc, timeouts) or time.monotonic() >= deadline:
            return _timeout_error(target.url, budget)
        reason = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps it
        where = target.host if target.ip is not None else f"{target.host} ({ip})"
        return FetchError(f"cannot fetch {short(target.url)} from {where}: "
                          f"{short(str(reason), 160)}", url=target.url)

    def _read(self, response: requests.Response, target: Target, deadline: float,
              budget: float, alarm: _watchdog.Alarm) -> Page:
        url, status = target.url, response.status_code
        if not 200 <= status < 300:
            raise FetchError(f"HTTP {status} fetching {short(url)}", url=url, status=status)
        media, charset = _media_type(response.headers.get("Content-Type"))
        kind = _KINDS.get(media, "" if not media else None)
        if kind is None:
            raise UnsupportedContentTypeError(
                f"unsupported content type {short(media, 60)!r} from {short(url)}",
                url=url, status=status)
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            raise ResponseTooLargeError(
                f"{short(url)} is {int(length)} bytes, over the {self.max_bytes}-byte cap",
                url=url, status=status, limit=self.max_bytes)
        body = bytearray()
        scope = current()
        try:
            # read1 returns as soon as some bytes arrive, so the cap and the deadline are
            # checked between small reads, and a gzip bomb is inflated at most one chunk
            # past the cap.
            for chunk in iter(lambda: response.raw.read1(_CHUNK, decode_content=True), b""):
                body += chunk
                if len(body) > self.max_bytes:
                    raise ResponseTooLargeError(
                        f"{short(url)} is over the {self.max_bytes}-byte cap (decoded)",
                        url=url, status=status, limit=self.max_bytes)
                scope.check()
                if time.monotonic() >= deadline:
                    raise _timeout_error(url, budget)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise self._translate(exc, target, target.host, deadline, budget) from exc
        if alarm.fired or time.monotonic() >= deadline:
            # A socket shut down by the alarm can look like a normal end of the body
            # (close-delimited bodies, a half-read chunk-size line): never trust it.
            raise _timeout_error(url, budget)
        return Page(url=url, kind=kind, body=bytes(body), charset=charset)
