"""The one schema-conversion module, per provider: what each dialect keeps, narrows,
restates and refuses (an UnsupportedSchemaError naming the path, before any request)."""

from __future__ import annotations

import json

import pytest

from yait_aichain import Model, Skill
from yait_aichain.errors import ConfigurationError, UnsupportedSchemaError
from yait_aichain.models._schemas import (
    anthropic_native,
    anthropic_tool,
    claude_has_native_output,
    gemini_schema,
    openai_strict,
)
from yait_aichain.models.providers import AnthropicAdapter, OutputSpec

from .typed_models import Invoice

ALL = [openai_strict, anthropic_native, gemini_schema]


def obj(**props):
    return {"type": "object", "properties": props, "required": list(props)}


def walk(node):
    """Every dict node of a schema."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# -- OpenAI strict ----------------------------------------------------------------------


def test_openai_closes_every_object_requires_every_field_and_keeps_order():
    schema = {"type": "object", "properties": {
        "b": {"type": "string"},
        "a": {"type": "object", "properties": {"x": {"type": "integer"}}},
        "c": {"type": "array",
              "items": {"type": "object", "properties": {"y": {"type": "number"}}}},
    }, "required": ["b"]}
    out = openai_strict(schema)
    assert list(out["properties"]) == ["b", "a", "c"]
    objects = [n for n in walk(out) if n.get("type") == "object"]
    assert len(objects) == 3
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])


@pytest.mark.parametrize("convert", [openai_strict, anthropic_native])
def test_declared_fields_with_extras_allowed_are_closed_not_refused(convert):
    # pydantic's extra="allow": closing it only narrows what the model may answer.
    for extra in (True, {"type": "string"}):
        out = convert({**obj(a={"type": "string"}), "additionalProperties": extra})
        assert out["additionalProperties"] is False and list(out["properties"]) == ["a"]


def test_openai_keeps_supported_keywords_and_restates_the_others():
    out = openai_strict(obj(
        code={"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3, "description": "Code"},
        when={"type": "string", "format": "date-time"},
        mail={"type": "string", "format": "uri"},
        n={"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 1},
        tags={"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3,
              "uniqueItems": True},
    ))
    props = out["properties"]
    assert props["code"]["pattern"] == "^[A-Z]{3}$" and "minLength" not in props["code"]
    assert props["code"]["description"] == "Code\n\n(minLength: 3)"
    assert props["when"]["format"] == "date-time"
    assert "format" not in props["mail"] and props["mail"]["description"] == '(format: "uri")'
    assert (props["n"]["minimum"], props["n"]["maximum"], props["n"]["multipleOf"]) == (1, 9, 1)
    assert props["tags"]["minItems"] == 1 and props["tags"]["maxItems"] == 3
    assert "uniqueItems" not in props["tags"]


def test_openai_keeps_refs_and_definitions_and_recursion():
    schema = {"type": "object", "properties": {"root": {"$ref": "#/$defs/Node"}},
              "$defs": {"Node": {"type": "object", "properties": {
                  "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}}
    out = openai_strict(schema)
    assert out["properties"]["root"] == {"$ref": "#/$defs/Node"}
    assert out["$defs"]["Node"]["additionalProperties"] is False


def test_openai_turns_oneof_into_anyof_and_merges_a_single_allof():
    out = openai_strict(obj(
        v={"oneOf": [{"type": "string"}, {"type": "integer"}]},
        w={"allOf": [{"$ref": "#/$defs/W"}]},
    ) | {"$defs": {"W": obj(z={"type": "boolean"})}})
    assert out["properties"]["v"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert out["properties"]["w"] == {"$ref": "#/$defs/W"}


@pytest.mark.parametrize(("schema", "feature", "path"), [
    ({"type": "array", "items": {"type": "string"}}, "root of type 'array'", "$"),
    ({"anyOf": [obj(a={"type": "string"}), obj(b={"type": "string"})]}, "root of type", "$"),
    (obj(m={"type": "object", "additionalProperties": {"type": "integer"}}), "free-form keys",
     "$.m"),
    (obj(m={"type": "object"}), "free-form keys", "$.m"),
    (obj(a={}), "any type", "$.a"),
    (obj(a={"description": "anything"}), "any type", "$.a"),
    (obj(t={"type": "array", "prefixItems": [{"type": "string"}]}), "tuple", "$.t"),
    (obj(x={"allOf": [obj(a={"type": "string"}), obj(b={"type": "string"})]}), "allOf", "$.x"),
    (obj(x={"type": "string", "not": {"const": "a"}}), "'not'", "$.x"),
    (obj(x={"type": "object", "properties": {"a": {"type": "string"}},
            "patternProperties": {"^x": {"type": "string"}}}), "patternProperties", "$.x"),
    (obj(x={"enum": [{"a": 1}]}), "non-primitive", "$.x"),
    (obj(x={"type": "date"}), "type 'date'", "$.x"),
    (obj(x={"$ref": "https://example.com/s.json"}), "external reference", "$.properties.x"),
    (obj(x={"$ref": "#/$defs/Missing"}), "does not resolve", "$.properties.x"),
])
def test_openai_refuses_what_strict_mode_cannot_express(schema, feature, path):
    with pytest.raises(UnsupportedSchemaError, match="openai") as info:
        openai_strict(schema)
    assert feature in info.value.feature and info.value.path == path
    assert info.value.provider == "openai" and isinstance(info.value, ConfigurationError)


def test_openai_documented_size_limits():
    deep = {"type": "string"}
    for i in range(11):
        deep = obj(**{f"l{i}": deep})
    with pytest.raises(UnsupportedSchemaError, match="nested 11 levels"):
        openai_strict(deep)
    ten = {"type": "string"}
    for i in range(10):
        ten = obj(**{f"l{i}": ten})
    assert openai_strict(ten)["type"] == "object"
    with pytest.raises(UnsupportedSchemaError, match="1001 enum values"):
        openai_strict(obj(e={"enum": list(range(1001))}))
    with pytest.raises(UnsupportedSchemaError, match="5001 properties"):
        openai_strict(obj(**{f"p{i}": {"type": "integer"} for i in range(5001)}))
    with pytest.raises(UnsupportedSchemaError, match="characters"):
        openai_strict(obj(e={"enum": ["x" * 1000] * 121}))


# -- Anthropic --------------------------------------------------------------------------


def test_anthropic_native_closes_objects_but_keeps_optional_fields():
    out = anthropic_native({"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]})
    assert out["required"] == ["a"] and out["additionalProperties"] is False


def test_anthropic_native_drops_bounds_and_restates_them():
    out = anthropic_native(obj(
        n={"type": "integer", "minimum": 1, "maximum": 5},
        s={"type": "string", "maxLength": 10, "format": "uri"},
        l3={"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 9},
        l1={"type": "array", "items": {"type": "string"}, "minItems": 1},
        p={"type": "string", "pattern": "^a+$"},
        look={"type": "string", "pattern": "^(?!x).*$"},
    ))
    props = out["properties"]
    assert "minimum" not in props["n"] and props["n"]["description"] == "(minimum: 1; maximum: 5)"
    assert props["s"]["format"] == "uri" and "maxLength" not in props["s"]
    assert props["l3"]["minItems"] == 1 and "maxItems" not in props["l3"]
    assert "minItems: 3" in props["l3"]["description"]
    assert props["l1"]["minItems"] == 1 and "description" not in props["l1"]
    assert props["p"]["pattern"] == "^a+$"
    assert "pattern" not in props["look"] and "pattern" in props["look"]["description"]


@pytest.mark.parametrize(("schema", "feature"), [
    ({"type": "object", "properties": {"next": {"$ref": "#"}}}, "recursive"),
    ({"$defs": {"N": obj(kids={"type": "array", "items": {"$ref": "#/$defs/N"}})},
      **obj(root={"$ref": "#/$defs/N"})}, "recursive"),
    (obj(e={"enum": [[1, 2]]}), "non-primitive"),
    (obj(m={"type": "object", "additionalProperties": True}), "free-form keys"),
    (obj(x={"$ref": "other.json#/X"}), "external reference"),
])
def test_anthropic_native_refuses_what_it_cannot_express(schema, feature):
    with pytest.raises(UnsupportedSchemaError, match="anthropic") as info:
        anthropic_native(schema)
    assert feature in info.value.feature


def test_anthropic_tool_form_takes_json_schema_as_written_but_local_refs_only():
    schema = obj(n={"type": "integer", "minimum": 1},
                 m={"type": "object", "additionalProperties": {"type": "string"}})
    assert anthropic_tool(schema) == schema
    with pytest.raises(UnsupportedSchemaError, match="external"):
        anthropic_tool(obj(x={"$ref": "https://example.com/x"}))


@pytest.mark.parametrize(("model", "native"), [
    ("claude-sonnet-4-5", True), ("claude-sonnet-4-5-20250929", True),
    ("claude-opus-4-6", True), ("claude-haiku-4-5", True), ("claude-opus-4-7", True),
    ("claude-sonnet-4-6", True), ("anthropic/claude-opus-4-5", True),
    ("claude-sonnet-4-20250514", False), ("claude-opus-4-1", False),
    ("claude-3-5-haiku-20241022", False), ("claude-3-7-sonnet-latest", False),
    ("claude-x", False), ("my-proxy-model", False),
])
def test_claude_models_with_output_config(model, native):
    assert claude_has_native_output(model) is native
    body = AnthropicAdapter().build_request(
        model, [{"role": "user", "parts": ["x"]}],
        OutputSpec(type="json_schema", schema=obj(a={"type": "string"})), {}).body
    assert ("output_config" in body) is native and ("tools" in body) is not native


def test_anthropic_wraps_a_non_object_root_with_its_definitions_hoisted():
    schema = {"type": "array", "items": {"$ref": "#/$defs/Tag"},
              "$defs": {"Tag": obj(name={"type": "string"})}}
    for model in ("claude-sonnet-4-5", "claude-3-5-haiku"):
        body = AnthropicAdapter().build_request(
            model, [{"role": "user", "parts": ["x"]}],
            OutputSpec(type="json_schema", schema=schema), {}).body
        sent = (body["output_config"]["format"]["schema"] if "output_config" in body
                else body["tools"][0]["input_schema"])
        assert sent["properties"]["value"]["items"] == {"$ref": "#/$defs/Tag"}
        assert "Tag" in sent["$defs"]


# -- Gemini -----------------------------------------------------------------------------


def test_gemini_keeps_references_and_restates_what_it_drops():
    out = gemini_schema(Invoice.model_json_schema())
    assert out["properties"]["customer"] == {"$ref": "#/$defs/Customer"}
    assert out["$defs"]["Status"]["enum"] == ["paid", "open", "void"]
    assert out["$defs"]["Customer"]["additionalProperties"] is False
    assert out["properties"]["issued"]["description"].endswith('(format: "date")')
    assert out["propertyOrdering"] == ["number", "status", "customer", "lines", "issued"]
    assert out["$defs"]["Line"]["propertyOrdering"] == ["item", "quantity", "price"]
    out = gemini_schema(obj(
        level={"type": "integer", "enum": [1, 2, 3]}, tag={"const": "x"},
        flag={"enum": [True, None]}, free={"description": "anything"},
        s={"type": "string", "minLength": 2, "pattern": "^a"},
        n={"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.5},
        l={"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4}))
    props = out["properties"]
    assert props["level"] == {"type": "integer", "enum": [1, 2, 3]}  # numbers are enums too
    assert props["tag"] == {"enum": ["x"]}  # no const in responseJsonSchema
    assert props["flag"] == {"description": "(enum: [true, null])"}
    assert props["free"] == {"description": "anything"}  # any value
    assert props["s"] == {"type": "string", "description": '(minLength: 2; pattern: "^a")'}
    assert props["n"] == {"type": "number", "minimum": 0, "maximum": 1,
                          "description": "(multipleOf: 0.5)"}
    assert (props["l"]["minItems"], props["l"]["maxItems"]) == (2, 4)


def test_gemini_takes_a_root_that_is_not_an_object():
    out = gemini_schema({"type": "array", "items": {"$ref": "#/$defs/Tag"},
                         "$defs": {"Tag": obj(name={"type": "string"})}})
    assert out["items"] == {"$ref": "#/$defs/Tag"} and out["$defs"]["Tag"]["type"] == "object"


@pytest.mark.parametrize(("schema", "feature"), [
    (obj(m={"type": "object", "additionalProperties": {"type": "integer"}}), "free-form keys"),
    (obj(t={"type": "array", "prefixItems": [{"type": "string"}]}), "tuple"),
    (obj(x={"allOf": [obj(a={"type": "string"}), obj(b={"type": "string"})]}), "allOf"),
    ({"type": "object", "properties": {"next": {"$ref": "#"}}}, "recursive"),
    (obj(x={"$ref": "https://example.com/x"}), "external reference"),
    (obj(x={"type": "string", "if": {"const": "a"}}), "'if'"),
])
def test_gemini_refuses_what_response_json_schema_cannot_express(schema, feature):
    with pytest.raises(UnsupportedSchemaError, match="gemini") as info:
        gemini_schema(schema)
    assert feature in info.value.feature


# -- every provider ---------------------------------------------------------------------


@pytest.mark.parametrize("convert", ALL, ids=lambda f: f.__name__)
def test_the_invoice_model_converts_for_every_provider(convert):
    out = convert(Invoice.model_json_schema())
    assert out["properties"] and json.dumps(out)


@pytest.mark.parametrize("convert", ALL, ids=lambda f: f.__name__)
def test_conversion_never_changes_the_callers_schema(convert):
    schema = Invoice.model_json_schema()
    before = json.dumps(schema)
    convert(schema)
    convert(schema)["properties"]["number"]["title"] = "changed"  # a copy each time
    assert json.dumps(schema) == before
    assert convert(schema)["properties"]["number"].get("title") != "changed"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-6", "gemini-2.5-flash"])
def test_skill_refuses_an_inexpressible_schema_before_any_request(sim_env, model):
    sim_env.record = True
    schema = {"type": "object", "properties": {
        "scores": {"type": "object", "additionalProperties": {"type": "number"}}}}
    with pytest.raises(UnsupportedSchemaError, match="free-form keys") as info:
        Skill(model=Model(model), prompt="Score {text}",
              output={"format": {"type": "json_schema", "schema": schema}})
    assert info.value.path == "$.scores"
    assert sim_env.stats.requests == 0


@pytest.mark.parametrize("convert", ALL, ids=lambda f: f.__name__)
def test_shared_definitions_are_checked_once_not_exponentially(convert):
    # D0 -> D1 twice -> D2 twice ...: 2**24 paths, one walk per definition.
    defs = {"D24": obj(leaf={"type": "string"})}
    for i in range(23, -1, -1):
        defs[f"D{i}"] = obj(a={"$ref": f"#/$defs/D{i + 1}"}, b={"$ref": f"#/$defs/D{i + 1}"})
    schema = {**obj(root={"$ref": "#/$defs/D0"}), "$defs": defs}
    assert convert(schema)["properties"]["root"] == {"$ref": "#/$defs/D0"}


# A keyword holding a value of the wrong kind is refused with its path for every provider,
# never a TypeError or AttributeError from deep inside a converter.
MALFORMED = [
    ({"$ref": None}, "$.$ref"),
    ({"type": "object", "$ref": 1}, "$.$ref"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": -1}, "$.required"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": [1]}, "$.required"),
    ({"type": "object", "properties": {"a": 1}}, "$.properties"),
    ({"type": "object", "properties": []}, "$.properties"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": "x"}}},
     "$.properties.a.items"),
    ({"type": "object", "properties": {"a": {"anyOf": {"type": "string"}}}},
     "$.properties.a.anyOf"),
    ({"type": "object", "properties": {"a": {"type": "string", "enum": "ab"}}},
     "$.properties.a.enum"),
    ({"type": "object", "properties": {"a": {"type": "string", "maxLength": "5"}}},
     "$.properties.a.maxLength"),
    ({"type": "object", "properties": {"a": {"type": "number", "minimum": [1]}}},
     "$.properties.a.minimum"),
    ({"type": "object", "properties": {"a": {"type": "string", "format": 3}}},
     "$.properties.a.format"),
    ({"type": "object", "properties": {"a": {"type": [1]}}}, "$.properties.a.type"),
    ({"type": "object", "$defs": {"d": 5}, "properties": {"a": {"$ref": "#/$defs/d"}}},
     "$.$defs"),
]


@pytest.mark.parametrize("name", ["gpt-4o-mini", "claude-sonnet-4-5", "claude-3-5-haiku-latest",
                                  "gemini-2.5-flash"])
@pytest.mark.parametrize("schema, path", MALFORMED)
def test_a_malformed_schema_is_refused_with_its_path(name, schema, path):
    model = Model(name, api_key="k")
    output = {"format": {"type": "json_schema", "schema": schema, "name": "r"}}
    with pytest.raises(UnsupportedSchemaError, match="malformed") as caught:
        model.build_request([{"role": "user", "content": "hi"}], output)
    # (a dialect that wraps a non-object root puts the path under its wrapper)
    assert caught.value.path.endswith(path.removeprefix("$"))


def test_a_property_named_like_a_keyword_is_a_property():
    schema = {"type": "object", "required": ["required", "type"],
              "properties": {"required": {"type": "string"}, "type": {"type": "integer"}},
              "additionalProperties": False}
    for name in ("gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"):
        Model(name, api_key="k").build_request(
            [{"role": "user", "content": "hi"}],
            {"format": {"type": "json_schema", "schema": schema, "name": "r"}})
