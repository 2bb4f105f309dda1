"""What every dialect shares: reading the caller's schema, following its references,
restating dropped keywords, and the error for what a provider cannot express."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ...errors import UnsupportedSchemaError

__all__ = ["ASSERTIONS", "STRUCTURAL", "check_shape", "converted", "error", "inline_ref",
           "resolve", "restate", "self_contained", "walk_refs"]

# Keywords that shape the value in ways a dropped keyword could not be checked back:
# refusing them is the only honest answer for a constrained-decoding dialect.
STRUCTURAL = ("not", "if", "then", "else", "dependentSchemas", "dependentRequired",
              "patternProperties", "propertyNames", "unevaluatedProperties",
              "unevaluatedItems")
# Assertion keywords: safe to drop (validated after the reply), restated in the description.
ASSERTIONS = ("minLength", "maxLength", "pattern", "format", "minimum", "maximum",
              "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
              "uniqueItems", "contains", "minContains", "maxContains", "minProperties",
              "maxProperties")


Converter = Callable[[dict[str, Any], str], dict[str, Any]]


def converted(convert: Converter, schema: Any, provider: str) -> dict[str, Any]:
    """``convert(schema, provider)``, cached by the schema's text: a Skill converts its
    schema once, not on every call (and each caller gets its own copy). ``schema`` is a
    dict: every caller passes an OutputSpec's, which is checked to be one."""
    try:
        text = json.dumps(schema)  # key order kept: providers answer in schema order
    except (TypeError, ValueError) as exc:
        raise error(provider, "$", f"a schema that is not JSON ({exc})",
                    "use only JSON values in the schema") from None
    result: dict[str, Any] = json.loads(_converted(convert, text, provider))
    return result


@lru_cache(maxsize=512)
def _converted(convert: Converter, text: str, provider: str) -> str:
    schema = json.loads(text)
    check_shape(schema, provider)  # here, so a Skill's schema is checked once, not per call
    return json.dumps(convert(schema, provider))


def restate(out: dict[str, Any], dropped: list[tuple[str, Any]]) -> None:
    """Say in the description what the sent schema could not: the model still reads it
    (and the answer is validated against the caller's schema anyway)."""
    if not dropped:
        return
    note = "(" + "; ".join(f"{word}: {json.dumps(value)}" for word, value in dropped) + ")"
    described = out.get("description")
    out["description"] = f"{described}\n\n{note}" if described else note


def resolve(root: dict[str, Any], ref: str) -> Any:
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


def inline_ref(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with the local definition its ``$ref`` points at merged in (its own keys win)."""
    ref = node["$ref"]
    target = resolve(root, ref) if ref.startswith("#") else None
    return {**(target if isinstance(target, dict) else {}),
            **{k: v for k, v in node.items() if k != "$ref"}}


def walk_refs(node: Any, root: dict[str, Any], provider: str, path: str,
              stack: tuple[str, ...], seen: dict[str, bool] | None = None) -> bool:
    """Check every reference is local and resolves; True when one is recursive.

    ``seen`` remembers each reference already followed, so a definition used in many
    places is walked once (shared definitions would otherwise cost exponential time)."""
    seen = {} if seen is None else seen
    if not isinstance(node, dict):
        return False
    ref = node.get("$ref")
    recursive = isinstance(ref, str) and _follow(ref, root, provider, path, stack, seen)
    # Only where a keyword holds schemas (as check_shape walks): an enum value or a
    # default that happens to hold "$ref" is data, not a reference.
    return any([recursive] + [walk_refs(sub, root, provider, child, stack, seen)
                              for key, value in node.items()
                              for child, sub in _subschemas(key, value, path)])


def _follow(ref: str, root: dict[str, Any], provider: str, path: str,
            stack: tuple[str, ...], seen: dict[str, bool]) -> bool:
    if not ref.startswith("#"):
        raise error(provider, path, f"the external reference {ref!r}",
                    "inline the referenced schema, or put it under $defs")
    target = resolve(root, ref)
    if target is None:
        raise error(provider, path, f"the reference {ref!r}, which does not resolve",
                    "point it at an entry of $defs")
    if ref in stack:
        return True
    if ref not in seen:
        seen[ref] = walk_refs(target, root, provider, path, stack + (ref,), seen)
    return seen[ref]


def self_contained(schema: Any, provider: str) -> dict[str, Any]:
    """``schema`` unchanged, once every ``$ref`` in it is checked to be local."""
    return converted(_refs_checked, schema, provider)


def _refs_checked(schema: dict[str, Any], provider: str) -> dict[str, Any]:
    walk_refs(schema, schema, provider, "$", ())
    return schema


def _is_schema(value: Any) -> bool:
    return isinstance(value, (dict, bool))


def _schemas(value: Any) -> bool:
    return isinstance(value, list) and all(map(_is_schema, value))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What each keyword's value must be (JSON Schema 2020-12, with the draft-4 forms pydantic and
# older tools still write), as (test, what it must be), so a malformed schema is refused with
# its path instead of crashing a converter. Subschemas are walked only where a keyword holds
# schemas (_NESTED): one, a list, or an object of them (_MAPS).
_Rule = tuple[Callable[[Any], bool], str]
_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_NESTED: dict[str, _Rule] = {
    **dict.fromkeys(("additionalProperties", "not", "contains", "if", "then", "else",
                     "propertyNames", "unevaluatedItems", "unevaluatedProperties"),
                    (_is_schema, "a schema")),
    "items": (lambda v: _is_schema(v) or _schemas(v), "a schema or a list of schemas"),
    **dict.fromkeys(("prefixItems", "anyOf", "oneOf", "allOf"), (_schemas, "a list of schemas")),
    **dict.fromkeys(_MAPS, (lambda v: isinstance(v, dict) and all(map(_is_schema, v.values())),
                            "an object of schemas")),
}
_VALUES: dict[str, _Rule] = {
    **_NESTED,
    **dict.fromkeys(("$ref", "title", "description", "format", "pattern"),
                    (lambda v: isinstance(v, str), "a string")),
    "type": (lambda v: isinstance(v, str) or _strings(v), "a type name or a list of them"),
    "required": (_strings, "a list of property names"),
    "enum": (lambda v: isinstance(v, list), "a list of values"),
    **dict.fromkeys(("minLength", "maxLength", "minItems", "maxItems", "minProperties",
                     "maxProperties", "minContains", "maxContains"),
                    (_count, "a whole number >= 0")),
    **dict.fromkeys(("minimum", "maximum", "multipleOf"), (_number, "a number")),
    # draft 4 wrote these as booleans
    **dict.fromkeys(("exclusiveMinimum", "exclusiveMaximum"),
                    (lambda v: isinstance(v, (int, float)), "a number")),
}


def check_shape(schema: Any, provider: str, path: str = "$") -> None:
    """Refuse a schema whose keywords hold values of the wrong kind (``"required": 1``, a
    ``$ref`` that is not a string), naming where, before any converter reads it.

    Raises:
        UnsupportedSchemaError: the first malformed keyword, with its path.
    """
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        rule = _VALUES.get(key)
        if rule is not None and not rule[0](value):
            raise UnsupportedSchemaError(
                f"the output schema is malformed at {path}: {key!r} must be {rule[1]}, got "
                f"{json.dumps(value, default=repr)[:80]}; fix the schema (or build it from a "
                f"pydantic model)", provider=provider, path=f"{path}.{key}", feature=key)
        for child, sub in _subschemas(key, value, path):
            check_shape(sub, provider, child)


def _subschemas(key: str, value: Any, path: str) -> list[tuple[str, Any]]:
    if key not in _NESTED:
        return []
    if isinstance(value, list):
        return [(f"{path}.{key}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict) and key in _MAPS:
        return [(f"{path}.{key}.{name}", v) for name, v in value.items()]
    return [(f"{path}.{key}", value)]


def error(provider: str, path: str, feature: str, fix: str) -> UnsupportedSchemaError:
    return UnsupportedSchemaError(
        f"{provider} structured output cannot express {feature} at {path}; {fix}",
        provider=provider, path=path, feature=feature,
    )

