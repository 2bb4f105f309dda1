"""A JSON value that fits a schema, for structured-output replies: JSON Schema (local
``$ref``, ``anyOf``/``oneOf``/``allOf``, ``enum``, ``const``, bounds, formats) and Gemini's
OpenAPI subset (upper-case ``type``, ``nullable``). Strings carry the reply text, so a
caller can tell which prompt a reply belongs to. Like a model, it reads descriptions too:
a keyword a dialect cannot carry (Gemini has no ``date`` format, Claude no ``minimum``)
and that the client restated as ``(format: "date")`` is honoured."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

from .._text import json_loads
from ..models._schemas._common import resolve

__all__ = ["example", "resolve_local"]

# Recursive schemas (a tree node holding nodes) would otherwise never end.
_MAX_DEPTH = 16
# A schema may demand many items; a reply needs only enough to be valid.
_MAX_ITEMS = 64
# ``word: <JSON value>`` pairs inside the last parenthesised note of a description.
_NOTE = re.compile(r'(\w+): ("(?:[^"\\]|\\.)*"|\[[^\]]*\]|-?[\d.eE+-]+|true|false|null)')
_NOTED = frozenset({"format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "minLength", "maxLength", "minItems", "maxItems", "enum", "multipleOf"})

_FORMATS = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "time": "00:00:00",
            "email": "user@example.com", "uri": "https://example.com/",
            "url": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000",
            "ipv4": "127.0.0.1", "ipv6": "::1", "hostname": "example.com"}


def example(schema: Any, text: str) -> Any:
    """A value valid for ``schema``; its strings are ``text`` (fitted to the length
    bounds)."""
    return _value(schema, text, schema, 0)


def _noted(s: dict[str, Any]) -> dict[str, Any]:
    # The note is the caller's own bound: it wins over a looser one that was sent (Claude
    # takes minItems 1 where the caller said 3).
    description = s.get("description")
    if not (isinstance(description, str) and description.rstrip().endswith(")")):
        return s
    notes = {}
    for word, raw in _NOTE.findall(description[description.rfind("(") + 1:]):
        if word in _NOTED:
            with contextlib.suppress(ValueError):
                notes[word] = json_loads(raw)
    return {**s, **notes}


def _value(s: Any, text: str, root: Any, depth: int) -> Any:
    if not isinstance(s, dict) or depth > _MAX_DEPTH:
        return None
    s = _noted(s)
    ref = s.get("$ref")
    if isinstance(ref, str):
        target = resolve_local(root, ref)
        if target is not None:
            return _value(target, text, root, depth + 1)
    if "const" in s:
        return s["const"]
    enum = s.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = s.get(key)
        if isinstance(options, list) and options:
            first = next((o for o in options if isinstance(o, dict)
                          and str(o.get("type", "")).lower() != "null"), options[0])
            return _value(first, text, root, depth + 1)
    all_of = s.get("allOf")
    if isinstance(all_of, list) and all_of:
        return _value(_merge(all_of, root), text, root, depth + 1)
    return _by_type(s, text, root, depth)


def _by_type(s: dict[str, Any], text: str, root: Any, depth: int) -> Any:
    kind = _type(s)
    if kind == "object":
        props = s.get("properties")
        if not isinstance(props, dict):
            return {}
        return {name: _value(sub, text, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return _array(s, text, root, depth)
    if kind == "string":
        return _string(s, text)
    if kind in ("integer", "number"):
        return _number(s, kind == "integer")
    if kind == "boolean":
        return True
    return None


def _type(s: dict[str, Any]) -> str:
    kind = s.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if isinstance(k, str) and k.lower() != "null"), "null")
    if isinstance(kind, str):
        # Gemini's schema dialect spells types in upper case.
        return kind.lower()
    if "properties" in s:
        return "object"
    if "items" in s or "prefixItems" in s:
        return "array"
    return "string"


def _merge(parts: list[Any], root: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            part = resolve_local(root, part["$ref"]) or {}
        if not isinstance(part, dict):
            continue
        merged.update({k: v for k, v in part.items() if k != "properties"})
        if isinstance(part.get("properties"), dict):
            props.update(part["properties"])
    if props:
        merged["properties"] = props
        merged.setdefault("type", "object")
    return merged


def resolve_local(root: Any, ref: str) -> Any:
    """The node a ``#/...`` reference names; None for any other (a simulator must never
    fetch a remote schema)."""
    return resolve(root, ref) if ref.startswith("#") else None


def _array(s: dict[str, Any], text: str, root: Any, depth: int) -> list[Any]:
    prefix = s.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        return [_value(sub, text, root, depth + 1) for sub in prefix[:_MAX_ITEMS]]
    low, high = s.get("minItems"), s.get("maxItems")
    count = low if isinstance(low, int) and low > 0 else 1
    if isinstance(high, int) and high >= 0:
        count = min(count, high)
    item = _value(s.get("items", {}), text, root, depth + 1)
    return [item] * min(count, _MAX_ITEMS)


def _string(s: dict[str, Any], text: str) -> str:
    fmt = s.get("format")
    value = _FORMATS.get(fmt, text) if isinstance(fmt, str) else text
    low, high = s.get("minLength"), s.get("maxLength")
    if isinstance(low, int):
        value = value.ljust(low, ".")
    return value[:high] if isinstance(high, int) and high >= 0 else value


def _number(s: dict[str, Any], integer: bool) -> int | float:
    low, high, xlow, xhigh = (s[k] if _is_num(s.get(k)) else bound for k, bound in (
        ("minimum", -math.inf), ("maximum", math.inf), ("exclusiveMinimum", -math.inf),
        ("exclusiveMaximum", math.inf)))
    step = 1 if integer else 0.5
    value = max(0, low)
    if value <= xlow:
        value = xlow + step
    value = min(value, high)
    if value >= xhigh:
        value = xhigh - step
    if not integer:
        return float(value)
    # Round towards the inside of the bounds: up from a minimum, down from a maximum.
    whole = math.ceil(value)
    return whole if whole <= high and whole < xhigh else math.floor(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
