"""Structured answers: an instance of the schema a request sent, valid or (scripted)
invalid, in every wire format.

A real model reads the whole schema, descriptions included; so does this module. When a
provider's dialect cannot carry a keyword (Gemini has no ``date`` format, Claude no
``minimum``), the client restates it in the description as ``(format: "date")``; the
instance honours such notes, as a model would. Claude has no JSON mode: a request that
asks for JSON in its words (the system prompt or the last user message) gets a JSON object.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._schema import example, resolve_local
from ._wire import ANTHROPIC, GEMINI, ReplyInfo, default_output, summary, text_of

__all__ = ["answer", "assistant_turns", "instance", "invalid_instance"]

# ``word: <JSON value>`` pairs inside the last parenthesised note of a description.
_NOTE = re.compile(r'(\w+): ("(?:[^"\\]|\\.)*"|\[[^\]]*\]|-?[\d.eE+-]+|true|false|null)')
_NOTED = frozenset({"format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "minLength", "maxLength", "minItems", "maxItems", "enum", "multipleOf"})
_MAX_DEPTH = 32
_JSON_WORD = re.compile(r"\bjson\b", re.I)


def answer(info: ReplyInfo, invalid_first: int | None) -> Any:
    """The reply value for a request when no ``reply`` callable is set.

    ``invalid_first``: schema answers are invalid while the conversation holds fewer than
    this many assistant turns (None: always; 0: never).
    """
    text = info.default_text
    if info.output in ("schema", "tool"):
        schema = info.schema or {}
        turns = assistant_turns(info)
        if turns:
            # A re-ask: the corrected answer is still about the first question.
            text = summary(_question(info))
        if invalid_first is None or turns < invalid_first:
            return invalid_instance(schema, text)
        value = instance(schema, text)
        # A tool's input is always an object, even for a missing or odd schema.
        return value if info.output == "schema" or isinstance(value, dict) else {}
    if info.provider == ANTHROPIC and info.output == "text" and _asks_json(info):
        return {"summary": text}
    return default_output(info)


def _asks_json(info: ReplyInfo) -> bool:
    return bool(_JSON_WORD.search(info.system_text) or _JSON_WORD.search(info.last_user_text))


def _conversation(info: ReplyInfo) -> tuple[list[Any], str, str]:
    """The request's messages, their content key and the answering role."""
    key, content, role = ("contents", "parts", "model") if info.provider == GEMINI \
        else ("messages", "content", "assistant")
    messages = info.body.get(key)
    return (messages if isinstance(messages, list) else []), content, role


def assistant_turns(info: ReplyInfo) -> int:
    """How many earlier answers the request carries (re-asks carry the bad one)."""
    messages, _, role = _conversation(info)
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == role)


def _question(info: ReplyInfo) -> str:
    """The text of the last user message before the first assistant turn."""
    messages, content, role = _conversation(info)
    question = ""
    for message in messages:
        if not isinstance(message, dict) or message.get("role") == role:
            break
        if message.get("role", "user") == "user":
            question = text_of(message.get(content))
    return question


def instance(schema: Any, text: str) -> Any:
    """A value valid for ``schema`` (notes in descriptions honoured); strings carry
    ``text``."""
    return example(_with_notes(schema, 0), text)


def invalid_instance(schema: Any, text: str) -> Any:
    """A value that breaks ``schema``: an object loses its first required field (or its
    first field gets a value of the wrong type); anything else becomes the wrong type."""
    value = instance(schema, text)
    node = _root(schema)
    if isinstance(value, dict) and value:
        required = [r for r in node.get("required") or [] if r in value]
        if required:
            del value[required[0]]
        else:
            first = next(iter(value))
            value[first] = _wrong(value[first])
        return value
    return _wrong(value)


def _root(schema: Any) -> dict[str, Any]:
    node = schema if isinstance(schema, dict) else {}
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


def _with_notes(node: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return node
    if isinstance(node, list):
        return [_with_notes(v, depth + 1) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _with_notes(v, depth + 1) if isinstance(v, (dict, list)) else v
           for k, v in node.items()}
    description = node.get("description")
    if isinstance(description, str) and description.rstrip().endswith(")"):
        note = description[description.rfind("(") + 1:]
        for word, raw in _NOTE.findall(note):
            # The note is the caller's own bound: it wins over a looser one that was sent
            # (Claude takes minItems 1 where the caller said 3).
            if word in _NOTED:
                try:
                    out[word] = json.loads(raw)
                except ValueError:
                    continue
    return out
