"""A model name one edit from a known one gets a "did you mean" before anything is sent."""

from __future__ import annotations

import warnings

import pytest

from yait_aichain import Model
from yait_aichain.models.registry import KNOWN_MODELS, suggest_model


@pytest.mark.parametrize("typo, known", [
    ("claude-sonet-4", "claude-sonnet-4"),       # a letter missing
    ("claude-sonnnet-4-6", "claude-sonnet-4-6"),  # one too many
    ("gpt-4o-mimi", "gpt-4o-mini"),               # one wrong
    ("gemini-2.5-falsh", "gemini-2.5-flash"),     # two swapped
])
def test_one_edit_from_a_known_name_is_suggested(typo, known):
    assert suggest_model(typo) == known


@pytest.mark.parametrize("name", ["claude-sonnet-4-6", "gpt-4.2", "claude-sonnet-4-7", "llama3.1",
                                  "gpt-4o-mini-2024-07-18", "o5"])
def test_known_names_and_version_bumps_are_left_alone(name):
    assert suggest_model(name) is None


def test_every_known_name_is_its_own_answer():
    assert all(suggest_model(name) is None for name in KNOWN_MODELS)


def test_the_model_warns_at_construction_naming_the_fix(sim):
    with pytest.warns(UserWarning, match=r"did you mean 'claude-sonnet-4'") as caught:
        Model("claude-sonet-4", api_key="sk-test", base_url=sim.url)
    assert caught[0].filename == __file__  # points at the caller's line
    assert sim.stats.requests == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Model("claude-sonnet-4-6", api_key="sk-test", base_url=sim.url)


def test_a_template_variable_near_a_given_one_gets_a_did_you_mean():
    from yait_aichain import Skill
    from yait_aichain.errors import TemplateError
    from yait_aichain.testing import FakeModel

    model = FakeModel()
    skill = Skill(model=model, prompt="Title for: {sumary}")
    with pytest.raises(TemplateError, match=r"did you mean 'summary' for 'sumary'\?") as info:
        skill.run({"summary": "s", "text": "t"})
    assert info.value.missing == ["sumary"] and model.calls == []
