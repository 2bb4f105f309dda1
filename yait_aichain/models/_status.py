"""From an HTTP error response to the right exception, and the server's retry hints.

Pure functions: they read a status, headers and a body and never touch the network.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from .._text import json_loads, printable
from ..errors import (
    APIError, AuthenticationError, InsufficientCreditsError, InvalidRequestError, NotFoundError,
    RateLimitError, RequestTooLargeError, ServerError,
)
from .providers import ADAPTERS

#: How much of an error body an exception keeps (sanitised).
BODY_EXCERPT_CHARS = 500

# Phrases providers use when the account, not the request rate, is the problem. Retrying
# these only burns time: the batch must stop and a human must pay.
_BILLING = re.compile(
    r"insufficient_quota|credit balance|out of credits|billing_hard_limit|billing hard limit"
    r"|payment required|exceeded your current quota|budget exhausted|insufficient credits",
    re.IGNORECASE,
)
# Things that look like secrets, in case an error body echoes one back.
_SECRETISH = re.compile(
    r"(?i)(\b(?:sk|pk|rk|key|AIza)[-_A-Za-z0-9]{16,})|((?:api[_-]?key|token|key)=)[^&\s\"']+"
)
_REQUEST_ID_HEADERS = ("request-id", "x-request-id", "x-goog-request-id", "cf-ray")


def redact(text: str) -> str:
    """``text`` with anything key-like (a key, a query-string secret) masked."""
    return _SECRETISH.sub(lambda m: (m.group(2) or "") + "***", text)


def sanitise(text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """A short single-line excerpt, :func:`redact`-ed and printable (no lone surrogate
    from a JSON escape reaches a log, a record or a report)."""
    text = printable(" ".join(redact(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def request_id(headers: Mapping[str, str]) -> str | None:
    return next(filter(None, map(headers.get, _REQUEST_ID_HEADERS)), None)


# Retry hint headers in the order they are trusted. Milliseconds first (more precise):
# ``retry-after-ms`` (OpenAI, Anthropic, Azure), ``x-ms-retry-after-ms`` (Azure), then the
# same behind a LiteLLM proxy, which passes the provider's headers on with an
# ``llm_provider-`` prefix and sends no ``Retry-After`` of its own.
_PROXY_PREFIXES = ("", "llm_provider-")
_MS_HINTS = tuple(p + h for p in _PROXY_PREFIXES for h in ("retry-after-ms", "x-ms-retry-after-ms"))
_SECONDS_HINTS = tuple(p + "retry-after" for p in _PROXY_PREFIXES)
# On a 429 without a hint, the reset of the exhausted window says when to come back:
# OpenAI's ``x-ratelimit-reset-*`` durations ("1s", "6m0s", "20ms"), also behind LiteLLM.
_RESET_HINTS = tuple((kind, p + "x-ratelimit-") for p in _PROXY_PREFIXES
                     for kind in ("requests", "tokens"))
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# OpenRouter: ``X-RateLimit-Reset`` (when ``X-RateLimit-Remaining`` is 0) is the instant
# the window resets, in epoch ms.
_EPOCH_MS_FLOOR = 1e11


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server (or a proxy in front of it) asks us to wait, from the hint
    headers above in that order, then the reset of an exhausted window. None for absent,
    negative, infinite or unparsable values: the caller then backs off."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    now = time.time() if now is None else now
    for name in _MS_HINTS:
        value = non_negative(lower.get(name))
        if value is not None:
            return value / 1000.0
    for name in _SECONDS_HINTS:
        delay = _seconds_or_date(lower.get(name, ""), now)
        if delay is not None:
            return delay
    return _window_reset(lower, now)


def _seconds_or_date(raw: str, now: float) -> float | None:
    value = non_negative(raw)
    if value is not None:
        return value
    try:  # a negative number is no date either
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    delay = when.timestamp() - now
    return delay if delay >= 0 else None


def _window_reset(lower: Mapping[str, str], now: float) -> float | None:
    for kind, prefix in _RESET_HINTS:
        if lower.get(f"{prefix}remaining-{kind}", "").strip() == "0":
            delay = parse_duration(lower.get(f"{prefix}reset-{kind}", ""))
            if delay is not None:
                return delay
    if lower.get("x-ratelimit-remaining", "").strip() == "0":
        reset = non_negative(lower.get("x-ratelimit-reset"))
        if reset is not None and reset > _EPOCH_MS_FLOOR:
            delay = reset / 1000.0 - now
            return delay if delay >= 0 else None
    return None


def parse_duration(text: str) -> float | None:
    """OpenAI's reset duration ("1s", "6m0s", "1h2m3.5s", "20ms") in seconds, else None."""
    text, pos, total = text.strip(), 0, 0.0
    if not text:
        return None
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and math.isfinite(total) else None


def non_negative(text: str | None) -> float | None:
    """``text`` as a finite number >= 0, else None (absent, negative, infinite, NaN, junk)."""
    try:
        value = float(text or "")  # float() strips whitespace itself
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < math.inf else None


def decode_body(content: bytes) -> tuple[Any, str]:
    """The body as JSON when it is JSON (else None), and as text."""
    text = content.decode("utf-8", errors="replace")
    try:
        return json_loads(text), text
    except ValueError:
        return None, text


def error_for_response(status: int, headers: Mapping[str, str], content: bytes, *,
                       provider: str, model: str, error_details: Any = None) -> APIError:
    """The exception for a non-2xx response from ``provider`` (an ``ADAPTERS`` key).

    ``error_details(data)`` (default: the provider's adapter's) yields the provider's
    message and a retry hint from the body (Gemini's RetryInfo); data is None for a
    body that is not JSON, which the adapters read as (None, None).
    """
    adapter = ADAPTERS[provider]
    data, text = decode_body(content)
    message, body_hint = (error_details or adapter.error_details)(data)
    if not message:
        message = _reason(status)
        if data is None:
            message = f"{message} (non-JSON {headers.get('content-type', '') or 'body'})"
    retry_after = parse_retry_after(headers)
    # The SDKs' convention: the server may overrule our retry decision either way.
    should = headers.get("x-should-retry", "").strip().lower()
    return _class_for(status, text, adapter.error_category(status, data))(
        sanitise(message, 300), status=status, provider=provider, model=model,
        request_id=request_id(headers), body=sanitise(text),
        retry_after=body_hint if retry_after is None else retry_after,
        retryable={"true": True, "false": False}.get(should))


_BY_CATEGORY: dict[str, type[APIError]] = {
    "rate_limit": RateLimitError, "billing": InsufficientCreditsError, "auth": AuthenticationError,
}
_BY_STATUS: dict[int, type[APIError]] = {
    429: RateLimitError, 401: AuthenticationError, 403: AuthenticationError,
    413: RequestTooLargeError, 400: InvalidRequestError, 422: InvalidRequestError,
    404: NotFoundError,
}


def _class_for(status: int, text: str, category: str | None = None) -> type[APIError]:
    # Structured details beat prose: Gemini's per-minute 429 says "check your plan and
    # billing details" while its QuotaFailure says it is a rate limit.
    if category in _BY_CATEGORY:
        return _BY_CATEGORY[category]
    # Billing first: OpenAI reports an empty wallet as a 429 and Anthropic as a 400, and
    # neither may be retried.
    if status == 402 or (status in (400, 403, 429) and _BILLING.search(text)):
        return InsufficientCreditsError
    return _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else f"HTTP {status}"
