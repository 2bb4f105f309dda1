"""Error replies in each provider's real shape: status, body, details.

What real services send (and the official SDKs parse): Anthropic ``{"type": "error",
"error": {"type", "message"}, "request_id"}``; OpenAI ``{"error": {"message", "type",
"param", "code"}}``; Gemini ``{"error": {"code", "message", "status", "details"}}`` with
``google.rpc`` details: a rate limit names its quota (``QuotaFailure``) and the wait
(``RetryInfo``), a bad key is 400 ``INVALID_ARGUMENT`` with ``reason = API_KEY_INVALID``.
"""

from __future__ import annotations

import math
from typing import Any

from . import _faults as F
from ._limits import Decision, seconds_text
from ._wire import ANTHROPIC, GEMINI, OPENAI

__all__ = ["Refused", "error_body", "fault_status", "limit_exceeded", "retry_after"]

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    402: "billing_error", 403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                    504: "timeout_error", 529: "overloaded_error"}
_GEMINI_STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                    404: "NOT_FOUND", 409: "ABORTED", 413: "INVALID_ARGUMENT",
                    429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
                    501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_RPC = "type.googleapis.com/google.rpc."
#: Gemini's message for every quota, rate limits included.
GEMINI_QUOTA = ("You exceeded your current quota, please check your plan and billing "
                "details. For more information on this error, head to: "
                "https://ai.google.dev/gemini-api/docs/rate-limits.")
_MESSAGES = {
    F.RATE_LIMIT: {ANTHROPIC: "This request would exceed the rate limit for your "
                   "organization. Please try again later.",
                   OPENAI: "Rate limit reached. Please try again later.",
                   GEMINI: GEMINI_QUOTA},
    F.BILLING: {ANTHROPIC: "Your credit balance is too low to access the Anthropic API.",
                OPENAI: "You exceeded your current quota, please check your plan and billing "
                        "details.",
                GEMINI: "Your prepayment credits are depleted. Please go to AI Studio to "
                        "manage your project and billing."},
    F.SERVER: {ANTHROPIC: "Internal server error", OPENAI: "The server had an error while "
               "processing your request.", GEMINI: "Internal error encountered."},
    F.OVERLOADED: {ANTHROPIC: "Overloaded", OPENAI: "The server is overloaded or not ready "
                   "yet.", GEMINI: "The model is overloaded. Please try again later."},
    F.UNAUTHORIZED: {ANTHROPIC: "invalid x-api-key", OPENAI: "Incorrect API key provided.",
                     GEMINI: "API key not valid. Please pass a valid API key."},
    F.TOO_LARGE: {ANTHROPIC: "Request exceeds the maximum allowed number of bytes.",
                  OPENAI: "Request too large.",
                  GEMINI: "Request payload size exceeds the limit: 20971520 bytes."},
}
_MESSAGES[F.INSUFFICIENT_QUOTA] = _MESSAGES[F.BILLING]
# The status each category answers with, per provider, unless the fault fixes one.
_STATUS = {
    F.BILLING: {ANTHROPIC: 402, OPENAI: 429, GEMINI: 429},
    F.OVERLOADED: {ANTHROPIC: 529, OPENAI: 503, GEMINI: 503},
    F.UNAUTHORIZED: {ANTHROPIC: 401, OPENAI: 401, GEMINI: 400},
    F.TOO_LARGE: {ANTHROPIC: 413, OPENAI: 413, GEMINI: 400},
}
# Gemini's per-minute quotas: (quotaId, quotaMetric) per limit kind.
_GEMINI_QUOTAS = {
    "requests": ("GenerateRequestsPerMinutePerProjectPerModel", "generate_content_requests"),
    "tokens": ("GenerateContentInputTokensPerModelPerMinute",
               "generate_content_input_token_count"),
}
_OPENAI_UNITS = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}


class Refused(Exception):
    """``Refused(status, message=None, category=GENERIC, headers=())``: the request is
    answered with this error in its provider's shape (``Handler.send_problem``)."""


def fault_status(provider: str, fault: F.Fault) -> int:
    if fault.code is not None:
        return fault.code
    return _STATUS.get(fault.category, {}).get(provider, 500)


def _gemini_rate_details(retry_after: float | None, model: str, exceeded: str,
                         limit: int | None) -> list[dict[str, Any]]:
    quota_id, metric = _GEMINI_QUOTAS[exceeded]
    violation: dict[str, Any] = {
        "quotaMetric": f"generativelanguage.googleapis.com/{metric}", "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model or "gemini"}}
    if limit is not None:
        violation["quotaValue"] = str(limit)
    details = [{"@type": _RPC + "QuotaFailure", "violations": [violation]},
               {"@type": _RPC + "Help", "links": [{
                   "description": "Learn more about Gemini API quotas",
                   "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}]
    if retry_after is not None:  # the delay as a protobuf Duration string
        details.append({"@type": _RPC + "RetryInfo", "retryDelay": f"{seconds_text(retry_after)}s"})
    return details


def error_body(provider: str, status: int, category: str = F.GENERIC,
               message: str | None = None, retry_after: float | None = None, model: str = "",
               request_id: str = "", exceeded: str = "requests", limit: int | None = None
               ) -> dict[str, Any]:
    """An error body in the provider's real shape; a rate limit's names the limit
    ``exceeded`` ("requests" or "tokens") and, when configured, its ``limit``."""
    if message is None:
        known = _MESSAGES.get(category, {}).get(provider)
        message = f"{known or f'HTTP {status}.'} (simulated)"
    if provider == ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(status) or ("api_error" if status >= 500
                                                 else "invalid_request_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
        if request_id:
            body["request_id"] = request_id
        return body
    if provider == GEMINI:
        return {"error": _gemini_error(status, category, message, retry_after, model, exceeded,
                                       limit)}
    return {"error": _openai_error(status, category, message, exceeded)}


def _gemini_error(status: int, category: str, message: str, retry_after: float | None,
                  model: str, exceeded: str, limit: int | None) -> dict[str, Any]:
    name = _GEMINI_STATUSES.get(status) or ("INTERNAL" if status >= 500 else "UNKNOWN")
    err: dict[str, Any] = {"code": status, "message": message, "status": name}
    if category == F.RATE_LIMIT and status == 429:
        err["details"] = _gemini_rate_details(retry_after, model, exceeded, limit)
    elif category == F.UNAUTHORIZED:
        err["details"] = [{"@type": _RPC + "ErrorInfo", "reason": "API_KEY_INVALID",
                           "domain": "googleapis.com",
                           "metadata": {"service": "generativelanguage.googleapis.com"}},
                          {"@type": _RPC + "LocalizedMessage", "locale": "en-US",
                           "message": message}]
    return err


def _openai_error(status: int, category: str, message: str, exceeded: str) -> dict[str, Any]:
    code: str | None
    if category == F.RATE_LIMIT:
        kind, code = exceeded, "rate_limit_exceeded"
    elif category in (F.INSUFFICIENT_QUOTA, F.BILLING):
        kind, code = "insufficient_quota", "insufficient_quota"
    elif category == F.UNAUTHORIZED or status == 401:
        kind, code = "invalid_request_error", "invalid_api_key"
    elif status >= 500:
        kind, code = "server_error", None
    else:
        kind, code = "invalid_request_error", "not_found" if status == 404 else None
    return {"message": message, "type": kind, "param": None, "code": code}


def retry_after(headers: F.Headers) -> float | None:
    """The seconds a Retry-After header says, if it says a plain non-negative number (one
    a test set by hand may say anything: "-10", "inf", a date)."""
    value = next((v for k, v in headers if k.lower() == "retry-after"), None)
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if 0 <= number < math.inf else None


def limit_exceeded(provider: str, d: Decision, model: str, request_id: str
                   ) -> tuple[dict[str, Any], F.Headers]:
    """The 429 body and headers a provider sends when a configured per-minute limit is
    exceeded (Gemini's hint is the RetryInfo in the body, the others' a Retry-After)."""
    assert d.exceeded is not None
    limit = d.rpm if d.exceeded == "requests" else d.tpm
    message = GEMINI_QUOTA
    if provider == ANTHROPIC:
        message = (f"This request would exceed the rate limit for your organization of "
                   f"{limit} {'input tokens' if d.exceeded == 'tokens' else 'requests'} per "
                   f"minute. For details, refer to: https://docs.claude.com/en/api/rate-"
                   f"limits. You can see the response headers for current usage. Please "
                   f"reduce the prompt length or the maximum tokens requested, or try again "
                   f"later.")
    elif provider == OPENAI:
        message = (f"Rate limit reached for {model or 'the model'} in organization "
                   f"org-simulator on {_OPENAI_UNITS[d.exceeded]}: Limit {limit}. Please try "
                   f"again in {seconds_text(d.retry_after)}s. Visit https://platform.openai.com/"
                   f"account/rate-limits to learn more.")
    hint = () if provider == GEMINI else (("retry-after", str(max(1, math.ceil(d.retry_after)))),)
    return error_body(provider, 429, F.RATE_LIMIT, message, d.retry_after, model, request_id,
                      d.exceeded, limit), hint
