"""Where a Skill's template stops being the same for every run, and marking it there.

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

from .._template import first_placeholder, render
from ..models._caching import CHARS_PER_TOKEN, MARKING_PROVIDERS, min_cacheable_tokens

__all__ = ["cache_point", "mark_and_render"]

#: (message index, part index, characters of that part's template in the prefix)
Point = tuple[int, int, int]


def cache_point(messages: list[dict[str, Any]], model: Any) -> Point | None:
    """Where the static prefix of ``messages`` ends, if it is worth marking for ``model``."""
    provider, name = getattr(model, "provider", None), getattr(model, "name", "")
    if provider not in MARKING_PROVIDERS:
        return None
    point: Point | None = None
    chars = 0
    for mi, message in enumerate(messages):
        for pi, part in enumerate(message["parts"]):
            if part["type"] != "text":
                continue
            text = part["text"]
            cut = first_placeholder(text)
            if cut is None:
                point, chars = (mi, pi, len(text)), chars + len(text)
                continue
            if cut > 0:
                point, chars = (mi, pi, cut), chars + cut
            return _worth(point, chars, provider, name)
    return _worth(point, chars, provider, name)


def _worth(point: Point | None, chars: int, provider: str, name: str) -> Point | None:
    if point is None or chars // CHARS_PER_TOKEN < min_cacheable_tokens(provider, name):
        return None
    return point


def mark_and_render(messages: list[dict[str, Any]], point: Point,
                    variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The messages rendered with ``variables``, the part at ``point`` split and flagged."""
    out = []
    for mi, message in enumerate(messages):
        parts: list[dict[str, Any]] = []
        for pi, part in enumerate(message["parts"]):
            if part["type"] != "text":
                parts.append(copy.deepcopy(part))
                continue
            text = part["text"]
            if (mi, pi) != point[:2]:
                parts.append({"type": "text", "text": render(text, variables)})
                continue
            head, tail = text[:point[2]], text[point[2]:]
            parts.append({"type": "text", "text": render(head, variables), "cache": True})
            if tail:
                parts.append({"type": "text", "text": render(tail, variables)})
        out.append({"role": message["role"], "parts": parts})
    return out
