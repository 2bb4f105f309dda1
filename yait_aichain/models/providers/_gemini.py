"""Google Gemini ``generateContent`` (``POST /v1beta/models/{model}:generateContent``)."""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote, urlsplit

from ..._usage import Usage
from .._families import sampling_options
from .._schemas import gemini_schema
from . import _google_rpc
from ._base import Adapter, OutputSpec, Parsed, WireRequest
from ._common import Image, count, fail, finish_text, normalise, split_system

__all__ = ["GeminiAdapter"]

# Finish reasons that mean the answer was withheld, not merely short.
# (google-genai 3.6.1's FinishReason; tests/test_sdk_responses.py walks every value.)
_BLOCKED = frozenset({
    "SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})


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
    key_required = True

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """``x-goog-api-key``, or nothing when there is no key."""
        return {"x-goog-api-key": api_key} if api_key else {}

    def build_request(
        self,
        model: str,
        messages: list[dict[str, Any]],
        output: OutputSpec,
        options: dict[str, Any],
    ) -> WireRequest:
        """The generateContent request for one generation."""
        system, turns = split_system(normalise(messages, self.name), self.name)
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if role == "assistant" else "user",
                 "parts": [_part(p) for p in parts]}
                for role, parts in turns
            ]
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config: dict[str, Any] = {}
        options = sampling_options(self.name, model, options)
        for ours, theirs in (("temperature", "temperature"), ("max_tokens", "maxOutputTokens"),
                             ("top_p", "topP"), ("top_k", "topK"), ("stop", "stopSequences"),
                             ("seed", "seed")):
            if options.get(ours) is not None:
                config[theirs] = options[ours]
        if output.type != "text":
            config["responseMimeType"] = "application/json"
        if output.type == "json_schema":
            # responseSchema (the OpenAPI subset, cleaned below) rather than
            # responseJsonSchema: every Gemini model accepts it, while the full JSON Schema
            # field is newer and refused by older models and some gateways.
            config["responseSchema"] = gemini_schema(output.schema)
        if config:
            body["generationConfig"] = config
        name = model[len("models/"):] if model.startswith("models/") else model
        # Quote the name so it cannot reshape the path (``../``, ``?``).
        return WireRequest(f"/v1beta/models/{quote(name, safe='-._~')}:generateContent", body)

    def parse_response(self, data: Any, output: OutputSpec) -> Parsed:
        """Read a generateContent response: the first candidate's text or JSON."""
        if not isinstance(data, dict):
            raise fail(self.name, f"the body is not a JSON object ({type(data).__name__})",
                       "invalid")
        candidates = data.get("candidates")
        if not (isinstance(candidates, list) and candidates and isinstance(candidates[0], dict)):
            feedback = data.get("promptFeedback")
            block = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if block:
                raise fail(self.name, f"the prompt was blocked ({block})", "safety")
            raise fail(self.name, "the reply has no candidates", "no_choices")
        cand = candidates[0]
        finish = cand.get("finishReason")
        if finish in _BLOCKED:
            raise fail(self.name, f"the reply was withheld ({finish})", "safety")
        raw_content = cand.get("content")
        content: dict[str, Any] = raw_content if isinstance(raw_content, dict) else {}
        text = "".join(
            p["text"] for p in content.get("parts") or []
            if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
        )
        out = finish_text(self.name, text, output, cut_off=finish == "MAX_TOKENS")
        usage = _usage(data.get("usageMetadata"))
        return Parsed(out, usage, finish if isinstance(finish, str) else None)

    def error_details(self, data: Any) -> tuple[str | None, float | None]:
        """The error message, and the delay its details ask for: ``RetryInfo.retryDelay``,
        or the time until a per-day quota resets."""
        err, _ = _google_rpc.details_of(data)
        message, _ = super().error_details({"error": err} if err else data)
        return message, _google_rpc.retry_delay(data)

    def error_category(self, status: int, data: Any) -> str | None:
        """Classified by ``google.rpc`` details (QuotaFailure, ErrorInfo), not by prose."""
        return _google_rpc.category(status, data)


def _part(part: str | Image) -> dict[str, Any]:
    if isinstance(part, str):
        return {"text": part}
    if part.kind == "base64":
        return {"inlineData": {"mimeType": part.mime_type, "data": part.data}}
    mime = part.mime_type or mimetypes.guess_type(urlsplit(part.url).path)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    inp = count(raw.get("promptTokenCount"))
    # Thinking tokens are billed as output, though reported apart from the candidates.
    out = count(raw.get("candidatesTokenCount")) + count(raw.get("thoughtsTokenCount"))
    # promptTokenCount includes the tokens served from a cached context.
    read = min(count(raw.get("cachedContentTokenCount")), inp)
    return Usage(inp, out, count(raw.get("totalTokenCount")) or inp + out,
                 cache_read_tokens=read)

