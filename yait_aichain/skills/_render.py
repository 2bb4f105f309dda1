"""Rendering a Skill's messages, and where its template stops being the same for every run.

The static prefix is everything before the first ``{variable}``: the system text and the
template's text up to its first placeholder. When it is long enough for the model's
provider to cache, the text part holding its end is split there and the first half is
flagged ``"cache": True``; the provider adapters turn the flag into ``cache_control``
(Anthropic) or a ``prompt_cache_key`` (OpenAI). Splitting a text part in two changes no
token of the prompt.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .._messages import Messages
from .._template import first_placeholder, render
from ..models._caching import CHARS_PER_TOKEN, MARKING_PROVIDERS, min_cacheable_tokens

__all__ = ["cache_point", "render_messages"]

#: (message index, part index, characters of that part's template in the prefix)
Point = tuple[int, int, int]


def cache_point(messages: list[dict[str, Any]], model: Any) -> Point | None:
    """Where the static prefix of ``messages`` ends, if it is worth marking for ``model``."""
    provider, name = getattr(model, "provider", None), getattr(model, "name", "")
    if provider not in MARKING_PROVIDERS:
        return None
    texts = [(mi, pi, part["text"]) for mi, message in enumerate(messages)
             for pi, part in enumerate(message["parts"]) if part["type"] == "text"]
    point: Point | None = None
    chars = 0
    for mi, pi, text in texts:
        cut = first_placeholder(text)
        if cut is None or cut > 0:
            size = len(text) if cut is None else cut
            point, chars = (mi, pi, size), chars + size
        if cut is not None:
            break
    if point is None or chars // CHARS_PER_TOKEN < min_cacheable_tokens(provider, name):
        return None
    return point


def render_messages(messages: list[dict[str, Any]], variables: Mapping[str, Any],
                    point: Point | None = None) -> Messages:
    """The messages rendered with ``variables``; the part at ``point`` split and flagged."""
    out = Messages()
    for mi, message in enumerate(messages):
        parts: list[dict[str, Any]] = []
        for pi, part in enumerate(message["parts"]):
            if part["type"] != "text":
                parts.append(copy.deepcopy(part))
            elif point is None or (mi, pi) != point[:2]:
                parts.append({"type": "text", "text": render(part["text"], variables)})
            else:
                head, tail = part["text"][:point[2]], part["text"][point[2]:]
                parts.append({"type": "text", "text": render(head, variables), "cache": True})
                if tail:
                    parts.append({"type": "text", "text": render(tail, variables)})
        out.append({"role": message["role"], "parts": parts})
    return out
