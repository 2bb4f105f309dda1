"""Anthropic Messages API (``POST /v1/messages``)."""

from __future__ import annotations

from typing import Any

from .._schemas import anthropic_native, anthropic_tool, claude_has_native_output
from ._base import Adapter, OutputSpec, WireRequest
from ._common import (JSON_HINT, CacheMark, Image, Tokens, Turns, fail, finish_text,
                      mentions_json, split_system, text_of, tool_name)

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
_MISSING = object()


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
    key_header = ("x-api-key", "")
    option_fields = {"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
                     "top_k": "top_k", "stop": "stop_sequences"}
    # Cached prompt tokens are reported apart from input_tokens but are still input.
    tokens = Tokens("usage", ("input_tokens", "cache_creation_input_tokens",
                              "cache_read_input_tokens"), ("output_tokens",),
                    read=("cache_read_input_tokens",), write=("cache_creation_input_tokens",))

    def _request(self, model: str, turns: Turns, output: OutputSpec,
                 options: dict[str, Any]) -> WireRequest:
        # A static prefix that ends in the system text caches the whole system block.
        cache_system = any(isinstance(p, CacheMark) for role, parts in turns
                           if role == "system" for p in parts)
        system, turns = split_system(turns, self.name)
        if output.type == "json" and not mentions_json(turns) and JSON_HINT not in system:
            system = f"{system}\n\n{JSON_HINT}" if system else JSON_HINT
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": DEFAULT_MAX_TOKENS,  # replaced by the caller's below
            "messages": [
                {"role": role, "content": [_block(p) for p in parts]} for role, parts in turns
            ],
        }
        if system:
            body["system"] = [_block(CacheMark(system))] if cache_system else system
        body.update(self._settings(model, options))
        if output.type == "json_schema":
            body.update(_structured(model, output))
        return WireRequest("/v1/messages", body, {"anthropic-version": API_VERSION})

    def _parse(self, data: dict[str, Any], output: OutputSpec) -> tuple[Any, Any]:
        """Text, tolerant JSON, or the forced tool's input."""
        if data.get("type") == "error":
            msg, _ = self.error_details(data)
            raise fail(self.name, f"the body is an error: {msg or 'no message'}", "invalid")
        stop = data.get("stop_reason")
        blocks = [b for b in data.get("content") or [] if isinstance(b, dict)]
        if stop == "refusal":
            raise fail(self.name, "the model refused to answer", "refusal")
        cut_off = stop in _CUT_OFF
        if output.type == "json_schema" and _tool_form(data, blocks):
            out = _tool_input(blocks, tool_name(output.name))
            if out is _MISSING:
                if cut_off:
                    raise fail(self.name, "the token limit was reached before the tool "
                               "output; raise max_tokens", "truncated")
                raise fail(self.name, "the reply has no tool output for the schema",
                           "no_tool_output")
        else:
            text = text_of([b for b in blocks if b.get("type") == "text"])
            out = finish_text(self.name, text, output, cut_off)
        if output.type == "json_schema":
            out = _unwrapped(output.schema or {}, out)
        return out, stop


def _block(part: str | Image) -> dict[str, Any]:
    if isinstance(part, CacheMark):
        return {"type": "text", "text": str(part), "cache_control": {"type": "ephemeral"}}
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if part.kind == "url":
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": part.mime_type, "data": part.data},
    }


def _structured(model: str, output: OutputSpec) -> dict[str, Any]:
    schema = _wrapped(output.schema or {})
    if claude_has_native_output(model):
        return {"output_config": {"format": {"type": "json_schema",
                                             "schema": anthropic_native(schema)}}}
    name = tool_name(output.name)
    return {
        "tools": [{
            "name": name,
            "description": "Return the answer by calling this tool with it as the input.",
            "input_schema": anthropic_tool(schema),
        }],
        "tool_choice": {"type": "tool", "name": name},
    }


def _tool_form(data: dict[str, Any], blocks: list[dict[str, Any]]) -> bool:
    """Whether a structured answer was asked for as a forced tool: the reply holds a
    tool_use block, or it comes from a model without output_config (the reply names the
    model it was sent to)."""
    if any(b.get("type") == "tool_use" for b in blocks):
        return True
    model = data.get("model")
    return not (isinstance(model, str) and claude_has_native_output(model))


def _wrapped(schema: dict[str, Any]) -> dict[str, Any]:
    """Both forms need an object at the root, so any other schema goes under one key;
    its definitions move up with it, where its ``#/$defs/...`` references point."""
    if schema.get("type") == "object":
        return schema
    defs: dict[str, Any] = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    inner = {k: v for k, v in schema.items() if k not in defs}
    return {"type": "object", "properties": {_WRAP_KEY: inner}, "required": [_WRAP_KEY],
            "additionalProperties": False, **defs}


def _unwrapped(schema: dict[str, Any], value: Any) -> Any:
    if schema.get("type") != "object" and isinstance(value, dict):
        return value.get(_WRAP_KEY)
    return value


def _tool_input(blocks: list[dict[str, Any]], name: str) -> Any:
    uses = [b for b in blocks if b.get("type") == "tool_use" and "input" in b]
    # Only one tool is ever offered, so a renamed echo is still our answer.
    named = [b for b in uses if b.get("name") == name]
    return (named or uses)[0]["input"] if uses else _MISSING
