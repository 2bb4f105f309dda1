"""Tolerant reading of JSON that a model wrote as text.

Models asked for JSON often wrap it in Markdown fences or a sentence of prose. We accept
that, but we never repair broken JSON: a value cut off by the token limit must fail, so
the caller can tell truncation apart from success.
"""

from __future__ import annotations

import re
from typing import Any

from ..._text import json_loads

__all__ = ["parse_json"]

# A fenced block anywhere in the text; the info string (``json``, ``JSON``...) is optional.
_FENCE = re.compile(r"```[ \t]*[\w+.-]*[ \t]*\r?\n(.*?)```", re.S)
# An opening fence with no closing one: the reply was cut off inside the block.
_OPEN_FENCE = re.compile(r"^```[ \t]*[\w+.-]*[ \t]*\r?\n")
_CLOSERS = {"{": "}", "[": "]"}
# Bound the work on long prose full of stray braces.
_MAX_CANDIDATES = 64


def parse_json(text: str) -> Any:
    """Read one JSON value from ``text``.

    Tries, in order: the whole text; each fenced block; the first balanced ``{...}`` or
    ``[...]`` that parses.

    Raises:
        ValueError: no complete JSON value was found (also when it was cut off).
    """
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}")
    s = text.strip().lstrip("\ufeff")
    try:
        return json_loads(s)
    except ValueError:
        pass
    for match in _FENCE.finditer(s):
        try:
            return json_loads(match.group(1).strip())
        except ValueError:
            continue
    s = _OPEN_FENCE.sub("", s, count=1)
    found, value = _first_balanced(s)
    if found:
        return value
    raise ValueError("no complete JSON value found in the text")


def _first_balanced(s: str) -> tuple[bool, Any]:
    pos = 0
    for _ in range(_MAX_CANDIDATES):
        start = _next_opener(s, pos)
        if start < 0:
            return False, None
        end = _balanced_end(s, start)
        if end < 0:
            # Never closed: the text was cut off. An inner fragment that happens to parse
            # is not the answer, so stop rather than return it.
            return False, None
        try:
            return True, json_loads(s[start:end])
        except ValueError:
            # Prose such as "use {name} here": skip the whole span, not into it, so a
            # malformed outer object never yields one of its inner pieces.
            pos = end
    return False, None


def _next_opener(s: str, pos: int) -> int:
    hits = [i for i in (s.find("{", pos), s.find("[", pos)) if i >= 0]
    return min(hits) if hits else -1


def _balanced_end(s: str, start: int) -> int:
    """Index just past the bracket that closes ``s[start]``; -1 if it never closes.

    A mismatched closer ends the span early (the candidate then fails to parse)."""
    stack: list[str] = []
    i = start
    while i < len(s):
        ch = s[i]
        if ch == '"':
            i = _string_end(s, i)
            continue
        if ch in _CLOSERS:
            stack.append(_CLOSERS[ch])
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return i + 1
            if not stack:
                return i + 1
        i += 1
    return -1


def _string_end(s: str, quote: int) -> int:
    """Index just past the string literal that opens at ``s[quote]`` (or the text's end)."""
    i = quote + 1
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == '"':
            return i + 1
        i += 1
    return len(s)
