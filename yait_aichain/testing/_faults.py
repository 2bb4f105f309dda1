"""Scripted failures the simulator serves instead of a normal reply (the handler decides
what each means in a wire format)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._checks import NUMBER, checked
from ..errors import ConfigurationError

__all__ = ["Fault"]

# What a fault does to the exchange. Only STATUS sends a complete error reply; the others
# break the exchange in the ways real networks and proxies do.
_ACTIONS = STATUS, HANG, DROP, MALFORMED, TRUNCATED, SLOW_DRIP, EMPTY_REPLY = (
    "status", "hang", "drop", "malformed", "truncated", "slow_drip", "empty_reply")

# Error categories pick the provider's error type/code/message for a STATUS fault.
RATE_LIMIT = "rate_limit"
INSUFFICIENT_QUOTA = "insufficient_quota"
BILLING = "billing"
SERVER = "server"
OVERLOADED = "overloaded"
UNAUTHORIZED = "unauthorized"
TOO_LARGE = "too_large"
GENERIC = "generic"

_BODY_KINDS = (RATE_LIMIT, INSUFFICIENT_QUOTA)
Headers = tuple[tuple[str, str], ...]  # response headers as (name, value) pairs, in order


def _format_seconds(value: Any, name: str) -> str:
    # Strings pass through untouched so tests can send hostile hints ("-10", "inf", dates).
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number or a string, got {value!r}")
    return str(int(value) if isinstance(value, float) and value.is_integer() else value)


def _status(code: Any, none: bool = False) -> int | None:
    status: int | None = checked(code, "status", low=100, high=599, none=none)
    return status


def _headers(headers: Mapping[str, str] | None, should_retry: bool | None,
             retry_after: Any = None, retry_after_ms: Any = None) -> Headers:
    out: list[tuple[str, str]] = []
    if retry_after is not None:
        out.append(("Retry-After", _format_seconds(retry_after, "retry_after")))
    if retry_after_ms is not None:
        out.append(("retry-after-ms", _format_seconds(retry_after_ms, "retry_after_ms")))
    if should_retry is not None:
        out.append(("x-should-retry", "true" if should_retry else "false"))
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError("headers must map str to str")
        if "\r" in name + value or "\n" in name + value:
            raise ConfigurationError("header names and values cannot contain line breaks")
        out.append((name, value))
    return tuple(out)


@dataclass(frozen=True)
class Fault:
    """One failure to serve, immutable and reusable; build it with a constructor, e.g.
    ``Fault.rate_limit(retry_after=1)``. Error statuses answer at once, as real rate
    limiters do; ``empty_reply``, ``malformed``, ``truncated`` and ``slow_drip`` stand for
    a generated reply and wait for the simulator's latency first."""

    action: str
    code: int | None = None
    category: str = GENERIC
    headers: Headers = ()
    body: Any = None
    seconds: float | None = None
    bytes_per_second: float | None = None

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise ConfigurationError(f"unknown fault action {self.action!r}; build faults "
                                     "with the Fault.* constructors")

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = None, *,
                   retry_after_ms: float | str | None = None, body_kind: str = RATE_LIMIT,
                   should_retry: bool | None = None, headers: Mapping[str, str] | None = None
                   ) -> Fault:
        """429 in the provider's shape.

        Args:
            retry_after: value of the ``Retry-After`` header (a number, or a string sent
                verbatim); Gemini bodies also get a matching ``RetryInfo``.
            retry_after_ms: value of the ``retry-after-ms`` header.
            body_kind: ``"rate_limit"`` or ``"insufficient_quota"`` (a quota that will
                not recover, which clients must not retry).
            should_retry: adds ``x-should-retry: true/false``.
            headers: extra response headers.
        """
        if body_kind not in _BODY_KINDS:
            raise ConfigurationError(f"body_kind must be one of {_BODY_KINDS}, got {body_kind!r}")
        hdrs = _headers(headers, should_retry, retry_after, retry_after_ms)
        return cls(STATUS, 429, body_kind, hdrs)

    @classmethod
    def billing(cls, *, status: int | None = None, should_retry: bool | None = None) -> Fault:
        """Out of credit. By default the provider's usual answer: Anthropic 402
        ``billing_error``, OpenAI 429 ``insufficient_quota``, Gemini 429
        ``RESOURCE_EXHAUSTED``; ``status`` forces one code for all."""
        return cls(STATUS, _status(status, True), BILLING, _headers(None, should_retry))

    @classmethod
    def server_error(cls, status: int = 500, *, retry_after: float | str | None = None,
                     should_retry: bool | None = None) -> Fault:
        """A 5xx (default 500) in the provider's shape."""
        return cls(STATUS, _status(status), SERVER, _headers(None, should_retry, retry_after))

    @classmethod
    def overloaded(cls, *, status: int | None = None, retry_after: float | str | None = None,
                   should_retry: bool | None = None) -> Fault:
        """The provider's "overloaded": Anthropic 529 ``overloaded_error``, OpenAI 503,
        Gemini 503 ``UNAVAILABLE``; ``status`` forces one code for all."""
        return cls(STATUS, _status(status, True), OVERLOADED,
                   _headers(None, should_retry, retry_after))

    @classmethod
    def unauthorized(cls, *, should_retry: bool | None = None) -> Fault:
        """The key was refused, as each provider says it: 401 (Anthropic, OpenAI), or
        Gemini's 400 ``INVALID_ARGUMENT`` with ``ErrorInfo.reason = API_KEY_INVALID``."""
        return cls(STATUS, None, UNAUTHORIZED, _headers(None, should_retry))

    @classmethod
    def request_too_large(cls) -> Fault:
        """The request is too big: Anthropic and OpenAI 413 (``request_too_large``),
        Gemini 400 ``INVALID_ARGUMENT``."""
        return cls(STATUS, None, TOO_LARGE)

    @classmethod
    def status(cls, code: int, headers: Mapping[str, str] | None = None, body: Any = None, *,
               should_retry: bool | None = None) -> Fault:
        """Any status. ``body``: None for the provider's error shape, a dict or list sent
        as JSON, or str/bytes sent as is (``text/plain`` unless ``headers`` set a
        Content-Type)."""
        if body is not None and not isinstance(body, (dict, list, str, bytes)):
            raise ConfigurationError("body must be None, a dict, a list, str or bytes")
        return cls(STATUS, _status(code), GENERIC, _headers(headers, should_retry), body)

    @classmethod
    def hang(cls, seconds: float | None = None) -> Fault:
        """Hold the request open without answering, for ``seconds`` or (None) until the
        simulator closes, then close the connection with no reply."""
        return cls(HANG, seconds=checked(seconds, "seconds", NUMBER, none=True))

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending anything."""
        return cls(DROP)

    @classmethod
    def malformed(cls) -> Fault:
        """200 whose body is cut-off JSON with a matching Content-Length."""
        return cls(MALFORMED, 200)

    @classmethod
    def truncated(cls) -> Fault:
        """200 announcing the full Content-Length, sending half the body, then closing."""
        return cls(TRUNCATED, 200)

    @classmethod
    def slow_drip(cls, bytes_per_second: float) -> Fault:
        """200 whose body trickles out at ``bytes_per_second``."""
        rate = checked(bytes_per_second, "bytes_per_second", NUMBER, above=True)
        return cls(SLOW_DRIP, 200, bytes_per_second=rate)

    @classmethod
    def empty_reply(cls) -> Fault:
        """200 with nothing in it: no content blocks, no choices, no candidates."""
        return cls(EMPTY_REPLY, 200)
