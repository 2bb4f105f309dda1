"""Reading Google's structured error details (``google.rpc.*`` in ``error.details``).

Gemini says what went wrong in these details, not in its prose: a per-minute rate limit
and an exhausted free tier share the message "You exceeded your current quota, please
check your plan and billing details", while the ``QuotaFailure`` names the quota window
and ``ErrorInfo.reason`` names a bad key or a billing state.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

__all__ = ["category", "details_of", "retry_delay"]

_TYPE = "type.googleapis.com/google.rpc."
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")
# ErrorInfo reasons that mean the key or credentials, not the request, are wrong.
_AUTH_REASONS = frozenset({
    "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED",
    "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED",
    "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED", "ACCESS_TOKEN_EXPIRED",
    "ACCESS_TOKEN_TYPE_UNSUPPORTED", "CREDENTIALS_MISSING", "SERVICE_DISABLED",
})
# ErrorInfo reasons and phrases that mean the account cannot pay: a human must act.
_BILLING_REASON = re.compile(r"BILLING|PREPAY", re.IGNORECASE)
_BILLING_TEXT = re.compile(
    r"prepay(?:ment)? credits? (?:are |is )?depleted|billing (?:is )?(?:not enabled|disabled)"
    r"|billing account", re.IGNORECASE,
)
_PER_DAY = re.compile(r"per[_ -]?day|daily", re.IGNORECASE)


def details_of(data: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the error object, its details list) from a Gemini error body; empty when absent.
    Some Google front ends wrap the error body in a one-element list."""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return {}, []
    details = err.get("details")
    items = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    return err, items


def _of_type(details: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in details if d.get("@type") == _TYPE + name]


def _violations(details: list[dict[str, Any]]) -> list[str]:
    """Each QuotaFailure violation as one searchable string (id, metric, description)."""
    out = []
    for failure in _of_type(details, "QuotaFailure"):
        for v in failure.get("violations") or []:
            if isinstance(v, dict):
                out.append(" ".join(str(v.get(k, "")) for k in
                                    ("quotaId", "quotaMetric", "subject", "description")))
    return out


def category(status: int, data: Any) -> str | None:
    """``"auth"``, ``"billing"`` or ``"rate_limit"`` from the details, else None."""
    err, details = details_of(data)
    if not err:
        return None
    reasons = [str(d.get("reason", "")) for d in _of_type(details, "ErrorInfo")]
    if any(r in _AUTH_REASONS for r in reasons):
        return "auth"
    message = str(err.get("message", ""))
    if any(_BILLING_REASON.search(r) for r in reasons) or _BILLING_TEXT.search(message):
        return "billing"
    if status == 429 or err.get("status") == "RESOURCE_EXHAUSTED":
        # A quota with a window (per minute, per day, tokens or requests) refills by
        # itself: a rate limit, whatever the message says about billing.
        return "rate_limit"
    return None


def retry_delay(data: Any, now: _dt.datetime | None = None) -> float | None:
    """Seconds to wait: ``RetryInfo.retryDelay``, else for a per-day quota the time until
    it resets (midnight Pacific time), which is normally beyond any retry cap and so
    fails fast instead of retrying a quota that is gone for the day."""
    _, details = details_of(data)
    for item in _of_type(details, "RetryInfo"):
        delay = seconds(item.get("retryDelay"))
        if delay is not None:
            return delay
    if any(_PER_DAY.search(v) for v in _violations(details)):
        return _until_pacific_midnight(now)
    return None


def seconds(value: Any) -> float | None:
    """A protobuf Duration as JSON ("45.837906927s") or as {seconds, nanos}."""
    if isinstance(value, str):
        m = _DURATION.match(value)
        return float(m.group(1)) if m else None
    if isinstance(value, dict):
        secs, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            total = float(secs) + float(nanos) / 1e9
        except (TypeError, ValueError):
            return None
        return total if total >= 0 else None
    return None


def _until_pacific_midnight(now: _dt.datetime | None) -> float:
    try:
        from zoneinfo import ZoneInfo

        zone: _dt.tzinfo = ZoneInfo("America/Los_Angeles")
    except Exception:  # no tz database on this machine: standard time is close enough
        zone = _dt.timezone(_dt.timedelta(hours=-8))
    local = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(zone)
    midnight = (local + _dt.timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
    return max(0.0, (midnight - local).total_seconds())
