"""Each provider's structured-output dialect: the caller's JSON Schema in, the schema that
provider accepts out, or :class:`~yait_aichain.errors.UnsupportedSchemaError` before any
request is sent. This is the one place where schemas are rewritten for a provider.

The rule every conversion keeps: what is *sent* may be narrower than the caller's schema
(every property required, objects closed) or lose an assertion keyword the provider cannot
enforce (``minLength``, ``maximum``...): the Skill validates each answer against the
caller's own schema, so a dropped keyword is still checked, and it is also restated in the
description so the model sees it. Structure a provider cannot express (a free-form map
under a strict mode, recursion where references must be inlined, a root that is not an
object, external references) is refused with the path and a way out.

Dialects:

- OpenAI strict ``json_schema``: closed objects, all properties required, supported
  keywords only, at most 10 levels of nested objects, 5000 properties, 1000 enum values,
  120,000 characters of names and values; root must be an object.
- Anthropic ``output_config.format`` (Claude 4.5 models and later): closed objects,
  primitive enums, ``minItems`` 0 or 1, no numeric or length bounds, no recursion.
  Older Claude models get a forced tool whose ``input_schema`` takes JSON Schema as is.
- Gemini ``responseSchema`` (an OpenAPI 3.0 subset): upper-case types, ``nullable``,
  string enums, references inlined, no maps, no tuples, no recursion.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import UnsupportedSchemaError

__all__ = [
    "anthropic_native",
    "anthropic_tool",
    "claude_has_native_output",
    "gemini_schema",
    "openai_strict",
    "self_contained",
]

# Keywords that shape the value in ways a dropped keyword could not be checked back:
# refusing them is the only honest answer for a constrained-decoding dialect.
_STRUCTURAL = ("not", "if", "then", "else", "dependentSchemas", "dependentRequired",
               "patternProperties", "propertyNames", "unevaluatedProperties",
               "unevaluatedItems")
# Assertion keywords: safe to drop (validated after the reply), restated in the description.
_ASSERTIONS = ("minLength", "maxLength", "pattern", "format", "minimum", "maximum",
               "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
               "uniqueItems", "contains", "minContains", "maxContains", "minProperties",
               "maxProperties")
_PRIMITIVES = (str, int, float, bool, type(None))
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_MAX_DEPTH = 64  # of the walk itself, whatever the dialect allows


@dataclass(frozen=True)
class _Rules:
    """What one JSON-Schema-based dialect keeps."""

    provider: str
    keep: Callable[[str, Any], bool]  # (keyword, value) -> sent as is
    formats: frozenset[str]
    require_all: bool
    recursion: bool
    all_of: bool
    max_object_depth: int | None = None
    max_properties: int | None = None
    max_enum_values: int | None = None
    max_chars: int | None = None


_OPENAI_KEEP = frozenset({"pattern", "minimum", "maximum", "exclusiveMinimum",
                          "exclusiveMaximum", "multipleOf", "minItems", "maxItems"})
_OPENAI_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname",
                             "ipv4", "ipv6", "uuid"})
_ANTHROPIC_FORMATS = _OPENAI_FORMATS | {"uri"}
# Lookaround and backreferences: not in the regular subset constrained decoding compiles.
_COMPLEX_REGEX = re.compile(r"\(\?[=!<]|\\[1-9]|\\k<")


def _openai_keeps(key: str, value: Any) -> bool:
    return key in _OPENAI_KEEP


def _anthropic_keeps(key: str, value: Any) -> bool:
    if key == "minItems":
        return value in (0, 1)
    return key == "pattern" and isinstance(value, str) and not _COMPLEX_REGEX.search(value)


OPENAI = _Rules("openai", _openai_keeps, _OPENAI_FORMATS, require_all=True, recursion=True,
                all_of=False, max_object_depth=10, max_properties=5000, max_enum_values=1000,
                max_chars=120_000)
ANTHROPIC = _Rules("anthropic", _anthropic_keeps, _ANTHROPIC_FORMATS, require_all=False,
                   recursion=False, all_of=True)


def openai_strict(schema: Any) -> dict[str, Any]:
    """``schema`` as OpenAI's strict structured outputs accept it."""
    return _cached(OPENAI, _key(schema))


def anthropic_native(schema: Any) -> dict[str, Any]:
    """``schema`` as Claude's ``output_config.format`` accepts it."""
    return _cached(ANTHROPIC, _key(schema))


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


def self_contained(schema: Any, provider: str) -> dict[str, Any]:
    """``schema`` unchanged, once every ``$ref`` in it is checked to be local."""
    if not isinstance(schema, dict):
        raise _error(provider, "$", "a schema that is not a JSON object",
                     "pass a JSON Schema dict or a pydantic model class")
    _walk_refs(schema, schema, provider, "$", ())
    return schema


# -- the JSON-Schema dialects -----------------------------------------------------------


def _key(schema: Any) -> str:
    if not isinstance(schema, dict):
        raise _error("schema", "$", "a schema that is not a JSON object",
                     "pass a JSON Schema dict or a pydantic model class")
    try:
        return json.dumps(schema)  # key order kept: providers answer in schema order
    except (TypeError, ValueError) as exc:
        raise _error("schema", "$", f"a schema that is not JSON ({exc})",
                     "use only JSON values in the schema") from None


@lru_cache(maxsize=256)
def _convert(rules: _Rules, key: str) -> str:
    # Cached as text: a Skill converts its schema once, not on every call.
    return json.dumps(_Walk(rules, json.loads(key)).root())


def _cached(rules: _Rules, key: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_convert(rules, key))
    return result


class _Walk:
    def __init__(self, rules: _Rules, schema: dict[str, Any]):
        self.rules = rules
        self.schema = schema
        self.properties = 0
        self.enum_values = 0
        self.chars = 0

    def fail(self, path: str, feature: str, fix: str) -> UnsupportedSchemaError:
        return _error(self.rules.provider, path, feature, fix)

    def root(self) -> dict[str, Any]:
        rules, schema = self.rules, self.schema
        if _walk_refs(schema, schema, rules.provider, "$", ()) and not rules.recursion:
            raise self.fail("$", "a recursive schema",
                            "bound the nesting (e.g. a fixed number of levels)")
        body = {k: v for k, v in schema.items() if k not in ("$defs", "definitions", "$schema")}
        if "$ref" in body:
            body = {**_resolve(schema, body["$ref"]), **{k: v for k, v in body.items()
                                                          if k != "$ref"}}
        if _kind(body) != "object":
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
        if not isinstance(node, dict) or _kind(node) == "any" and "$ref" not in node:
            raise self.fail(path, "a value of any type (no 'type')",
                            "give the field a concrete type")
        for word in _STRUCTURAL:
            if word in node:
                raise self.fail(path, f"the keyword {word!r}", "express it with properties, "
                                "enums or anyOf, or check it in your own code")
        if isinstance(node.get("$ref"), str):
            return {"$ref": node["$ref"]}  # local (checked); definitions are converted once
        out: dict[str, Any] = {k: node[k] for k in ("title", "description")
                               if isinstance(node.get(k), str)}
        if "type" in node:
            out["type"] = _checked_type(node["type"], path, self)
        self.literals(node, out, path)
        self.unions(node, out, path, depth, objects)
        kind = _kind(node)
        if "enum" in out or "const" in out or "anyOf" in out:
            pass  # the literals or the options say it all
        elif kind == "object":
            self.object(node, out, path, depth, objects + 1)
        elif kind == "array":
            self.array(node, out, path, depth, objects)
        _restate(out, self.assertions(node, out))
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

    def literals(self, node: dict[str, Any], out: dict[str, Any], path: str) -> None:
        for word in ("enum", "const"):
            if word not in node:
                continue
            values = node[word] if word == "enum" else [node[word]]
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, _PRIMITIVES) for v in values):
                raise self.fail(path, f"an {word} of non-primitive values",
                                "use strings, numbers, booleans or null")
            self.enum_values += len(values)
            self.chars += sum(len(v) for v in values if isinstance(v, str))
            out[word] = node[word]

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
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        if not isinstance(props, dict):
            raise self.fail(path, "'properties' that is not an object", "fix the schema")
        if extra not in (None, False) or not props:
            raise self.fail(path, "an object with free-form keys (a dict/map)",
                            "declare its fields, or use a list of {key, value} objects")
        self.properties += len(props)
        self.chars += sum(len(k) for k in props)
        out.setdefault("type", "object")
        out["properties"] = {k: self.node(v, f"{path}.{k}", depth + 1, objects)
                             for k, v in props.items()}
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
        dropped = []
        for word in _ASSERTIONS:
            if word not in node:
                continue
            value = node[word]
            if word == "format":
                if isinstance(value, str) and value in self.rules.formats:
                    out[word] = value
                    continue
            elif self.rules.keep(word, value):
                out[word] = value
                continue
            if word == "minItems" and isinstance(value, int) and value > 1 and \
                    self.rules.keep("minItems", 1):
                out["minItems"] = 1  # the nearest bound it takes, still narrowing nothing
            dropped.append((word, value))
        return dropped


def _restate(out: dict[str, Any], dropped: list[tuple[str, Any]]) -> None:
    """Say in the description what the sent schema could not: the model still reads it
    (and the answer is validated against the caller's schema anyway)."""
    if not dropped:
        return
    note = "(" + "; ".join(f"{word}: {json.dumps(value)}" for word, value in dropped) + ")"
    described = out.get("description")
    out["description"] = f"{described}\n\n{note}" if described else note


def _checked_type(kind: Any, path: str, walk: _Walk) -> Any:
    kinds = kind if isinstance(kind, list) else [kind]
    bad = [k for k in kinds if k not in _TYPES]
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


# -- references -------------------------------------------------------------------------


def _resolve(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for token in ref[1:].split("/"):
        if not token:
            continue
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def _walk_refs(node: Any, root: dict[str, Any], provider: str, path: str,
               stack: tuple[str, ...], seen: dict[str, bool] | None = None) -> bool:
    """Check every reference is local and resolves; True when one is recursive.

    ``seen`` remembers each reference already followed, so a definition used in many
    places is walked once (shared definitions would otherwise cost exponential time)."""
    seen = {} if seen is None else seen
    if isinstance(node, list):
        return any([_walk_refs(v, root, provider, f"{path}[{i}]", stack, seen)
                    for i, v in enumerate(node)])
    if not isinstance(node, dict):
        return False
    recursive = False
    ref = node.get("$ref")
    if isinstance(ref, str):
        recursive = _follow(ref, root, provider, path, stack, seen)
    return any([recursive] + [_walk_refs(v, root, provider, f"{path}.{k}", stack, seen)
                              for k, v in node.items() if k != "$ref"])


def _follow(ref: str, root: dict[str, Any], provider: str, path: str,
            stack: tuple[str, ...], seen: dict[str, bool]) -> bool:
    if not ref.startswith("#"):
        raise _error(provider, path, f"the external reference {ref!r}",
                     "inline the referenced schema, or put it under $defs")
    target = _resolve(root, ref)
    if target is None:
        raise _error(provider, path, f"the reference {ref!r}, which does not resolve",
                     "point it at an entry of $defs")
    if ref in stack:
        return True
    if ref not in seen:
        seen[ref] = _walk_refs(target, root, provider, path, stack + (ref,), seen)
    return seen[ref]


# -- Gemini -----------------------------------------------------------------------------

# The Schema keys Gemini's responseSchema accepts besides the ones rewritten below.
_GEMINI_KEYS = frozenset({
    "title", "description", "minItems", "maxItems", "minProperties",
    "maxProperties", "minLength", "maxLength", "pattern", "example", "default",
    "minimum", "maximum",
})
# Gemini refuses other formats (e.g. "email") with a 400, so they are dropped.
_GEMINI_FORMATS = frozenset({"date-time", "enum", "int32", "int64", "float", "double"})
_GEMINI_DEPTH = 32


def gemini_schema(schema: Any) -> dict[str, Any]:
    """``schema`` rewritten into the subset Gemini's ``responseSchema`` accepts.

    ``$ref`` to local definitions is inlined, ``["X", "null"]`` and ``anyOf`` with null
    become ``nullable``, ``const`` becomes a one-value ``enum``, and property order is kept
    through ``propertyOrdering`` (Gemini would sort the keys otherwise).
    """
    schema = self_contained(schema, "gemini")
    result: dict[str, Any] = json.loads(_gemini_cached(_key(schema)))
    return result


@lru_cache(maxsize=256)
def _gemini_cached(key: str) -> str:
    schema = json.loads(key)
    return json.dumps(_gemini(schema, schema, "$", 0))


def _gemini(node: Any, root: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    if depth > _GEMINI_DEPTH:
        raise _error("gemini", path, "a recursive or too deep schema",
                     "bound the nesting; Gemini inlines every reference")
    if not isinstance(node, dict):
        return {}
    _gemini_refuse(node, path)
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _resolve(root, ref) if ref.startswith("#") else None
        return _gemini({**(target or {}), **{k: v for k, v in node.items() if k != "$ref"}},
                       root, path, depth + 1)
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _GEMINI_KEYS}
    dropped = [(k, node[k]) for k in _ASSERTIONS if k in node and k not in _GEMINI_KEYS]
    if node.get("format") in _GEMINI_FORMATS:
        out["format"] = node["format"]
        dropped = [d for d in dropped if d[0] != "format"]
    kind = _gemini_enum(node, out, dropped, _gemini_type(node, out))
    _restate(out, dropped)
    if isinstance(kind, str) and kind != "null":
        out["type"] = kind.upper()
    out = _gemini_unions(node, out, root, path, depth)
    _gemini_object(node, out, root, path, depth)
    items = node.get("items")
    if isinstance(items, dict):
        out["items"] = _gemini(items, root, f"{path}[]", depth + 1)
        out.setdefault("type", "ARRAY")
    return out


def _gemini_refuse(node: dict[str, Any], path: str) -> None:
    for word in _STRUCTURAL + ("prefixItems",):
        if word in node:
            raise _error("gemini", path, f"the keyword {word!r}",
                         "express it with properties, enums or anyOf")


def _gemini_enum(node: dict[str, Any], out: dict[str, Any], dropped: list[tuple[str, Any]],
                 kind: str | None) -> str | None:
    enum = [node["const"]] if "const" in node else node.get("enum")
    # Gemini enums hold strings only; another enum is left to the type (and validated).
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        out["enum"] = enum
        return kind or "string"
    if isinstance(enum, list) and enum:
        dropped.append(("enum", enum))
    return kind


def _gemini_type(node: dict[str, Any], out: dict[str, Any]) -> str | None:
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


def _gemini_unions(node: dict[str, Any], out: dict[str, Any], root: dict[str, Any],
                   path: str, depth: int) -> dict[str, Any]:
    options = node.get("anyOf", node.get("oneOf"))
    if isinstance(options, list):
        real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(real) < len(options):
            out["nullable"] = True
        cleaned = [_gemini(o, root, f"{path}.anyOf[{i}]", depth + 1) for i, o in enumerate(real)]
        if len(cleaned) == 1:
            out = {**cleaned[0], **out}
        elif cleaned:
            out["anyOf"] = cleaned
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        out = {**_gemini(all_of[0], root, f"{path}.allOf[0]", depth + 1), **out}
    elif isinstance(all_of, list) and all_of:
        raise _error("gemini", path, "'allOf' with several parts",
                     "merge the parts into one object schema")
    return out


def _gemini_object(node: dict[str, Any], out: dict[str, Any], root: dict[str, Any],
                   path: str, depth: int) -> None:
    props = node.get("properties")
    extra = node.get("additionalProperties")
    is_object = isinstance(props, dict) or node.get("type") == "object"
    if is_object and not props and extra not in (None, False):
        # An OBJECT needs non-empty properties in responseSchema: a map has none.
        raise _error("gemini", path, "an object with free-form keys (a dict/map)",
                     "declare its fields, or use a list of {key, value} objects")
    if isinstance(props, dict) and props:
        out["properties"] = {k: _gemini(v, root, f"{path}.{k}", depth + 1)
                             for k, v in props.items()}
        out["propertyOrdering"] = list(props)
        required = [r for r in node.get("required") or [] if r in props]
        if required:
            out["required"] = required
        out.setdefault("type", "OBJECT")


def _error(provider: str, path: str, feature: str, fix: str) -> UnsupportedSchemaError:
    return UnsupportedSchemaError(
        f"{provider} structured output cannot express {feature} at {path}; {fix}",
        provider=provider, path=path, feature=feature,
    )
