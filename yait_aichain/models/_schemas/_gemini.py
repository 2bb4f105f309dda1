"""Gemini's ``responseSchema``: an OpenAPI 3.0 subset with upper-case types, ``nullable``,
string enums and no references (they are inlined)."""

from __future__ import annotations

from typing import Any

from ._common import ASSERTIONS, STRUCTURAL, converted, error, inline_ref, restate, walk_refs

__all__ = ["gemini_schema"]

# The Schema keys Gemini's responseSchema accepts besides the ones rewritten below.
_GEMINI_KEYS = frozenset({
    "title", "description", "minItems", "maxItems", "minProperties",
    "maxProperties", "minLength", "maxLength", "pattern", "example", "default",
    "minimum", "maximum",
})
# Gemini refuses other formats (e.g. "email") with a 400, so they are dropped.
_GEMINI_FORMATS = frozenset({"date-time", "enum", "int32", "int64", "float", "double"})
_GEMINI_DEPTH = 32
# Bounds the work (and the request) when shared definitions multiply under inlining.
_GEMINI_MAX_NODES = 10_000


def gemini_schema(schema: Any) -> dict[str, Any]:
    """``schema`` rewritten into the subset Gemini's ``responseSchema`` accepts.

    ``$ref`` to local definitions is inlined, ``["X", "null"]`` and ``anyOf`` with null
    become ``nullable``, ``const`` becomes a one-value ``enum``, and property order is kept
    through ``propertyOrdering`` (Gemini would sort the keys otherwise).
    """
    return converted(_inlined, schema, "gemini")


def _inlined(schema: dict[str, Any], provider: str) -> dict[str, Any]:
    walk_refs(schema, schema, provider, "$", ())  # local and resolvable, once per schema
    return _Inlining(schema).node(schema, "$", 0)


class _Inlining:
    """One conversion: the schema being inlined, and how many nodes the result has so far
    (shared definitions are copied wherever they are used, so the result can grow much
    larger than the schema)."""

    def __init__(self, root: dict[str, Any]):
        self.root = root
        self.nodes = 0

    def node(self, node: Any, path: str, depth: int) -> dict[str, Any]:
        if depth > _GEMINI_DEPTH:
            raise error("gemini", path, "a recursive or too deep schema",
                        "bound the nesting; Gemini inlines every reference")
        if not isinstance(node, dict):
            return {}
        self.nodes += 1
        if self.nodes > _GEMINI_MAX_NODES:
            raise error("gemini", path, f"a schema of more than {_GEMINI_MAX_NODES} nodes "
                        "once its references are inlined",
                        "use fewer shared definitions, or smaller ones")
        for word in STRUCTURAL + ("prefixItems",):
            if word in node:
                raise error("gemini", path, f"the keyword {word!r}",
                            "express it with properties, enums or anyOf")
        if isinstance(node.get("$ref"), str):
            return self.node(inline_ref(self.root, node), path, depth + 1)
        return self.fields(node, path, depth)

    def fields(self, node: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in node.items() if k in _GEMINI_KEYS}
        dropped = [(k, node[k]) for k in ASSERTIONS if k in node and k not in _GEMINI_KEYS]
        if isinstance(node.get("format"), str) and node["format"] in _GEMINI_FORMATS:
            out["format"] = node["format"]
            dropped = [d for d in dropped if d[0] != "format"]
        kind = _enum(node, out, dropped, _type(node, out))
        restate(out, dropped)
        if isinstance(kind, str) and kind != "null":
            out["type"] = kind.upper()
        out = self.unions(node, out, path, depth)
        self.object(node, out, path, depth)
        items = node.get("items")
        if isinstance(items, dict):
            out["items"] = self.node(items, f"{path}[]", depth + 1)
            out.setdefault("type", "ARRAY")
        return out

    def unions(self, node: dict[str, Any], out: dict[str, Any], path: str,
               depth: int) -> dict[str, Any]:
        options = node.get("anyOf", node.get("oneOf"))
        if isinstance(options, list):
            real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(real) < len(options):
                out["nullable"] = True
            cleaned = [self.node(o, f"{path}.anyOf[{i}]", depth + 1) for i, o in enumerate(real)]
            if len(cleaned) == 1:
                out = {**cleaned[0], **out}
            elif cleaned:
                out["anyOf"] = cleaned
        all_of = node.get("allOf") or []  # a list of schemas: check_shape
        if len(all_of) > 1:
            raise error("gemini", path, "'allOf' with several parts",
                        "merge the parts into one object schema")
        return {**self.node(all_of[0], f"{path}.allOf[0]", depth + 1), **out} if all_of else out

    def object(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        props = node.get("properties")
        extra = node.get("additionalProperties")
        is_object = isinstance(props, dict) or node.get("type") == "object"
        if is_object and not props and extra not in (None, False):
            # An OBJECT needs non-empty properties in responseSchema: a map has none.
            raise error("gemini", path, "an object with free-form keys (a dict/map)",
                        "declare its fields, or use a list of {key, value} objects")
        if isinstance(props, dict) and props:
            out["properties"] = {k: self.node(v, f"{path}.{k}", depth + 1)
                                 for k, v in props.items()}
            out["propertyOrdering"] = list(props)
            required = [r for r in node.get("required") or [] if r in props]
            if required:
                out["required"] = required
            out.setdefault("type", "OBJECT")


def _enum(node: dict[str, Any], out: dict[str, Any], dropped: list[tuple[str, Any]],
          kind: str | None) -> str | None:
    enum = [node["const"]] if "const" in node else node.get("enum")
    # Gemini enums hold strings only; another enum is left to the type (and validated).
    if enum and all(isinstance(v, str) for v in enum):  # a list: check_shape
        out["enum"] = enum
        return kind or "string"
    if enum:
        dropped.append(("enum", enum))
    return kind


def _type(node: dict[str, Any], out: dict[str, Any]) -> str | None:
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        if len(kinds) > 1:
            out["anyOf"] = [{"type": k.upper()} for k in kinds if isinstance(k, str)]
        kind = kinds[0] if len(kinds) == 1 else None
    if node.get("nullable") is True:
        out["nullable"] = True
    return kind if isinstance(kind, str) else None
