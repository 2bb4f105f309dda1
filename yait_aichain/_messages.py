"""Normalising and checking the message lists that Skill and Model accept: a str (one
user message), ``[{"role": ..., "parts": ["text", {...}]}]`` (parts as bare strings or
dicts) or the OpenAI-style ``"content"`` shorthand. Normalised output:
``[{"role": ..., "parts": [{"type": "text", "text": ...} | image part]}]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigurationError

ROLES = ("system", "user", "assistant")


class Messages(list):  # type: ignore[type-arg]
    """A message list this module has already checked and normalised: handing it to
    :func:`normalise_messages` again (Skill renders, Model sends) costs nothing."""


def normalise_messages(messages: Any) -> Messages:
    """A fresh, normalised copy of ``messages`` (``messages`` itself when it already is a
    :class:`Messages`); ConfigurationError, naming the message, when they cannot be sent."""
    if isinstance(messages, Messages):
        return messages
    if isinstance(messages, str):
        return Messages([{"role": "user", "parts": [{"type": "text", "text": messages}]}])
    if isinstance(messages, Mapping) and "messages" in messages:
        messages = messages["messages"]
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ConfigurationError(
            "messages must be a non-empty list of {'role': ..., 'parts': [...]} dicts")
    out = [_normalise_message(message, i) for i, message in enumerate(messages)]
    if not any(m["role"] == "user" for m in out):
        raise ConfigurationError("messages need at least one 'user' message")
    return Messages(out)


def _normalise_message(message: Any, i: int) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        raise ConfigurationError(f"message {i} must be a dict, got {type(message).__name__}")
    role = message.get("role")
    if role not in ROLES:
        raise ConfigurationError(f"message {i} has role {role!r}; use one of {', '.join(ROLES)}")
    parts = message.get("parts", message.get("content"))
    if parts is None:
        raise ConfigurationError(f"message {i} has no 'parts'")
    if isinstance(parts, (str, Mapping)):
        parts = [parts]
    if not isinstance(parts, (list, tuple)) or not parts:
        raise ConfigurationError(f"message {i} needs a non-empty list of parts")
    return {"role": role, "parts": [_normalise_part(p, i, j) for j, p in enumerate(parts)]}


def _normalise_part(part: Any, i: int, j: int) -> dict[str, Any]:
    where = f"message {i} part {j}"
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        raise ConfigurationError(f"{where} must be a str or a dict, got {type(part).__name__}")
    kind = part.get("type", "text" if "text" in part else None)
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise ConfigurationError(f"{where} is a text part without a str 'text'")
        if part.get("cache") is True:
            # The static prefix ends here (prompt caching; see Skill(cache=)).
            return {"type": "text", "text": text, "cache": True}
        return {"type": "text", "text": text}
    if kind == "image":
        source = part.get("source")
        if not isinstance(source, Mapping) or source.get("kind") not in ("url", "base64"):
            raise ConfigurationError(f"{where} is an image part; give source={{'kind': 'url', "
                                     "'url': ...} or {'kind': 'base64', 'data': ..., "
                                     "'mime_type': ...}")
        return {"type": "image", "source": dict(source)}
    raise ConfigurationError(f"{where} has type {kind!r}; use 'text' or 'image'")


def text_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every text part dict of normalised messages (to render templates into)."""
    return [p for m in messages for p in m["parts"] if p["type"] == "text"]


#: Input tokens counted for each non-text part (an image, a file) by the estimates below
#: (``ratelimit.DEFAULT_MEDIA_TOKENS``; providers bill roughly 1-2k each).
MEDIA_PART_TOKENS = 1500


def estimate_input_tokens(messages: Sequence[Mapping[str, Any]], chars_per_token: float) -> int:
    """Input tokens of normalised messages, estimated before the call (for the rate limiter
    and the budget): characters / ``chars_per_token`` plus ``MEDIA_PART_TOKENS`` per media."""
    parts = [part for message in messages for part in message.get("parts", ())]
    chars = sum(len(p.get("text", "")) for p in parts if p.get("type") == "text")
    media = sum(1 for p in parts if p.get("type") != "text")
    return math.ceil(chars / chars_per_token) + media * MEDIA_PART_TOKENS
