"""The pure provider adapters: request bodies, response parsing, usage, error details."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from yait_aichain._usage import Usage
from yait_aichain.errors import ConfigurationError, InvalidResponseError
from yait_aichain.models import providers
from yait_aichain.models.providers import (
    ADAPTERS,
    ALIASES,
    DEFAULT_LOCAL_BASE_URLS,
    TEXT,
    AnthropicAdapter,
    GeminiAdapter,
    OpenAIAdapter,
    OpenAICompatibleAdapter,
    OutputSpec,
    get_adapter,
)
from yait_aichain.models.providers._json import parse_json

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
JSON = OutputSpec(type="json")
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
    "required": ["name", "born"],
    "additionalProperties": False,
}
SCHEMA = OutputSpec(type="json_schema", schema=PERSON, name="person")

ANTHROPIC, OPENAI, GEMINI, COMPAT = (
    AnthropicAdapter(), OpenAIAdapter(), GeminiAdapter(), OpenAICompatibleAdapter()
)
ALL = [ANTHROPIC, OPENAI, GEMINI, COMPAT]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def user(*parts):
    return {"role": "user", "parts": list(parts)}


def text(t):
    return {"type": "text", "text": t}


URL_IMAGE = {"type": "image", "source": {"kind": "url", "url": "https://example.com/cat.png"}}
B64_IMAGE = {"type": "image",
             "source": {"kind": "base64", "data": "iVBORw0KGgoAAAANS", "mime_type": "image/png"}}
CONVERSATION = [
    {"role": "system", "parts": [text("Be brief.")]},
    {"role": "system", "parts": [text("Answer in French.")]},
    user(text("Hi")),
    {"role": "assistant", "parts": [text("Bonjour")]},
    user(text("Capital of Italy?")),
]
ALL_OPTIONS = {"temperature": 0.2, "max_tokens": 300, "top_p": 0.9, "top_k": 40,
               "stop": ["END"], "seed": 7}


def reason_of(adapter, data, output=TEXT) -> str:
    with pytest.raises(InvalidResponseError) as info:
        adapter.parse_response(data, output)
    assert info.value.status == 200 and info.value.provider == adapter.name
    return info.value.reason


# -- registry -------------------------------------------------------------------------

def test_registry_names_aliases_and_local_urls():
    assert set(ADAPTERS) == {"anthropic", "openai", "gemini", "openai-compatible"}
    assert all(a.name == key for key, a in ADAPTERS.items())
    assert ALIASES["google"] == "gemini"
    for alias in ("ollama", "vllm", "llamacpp", "llama.cpp", "lmstudio", "local",
                  "openai_compatible"):
        assert ALIASES[alias] == "openai-compatible"
        assert get_adapter(alias) is ADAPTERS["openai-compatible"]
    assert DEFAULT_LOCAL_BASE_URLS["ollama"] == "http://localhost:11434/v1"
    assert DEFAULT_LOCAL_BASE_URLS["llama.cpp"] == DEFAULT_LOCAL_BASE_URLS["llamacpp"]
    assert get_adapter("Google") is ADAPTERS["gemini"]
    with pytest.raises(ConfigurationError, match="known providers"):
        get_adapter("nope")


def test_all_is_sorted_and_complete():
    assert providers.__all__ == sorted(providers.__all__)
    assert all(hasattr(providers, n) for n in providers.__all__)


def test_class_settings():
    assert (ANTHROPIC.key_env, ANTHROPIC.base_url_env, ANTHROPIC.default_base_url) == (
        ("ANTHROPIC_API_KEY",), "ANTHROPIC_BASE_URL", "https://api.anthropic.com")
    assert (OPENAI.key_env, OPENAI.default_base_url) == (
        ("OPENAI_API_KEY",), "https://api.openai.com/v1")
    assert GEMINI.key_env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert GEMINI.base_url_env == "GEMINI_BASE_URL"
    # A real OpenAI key must never be sent to a local server by default.
    assert COMPAT.key_env == () and COMPAT.key_required is False
    assert COMPAT.base_url_env == "OPENAI_BASE_URL" and COMPAT.default_base_url == ""


# -- keys only in headers ---------------------------------------------------------------

@pytest.mark.parametrize("adapter,expected", [
    (ANTHROPIC, {"x-api-key": "sk-secret"}),
    (OPENAI, {"Authorization": "Bearer sk-secret"}),
    (COMPAT, {"Authorization": "Bearer sk-secret"}),
    (GEMINI, {"x-goog-api-key": "sk-secret"}),
])
def test_auth_headers_and_key_never_in_request(adapter, expected):
    assert adapter.auth_headers("sk-secret") == expected
    assert adapter.auth_headers(None) == {} and adapter.auth_headers("") == {}
    req = adapter.build_request("some-model", [user(text("hi"))], TEXT, {})
    assert "sk-secret" not in json.dumps([req.path, req.body, req.headers])
    assert "key=" not in req.path


# -- Anthropic requests -------------------------------------------------------------------

def test_anthropic_request_lifts_system_and_maps_options():
    req = ANTHROPIC.build_request("claude-sonnet-4-6", CONVERSATION, TEXT, ALL_OPTIONS)
    assert req.path == "/v1/messages"
    # The version the current API reference documents and the official SDK sends.
    assert req.headers == {"anthropic-version": "2026-10-21"}
    body = req.body
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "Hi"}]
    assert body["max_tokens"] == 300
    # API version 2026-10-21 removed the sampling settings (400 even at the default).
    assert not {"temperature", "top_p", "top_k"} & set(body)
    assert body["stop_sequences"] == ["END"]
    assert "seed" not in body and "stop" not in body and "tools" not in body


def test_anthropic_default_max_tokens_and_no_empty_fields():
    body = ANTHROPIC.build_request("claude-x", [user("hi")], TEXT, {}).body
    assert body["max_tokens"] == 4096
    assert set(body) == {"model", "max_tokens", "messages"}


def test_anthropic_images():
    body = ANTHROPIC.build_request("claude-x", [user(text("What?"), URL_IMAGE, B64_IMAGE)],
                                   TEXT, {}).body
    content = body["messages"][0]["content"]
    assert content[1] == {"type": "image",
                          "source": {"type": "url", "url": "https://example.com/cat.png"}}
    assert content[2] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgoAAAANS"}}


def test_anthropic_json_schema_is_one_forced_tool():
    body = ANTHROPIC.build_request("claude-x", [user("Who?")], SCHEMA, {}).body
    assert body["tools"][0]["name"] == "person"
    assert body["tools"][0]["input_schema"] == PERSON
    assert body["tool_choice"] == {"type": "tool", "name": "person"}


def test_anthropic_json_schema_non_object_is_wrapped_and_unwrapped():
    spec = OutputSpec(type="json_schema", schema={"type": "array", "items": {"type": "string"}})
    body = ANTHROPIC.build_request("claude-x", [user("List")], spec, {}).body
    assert body["tools"][0]["input_schema"]["type"] == "object"
    data = fixture("anthropic_tool_use")
    data["content"][0].update(name="response", input={"value": ["a", "b"]})
    assert ANTHROPIC.parse_response(data, spec).output == ["a", "b"]


def test_json_hint_added_only_when_no_message_mentions_json():
    body = ANTHROPIC.build_request("claude-x", [user("Extract the name")], JSON, {}).body
    assert "JSON" in body["system"]
    body = ANTHROPIC.build_request("claude-x", [user("Return json please")], JSON, {}).body
    assert "system" not in body
    chat = OPENAI.build_request("gpt-4.1", [user("Extract the name")], JSON, {}).body["messages"]
    assert chat[0]["role"] == "system" and "JSON" in chat[0]["content"]
    chat = OPENAI.build_request("gpt-4.1", [user("Extract the name")], TEXT, {}).body["messages"]
    assert len(chat) == 1


# -- OpenAI requests ----------------------------------------------------------------------

def test_openai_request_messages_and_options():
    req = OPENAI.build_request("gpt-4.1", CONVERSATION, TEXT, ALL_OPTIONS)
    assert req.path == "/chat/completions"
    body = req.body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in body["messages"]] == [
        "system", "system", "user", "assistant", "user"]
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["stop"] == ["END"] and body["seed"] == 7
    assert "top_k" not in body  # not an OpenAI option
    assert "stream" not in body and "response_format" not in body


def test_openai_content_list_for_images_and_many_parts():
    msgs = [user(text("What?"), URL_IMAGE, B64_IMAGE), user(text("a"), text("b"))]
    chat = OPENAI.build_request("gpt-4.1", msgs, TEXT, {}).body["messages"]
    assert chat[0]["content"] == [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANS"}},
    ]
    assert chat[1]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini-2025-04-16", "openai/o3"])
def test_openai_reasoning_models_drop_sampling(model):
    body = OPENAI.build_request(model, [user("hi")], TEXT, ALL_OPTIONS).body
    assert "temperature" not in body and "top_p" not in body
    assert body["max_completion_tokens"] == 300


def test_openai_json_modes():
    body = OPENAI.build_request("gpt-4.1", [user("json")], JSON, {}).body
    assert body["response_format"] == {"type": "json_object"}
    body = OPENAI.build_request("gpt-4.1", [user("x")], SCHEMA, {}).body
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "person", "schema": PERSON, "strict": True}}
    loose = OutputSpec(type="json_schema", schema=PERSON, name="my person!", strict=False)
    fmt = OPENAI.build_request("gpt-4.1", [user("x")], loose, {}).body["response_format"]
    assert fmt["json_schema"]["name"] == "my_person_" and fmt["json_schema"]["strict"] is False


def test_compatible_request_differs_from_openai():
    body = COMPAT.build_request("o3-local", [user("hi")], TEXT, ALL_OPTIONS).body
    assert body["max_tokens"] == 300 and "max_completion_tokens" not in body
    assert body["top_k"] == 40
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9  # no name quirks
    assert body["stream"] is False
    assert COMPAT.build_request("m", [user("hi")], SCHEMA, {}).body["response_format"][
        "type"] == "json_schema"


# -- Gemini requests ----------------------------------------------------------------------

def test_gemini_request_roles_system_and_config():
    req = GEMINI.build_request("gemini-2.5-flash", CONVERSATION, TEXT, ALL_OPTIONS)
    assert req.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    body = req.body
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nAnswer in French."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": "Bonjour"}]
    assert body["generationConfig"] == {
        "temperature": 0.2, "maxOutputTokens": 300, "topP": 0.9, "topK": 40,
        "stopSequences": ["END"], "seed": 7}


def test_gemini_minimal_request_and_path_safety():
    req = GEMINI.build_request("models/gemini-2.5-pro", [user("hi")], TEXT, {})
    assert req.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert set(req.body) == {"contents"}
    evil = GEMINI.build_request("../x?key=1", [user("hi")], TEXT, {}).path
    assert "/../" not in evil and "?" not in evil


def test_gemini_images():
    parts = GEMINI.build_request("g", [user(text("What?"), URL_IMAGE, B64_IMAGE)],
                                 TEXT, {}).body["contents"][0]["parts"]
    assert parts[1] == {"fileData": {"mimeType": "image/png",
                                     "fileUri": "https://example.com/cat.png"}}
    assert parts[2] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgoAAAANS"}}


def test_gemini_json_modes_and_schema_cleaning():
    cfg = GEMINI.build_request("g", [user("x")], JSON, {}).body["generationConfig"]
    assert cfg == {"responseMimeType": "application/json"}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "format": "email"},
            "nick": {"type": ["string", "null"]},
            "kind": {"const": "person"},
            "pet": {"anyOf": [{"$ref": "#/$defs/pet"}, {"type": "null"}]},
        },
        "required": ["name", "ghost"],
        "$defs": {"pet": {"type": "object", "properties": {"age": {"type": "integer"}}}},
    }
    cfg = GEMINI.build_request("g", [user("x")], OutputSpec(type="json_schema", schema=schema),
                               {}).body["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    assert "responseSchema" not in cfg
    assert cfg["responseJsonSchema"] == {
        "type": "object",
        "properties": {
            # Gemini documents no "email" format: it is dropped, and restated for the model.
            "name": {"type": "string", "description": '(format: "email")'},
            "nick": {"type": ["string", "null"]},
            "kind": {"enum": ["person"]},  # responseJsonSchema has no const
            "pet": {"anyOf": [{"$ref": "#/$defs/pet"}, {"type": "null"}]},
        },
        "propertyOrdering": ["name", "nick", "kind", "pet"],
        "required": ["name"],
        "additionalProperties": False,
        "$defs": {"pet": {"type": "object", "properties": {"age": {"type": "integer"}},
                          "propertyOrdering": ["age"], "required": [],
                          "additionalProperties": False}},
    }


def test_gemini_recursive_schema_is_a_configuration_error():
    schema = {"$ref": "#/$defs/n", "$defs": {"n": {"type": "object",
                                                   "properties": {"next": {"$ref": "#/$defs/n"}}}}}
    with pytest.raises(ConfigurationError, match="recursive"):
        GEMINI.build_request("g", [user("x")], OutputSpec(type="json_schema", schema=schema), {})


# -- inputs no adapter can express --------------------------------------------------------

@pytest.mark.parametrize("adapter", ALL, ids=lambda a: a.name)
def test_unsupported_part_type_names_it(adapter):
    audio = {"type": "audio", "source": {"kind": "base64", "data": "AAAA"}}
    with pytest.raises(ConfigurationError, match="'audio'"):
        adapter.build_request("m", [user(audio)], TEXT, {})


@pytest.mark.parametrize("adapter", ALL, ids=lambda a: a.name)
@pytest.mark.parametrize("messages,match", [
    ([{"role": "tool", "parts": ["x"]}], "role"),
    ([user({"type": "image", "source": {"kind": "file", "path": "/x"}})], "kind"),
    ([user({"type": "image", "source": {"kind": "base64", "data": "AAAA"}})], "mime_type"),
    ([{"role": "system", "parts": [URL_IMAGE]}, user("x")], "system"),
])
def test_bad_messages_are_configuration_errors(adapter, messages, match):
    with pytest.raises(ConfigurationError, match=match):
        adapter.build_request("m", messages, TEXT, {})


def test_base64_mime_is_sniffed_and_data_urls_are_inlined():
    sniffed = {"type": "image", "source": {"kind": "base64", "data": "/9j/4AAQ"}}
    data_url = {"type": "image", "source": {"kind": "url", "url": "data:image/gif;base64,R0lG"}}
    content = ANTHROPIC.build_request("c", [user(sniffed, data_url)], TEXT, {}).body[
        "messages"][0]["content"]
    assert content[0]["source"]["media_type"] == "image/jpeg"
    assert content[1]["source"] == {"type": "base64", "media_type": "image/gif", "data": "R0lG"}


@pytest.mark.parametrize("adapter", [ANTHROPIC, GEMINI], ids=lambda a: a.name)
def test_system_only_conversation_is_refused(adapter):
    with pytest.raises(ConfigurationError, match="at least one 'user' message"):
        adapter.build_request("m", [{"role": "system", "parts": ["x"]}], TEXT, {})


# -- parsing successful responses -----------------------------------------------------------

def test_anthropic_parse_text_and_usage_with_cache():
    parsed = ANTHROPIC.parse_response(fixture("anthropic_text"), TEXT)
    assert parsed.output == "Paris is the capital of France."
    assert parsed.finish_reason == "end_turn"
    assert parsed.usage == Usage(126, 9, 135, cache_read_tokens=100, cache_write_tokens=5)


def test_anthropic_parse_fenced_json_and_tool_use():
    assert ANTHROPIC.parse_response(fixture("anthropic_json_fenced"), JSON).output == {
        "title": "Pools", "tags": ["llm", "batch"]}
    parsed = ANTHROPIC.parse_response(fixture("anthropic_tool_use"), SCHEMA)
    assert parsed.output == {"name": "Ada Lovelace", "born": 1815}
    assert parsed.usage == Usage(412, 58, 470)


def test_anthropic_text_cut_off_is_returned_with_its_finish_reason():
    data = fixture("anthropic_truncated_json")
    parsed = ANTHROPIC.parse_response(data, TEXT)
    assert parsed.output.startswith("```json") and parsed.finish_reason == "max_tokens"


def test_openai_parse_text_json_and_schema():
    parsed = OPENAI.parse_response(fixture("openai_text"), TEXT)
    assert parsed.output == "Paris is the capital of France."
    assert parsed.usage == Usage(19, 8, 27) and parsed.finish_reason == "stop"
    for spec in (JSON, SCHEMA):
        assert OPENAI.parse_response(fixture("openai_json"), spec).output == {
            "name": "Ada Lovelace", "born": 1815}


def test_compatible_parse_ollama_and_list_content():
    assert COMPAT.parse_response(fixture("ollama_text"), TEXT).output == "Bonjour !"
    data = fixture("ollama_text")
    data["choices"][0]["message"]["content"] = [{"type": "text", "text": "Bon"},
                                                {"type": "text", "text": "jour"}]
    assert COMPAT.parse_response(data, TEXT).output == "Bonjour"


def test_gemini_parse_skips_thoughts_and_counts_them_as_output():
    parsed = GEMINI.parse_response(fixture("gemini_text"), TEXT)
    assert parsed.output == "Paris is the capital of France."
    assert parsed.usage == Usage(10, 32, 42)
    assert parsed.finish_reason == "STOP"
    assert GEMINI.parse_response(fixture("gemini_json"), SCHEMA).output == {
        "name": "Ada Lovelace", "born": 1815}


# -- unusable 2xx bodies --------------------------------------------------------------------

def _with(name, change):
    data = copy.deepcopy(fixture(name))
    change(data)
    return data


def _set(path, value):
    def change(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


ANTHROPIC_FAILURES = [
    ("refusal", fixture("anthropic_refusal"), TEXT),
    ("empty", _with("anthropic_text", _set(["content"], [])), TEXT),
    ("empty", _with("anthropic_text", _set(["content", 0, "text"], "  \n")), JSON),
    # A model without output_config was sent a forced tool; a 4.5+ model answers in text.
    ("no_tool_output", _with("anthropic_text", _set(["model"], "claude-3-5-haiku-20241022")),
     SCHEMA),
    ("invalid_json", fixture("anthropic_text"), SCHEMA),
    ("truncated", _with("anthropic_text", _set(["stop_reason"], "max_tokens")), SCHEMA),
    ("truncated", fixture("anthropic_truncated_json"), JSON),
    ("invalid_json", fixture("anthropic_text"), JSON),
    ("invalid", ["not", "a", "message"], TEXT),
    ("invalid", {"type": "error", "error": {"type": "overloaded_error",
                                            "message": "Overloaded"}}, TEXT),
]
OPENAI_FAILURES = [
    ("no_choices", {"choices": []}, TEXT),
    ("no_choices", fixture("openai_no_choices_error"), TEXT),
    ("refusal", fixture("openai_refusal"), SCHEMA),
    ("safety", _with("openai_text", _set(["choices", 0, "finish_reason"], "content_filter")),
     TEXT),
    ("empty", _with("openai_text", _set(["choices", 0, "message", "content"], None)), TEXT),
    ("empty", _with("openai_text", _set(["choices", 0, "message", "content"], "")), TEXT),
    ("truncated", _with("openai_text", lambda d: d["choices"][0].update(
        finish_reason="length", message={"role": "assistant", "content": '{"name": "Ad'})),
     JSON),
    ("invalid_json", fixture("openai_text"), JSON),
    ("invalid", "just a string", TEXT),
]
GEMINI_FAILURES = [
    ("safety", fixture("gemini_prompt_blocked"), TEXT),
    ("safety", fixture("gemini_candidate_safety"), TEXT),
    ("safety", _with("gemini_text", _set(["candidates", 0, "finishReason"], "RECITATION")),
     TEXT),
    ("no_choices", {"candidates": []}, TEXT),
    ("empty", _with("gemini_text", _set(["candidates", 0, "content", "parts"],
                                         [{"text": "thinking", "thought": True}])), TEXT),
    ("truncated", _with("gemini_json", lambda d: d["candidates"][0].update(
        finishReason="MAX_TOKENS", content={"parts": [{"text": '{"name": "Ada'}]})), JSON),
    ("invalid_json", fixture("gemini_text"), JSON),
    ("invalid", None, TEXT),
]


@pytest.mark.parametrize("adapter,cases", [
    (ANTHROPIC, ANTHROPIC_FAILURES), (OPENAI, OPENAI_FAILURES), (COMPAT, OPENAI_FAILURES),
    (GEMINI, GEMINI_FAILURES)], ids=lambda x: getattr(x, "name", ""))
def test_unusable_bodies_raise_with_reason(adapter, cases):
    for expected, data, spec in cases:
        assert reason_of(adapter, data, spec) == expected, (expected, data)


def test_no_choices_carries_the_error_message():
    with pytest.raises(InvalidResponseError, match="overloaded"):
        OPENAI.parse_response(fixture("openai_no_choices_error"), TEXT)


def test_length_limit_with_no_text_is_truncated_everywhere():
    # Reasoning models can spend the whole budget thinking; say so rather than "empty".
    oa = _with("openai_text", lambda d: d["choices"][0].update(
        finish_reason="length", message={"role": "assistant", "content": None}))
    gm = _with("gemini_text", lambda d: d["candidates"][0].update(
        finishReason="MAX_TOKENS", content={"parts": [{"text": "hmm", "thought": True}]}))
    an = _with("anthropic_text", lambda d: d.update(stop_reason="max_tokens", content=[]))
    assert reason_of(OPENAI, oa) == reason_of(GEMINI, gm) == reason_of(ANTHROPIC, an) == (
        "truncated")


# -- usage shapes ---------------------------------------------------------------------------

@pytest.mark.parametrize("adapter,fixture_name,usage_key", [
    (ANTHROPIC, "anthropic_text", "usage"), (OPENAI, "openai_text", "usage"),
    (GEMINI, "gemini_text", "usageMetadata")], ids=["anthropic", "openai", "gemini"])
@pytest.mark.parametrize("bad", [None, "n/a", [], {}, {"input_tokens": "12", "prompt_tokens": -3,
                                                        "promptTokenCount": float("nan")}])
def test_missing_or_odd_usage_is_zero_and_never_raises(adapter, fixture_name, usage_key, bad):
    data = fixture(fixture_name)
    if bad is None:
        del data[usage_key]
    else:
        data[usage_key] = bad
    assert adapter.parse_response(data, TEXT).usage == Usage(0, 0, 0)


def test_totals_fall_back_to_the_sum():
    oa = _with("openai_text", _set(["usage"], {"prompt_tokens": 5, "completion_tokens": 3}))
    gm = _with("gemini_text", _set(["usageMetadata"], {"promptTokenCount": 4,
                                                       "candidatesTokenCount": 2}))
    assert OPENAI.parse_response(oa, TEXT).usage == Usage(5, 3, 8)
    assert GEMINI.parse_response(gm, TEXT).usage == Usage(4, 2, 6)


# -- error bodies -------------------------------------------------------------------------------

def test_gemini_retry_info():
    message, delay = GEMINI.error_details(fixture("gemini_error_429"))
    assert message.startswith("You exceeded your current quota")
    assert delay == pytest.approx(45.837906927)
    assert GEMINI.error_details([fixture("gemini_error_429")])[1] == pytest.approx(45.837906927)


@pytest.mark.parametrize("raw,seconds", [
    ("45.837906927s", 45.837906927), ("3s", 3.0), ("0s", 0.0), ({"seconds": 2, "nanos": 5e8}, 2.5),
    ("soon", None), ("-1s", None), (12, None), ({"seconds": "x"}, None),
])
def test_gemini_retry_delay_forms(raw, seconds):
    body = {"error": {"message": "slow down", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": raw}]}}
    assert GEMINI.error_details(body) == ("slow down", seconds)


def test_error_details_other_providers():
    assert OPENAI.error_details(fixture("openai_no_choices_error")) == (
        "The model is overloaded, please retry.", None)
    assert COMPAT.error_details({"error": "model 'x' not found"}) == ("model 'x' not found", None)
    assert ANTHROPIC.error_details({"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}) == ("Overloaded", None)
    assert GEMINI.error_details("<html>") == (None, None)
    assert GEMINI.error_details({"error": {"message": "bad"}}) == ("bad", None)


# -- tolerant JSON parsing ----------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ('{"a": 1}', {"a": 1}),
    ("  [1, 2]\n", [1, 2]),
    ("\ufeff{\"a\": 1}", {"a": 1}),
    ("42", 42),
    ('"x"', "x"),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('```\n[true, null]\n```', [True, None]),
    ('Here you go:\n```JSON\n{"a": {"b": [1]}}\n```\nAnything else?', {"a": {"b": [1]}}),
    ('Sure! {"a": "}"} hope it helps', {"a": "}"}),
    ('Result: [1, {"b": "]"}] done', [1, {"b": "]"}]),
    ('Use {name} in templates. Answer: {"ok": true}', {"ok": True}),
    ('{"q": "say \\"{hi}\\""}', {"q": 'say "{hi}"'}),
    ('```python\nx = 1\n```\n```json\n{"a": 2}\n```', {"a": 2}),
])
def test_parse_json_accepts(raw, expected):
    assert parse_json(raw) == expected


@pytest.mark.parametrize("raw", [
    "",
    "no json here",
    '{"a": 1',                                  # cut off
    '```json\n{"items": [{"id": 1}, {"id": 2',   # cut off inside a fence
    '{"outer": {"inner": 1}, bad}',             # malformed outer: never its inner part
    "{'a': 1}",                                 # Python, not JSON
    "The answer is 42",
])
def test_parse_json_rejects(raw):
    with pytest.raises(ValueError):
        parse_json(raw)
