"""OpenAI Chat Completions (``POST {base}/chat/completions``) and the servers that copy it."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from .._schemas import openai_strict, self_contained
from ._base import Adapter, OutputSpec, WireRequest
from ._common import (JSON_HINT, Image, Tokens, Turns, cache_prefix, fail, finish_text,
                      mentions_json, system_text, text_of, tool_name)

__all__ = ["OpenAIAdapter", "OpenAICompatibleAdapter"]


class OpenAIAdapter(Adapter):
    """OpenAI models through Chat Completions.

    The token limit is sent as ``max_completion_tokens``. Which sampling settings go out
    is decided by the model-family table (``models/_families.py``): ``top_k`` is not an
    OpenAI setting, and reasoning models (o-series, GPT-5 family) refuse ``temperature``
    and ``top_p``.
    """

    name = "openai"
    key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    key_header = ("Authorization", "Bearer ")
    option_fields: ClassVar[dict[str, str]] = {
        "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop": "stop",
        "seed": "seed", "max_tokens": "max_completion_tokens"}
    # prompt_tokens includes the cached ones; OpenAI bills no separate cache write.
    tokens = Tokens("usage", ("prompt_tokens",), ("completion_tokens",), ("total_tokens",),
                    read=("prompt_tokens_details.cached_tokens",))
    #: OpenAI itself, not a server that copies it (see the subclass)
    official: ClassVar[bool] = True

    def _request(self, model: str, turns: Turns, output: OutputSpec,
                 options: dict[str, Any]) -> WireRequest:
        chat = [_message(role, parts, self.name) for role, parts in turns]
        if output.type == "json" and not mentions_json(turns):
            chat.insert(0, {"role": "system", "content": JSON_HINT})
        body: dict[str, Any] = {"model": model, "messages": chat}
        body.update(self._settings(model, options))
        prefix = cache_prefix(turns) if self.official else None
        if prefix is not None:
            # Requests sharing a static prefix share a key, so OpenAI routes them to the
            # same cache (it caches prefixes of 1,024+ tokens by itself).
            data = f"{model}\x00{prefix}".encode("utf-8", "surrogatepass")  # any str
            body["prompt_cache_key"] = f"yait-{hashlib.sha256(data).hexdigest()[:32]}"
        if output.type == "json":
            body["response_format"] = {"type": "json_object"}
        elif output.type == "json_schema":
            # OpenAI's strict mode takes a subset of JSON Schema (closed objects, every
            # field required); local servers compile the whole schema into a grammar.
            strict = output.strict and self.official
            schema = openai_strict(output.schema) if strict else self_contained(
                output.schema, self.name)
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": tool_name(output.name), "schema": schema, "strict": output.strict}}
        if not self.official:
            body["stream"] = False  # some servers default to streaming
        return WireRequest("/chat/completions", body)

    def _parse(self, data: dict[str, Any], output: OutputSpec) -> tuple[Any, Any]:
        """The first choice's text or JSON."""
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            msg, _ = self.error_details(data)
            raise fail(self.name, "the reply has no choices" + (f": {msg}" if msg else ""),
                       "no_choices")
        finish = choices[0].get("finish_reason")
        message = choices[0].get("message")
        message = message if isinstance(message, dict) else {}
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal.strip():
            raise fail(self.name, f"the model refused to answer: {refusal[:200]}", "refusal")
        if finish == "content_filter":
            raise fail(self.name, "the reply was blocked by the content filter", "safety")
        text = text_of(message.get("content"))
        return finish_text(self.name, text, output, cut_off=finish == "length"), finish


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Local or self-hosted servers that speak Chat Completions: Ollama, vLLM, the
    llama.cpp server, LM Studio.

    The key is optional and never read from ``OPENAI_API_KEY`` (a real OpenAI key must not
    leak to another server); the Model supplies the base URL. ``max_tokens`` and ``top_k``
    are sent as is, with no OpenAI model-name quirks; no ``prompt_cache_key``; the schema
    as written; ``stream`` pinned off.
    """

    name = "openai-compatible"
    key_env = ()
    default_base_url = ""
    key_required = False
    option_fields = {**OpenAIAdapter.option_fields, "max_tokens": "max_tokens"}
    official = False


def _message(role: str, parts: list[str | Image], provider: str) -> dict[str, Any]:
    if len(parts) == 1 and isinstance(parts[0], str):
        return {"role": role, "content": parts[0]}
    if role == "system":
        system_text(parts, provider)  # refuses images with a clear message
    content = [
        {"type": "text", "text": p} if isinstance(p, str)
        else {"type": "image_url", "image_url": {
            "url": p.url if p.kind == "url" else f"data:{p.mime_type};base64,{p.data}"}}
        for p in parts
    ]
    return {"role": role, "content": content}
