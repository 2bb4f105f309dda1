"""Skill: templates, shorthands, outputs and thread safety, over the fake model."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import responses

from yait_aichain.errors import ConfigurationError, TemplateError
from yait_aichain.models import Model
from yait_aichain.skills import Skill
from yait_aichain.testing._fake import FakeModel

SEED_INPUT = {"messages": [{"role": "user", "parts": ["Summarise in two sentences:\n\n{text}"]}]}


def test_run_fills_the_template_and_returns_the_answer():
    model = FakeModel()
    skill = Skill(model=model, input=SEED_INPUT)
    assert skill.run({"text": "Doc 1"}) == "echo: Summarise in two sentences:\n\nDoc 1"
    assert skill.required_variables == {"text"}


def test_missing_variable_raises_before_any_call():
    model = FakeModel()
    skill = Skill(model=model, input=SEED_INPUT)
    with pytest.raises(TemplateError, match="'text'") as info:
        skill.run({"txt": "typo"})
    assert info.value.missing == ["text"] and model.calls == []


def test_defaults_and_run_variables_merge_run_wins():
    model = FakeModel()
    skill = Skill(model=model, prompt="{greeting}, {name}", variables={"greeting": "Hi", "name": "A"})
    assert skill.run({"name": "B"}) == "echo: Hi, B"
    assert skill.required_variables == frozenset()


def test_prompt_and_system_shorthands():
    model = FakeModel()
    Skill(model=model, prompt="Q: {q}", system="Be brief about {topic}").run({"q": "why", "topic": "sky"})
    messages = model.calls[0][0]
    assert messages[0] == {"role": "system", "parts": [{"type": "text", "text": "Be brief about sky"}]}
    assert messages[1]["parts"][0]["text"] == "Q: why"


def test_template_is_not_mutated_by_runs():
    skill = Skill(model=FakeModel(), input=SEED_INPUT)
    skill.run({"text": "one"})
    assert skill.messages[0]["parts"][0]["text"].endswith("{text}")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input": {"messages": []}}, "non-empty"),
        ({"input": {"messages": [{"role": "robot", "parts": ["x"]}]}}, "role"),
        ({"input": {"messages": [{"role": "user", "parts": [{"type": "video"}]}]}}, "video"),
        ({"input": {"messages": [{"role": "system", "parts": ["x"]}]}}, "user"),
        ({"prompt": "x", "input": SEED_INPUT}, "not both"),
        ({}, "prompt"),
        ({"prompt": "x", "output": "xml"}, "xml"),
        ({"prompt": "x", "output": {"format": {"type": "json_schema"}}}, "schema"),
    ],
)
def test_bad_skills_fail_at_construction(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        Skill(model=FakeModel(), **kwargs)


def test_a_model_is_required():
    with pytest.raises(ConfigurationError, match="Model"):
        Skill(model="claude-sonnet-4-6", prompt="x")


def test_unknown_options_fail_at_construction():
    with pytest.raises(ConfigurationError, match="temprature"):
        Skill(model=Model("gpt-4o", api_key="k"), prompt="x", options={"temprature": 1})


def test_run_rejects_non_dict_variables():
    with pytest.raises(ConfigurationError, match="dict"):
        Skill(model=FakeModel(), prompt="{x}").run(["x"])


@responses.activate
def test_json_schema_output_and_options_reach_the_wire():
    responses.post("https://api.openai.com/v1/chat/completions", json={
        "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"title": "T"}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    skill = Skill(model=Model("gpt-4o", api_key="k"), prompt="Title for {text}",
                  output={"format": {"type": "json_schema", "schema": schema}}, options={"temperature": 0})
    assert skill.run({"text": "x"}) == {"title": "T"}
    body = json.loads(responses.calls[0].request.body)
    # Strict mode: the schema goes out closed (additionalProperties false), as OpenAI needs.
    assert body["response_format"]["json_schema"]["schema"] == {
        **schema, "additionalProperties": False} and body["temperature"] == 0
    assert skill.last_usage.total_tokens == 2


def test_fifty_threads_share_one_skill_without_mixing():
    model = FakeModel(lambda text: text.upper(), latency=0.01)
    skill = Skill(model=model, prompt="item {i}")
    usages = {}

    def run(i):
        out = skill.run({"i": i})
        usages[i] = (skill.last_usage, skill.history)
        return out

    with ThreadPoolExecutor(50) as ex:
        results = list(ex.map(run, range(200)))
    assert results == [f"ITEM {i}" for i in range(200)]
    assert all(history == [f"ITEM {i}"] for i, (_, history) in usages.items())


def test_repr_shows_model_and_variables_not_values():
    skill = Skill(model=FakeModel(), prompt="{secret_doc}", variables={"x": "hidden-value"}, name="s")
    assert "fake-model" in repr(skill) and "hidden-value" not in repr(skill)


def test_a_model_subclass_that_overrides_generate_is_still_called():
    calls = []

    class Logged(Model):
        def generate(self, messages, output=None, **options):
            calls.append(messages)
            return FakeModel().generate(messages, output, **options)

    skill = Skill(model=Logged("gpt-4o", api_key="k"), prompt="hi {x}")
    assert skill.run({"x": 1}) == "echo: hi 1" and len(calls) == 1


def test_escaped_braces_render_the_same_with_or_without_placeholders():
    plain = Skill(model=FakeModel(), prompt='JSON like {{"a": 1}}')
    filled = Skill(model=FakeModel(), prompt='JSON like {{"a": 1}} for {x}')
    assert plain.render()[0]["parts"][0]["text"] == 'JSON like {"a": 1}'
    assert filled.render({"x": "y"})[0]["parts"][0]["text"] == 'JSON like {"a": 1} for y'
