"""OpenAI Chat Completions (``POST {base}/chat/completions``) and the servers that copy it."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from ..._usage import Usage
from .._families import sampling_options
from .._schemas import openai_strict, self_contained
from ._base import Adapter, OutputSpec, Parsed, WireRequest
from ._common import (
    JSON_HINT,
    Image,
    cache_prefix,
    count,
    fail,
    finish_text,
    mentions_json,
    normalise,
    system_text,
    text_of,
    tool_name,
)

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
    key_required = True

    #: body field that carries max_tokens
    token_limit_field: ClassVar[str] = "max_completion_tokens"
    #: whether a static prompt prefix sends a prompt_cache_key hint
    sends_cache_key: ClassVar[bool] = True

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """A Bearer token, or nothing when there is no key."""
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def build_request(
        self,
        model: str,
        messages: list[dict[str, Any]],
        output: OutputSpec,
        options: dict[str, Any],
    ) -> WireRequest:
        """The Chat Completions request for one generation."""
        turns = normalise(messages, self.name)
        chat = [_message(role, parts, self.name) for role, parts in turns]
        if output.type == "json" and not mentions_json(turns):
            chat.insert(0, {"role": "system", "content": JSON_HINT})
        body: dict[str, Any] = {"model": model, "messages": chat}
        body.update(self._settings(model, options))
        prefix = cache_prefix(turns) if self.sends_cache_key else None
        if prefix is not None:
            # Requests sharing a static prefix share a key, so OpenAI routes them to the
            # same cache (it caches prefixes of 1,024+ tokens by itself).
            data = f"{model}\x00{prefix}".encode("utf-8", "surrogatepass")  # any str
            digest = hashlib.sha256(data).hexdigest()[:32]
            body["prompt_cache_key"] = f"yait-{digest}"
        if output.type == "json":
            body["response_format"] = {"type": "json_object"}
        elif output.type == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": tool_name(output.name),
                    "schema": self._schema(output),
                    "strict": output.strict,
                },
            }
        return WireRequest("/chat/completions", body)

    def _schema(self, output: OutputSpec) -> dict[str, Any]:
        # Strict mode takes a subset of JSON Schema (closed objects, all fields required).
        if output.strict:
            return openai_strict(output.schema)
        return self_contained(output.schema, self.name)

    def _settings(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        names = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
                 "stop": "stop", "seed": "seed", "max_tokens": self.token_limit_field}
        allowed = sampling_options(self.name, model, options)
        return {names[k]: v for k, v in allowed.items() if k in names and v is not None}

    def parse_response(self, data: Any, output: OutputSpec) -> Parsed:
        """Read a Chat Completions response: the first choice's text or JSON."""
        if not isinstance(data, dict):
            raise fail(self.name, f"the body is not a JSON object ({type(data).__name__})",
                       "invalid")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            msg, _ = self.error_details(data)
            raise fail(self.name, "the reply has no choices" + (f": {msg}" if msg else ""),
                       "no_choices")
        choice = choices[0]
        raw_message = choice.get("message")
        message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
        finish = choice.get("finish_reason")
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal.strip():
            raise fail(self.name, f"the model refused to answer: {refusal[:200]}", "refusal")
        if finish == "content_filter":
            raise fail(self.name, "the reply was blocked by the content filter", "safety")
        text = text_of(message.get("content"))
        out = finish_text(self.name, text, output, cut_off=finish == "length")
        return Parsed(out, _usage(data.get("usage")), finish if isinstance(finish, str) else None)


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Local or self-hosted servers that speak Chat Completions: Ollama, vLLM, the
    llama.cpp server, LM Studio.

    The key is optional and never read from ``OPENAI_API_KEY`` (a real OpenAI key must not
    leak to another server); the Model supplies the base URL. ``max_tokens`` and ``top_k``
    are sent as is, with no OpenAI model-name quirks.
    """

    name = "openai-compatible"
    key_env: ClassVar[tuple[str, ...]] = ()
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = ""
    key_required = False
    token_limit_field = "max_tokens"
    sends_cache_key = False

    def build_request(
        self,
        model: str,
        messages: list[dict[str, Any]],
        output: OutputSpec,
        options: dict[str, Any],
    ) -> WireRequest:
        """As for OpenAI, with ``stream`` pinned off: some servers default to streaming."""
        request = super().build_request(model, messages, output, options)
        request.body["stream"] = False
        return request

    def _schema(self, output: OutputSpec) -> dict[str, Any]:
        # Local servers compile the whole schema into a grammar: send it as written.
        return self_contained(output.schema, self.name)


def _message(role: str, parts: list[str | Image], provider: str) -> dict[str, Any]:
    if len(parts) == 1 and isinstance(parts[0], str):
        return {"role": role, "content": parts[0]}
    if role == "system":
        system_text(parts, provider)  # refuses images with a clear message
    content = [
        {"type": "text", "text": p} if isinstance(p, str)
        else {"type": "image_url", "image_url": {"url": p.data_url()}}
        for p in parts
    ]
    return {"role": role, "content": content}


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    inp = count(raw.get("prompt_tokens"))
    out = count(raw.get("completion_tokens"))
    # prompt_tokens includes the cached ones; OpenAI bills no separate cache write.
    details = raw.get("prompt_tokens_details")
    read = count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(inp, out, count(raw.get("total_tokens")) or inp + out,
                 cache_read_tokens=min(read, inp))
