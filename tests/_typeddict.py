"""Check a JSON value against an SDK's request TypedDict: unknown keys, missing required
keys, literals and the types of nested values. Returns the problems as strings (empty:
valid), so a failing test says exactly where the body and the SDK disagree."""

from __future__ import annotations

import collections.abc as cabc
import types
import typing
from typing import Any

_NONE = type(None)


def problems(value: Any, hint: Any, path: str = "body") -> list[str]:
    """Why ``value`` does not match the annotation ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return []
    if origin in (typing.Required, typing.NotRequired, typing.Annotated):
        return problems(value, args[0], path)
    alias = getattr(typing, "TypeAliasType", None)
    if alias is not None and isinstance(hint, alias):
        return problems(value, hint.__value__, path)
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, path)
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if _is_typeddict(hint):
        return _typeddict(value, hint, path)
    if origin in (list, cabc.Iterable, cabc.Sequence, typing.Iterable, typing.Sequence) or \
            getattr(origin, "__name__", "") == "SequenceNotStr":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in problems(v, args[0] if args else Any,
                                                                  f"{path}[{i}]")]
    if origin in (dict, cabc.Mapping, typing.Mapping) or hint is dict:
        return [] if isinstance(value, dict) else [f"{path}: expected an object"]
    return _plain(value, hint, path)


def _union(value: Any, args: tuple[Any, ...], path: str) -> list[str]:
    best: list[str] | None = None
    for option in args:
        found = problems(value, option, path)
        if not found:
            return []
        if best is None or len(found) < len(best):
            best = found
    return best or [f"{path}: matches none of the allowed types"]


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and hasattr(hint, "__required_keys__") \
        and hasattr(hint, "__annotations__")


def _typeddict(value: Any, td: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object ({td.__name__}), got {type(value).__name__}"]
    hints = typing.get_type_hints(td, include_extras=True)
    out = [f"{path}.{k}: not a field of {td.__name__}" for k in value if k not in hints]
    out += [f"{path}.{k}: required by {td.__name__} but missing"
            for k in sorted(_required(td, hints)) if k not in value]
    for key, item in value.items():
        if key in hints:
            out += problems(item, hints[key], f"{path}.{key}")
    return out


def _required(td: Any, hints: dict[str, Any]) -> set[str]:
    # SDK modules use string annotations, which hide Required[...] from the class on
    # Python < 3.12; the resolved hints still carry it.
    marked = {k for k, h in hints.items() if typing.get_origin(h) is typing.Required}
    optional = {k for k, h in hints.items() if typing.get_origin(h) is typing.NotRequired}
    return (set(td.__required_keys__) | marked) - optional


def _plain(value: Any, hint: Any, path: str) -> list[str]:
    if hint is _NONE or hint is None:
        return [] if value is None else [f"{path}: expected null"]
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(hint, type):
        # SDK aliases such as SequenceNotStr[str] or FileTypes: accept what JSON can carry.
        ok = isinstance(value, hint) if hint in (str, bool) else True
    else:
        ok = True  # a protocol or alias we cannot check structurally; the keys were
    return [] if ok else [f"{path}: expected {getattr(hint, '__name__', hint)}, "
                          f"got {type(value).__name__}"]
