"""The JSON Schema dialects: OpenAI strict ``json_schema``, Claude's ``output_config.format``
(and the forced-tool form older Claude models take) and Gemini's ``responseJsonSchema``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import UnsupportedSchemaError
from ._common import (ASSERTIONS, STRUCTURAL, converted, error, inline_ref, restate,
                      self_contained, walk_refs)

__all__ = ["anthropic_native", "anthropic_tool", "claude_has_native_output", "gemini_schema",
           "openai_strict"]

_PRIMITIVES = (str, int, float, bool, type(None))
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_MAX_DEPTH = 64  # of the walk itself, whatever the dialect allows


@dataclass(frozen=True)
class _Rules:
    """What one JSON-Schema-based dialect keeps."""

    keep: Callable[[str, Any], bool]  # (keyword, value) -> sent as is
    formats: frozenset[str]
    require_all: bool
    recursion: bool
    all_of: bool
    max_object_depth: int | None = None
    max_properties: int | None = None
    max_enum_values: int | None = None
    max_chars: int | None = None
    root_object: bool = True
    any_type: bool = False  # a field with no type is sent as "any value"
    # Which enum values it constrains to, when not every primitive (const is sent as a
    # one-value enum then); the rest is restated.
    enum_value: Callable[[Any], bool] | None = None
    property_ordering: bool = False

    def __call__(self, schema: dict[str, Any], provider: str) -> dict[str, Any]:
        return _Walk(self, schema, provider).root()


_OPENAI_KEEP = frozenset({"pattern", "minimum", "maximum", "exclusiveMinimum",
                          "exclusiveMaximum", "multipleOf", "minItems", "maxItems"})
_OPENAI_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname",
                             "ipv4", "ipv6", "uuid"})
_ANTHROPIC_FORMATS = _OPENAI_FORMATS | {"uri"}
# Lookaround and backreferences: not in the regular subset constrained decoding compiles.
_COMPLEX_REGEX = re.compile(r"\(\?[=!<]|\\[1-9]|\\k<")


def _anthropic_keeps(word: str, value: Any) -> bool:
    if word == "minItems":
        return value in (0, 1)
    return word == "pattern" and isinstance(value, str) and not _COMPLEX_REGEX.search(value)


OPENAI = _Rules(lambda word, value: word in _OPENAI_KEEP, _OPENAI_FORMATS,
                require_all=True, recursion=True, all_of=False, max_object_depth=10,
                max_properties=5000, max_enum_values=1000, max_chars=120_000)
ANTHROPIC = _Rules(_anthropic_keeps, _ANTHROPIC_FORMATS, require_all=False,
                   recursion=False, all_of=True)
# The keywords GenerationConfig.response_json_schema documents (google-genai 3.x); cyclic
# references it only unrolls "to a limited degree", so recursion is refused.
GEMINI = _Rules(lambda word, value: word in ("minimum", "maximum", "minItems", "maxItems"),
                frozenset({"date-time", "enum", "int32", "int64", "float", "double"}),
                require_all=False, recursion=False, all_of=False, root_object=False,
                any_type=True, property_ordering=True,
                enum_value=lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool))


def openai_strict(schema: Any) -> dict[str, Any]:
    """``schema`` as OpenAI's strict structured outputs accept it."""
    return converted(OPENAI, schema, "openai")


def anthropic_native(schema: Any) -> dict[str, Any]:
    """``schema`` as Claude's ``output_config.format`` accepts it."""
    return converted(ANTHROPIC, schema, "anthropic")


def gemini_schema(schema: Any) -> dict[str, Any]:
    """``schema`` as Gemini's ``responseJsonSchema`` accepts it."""
    return converted(GEMINI, schema, "gemini")


def anthropic_tool(schema: Any) -> dict[str, Any]:
    """``schema`` as a forced tool's ``input_schema`` (JSON Schema, checked for external
    references; the adapter wraps a non-object root)."""
    return self_contained(schema, "anthropic")


# The minor version is one or two digits; "4-20250514" is Claude 4 with a date.
_CLAUDE_4 = re.compile(r"claude-(?:opus|sonnet|haiku)-4-(\d{1,2})(?:$|[-@])")
_CLAUDE_NEXT = re.compile(r"claude-(?:opus|sonnet|haiku)-([5-9]|\d{2,})(?:$|[-@.])")


def claude_has_native_output(model: str) -> bool:
    """Whether a Claude model takes ``output_config.format``: Claude 4.5 and later (Opus,
    Sonnet, Haiku); older or unknown names get the forced-tool form, which every Claude
    model accepts."""
    name = model.rsplit("/", 1)[-1].lower()
    m = _CLAUDE_4.search(name)
    if m:
        return int(m.group(1)) >= 5
    return bool(_CLAUDE_NEXT.search(name))


class _Walk:
    def __init__(self, rules: _Rules, schema: dict[str, Any], provider: str):
        self.rules = rules
        self.schema = schema
        self.provider = provider
        self.properties = 0
        self.enum_values = 0
        self.chars = 0

    def fail(self, path: str, feature: str, fix: str) -> UnsupportedSchemaError:
        return error(self.provider, path, feature, fix)

    def root(self) -> dict[str, Any]:
        rules, schema = self.rules, self.schema
        if walk_refs(schema, schema, self.provider, "$", ()) and not rules.recursion:
            raise self.fail("$", "a recursive schema",
                            "bound the nesting (e.g. a fixed number of levels)")
        body = {k: v for k, v in schema.items() if k not in ("$defs", "definitions", "$schema")}
        if "$ref" in body:
            body = inline_ref(schema, body)
        if rules.root_object and _kind(body) != "object":
            raise self.fail("$", f"a root of type {_kind(body)!r}",
                            "wrap the answer in an object (a model with one field)")
        out = self.node(body, "$", 0, 0)
        for container in ("$defs", "definitions"):
            defs = schema.get(container)
            if isinstance(defs, dict):
                self.chars += sum(len(name) for name in defs)
                out[container] = {name: self.node(sub, f"$.{container}.{name}", 1, 0)
                                  for name, sub in defs.items()}
        self.check_totals()
        return out

    def check_totals(self) -> None:
        r = self.rules
        for count, limit, what in ((self.properties, r.max_properties, "properties"),
                                   (self.enum_values, r.max_enum_values, "enum values"),
                                   (self.chars, r.max_chars, "characters of names and values")):
            if limit is not None and count > limit:
                raise self.fail("$", f"{count} {what} (the limit is {limit})",
                                "split the schema into smaller ones")

    def node(self, node: Any, path: str, depth: int, objects: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise self.fail(path, "a schema nested too deeply", "flatten the schema")
        if not isinstance(node, dict) or (_kind(node) == "any" and not self.rules.any_type):
            raise self.fail(path, "a value of any type (no 'type')",
                            "give the field a concrete type")
        for word in STRUCTURAL:
            if word in node:
                raise self.fail(path, f"the keyword {word!r}", "express it with properties, "
                                "enums or anyOf, or check it in your own code")
        if isinstance(node.get("$ref"), str):
            return {"$ref": node["$ref"]}  # local (checked); definitions are converted once
        out: dict[str, Any] = {k: node[k] for k in ("title", "description")
                               if isinstance(node.get(k), str)}
        if "type" in node:
            out["type"] = _checked_type(node["type"], path, self)
        dropped = self.literals(node, out, path)
        self.unions(node, out, path, depth, objects)
        kind = _kind(node)
        if not out.keys() & {"enum", "const", "anyOf"}:  # else those say it all
            if kind == "object":
                self.object(node, out, path, depth, objects + 1)
            elif kind == "array":
                self.array(node, out, path, depth, objects)
        restate(out, dropped + self.assertions(node, out))
        return out

    def unions(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int,
               objects: int) -> None:
        if "anyOf" in node or "oneOf" in node:
            # oneOf (exactly one) is sent as anyOf; the validator still checks "exactly".
            options = _list(node.get("anyOf", node.get("oneOf")), path, self)
            out["anyOf"] = [self.node(o, f"{path}.anyOf[{i}]", depth + 1, objects)
                            for i, o in enumerate(options)]
        if "allOf" in node:
            self.all_of(node, out, path, depth, objects)

    def literals(self, node: dict[str, Any], out: dict[str, Any],
                 path: str) -> list[tuple[str, Any]]:
        dropped: list[tuple[str, Any]] = []
        for word in ("enum", "const"):
            if word not in node:
                continue
            values = node[word] if word == "enum" else [node[word]]  # a list: check_shape
            sendable = self.rules.enum_value
            if sendable is not None:
                if values and all(map(sendable, values)):
                    out["enum"] = values
                else:
                    dropped.append((word, node[word]))
                continue
            if not values or not all(isinstance(v, _PRIMITIVES) for v in values):
                raise self.fail(path, f"an {word} of non-primitive values",
                                "use strings, numbers, booleans or null")
            self.enum_values += len(values)
            self.chars += sum(len(v) for v in values if isinstance(v, str))
            out[word] = node[word]
        return dropped

    def all_of(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int,
               objects: int) -> None:
        parts = _list(node["allOf"], path, self)
        if self.rules.all_of:
            out["allOf"] = [self.node(p, f"{path}.allOf[{i}]", depth + 1, objects)
                            for i, p in enumerate(parts)]
        elif len(parts) == 1:
            merged = self.node(parts[0], f"{path}.allOf[0]", depth + 1, objects)
            out.update({k: v for k, v in merged.items() if k not in out})
        else:
            raise self.fail(path, "'allOf' with several parts",
                            "merge the parts into one object schema")

    def object(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int,
               objects: int) -> None:
        limit = self.rules.max_object_depth
        if limit is not None and objects > limit:
            raise self.fail(path, f"objects nested {objects} levels deep (the limit is "
                            f"{limit})", "flatten the schema")
        props = node.get("properties") or {}  # check_shape made sure it is an object
        # Declared fields plus allowed extras close to the declared fields (narrower, so
        # still valid); with no declared field at all the object is a map, and a closed
        # map could only ever be empty.
        if not props:
            raise self.fail(path, "an object with free-form keys (a dict/map)",
                            "declare its fields, or use a list of {key, value} objects")
        self.properties += len(props)
        self.chars += sum(len(k) for k in props)
        out.setdefault("type", "object")
        out["properties"] = {k: self.node(v, f"{path}.{k}", depth + 1, objects)
                             for k, v in props.items()}
        if self.rules.property_ordering:
            out["propertyOrdering"] = list(props)
        required = [r for r in node.get("required") or [] if r in props]
        out["required"] = list(props) if self.rules.require_all else required
        out["additionalProperties"] = False

    def array(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int,
              objects: int) -> None:
        if "prefixItems" in node or isinstance(node.get("items"), list):
            raise self.fail(path, "a tuple (prefixItems)",
                            "use a list of one type, or an object with named fields")
        out.setdefault("type", "array")
        out["items"] = self.node(node.get("items", {}), f"{path}[]", depth + 1, objects)

    def assertions(self, node: dict[str, Any], out: dict[str, Any]) -> list[tuple[str, Any]]:
        dropped: list[tuple[str, Any]] = []
        for word in ASSERTIONS:
            if word not in node:
                continue
            value = node[word]
            # check_shape has made "format" a string and "minItems" a count
            if value in self.rules.formats if word == "format" else self.rules.keep(word, value):
                out[word] = value
                continue
            if word == "minItems" and value > 1 and self.rules.keep("minItems", 1):
                out["minItems"] = 1  # the nearest bound it takes, still narrowing nothing
            dropped.append((word, value))
        return dropped


def _checked_type(kind: Any, path: str, walk: _Walk) -> Any:
    kinds = kind if isinstance(kind, list) else [kind]
    bad = [k for k in kinds if not isinstance(k, str) or k not in _TYPES]
    if bad or not kinds:
        raise walk.fail(path, f"the type {kind!r}", f"use one of {sorted(_TYPES)}")
    return kind


def _list(value: Any, path: str, walk: _Walk) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise walk.fail(path, "an empty or malformed anyOf/oneOf/allOf", "fix the schema")
    return value


def _kind(node: dict[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        real = [k for k in kind if k != "null"]
        kind = real[0] if len(real) == 1 else None
    if isinstance(kind, str):
        return kind
    if "properties" in node:
        return "object"
    if "items" in node or "prefixItems" in node:
        return "array"
    unions = ("anyOf", "oneOf", "allOf", "enum", "const", "$ref")
    return "union" if any(k in node for k in unions) else "any"


