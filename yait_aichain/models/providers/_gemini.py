"""Google Gemini ``generateContent`` (``POST /v1beta/models/{model}:generateContent``)."""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote, urlsplit

from ..._usage import Usage
from ...errors import ConfigurationError
from .._families import sampling_options
from . import _google_rpc
from ._base import Adapter, OutputSpec, Parsed, WireRequest
from ._common import Image, count, fail, finish_text, normalise, split_system

__all__ = ["GeminiAdapter"]

# Finish reasons that mean the answer was withheld, not merely short.
_BLOCKED = frozenset(
    {"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"}
)
# The Schema keys Gemini's responseSchema (an OpenAPI 3.0 subset) accepts, besides the
# ones _schema() rewrites; anything else is rejected by the API, so it is dropped.
_SCHEMA_KEYS = frozenset({
    "title", "description", "minItems", "maxItems", "minProperties",
    "maxProperties", "minLength", "maxLength", "pattern", "example", "default",
    "minimum", "maximum",
})
# Gemini refuses other formats (e.g. "email") with a 400, so they are dropped.
_FORMATS = frozenset({"date-time", "enum", "int32", "int64", "float", "double"})
_MAX_SCHEMA_DEPTH = 32


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
            schema = output.schema or {}
            config["responseSchema"] = _schema(schema, _defs(schema), 0)
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


def _defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return defs


def _schema(node: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    """A JSON Schema rewritten into the subset Gemini's ``responseSchema`` accepts.

    ``$ref`` to local definitions is inlined, ``["X", "null"]`` and ``anyOf`` with null
    become ``nullable``, ``const`` becomes a one-value ``enum``, and property order is kept
    through ``propertyOrdering`` (Gemini would sort the keys otherwise).
    """
    if depth > _MAX_SCHEMA_DEPTH:
        raise ConfigurationError("the JSON schema is recursive or too deep for Gemini")
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
        if target is None:
            raise ConfigurationError(f"cannot resolve the schema reference {ref!r} for Gemini")
        return _schema({**target, **{k: v for k, v in node.items() if k != "$ref"}},
                       defs, depth + 1)
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _SCHEMA_KEYS}
    if node.get("format") in _FORMATS:
        out["format"] = node["format"]
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        kind = kinds[0] if len(kinds) == 1 else None
        if len(kinds) > 1:
            out["anyOf"] = [{"type": k.upper()} for k in kinds if isinstance(k, str)]
    if node.get("nullable") is True:
        out["nullable"] = True
    enum = [node["const"]] if "const" in node else node.get("enum")
    # Gemini enums hold strings only; a mixed enum is left to the type alone.
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        out["enum"] = enum
        kind = kind or "string"
    if isinstance(kind, str) and kind != "null":
        out["type"] = kind.upper()
    options = node.get("anyOf", node.get("oneOf"))
    if isinstance(options, list):
        real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(real) < len(options):
            out["nullable"] = True
        cleaned = [_schema(o, defs, depth + 1) for o in real]
        if len(cleaned) == 1:
            out = {**cleaned[0], **out}
        elif cleaned:
            out["anyOf"] = cleaned
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        out = {**_schema(all_of[0], defs, depth + 1), **out}
    props = node.get("properties")
    if isinstance(props, dict):
        out["properties"] = {k: _schema(v, defs, depth + 1) for k, v in props.items()}
        out["propertyOrdering"] = list(props)
        required = [r for r in node.get("required") or [] if r in props]
        if required:
            out["required"] = required
        out.setdefault("type", "OBJECT")
    items = node.get("items")
    if isinstance(items, dict):
        out["items"] = _schema(items, defs, depth + 1)
        out.setdefault("type", "ARRAY")
    return out
