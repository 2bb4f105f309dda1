"""What every dialect shares: reading the caller's schema, following its references,
restating dropped keywords, and the error for what a provider cannot express."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ...errors import UnsupportedSchemaError

__all__ = ["ASSERTIONS", "STRUCTURAL", "converted", "error", "resolve", "restate",
           "self_contained", "walk_refs"]

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


def converted(convert: Callable[[dict[str, Any]], dict[str, Any]], schema: Any) -> dict[str, Any]:
    """``convert(schema)``, cached by the schema's text: a Skill converts its schema once,
    not on every call (and each caller gets its own copy)."""
    if not isinstance(schema, dict):
        raise error("schema", "$", "a schema that is not a JSON object",
                    "pass a JSON Schema dict or a pydantic model class")
    try:
        text = json.dumps(schema)  # key order kept: providers answer in schema order
    except (TypeError, ValueError) as exc:
        raise error("schema", "$", f"a schema that is not JSON ({exc})",
                    "use only JSON values in the schema") from None
    result: dict[str, Any] = json.loads(_converted(convert, text))
    return result


@lru_cache(maxsize=512)
def _converted(convert: Callable[[dict[str, Any]], dict[str, Any]], text: str) -> str:
    return json.dumps(convert(json.loads(text)))


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


def walk_refs(node: Any, root: dict[str, Any], provider: str, path: str,
              stack: tuple[str, ...], seen: dict[str, bool] | None = None) -> bool:
    """Check every reference is local and resolves; True when one is recursive.

    ``seen`` remembers each reference already followed, so a definition used in many
    places is walked once (shared definitions would otherwise cost exponential time)."""
    seen = {} if seen is None else seen
    if isinstance(node, list):
        return any([walk_refs(v, root, provider, f"{path}[{i}]", stack, seen)
                    for i, v in enumerate(node)])
    if not isinstance(node, dict):
        return False
    recursive = False
    ref = node.get("$ref")
    if isinstance(ref, str):
        recursive = _follow(ref, root, provider, path, stack, seen)
    return any([recursive] + [walk_refs(v, root, provider, f"{path}.{k}", stack, seen)
                              for k, v in node.items() if k != "$ref"])


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
    if not isinstance(schema, dict):
        raise error(provider, "$", "a schema that is not a JSON object",
                    "pass a JSON Schema dict or a pydantic model class")
    walk_refs(schema, schema, provider, "$", ())
    return schema


def error(provider: str, path: str, feature: str, fix: str) -> UnsupportedSchemaError:
    return UnsupportedSchemaError(
        f"{provider} structured output cannot express {feature} at {path}; {fix}",
        provider=provider, path=path, feature=feature,
    )

