"""Google Gemini ``generateContent`` (``POST /v1beta/models/{model}:generateContent``).

Gemini says what went wrong in the structured error details (``google.rpc.*`` in
``error.details``), not in its prose: a per-minute rate limit and an exhausted free tier
share the message "You exceeded your current quota, please check your plan and billing
details", while the ``QuotaFailure`` names the quota window and ``ErrorInfo.reason`` names
a bad key or a billing state.
"""

from __future__ import annotations

import datetime as _dt
import mimetypes
import re
from typing import Any
from urllib.parse import quote, urlsplit

from .._schemas import gemini_schema
from ._base import Adapter, OutputSpec, WireRequest
from ._common import Image, Tokens, Turns, fail, finish_text, split_system, text_of

__all__ = ["GeminiAdapter"]

# Finish reasons that mean the answer was withheld, not merely short.
# (google-genai 3.6.1's FinishReason; tests/test_sdk_responses.py walks every value.)
_BLOCKED = frozenset({
    "SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})
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


class GeminiAdapter(Adapter):
    """Gemini models through the Generative Language API.

    The key travels only in the ``x-goog-api-key`` header, never in the URL, where proxies
    and logs would keep it. System messages become ``systemInstruction``.
    """

    name = "gemini"
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    base_url_env = "GEMINI_BASE_URL"
    # google-genai reads this one; a shell set up for the SDK works for us too.
    base_url_env_also = ("GOOGLE_GEMINI_BASE_URL",)
    default_base_url = "https://generativelanguage.googleapis.com"
    key_header = ("x-goog-api-key", "")
    option_fields = {"temperature": "temperature", "max_tokens": "maxOutputTokens",
                     "top_p": "topP", "top_k": "topK", "stop": "stopSequences", "seed": "seed"}
    # Thinking tokens are billed as output, though reported apart from the candidates;
    # promptTokenCount includes the tokens served from a cached context.
    tokens = Tokens("usageMetadata", ("promptTokenCount",),
                    ("candidatesTokenCount", "thoughtsTokenCount"), ("totalTokenCount",),
                    read=("cachedContentTokenCount",))

    def _request(self, model: str, turns: Turns, output: OutputSpec,
                 options: dict[str, Any]) -> WireRequest:
        system, turns = split_system(turns, self.name)
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if role == "assistant" else "user",
                 "parts": [_part(p) for p in parts]}
                for role, parts in turns
            ]
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config = self._settings(model, options)
        if output.type != "text":
            config["responseMimeType"] = "application/json"
        if output.type == "json_schema":
            # JSON Schema as google-genai 3.x sends it, not the older OpenAPI-subset
            # responseSchema, which has to inline every reference.
            config["responseJsonSchema"] = gemini_schema(output.schema)
        if config:
            body["generationConfig"] = config
        # Quote the name so it cannot reshape the path (``../``, ``?``).
        name = quote(model.removeprefix("models/"), safe="-._~")
        return WireRequest(f"/v1beta/models/{name}:generateContent", body)

    def _parse(self, data: dict[str, Any], output: OutputSpec) -> tuple[Any, Any]:
        """The first candidate's text or JSON."""
        candidates = data.get("candidates")
        if not (isinstance(candidates, list) and candidates and isinstance(candidates[0], dict)):
            feedback = data.get("promptFeedback")
            block = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if block:
                raise fail(self.name, f"the prompt was blocked ({block})", "safety")
            raise fail(self.name, "the reply has no candidates", "no_choices")
        finish = candidates[0].get("finishReason")
        if finish in _BLOCKED:
            raise fail(self.name, f"the reply was withheld ({finish})", "safety")
        content = candidates[0].get("content")
        parts = (content.get("parts") or []) if isinstance(content, dict) else []
        text = text_of([p for p in parts if isinstance(p, dict) and not p.get("thought")])
        return finish_text(self.name, text, output, cut_off=finish == "MAX_TOKENS"), finish

    def error_details(self, data: Any) -> tuple[str | None, float | None]:
        """The error message, and the delay its details ask for: ``RetryInfo.retryDelay``,
        or the time until a per-day quota resets."""
        err, _ = _details(data)
        message, _ = super().error_details({"error": err} if err else data)
        return message, retry_delay(data)

    def error_category(self, status: int, data: Any) -> str | None:
        """``"auth"``, ``"billing"`` or ``"rate_limit"`` from the ``google.rpc`` details
        (ErrorInfo, QuotaFailure), not from the prose; else None."""
        err, details = _details(data)
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


def _part(part: str | Image) -> dict[str, Any]:
    if isinstance(part, str):
        return {"text": part}
    if part.kind == "base64":
        return {"inlineData": {"mimeType": part.mime_type, "data": part.data}}
    mime = part.mime_type or mimetypes.guess_type(urlsplit(part.url).path)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


def _details(data: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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
    keys = ("quotaId", "quotaMetric", "subject", "description")
    return [" ".join(str(v.get(k, "")) for k in keys)
            for failure in _of_type(details, "QuotaFailure")
            for v in failure.get("violations") or [] if isinstance(v, dict)]


def retry_delay(data: Any, now: _dt.datetime | None = None) -> float | None:
    """Seconds to wait: ``RetryInfo.retryDelay``, else for a per-day quota the time until
    it resets (midnight Pacific time), which is normally beyond any retry cap and so
    fails fast instead of retrying a quota that is gone for the day."""
    _, details = _details(data)
    for item in _of_type(details, "RetryInfo"):
        delay = _seconds(item.get("retryDelay"))
        if delay is not None:
            return delay
    if any(_PER_DAY.search(v) for v in _violations(details)):
        return _until_pacific_midnight(now)
    return None


def _seconds(value: Any) -> float | None:
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
    midnight = _dt.datetime.combine(local.date() + _dt.timedelta(days=1), _dt.time(), zone)
    return max(0.0, (midnight - local).total_seconds())
