"""A Chain is walked before it spends: a step reading a variable nothing provides fails
with ChainStepError naming the step and the variable, and no request is sent."""

from __future__ import annotations

import pytest

from yait_aichain import Chain, Model, Pool, Skill
from yait_aichain.errors import ChainStepError, TemplateError
from yait_aichain.testing import FakeModel


def _two_steps(model, second: str = "Title for: {sumary}") -> Chain:
    first = Skill(model=model, prompt="Summarise: {text}", name="summarise")
    title = Skill(model=model, prompt=second, name="title")
    return Chain([(first, "summary"), (title, "title")])


def test_a_misspelt_variable_in_step_two_sends_zero_requests(sim_env):
    chain = _two_steps(Model("gpt-4o-mini"))
    pool = Pool(chain, [{"text": f"doc {i}"} for i in range(200)], max_flows=20, progress=False)
    with pytest.raises(ChainStepError) as info:
        pool.run()
    err = info.value
    assert sim_env.stats.requests == 0
    assert (err.step, err.name) == (1, "title")
    message = str(err)
    assert "'sumary'" in message and "did you mean 'summary'" in message
    assert "nothing was sent" in message
    assert isinstance(err.__cause__, TemplateError) and err.__cause__.missing == ["sumary"]


def test_the_spelt_right_chain_runs(sim_env):
    chain = _two_steps(Model("gpt-4o-mini"), second="Title for: {summary}")
    pool = Pool(chain, [{"text": f"doc {i}"} for i in range(5)], max_flows=5, progress=False)
    assert all(out is not None for out in pool.run())
    assert sim_env.stats.requests == 10


def test_a_lazy_input_is_checked_before_any_request(sim_env):
    chain = _two_steps(Model("gpt-4o-mini"))
    pulled = []

    def lazy():
        for i in range(20):
            pulled.append(i)
            yield {"text": f"doc {i}"}

    pool = Pool(chain, lazy(), max_flows=4, progress=False)
    with pytest.raises(ChainStepError, match=r"Pool item 0: step 1 'title'.*'sumary'"):
        pool.run()
    assert sim_env.stats.requests == 0 and pulled == [0]  # the first item told


def test_direct_run_checks_before_the_first_step():
    model = FakeModel()
    with pytest.raises(ChainStepError, match=r"step 1 'title'.*'sumary'"):
        _two_steps(model).run({"text": "t"})
    assert model.calls == []


def test_shared_variables_and_defaults_count():
    model = FakeModel()
    chain = _two_steps(model)
    Pool(chain, [{"text": "t"}], progress=False).run({"sumary": "given"})
    assert len(model.calls) == 2
    defaults = Chain([(s[0], s[1]) for s in chain.steps], variables={"sumary": "d"})
    defaults.check_variables({"text"})


def test_a_missing_item_key_in_one_list_item_names_that_item():
    model = FakeModel()
    chain = _two_steps(model, second="Title: {summary}")
    with pytest.raises(ChainStepError, match=r"Pool item 2: step 0 'summarise'.*'text'"):
        Pool(chain, [{"text": "a"}, {"text": "b"}, {"txt": "c"}], progress=False).run()
    assert model.calls == []


def test_a_step_of_unknown_output_is_trusted():
    model = FakeModel()
    skill = Skill(model=model, prompt="Use {anything}")
    # A plain callable may return a dict with any keys: the walk trusts it.
    Chain([(lambda v: {"anything": 1}, "x"), skill]).check_variables({"text"})
    # A scalar return annotation is known: the output lands under its key only.

    def fetch(v) -> str:
        return "page"

    with pytest.raises(ChainStepError, match="'anything'"):
        Chain([(fetch, "page"), skill]).check_variables(set())
    # So is a runner that declares output_keys.

    class Extract:
        output_keys = frozenset({"anything"})

        def run(self, variables):
            return {"anything": 1}

    Chain([Extract(), skill]).check_variables(set())


def test_json_schema_skill_with_a_closed_object_declares_its_keys():
    model = FakeModel()
    schema = {"type": "object", "properties": {"title": {"type": "string"}},
              "additionalProperties": False, "required": ["title"]}
    extract = Skill(model=model, prompt="{text}",
                    output={"format": {"type": "json_schema", "schema": schema}})
    use = Skill(model=model, prompt="{titel}")
    with pytest.raises(ChainStepError, match="did you mean 'title'"):
        Chain([extract, use]).check_variables({"text"})
    Chain([extract, Skill(model=model, prompt="{title}")]).check_variables({"text"})


def test_a_nested_chain_is_walked_too():
    model = FakeModel()
    inner = Chain([(Skill(model=model, prompt="{text}"), "summary"),
                   (Skill(model=model, prompt="{sumary}"), "title")], name="inner")
    with pytest.raises(ChainStepError, match=r"step 0 'inner' > step 1"):
        Chain([inner]).run({"text": "t"})
    assert model.calls == []


def test_skip_and_stop_policies_keep_their_run_time_behaviour():
    model = FakeModel()
    chain = _two_steps(model)
    chain_stop = Chain([(s[0], s[1]) for s in chain.steps], on_step_error="stop")
    assert chain_stop.run({"text": "t"}) is not None  # step 0 ran, step 1 was refused
    assert len(model.calls) == 1
