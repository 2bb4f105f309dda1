"""The official SDKs judge the requests we send (openai 3.57.0, anthropic 2.15.0,
google-genai 3.6.1, pinned in the test extra).

Every provider and option combination is sent by our Model to a loopback server that
records it; each body is checked against the SDK's own request types (unknown keys,
missing required keys, literals, nested types), and the method, path and auth/version
headers are compared with the SDK's own request for the same call.
"""

from __future__ import annotations

import pytest

pytest.importorskip("openai")
pytest.importorskip("anthropic")
pytest.importorskip("google.genai")

import anthropic  # noqa: E402
import openai  # noqa: E402
from anthropic.types.message_create_params import (  # noqa: E402
    MessageCreateParamsNonStreaming,
)
from google import genai  # noqa: E402
from google.genai import types as gtypes  # noqa: E402
from openai.types.chat.completion_create_params import (  # noqa: E402
    CompletionCreateParamsNonStreaming,
)

from tests._typeddict import problems  # noqa: E402
from yait_aichain import Model  # noqa: E402
from yait_aichain.testing import Simulator  # noqa: E402

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5E"
       "rkJggg==")
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": ["integer", "null"]},
                                           "tags": {"type": "array", "items": {"type": "string"}}},
          "required": ["name", "age"], "additionalProperties": False}

CONVERSATION = [
    {"role": "system", "parts": ["Be brief."]},
    {"role": "user", "parts": ["Hi"]},
    {"role": "assistant", "parts": ["Hello."]},
    {"role": "user", "parts": [{"type": "text", "text": "What is this?"},
                               {"type": "image", "source": {"kind": "url",
                                                            "url": "https://example.com/a.png"}},
                               {"type": "image", "source": {"kind": "base64", "data": PNG,
                                                            "mime_type": "image/png"}}]},
]
OPTIONS = {"temperature": 0.2, "max_tokens": 300, "top_p": 0.9, "top_k": 40,
           "stop": ["END"], "seed": 7}

# (label, messages, output, options): every shape a Skill or Pool produces.
CASES = [
    ("text", "Say hi", None, {}),
    ("conversation+images", CONVERSATION, None, {}),
    ("all options", "Say hi", None, OPTIONS),
    ("json", "List two colours", "json", {"max_tokens": 50}),
    ("json_schema object", "Who?", {"type": "json_schema", "schema": PERSON, "name": "person"},
     {}),
    ("json_schema loose", CONVERSATION, {"type": "json_schema", "schema": PERSON,
                                         "strict": False}, OPTIONS),
]
MODELS = {
    "openai": ["gpt-4.1-mini", "o4-mini", "gpt-5"],
    "anthropic": ["claude-sonnet-4-6"],
    "gemini": ["gemini-2.5-flash"],
}


@pytest.fixture(scope="module")
def sim():
    with Simulator() as s:
        yield s


def our_request(sim, provider, model, messages, output, options):
    sim.reset()
    base = sim.openai_base_url if provider == "openai" else sim.url
    Model(model, api_key="k-judged", base_url=base, **options).generate(messages,
                                                                         output=output)
    (record,) = sim.requests_log
    assert record.status == 200
    return record


@pytest.mark.parametrize("label, messages, output, options", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("model", MODELS["openai"])
def test_openai_bodies_validate_against_the_sdk_types(sim, model, label, messages, output,
                                                      options):
    record = our_request(sim, "openai", model, messages, output, options)
    assert problems(record.body, CompletionCreateParamsNonStreaming) == []


@pytest.mark.parametrize("label, messages, output, options", CASES, ids=[c[0] for c in CASES])
def test_anthropic_bodies_validate_against_the_sdk_types(sim, label, messages, output,
                                                         options):
    record = our_request(sim, "anthropic", MODELS["anthropic"][0], messages, output, options)
    assert problems(record.body, MessageCreateParamsNonStreaming) == []


def gemini_problems(body):
    """google-genai's models are strict pydantic models (extra fields forbidden, enums
    checked), keyed in camelCase on the wire."""
    out = []
    known = {"contents": gtypes.Content, "systemInstruction": gtypes.Content,
             "generationConfig": gtypes.GenerationConfig}
    for key, value in body.items():
        if key not in known:
            out.append(f"body.{key}: not a generateContent field")
            continue
        for i, item in enumerate(value if key == "contents" else [value]):
            try:
                known[key].model_validate(item)
            except Exception as exc:  # pydantic.ValidationError, with every field named
                out.append(f"body.{key}[{i}]: {exc}")
    return out


@pytest.mark.parametrize("label, messages, output, options", CASES, ids=[c[0] for c in CASES])
def test_gemini_bodies_validate_against_the_sdk_models(sim, label, messages, output, options):
    record = our_request(sim, "gemini", MODELS["gemini"][0], messages, output, options)
    assert gemini_problems(record.body) == []


def test_the_validators_catch_what_they_should():
    """A judge that passes everything proves nothing."""
    bad_openai = {"model": "m", "messages": [{"role": "robot", "content": "x"}], "top_k": 3}
    assert len(problems(bad_openai, CompletionCreateParamsNonStreaming)) == 2
    bad_anthropic = {"model": "c", "messages": [], "temperature": 1.0}
    found = problems(bad_anthropic, MessageCreateParamsNonStreaming)
    assert any("max_tokens" in p for p in found) and any("temperature" in p for p in found)
    assert gemini_problems({"contents": [{"role": "user", "parts": [{"txt": "x"}]}],
                            "generationConfig": {"topk": 3}, "stream": True})


# -- the same call by the SDK and by us --------------------------------------------------

def sdk_request(sim, provider):
    sim.reset()
    if provider == "openai":
        client = openai.OpenAI(api_key="k-judged", base_url=sim.openai_base_url, max_retries=0)
        client.chat.completions.create(model="gpt-4.1-mini", max_completion_tokens=50,
                                       messages=[{"role": "user", "content": "Say hi"}])
    elif provider == "anthropic":
        client = anthropic.Anthropic(api_key="k-judged", base_url=sim.url, max_retries=0)
        client.messages.create(model="claude-sonnet-4-6", max_tokens=50,
                               messages=[{"role": "user", "content": "Say hi"}])
    else:
        client = genai.Client(api_key="k-judged", http_options={"base_url": sim.url})
        client.models.generate_content(
            model="gemini-2.5-flash", contents="Say hi",
            config=gtypes.GenerateContentConfig(max_output_tokens=50, temperature=0.2,
                                                system_instruction="Be brief."))
    (record,) = sim.requests_log
    return record


@pytest.mark.parametrize("provider, model", [("openai", "gpt-4.1-mini"),
                                             ("anthropic", "claude-sonnet-4-6"),
                                             ("gemini", "gemini-2.5-flash")])
def test_path_auth_and_version_match_the_sdk(sim, provider, model):
    theirs = sdk_request(sim, provider)
    ours = our_request(sim, provider, model, [{"role": "system", "parts": ["Be brief."]},
                                              {"role": "user", "parts": ["Say hi"]}],
                       None, {"max_tokens": 50, "temperature": 0.2})
    assert ours.headers["content-type"].startswith("application/json")
    assert theirs.headers["content-type"].startswith("application/json")
    if provider == "openai":
        assert ours.path == theirs.path == "/v1/chat/completions"
        assert ours.headers["authorization"] == theirs.headers["authorization"] == \
            "Bearer k-judged"
    elif provider == "anthropic":
        assert ours.path == theirs.path == "/v1/messages"
        assert ours.headers["anthropic-version"] == theirs.headers["anthropic-version"]
        # The SDK sends Authorization: Bearer; we send x-api-key, the header the API
        # reference documents and every gateway reads. The API takes both.
        assert theirs.headers["authorization"] == "Bearer k-judged"
        assert ours.headers["x-api-key"] == "k-judged" and "authorization" not in ours.headers
    else:
        # google-genai 3.x defaults to /v1; we post to /v1beta, the version whose reference
        # documents every field we send (propertyOrdering). Same resource.
        assert theirs.path == f"/v1/models/{model}:generateContent"
        assert ours.path == f"/v1beta/models/{model}:generateContent"
        assert ours.headers["x-goog-api-key"] == theirs.headers["x-goog-api-key"] == "k-judged"
        assert "key=" not in ours.path
        assert set(ours.body) <= set(theirs.body) | {"generationConfig"}
        assert set(ours.body["generationConfig"]) <= set(theirs.body["generationConfig"]) | {
            "responseMimeType", "responseJsonSchema", "topP", "topK", "stopSequences", "seed"}
    assert ours.model == theirs.model == model


def test_gemini_structured_output_takes_the_field_the_sdk_sends(sim):
    """google-genai sends a JSON Schema as ``responseJsonSchema``, unchanged; ours goes under
    the same field, converted only where the field's documented keywords stop."""
    sim.reset()
    client = genai.Client(api_key="k-judged", http_options={"base_url": sim.url})
    client.models.generate_content(
        model="gemini-2.5-flash", contents="Who?",
        config=gtypes.GenerateContentConfig(response_mime_type="application/json",
                                            response_json_schema=PERSON))
    (theirs,) = sim.requests_log
    ours = our_request(sim, "gemini", "gemini-2.5-flash", "Who?",
                       {"type": "json_schema", "schema": PERSON}, {})
    sent = ours.body["generationConfig"]
    assert set(sent) == set(theirs.body["generationConfig"]) == {"responseMimeType",
                                                                 "responseJsonSchema"}
    assert theirs.body["generationConfig"]["responseJsonSchema"] == PERSON
    assert sent["responseJsonSchema"] == {**PERSON, "propertyOrdering": ["name", "age", "tags"]}
