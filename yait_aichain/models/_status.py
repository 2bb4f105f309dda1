"""From an HTTP error response to the right exception, and the server's retry hints.

Pure functions: they read a status, headers and a body and never touch the network.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from ..errors import (
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
)

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


def sanitise(text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """A short single-line excerpt with anything key-like masked."""
    text = _SECRETISH.sub(lambda m: (m.group(2) or "") + "***" if m.group(2) else "***", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` (preferred) or
    ``Retry-After`` (seconds or an HTTP date). None for absent, negative, infinite or
    unparsable values: the caller then falls back to its own backoff."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        value = _finite_float(ms)
        if value is not None and value >= 0:
            return value / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    value = _finite_float(raw)
    if value is not None:
        return value if value >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return delay if delay >= 0 else None


def _finite_float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def decode_body(content: bytes) -> tuple[Any, str]:
    """The body as JSON when it is JSON (else None), and as text."""
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text), text
    except ValueError:
        return None, text


def error_for_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    provider: str,
    model: str,
    error_details: Any = None,
    attempts: int = 1,
) -> APIError:
    """The exception for a non-2xx response.

    ``error_details`` is the adapter's ``error_details(data)``; it yields the provider's
    message and a retry hint from the body (Gemini's RetryInfo).
    """
    data, text = decode_body(content)
    message, body_hint = (None, None)
    if error_details is not None and data is not None:
        message, body_hint = error_details(data)
    if not message:
        ctype = headers.get("content-type", "")
        message = f"{_reason(status)} (non-JSON {ctype or 'body'})" if data is None else _reason(status)
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = body_hint
    cls = _class_for(status, text)
    err = cls(
        sanitise(message, 300),
        status=status,
        provider=provider,
        model=model,
        request_id=request_id(headers),
        retry_after=retry_after,
        body=sanitise(text),
        attempts=attempts,
    )
    # The SDKs' convention: the server may overrule our retry decision either way.
    should = headers.get("x-should-retry", "").strip().lower()
    if should in ("true", "false"):
        err._should_retry = should == "true"
    return err


def _class_for(status: int, text: str) -> type[APIError]:
    # Billing first: OpenAI reports an empty wallet as a 429 and Anthropic as a 400, and
    # neither may be retried.
    if status == 402 or (status in (400, 403, 429) and _BILLING.search(text)):
        return InsufficientCreditsError
    if status == 429:
        return RateLimitError
    if status in (401, 403):
        return AuthenticationError
    if status == 413:
        return RequestTooLargeError
    if status in (400, 422):
        return InvalidRequestError
    if status == 404:
        return NotFoundError
    if status >= 500:
        return ServerError
    return APIError


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else f"HTTP {status}"
