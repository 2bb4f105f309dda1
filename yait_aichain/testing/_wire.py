"""The three wire formats: routes, request reading, replies (the default answer too: an
instance of the schema a request sent, valid or scripted invalid; Claude has no JSON mode,
so a request that asks for JSON in its words gets a JSON object).

Pure functions of dicts, so the HTTP handler stays about sockets and timing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .._text import json_loads
from ._schema import example, resolve_local

__all__ = ["ReplyInfo", "summary"]

ANTHROPIC = "anthropic"
OPENAI = "openai"
GEMINI = "gemini"

_ROUTES = {"/v1/messages": ANTHROPIC, "/v1/chat/completions": OPENAI}
# google-genai 3.x posts to /v1 by default; older clients and REST examples use /v1beta.
_GEMINI_ROUTE = re.compile(r"^/(?:v1|v1beta)/models/([^/]+):generateContent$")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # \ud800-\udfff, paired or not
#: anthropic-version values the real API accepts.
ANTHROPIC_VERSIONS = ("2023-06-01", "2026-10-21")
_SAMPLING = ("temperature", "top_p", "top_k")

#: Header that carries the request id, per provider (Gemini sends none).
REQUEST_ID_HEADER = {ANTHROPIC: "request-id", OPENAI: "x-request-id", GEMINI: None}
#: A ``reply`` callable: the value (or Fault) a request is answered with.
Reply = Callable[["ReplyInfo"], Any]

# Long prompts are shortened in the middle so both ends stay recognisable.
_CAP, _HEAD, _TAIL, _ELLIPSIS = 400, 200, 195, " ... "


def summary(text: str) -> str:
    """The default reply: ``"Summary: "`` plus ``text`` with whitespace collapsed,
    capped at 400 characters (first 200 + ``" ... "`` + last 195)."""
    flat = " ".join(text.split())
    if len(flat) > _CAP:
        flat = flat[:_HEAD] + _ELLIPSIS + flat[-_TAIL:]
    return "Summary: " + flat


@dataclass(frozen=True)
class ReplyInfo:
    """What a ``reply`` callable or a ``fail_when`` predicate sees of one request.

    ``output`` is ``"text"``, ``"json"`` (any JSON object), ``"schema"`` (JSON for
    ``schema``) or ``"tool"`` (Anthropic forced tool use: ``tool_name``, its
    ``schema``). ``sequence`` numbers requests from 1 in arrival order.
    """

    provider: str
    model: str
    last_user_text: str
    system_text: str
    body: dict[str, Any]
    output: str = "text"
    schema: dict[str, Any] | None = None
    tool_name: str | None = None
    input_tokens: int = 0
    sequence: int = 0

    @property
    def default_text(self) -> str:
        """The reply the simulator gives when no ``reply`` callable is set."""
        return summary(self.last_user_text)


def loads(raw: bytes) -> Any:
    """A request body or JSONL line. Raises ValueError for what the real APIs answer 400:
    bad UTF-8 or JSON, nesting too deep, a lone surrogate's escape (``"\\ud83d"``)."""
    value = json_loads(raw)
    if _SURROGATE_ESCAPE.search(raw):  # UTF-8 holds no surrogate: only an escape makes one
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("no low surrogate in string") from None
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON bytes, as the providers send them."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def route(path: str) -> tuple[str, str | None] | None:
    """``(provider, model from the path)`` for a known endpoint, else None."""
    if path in _ROUTES:
        return _ROUTES[path], None
    match = _GEMINI_ROUTE.match(path)
    return (GEMINI, unquote(match.group(1))) if match else None


def guess_provider(path: str, headers: Mapping[str, str]) -> str:
    """The provider whose error shape suits a request to an unknown path."""
    if path.startswith(("/v1beta", "/v1/models")) or headers.get("x-goog-api-key") is not None:
        return GEMINI
    if headers.get("x-api-key") is not None or headers.get("anthropic-version") is not None:
        return ANTHROPIC
    return OPENAI


def api_key(provider: str, headers: Mapping[str, str]) -> str | None:
    """The key the request carries in the provider's header. Anthropic takes
    ``x-api-key`` or (as anthropic 2.x sends it) ``Authorization: Bearer``; when both are
    present the real API uses ``x-api-key``. Gemini's ``?key=`` query parameter is
    deliberately ignored: clients must keep keys out of URLs."""
    if provider == ANTHROPIC and headers.get("x-api-key") is not None:
        return headers.get("x-api-key")
    if provider == GEMINI:
        return headers.get("x-goog-api-key")
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def text_of(content: Any) -> str:
    """The text of a message's content in any of the three formats: a plain string, or
    blocks/parts that keep it under "text" (tool results nest theirs under "content")."""
    if isinstance(content, str):
        return content
    pieces = []
    for block in as_list(content):
        if isinstance(block, dict):
            nested = block.get("type") == "tool_result" and not isinstance(block.get("text"), str)
            block = text_of(block.get("content")) if nested else block.get("text")
        if isinstance(block, str):
            pieces.append(block)
    return "\n".join(pieces)


def _scan(messages: list[dict[str, Any]], content_key: str, default_role: str
          ) -> tuple[str, str, int]:
    """(last user text, system text, words in all messages)."""
    last_user = ""
    system: list[str] = []
    words = 0
    for message in messages:
        text = text_of(message.get(content_key))
        words += len(text.split())
        role = message.get("role") or default_role
        if role == "user":
            last_user = text
        elif role in ("system", "developer"):
            system.append(text)
    return last_user, "\n".join(system), words


def read_request(provider: str, body: dict[str, Any], path_model: str | None,
                 sequence: int) -> ReplyInfo:
    """Read the parts of a request body that shape the reply."""
    gemini = provider == GEMINI
    content = "parts" if gemini else "content"
    messages = dicts(body.get("contents" if gemini else "messages"))
    if provider != OPENAI:  # Claude's and Gemini's system prompt sits beside the messages
        instruction = as_dict(body.get("systemInstruction", body.get("system_instruction")))
        prompt = instruction.get("parts") if gemini else body.get("system")
        messages = [{"role": "system", content: prompt}, *messages]
    last, system, words = _scan(messages, content, "" if provider == OPENAI else "user")
    output, schema, tool = _OUTPUTS[provider](body)
    model = path_model if path_model is not None else body.get("model")
    return ReplyInfo(provider=provider, model=model if isinstance(model, str) else "",
                     last_user_text=last, system_text=system, body=body, output=output,
                     schema=schema, tool_name=tool, input_tokens=words, sequence=sequence)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dicts(value: Any) -> list[dict[str, Any]]:
    """The dicts of a list (none of anything else): a body may hold any JSON anywhere."""
    return [item for item in as_list(value) if isinstance(item, dict)]


_Output = tuple[str, "dict[str, Any] | None", "str | None"]


def _openai_output(body: dict[str, Any]) -> _Output:
    fmt = as_dict(body.get("response_format"))
    if fmt.get("type") == "json_object":
        return "json", None, None
    if fmt.get("type") == "json_schema":
        return "schema", as_dict(as_dict(fmt.get("json_schema")).get("schema")), None
    return "text", None, None


def _anthropic_output(body: dict[str, Any]) -> _Output:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        name = choice.get("name")
        spec = next((t for t in dicts(body.get("tools")) if t.get("name") == name), {})
        return "tool", as_dict(spec.get("input_schema")), name if isinstance(name, str) else ""
    # Structured outputs, in the older beta spelling and the newer one.
    fmt = as_dict(body.get("output_format"))
    fmt = fmt or as_dict(as_dict(body.get("output_config")).get("format"))
    if fmt.get("type") == "json_schema":
        return "schema", as_dict(fmt.get("schema")), None
    return "text", None, None


def _gemini_output(body: dict[str, Any]) -> _Output:
    config = as_dict(body.get("generationConfig", body.get("generation_config")))
    for key in ("responseJsonSchema", "response_json_schema", "responseSchema", "response_schema"):
        if isinstance(config.get(key), dict):
            return "schema", config[key], None
    mime = config.get("responseMimeType", config.get("response_mime_type"))
    return ("json" if mime == "application/json" else "text"), None, None


_OUTPUTS = {ANTHROPIC: _anthropic_output, OPENAI: _openai_output, GEMINI: _gemini_output}


def requested_output(body: dict[str, Any]) -> int:
    """The output tokens a request asks for at most (0 when it does not say)."""
    config = as_dict(body.get("generationConfig", body.get("generation_config")))
    for value in (body.get("max_completion_tokens"), body.get("max_tokens"),
                  config.get("maxOutputTokens", config.get("max_output_tokens"))):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def default_output(info: ReplyInfo, text: str | None = None) -> Any:
    """The reply without a ``reply`` callable: ``text`` (by default the summary), or a
    JSON value carrying it for JSON modes."""
    text = info.default_text if text is None else text
    if info.output == "json":
        return {"summary": text}
    if info.output == "text":
        return text
    value = example(info.schema or {}, text)
    # A tool's input is always an object, even for a missing or odd schema.
    return value if info.output == "schema" or isinstance(value, dict) else {}


def render(info: ReplyInfo, value: Any) -> tuple[str, Any]:
    """(reply text, tool input) for a value. Raises TypeError/ValueError when the value
    cannot be sent."""
    if info.output == "tool":
        data = json_loads(value) if isinstance(value, str) else value
        if not isinstance(data, dict):
            raise TypeError("a forced tool call needs a dict (or a JSON object string)")
        return json.dumps(data), data
    if isinstance(value, str):
        return value, None
    return json.dumps(value), None


def reply_body(info: ReplyInfo, text: str, tool_input: Any, empty: bool = False
               ) -> dict[str, Any]:
    """A successful reply in the request's wire format; ``empty``: a 200 with nothing
    usable in it, as each provider sends one."""
    n, model, tokens = info.sequence, info.model, info.input_tokens
    out = 0 if empty else max(1, len(text.split()))
    if info.provider == ANTHROPIC:
        block = {"type": "text", "text": text} if tool_input is None else {"type": "tool_use",
                 "id": f"toolu_sim{n:08d}", "name": info.tool_name, "input": tool_input}
        return {"id": f"msg_sim{n:08d}", "type": "message", "role": "assistant", "model": model,
                "content": [] if empty else [block],
                "stop_reason": "end_turn" if tool_input is None else "tool_use",
                "stop_sequence": None, "usage": {"input_tokens": tokens, "output_tokens": out}}
    if info.provider == OPENAI:
        choice = {"index": 0, "message": {"role": "assistant", "content": text},
                  "logprobs": None, "finish_reason": "stop"}
        return {"id": f"chatcmpl-sim{n:08d}", "object": "chat.completion",
                "created": int(time.time()), "model": model, "choices": [] if empty else [choice],
                "usage": {"prompt_tokens": tokens, "completion_tokens": out,
                          "total_tokens": tokens + out}}
    if empty:  # a real Gemini reply with nothing in it omits "candidates" altogether
        return {"usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
                "modelVersion": model}
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": tokens, "candidatesTokenCount": out,
                              "totalTokenCount": tokens + out},
            "modelVersion": model}


def strict_problem(info: ReplyInfo, headers: Mapping[str, str]) -> str | None:
    """Why a real provider would reject this request with a 400, or None."""
    body = info.body
    if body.get("stream") is True:
        return "stream: the simulator answers with whole JSON replies only; send stream=false"
    problem = _anthropic_problem(body, headers) if info.provider == ANTHROPIC else None
    if problem:
        return problem
    if info.provider in (ANTHROPIC, OPENAI):
        if not info.model:
            return "model: field required"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages: at least one message is required"
    elif not isinstance(body.get("contents"), list) or not body["contents"]:
        return "contents is not specified"
    return None


def _anthropic_problem(body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
    version = headers.get("anthropic-version")
    if not version:
        return "anthropic-version: header is required"
    if version not in ANTHROPIC_VERSIONS:
        return f"anthropic-version: {version!r} is not a valid version"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: field required"
    removed = [k for k in _SAMPLING if k in body]
    if version >= "2026-10-21" and removed:
        # The version removed the sampling settings: a 400 even at the default value.
        return f"{removed[0]}: Extra inputs are not permitted"
    return None


_JSON_WORD = re.compile(r"\bjson\b", re.I)


def answer(info: ReplyInfo, invalid_first: int | None) -> Any:
    """The reply value for a request when no ``reply`` callable is set. ``invalid_first``:
    schema answers are invalid while the conversation holds fewer than this many assistant
    turns (None: always; 0: never)."""
    if info.output in ("schema", "tool"):
        turns, question = _turns(info)
        # A re-ask: the corrected answer is still about the first question.
        text = summary(question) if turns else info.default_text
        if invalid_first is None or turns < invalid_first:
            return invalid_instance(info.schema or {}, text)
        return default_output(info, text)
    if info.provider == ANTHROPIC and info.output == "text" \
            and _JSON_WORD.search(f"{info.system_text}\n{info.last_user_text}"):
        return {"summary": info.default_text}
    return default_output(info)


def _turns(info: ReplyInfo) -> tuple[int, str]:
    """How many earlier answers the request carries (re-asks carry the bad one), and the
    last user text before the first of them."""
    key, content, role = ("contents", "parts", "model") if info.provider == GEMINI \
        else ("messages", "content", "assistant")
    messages = dicts(info.body.get(key))
    answers = [i for i, m in enumerate(messages) if m.get("role") == role]
    return len(answers), _scan(messages[:answers[0]], content, "user")[0] if answers else ""


def invalid_instance(schema: Any, text: str) -> Any:
    """A value that breaks ``schema``: an object loses its first required field (or its
    first field gets a value of the wrong type); anything else becomes the wrong type."""
    value = example(schema, text)
    if isinstance(value, dict) and value:
        required = [r for r in as_list(_root(schema).get("required"))
                    if isinstance(r, str) and r in value]
        if required:
            del value[required[0]]
        else:
            first = next(iter(value))
            value[first] = _wrong(value[first])
        return value
    return _wrong(value)


def _root(schema: Any) -> dict[str, Any]:
    node = as_dict(schema)
    ref = node.get("$ref")
    target = resolve_local(node, ref) if isinstance(ref, str) else None
    return target if isinstance(target, dict) else node


def _wrong(value: Any) -> Any:
    # A type no schema node that accepted ``value`` also accepts.
    if isinstance(value, dict):
        return [value]
    if isinstance(value, str):
        return {"not": "a string"}
    return "not a " + type(value).__name__
