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
_OPENER = re.compile(r"[{\[]")
# What bracket matching reads: a string literal (to its end, or the text's), or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)
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
    s = text.strip().lstrip("\ufeff")
    for candidate in (s, *(m.group(1).strip() for m in _FENCE.finditer(s))):
        try:
            return json_loads(candidate)
        except ValueError:
            continue
    return _first_balanced(_OPEN_FENCE.sub("", s, count=1))


def _first_balanced(s: str) -> Any:
    pos = 0
    for _ in range(_MAX_CANDIDATES):
        opener = _OPENER.search(s, pos)
        end = -1 if opener is None else _balanced_end(s, opener.start())
        if opener is None or end < 0:
            # No opener left, or one never closed: the text was cut off. An inner fragment
            # that happens to parse is not the answer, so stop rather than return it.
            break
        try:
            return json_loads(s[opener.start():end])
        except ValueError:
            # Prose such as "use {name} here": skip the whole span, not into it, so a
            # malformed outer object never yields one of its inner pieces.
            pos = end
    raise ValueError("no complete JSON value found in the text")


def _balanced_end(s: str, start: int) -> int:
    """Index just past the bracket that closes ``s[start]``; -1 if it never closes.

    A mismatched closer ends the span early (the candidate then fails to parse)."""
    stack: list[str] = []
    for token in _TOKEN.finditer(s, start):
        bracket = token.group()
        if bracket in _CLOSERS:
            stack.append(_CLOSERS[bracket])
        elif bracket in ("}", "]") and (not stack or stack.pop() != bracket or not stack):
            return token.end()
    return -1
