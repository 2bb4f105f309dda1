"""Anthropic Messages API (``POST /v1/messages``)."""

from __future__ import annotations

from typing import Any

from ..._usage import Usage
from .._families import sampling_options
from .._schemas import anthropic_native, anthropic_tool, claude_has_native_output
from ._base import Adapter, OutputSpec, Parsed, WireRequest
from ._common import (
    JSON_HINT,
    CacheMark,
    Image,
    count,
    fail,
    finish_text,
    mentions_json,
    normalise,
    split_system,
    tool_name,
)

__all__ = ["AnthropicAdapter"]

#: Sent when the caller gives no max_tokens; the API requires one.
DEFAULT_MAX_TOKENS = 4096
# The version the current API reference documents and recommends, and the one the
# official SDK (anthropic 2.x) sends. It removed temperature/top_p/top_k, so the family
# table leaves those out; 2023-06-01 is still accepted but is the legacy version.
API_VERSION = "2026-10-21"
# Stop reasons that mean the answer was cut off: the output limit, or the context window
# filling up before it.
_CUT_OFF = frozenset({"max_tokens", "model_context_window_exceeded"})
# Tool inputs must be JSON objects, so any other schema is wrapped under this key.
_WRAP_KEY = "value"


class AnthropicAdapter(Adapter):
    """Claude models through the Messages API.

    System messages become the top-level ``system`` string. ``json_schema`` output uses
    Claude's structured outputs (``output_config.format``) on the models that have them
    (Claude 4.5 and later) and one forced tool whose input is the answer on the others.
    ``seed`` has no Anthropic equivalent and is not sent.
    """

    name = "anthropic"
    key_env = ("ANTHROPIC_API_KEY",)
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    key_required = True

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """``x-api-key``, or nothing when there is no key."""
        return {"x-api-key": api_key} if api_key else {}

    def build_request(
        self,
        model: str,
        messages: list[dict[str, Any]],
        output: OutputSpec,
        options: dict[str, Any],
    ) -> WireRequest:
        """The Messages request for one generation."""
        normalised = normalise(messages, self.name)
        # A static prefix that ends in the system text caches the whole system block.
        cache_system = any(isinstance(p, CacheMark) for role, parts in normalised
                           if role == "system" for p in parts)
        system, turns = split_system(normalised, self.name)
        if output.type == "json" and not mentions_json(turns) and JSON_HINT not in system:
            system = f"{system}\n\n{JSON_HINT}" if system else JSON_HINT
        max_tokens = options.get("max_tokens")
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            "messages": [
                {"role": role, "content": [_block(p) for p in parts]} for role, parts in turns
            ],
        }
        if system:
            body["system"] = ([{"type": "text", "text": system,
                                "cache_control": dict(_EPHEMERAL)}]
                              if cache_system else system)
        allowed = sampling_options(self.name, model, options)
        for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"),
                             ("top_k", "top_k"), ("stop", "stop_sequences")):
            if allowed.get(ours) is not None:
                body[theirs] = allowed[ours]
        if output.type == "json_schema" and claude_has_native_output(model):
            body["output_config"] = {"format": {
                "type": "json_schema", "schema": anthropic_native(_wrapped(output.schema or {})),
            }}
        elif output.type == "json_schema":
            name = tool_name(output.name)
            body["tools"] = [{
                "name": name,
                "description": "Return the answer by calling this tool with it as the input.",
                "input_schema": anthropic_tool(_wrapped(output.schema or {})),
            }]
            body["tool_choice"] = {"type": "tool", "name": name}
        return WireRequest("/v1/messages", body, {"anthropic-version": API_VERSION})

    def parse_response(self, data: Any, output: OutputSpec) -> Parsed:
        """Read a Messages response: text, tolerant JSON, or the forced tool's input."""
        if not isinstance(data, dict):
            raise fail(self.name, f"the body is not a JSON object ({type(data).__name__})",
                       "invalid")
        if data.get("type") == "error":
            msg, _ = self.error_details(data)
            raise fail(self.name, f"the body is an error: {msg or 'no message'}", "invalid")
        stop = data.get("stop_reason")
        blocks = [b for b in data.get("content") or [] if isinstance(b, dict)]
        if stop == "refusal":
            raise fail(self.name, "the model refused to answer", "refusal")
        cut_off = stop in _CUT_OFF
        if output.type == "json_schema" and _tool_form(data, blocks):
            value = _tool_input(blocks, tool_name(output.name))
            if value is _MISSING:
                if cut_off:
                    raise fail(self.name, "the token limit was reached before the tool "
                               "output; raise max_tokens", "truncated")
                raise fail(self.name, "the reply has no tool output for the schema",
                           "no_tool_output")
            out = _unwrapped(output.schema or {}, value)
        else:
            text = "".join(
                b["text"] for b in blocks
                if b.get("type") == "text" and isinstance(b.get("text"), str)
            )
            out = finish_text(self.name, text, output, cut_off)
            if output.type == "json_schema":
                out = _unwrapped(output.schema or {}, out)
        return Parsed(out, _usage(data.get("usage")), stop if isinstance(stop, str) else None)


_MISSING = object()


_EPHEMERAL = {"type": "ephemeral"}


def _block(part: str | Image) -> dict[str, Any]:
    if isinstance(part, CacheMark):
        return {"type": "text", "text": str(part), "cache_control": dict(_EPHEMERAL)}
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if part.kind == "url":
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": part.mime_type, "data": part.data},
    }


def _tool_form(data: dict[str, Any], blocks: list[dict[str, Any]]) -> bool:
    """Whether a structured answer was asked for as a forced tool: the reply holds a
    tool_use block, or it comes from a model without output_config (the reply names the
    model it was sent to)."""
    if any(b.get("type") == "tool_use" for b in blocks):
        return True
    model = data.get("model")
    return not (isinstance(model, str) and claude_has_native_output(model))


def _needs_wrap(schema: dict[str, Any]) -> bool:
    return schema.get("type") != "object"


def _wrapped(schema: dict[str, Any]) -> dict[str, Any]:
    """Both forms need an object at the root, so any other schema goes under one key;
    its definitions move up with it, where its ``#/$defs/...`` references point."""
    if not _needs_wrap(schema):
        return schema
    defs: dict[str, Any] = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    inner = {k: v for k, v in schema.items() if k not in defs}
    return {"type": "object", "properties": {_WRAP_KEY: inner}, "required": [_WRAP_KEY],
            "additionalProperties": False, **defs}


def _unwrapped(schema: dict[str, Any], value: Any) -> Any:
    if _needs_wrap(schema) and isinstance(value, dict):
        return value.get(_WRAP_KEY)
    return value


def _tool_input(blocks: list[dict[str, Any]], name: str) -> Any:
    uses = [b for b in blocks if b.get("type") == "tool_use"]
    for block in uses:
        if block.get("name") == name and "input" in block:
            return block["input"]
    # Only one tool is ever offered, so a renamed echo is still our answer.
    for block in uses:
        if "input" in block:
            return block["input"]
    return _MISSING


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    # Cached prompt tokens are reported apart from input_tokens but are still input.
    write = count(raw.get("cache_creation_input_tokens"))
    read = count(raw.get("cache_read_input_tokens"))
    inp = count(raw.get("input_tokens")) + write + read
    out = count(raw.get("output_tokens"))
    return Usage(inp, out, inp + out, cache_read_tokens=read, cache_write_tokens=write)
