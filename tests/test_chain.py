"""Chain: step forms, variable flow, missing variables, error policies, threads, usage."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import yait_aichain.chain as chain_pkg
from yait_aichain import _context
from yait_aichain._usage import Usage
from yait_aichain.chain import Chain, ChainRun, StepRecord
from yait_aichain.errors import (
    CancelledError,
    ChainStepError,
    ConfigurationError,
    TemplateError,
)

# -- fakes ----------------------------------------------------------------------------


class FakeSkill:
    """Looks like a Skill: declares the variables its template needs, records its calls."""

    required_variables = frozenset({"result"})

    def __init__(self, name: str | None = None):
        self.name = name
        self.calls: list[dict] = []
        self._lock = threading.Lock()

    def run(self, variables):
        with self._lock:
            self.calls.append(dict(variables))
        return f"summary of {variables['result']}"


class FetchTool:
    """Tool-like: a JSON-schema ``parameters`` and ``run(**kwargs)``."""

    name = "convertToMD"
    parameters = {
        "type": "object",
        "properties": {"input": {"type": "string"}, "options": {"type": "object"}},
        "required": ["input"],
    }

    def __init__(self):
        self.calls: list[dict] = []

    def run(self, **kwargs):
        self.calls.append(kwargs)
        return f"# page {kwargs['input']}"


class Upper:
    """A user runner with run(variables) and no required_variables."""

    def run(self, variables):
        return variables["text"].upper()


class Boom:
    name = "boom"

    def run(self, variables):
        raise ValueError("kaboom")


class Costly:
    """Records model usage in the current scope, as a real Skill's model call would."""

    def __init__(self, tokens: int = 1):
        self.tokens = tokens

    def run(self, variables):
        _context.current().record(Usage(self.tokens, 2 * self.tokens, 3 * self.tokens), requests=1)
        return "paid"


def make_pair(x):
    return {"pair": (x["a"], x["b"])}


# -- public surface -------------------------------------------------------------------


def test_public_names():
    assert chain_pkg.__all__ == sorted(chain_pkg.__all__)
    assert set(chain_pkg.__all__) == {"Chain", "ChainRun", "StepRecord"}


# -- step forms and variable flow -----------------------------------------------------


def test_seed_pipeline_tool_then_skill():
    fetch, summarise = FetchTool(), FakeSkill()
    chain = Chain(steps=[(fetch, "result", {"input": "source"}), summarise])

    out = chain.run({"source": "https://example.org"})

    assert out == "summary of # page https://example.org"
    # The tool only gets its declared parameters, fed through input_map.
    assert fetch.calls == [{"input": "https://example.org"}]
    assert summarise.calls[0]["result"] == "# page https://example.org"
    assert chain.accumulated == {"source": "https://example.org", "result": out}
    assert [(r.step, r.name, r.kind) for r in chain.history] == [
        (0, "convertToMD", "tool"),
        (1, "step_1", "skill"),
    ]


def test_tool_gets_same_named_variables_without_input_map():
    fetch = FetchTool()
    Chain([(fetch, "page")]).run({"input": "u", "options": {"x": 1}, "other": 2})
    assert fetch.calls == [{"input": "u", "options": {"x": 1}}]


def test_step_forms_and_output_keys():
    chain = Chain(
        [
            lambda v: v["text"] + "!",  # bare: stored under "result"
            (Upper(), "shout", {"text": "result"}),
            (lambda v: len(v["shout"]), "length"),
        ]
    )
    assert chain.run({"text": "hi"}) == 3
    assert chain.accumulated == {"text": "hi", "result": "hi!", "shout": "HI!", "length": 3}
    assert [r.output_key for r in chain.history] == ["result", "shout", "length"]


def test_input_map_aliases_for_runners_keep_everything():
    seen = {}

    def runner(v):
        seen.update(v)
        return "ok"

    chain = Chain([(runner, "out", {"text": "body", "title": "heading"})])
    chain.run({"body": "B", "heading": "H"})
    assert seen == {"body": "B", "heading": "H", "text": "B", "title": "H"}


def test_dict_output_is_merged_and_key_ignored():
    chain = Chain([(make_pair, "ignored"), lambda v: v["pair"][0] + v["pair"][1]])
    assert chain.run({"a": 1, "b": 2}) == 3
    assert "ignored" not in chain.accumulated
    assert chain.accumulated["pair"] == (1, 2)


def test_defaults_are_overridden_by_run_variables():
    chain = Chain([lambda v: f"{v['greet']} {v['who']}"], variables={"greet": "hi", "who": "x"})
    assert chain.run({"who": "you"}) == "hi you"
    assert chain.run() == "hi x"
    assert chain.variables == {"greet": "hi", "who": "x"}


def test_runner_mutating_its_input_does_not_touch_the_run():
    def vandal(v):
        v["secret"] = "changed"
        return "ok"

    chain = Chain([vandal, lambda v: v["secret"]])
    assert chain.run({"secret": "kept"}) == "kept"


def test_history_records_snapshot_duration_and_dict_access():
    chain = Chain([(lambda v: "one", "a"), (lambda v: "two", "b")])
    chain.run({"x": 0})
    first, second = chain.history
    assert dict(first.input) == {"x": 0}
    assert dict(second.input) == {"x": 0, "a": "one"}
    assert first["output"] == "one" and first.get("error") is None and first.get("nope", 7) == 7
    assert first.duration >= 0 and first.ok
    with pytest.raises(TypeError):
        first.input["x"] = 1  # snapshots are read-only
    assert first.as_dict()["input"] == {"x": 0}


def test_run_detailed_returns_immutable_result():
    run = Chain([(Costly(), "a"), (lambda v: "done", "b")]).run_detailed({"q": 1})
    assert isinstance(run, ChainRun)
    assert run.output == "done" and run.ok and run.failed_steps == ()
    assert dict(run.variables) == {"q": 1, "a": "paid", "b": "done"}
    assert all(isinstance(r, StepRecord) for r in run.history) and len(run.history) == 2
    assert run.usage == Usage(1, 2, 3) and run.requests == 1
    with pytest.raises(TypeError):
        run.variables["q"] = 2
    with pytest.raises(AttributeError):
        run.output = "other"


def test_thread_local_views_are_empty_before_any_run():
    chain = Chain([lambda v: 1])
    assert chain.history == [] and chain.accumulated == {} and chain.last_usage == Usage()


# -- nested chains --------------------------------------------------------------------


def test_nested_chain_is_a_runner():
    inner = Chain([(FetchTool(), "result", {"input": "source"}), FakeSkill()], name="inner")
    outer = Chain([(inner, "summary"), (lambda v: v["summary"].upper(), "loud")], name="outer")
    assert outer.run({"source": "s"}) == "SUMMARY OF # PAGE S"
    assert outer.history[0].kind == "chain" and outer.history[0].name == "inner"
    assert outer.required_variables == frozenset({"source"})


def test_nested_chain_failure_names_both_steps():
    inner = Chain([Boom()], name="inner")
    with pytest.raises(ChainStepError) as info:
        Chain([(inner, "x")]).run()
    assert info.value.step == 0 and info.value.name == "inner"
    assert isinstance(info.value.__cause__, ChainStepError)
    assert "step 0 'boom' failed" in str(info.value)


# -- missing variables ----------------------------------------------------------------


def test_missing_variable_for_skill_is_reported_before_the_call():
    skill = FakeSkill(name="summarise")
    chain = Chain([(lambda v: "x", "other"), skill])
    with pytest.raises(ChainStepError) as info:
        chain.run({"source": "s"})
    err = info.value
    assert skill.calls == []
    assert (err.step, err.name) == (1, "summarise")
    assert "step 1 'summarise'" in str(err) and "'result'" in str(err)
    assert isinstance(err.__cause__, TemplateError) and err.__cause__.missing == ["result"]


def test_missing_mapped_variable_for_tool_names_the_parameter():
    fetch = FetchTool()
    with pytest.raises(ChainStepError) as info:
        Chain([(fetch, "result", {"input": "source"})]).run({"url": "u"})
    assert fetch.calls == []
    message = str(info.value)
    assert "step 0 'convertToMD'" in message
    assert "'source' (for parameter 'input')" in message and "available: 'url'" in message


def test_missing_required_tool_parameter():
    with pytest.raises(ChainStepError, match="missing variable 'input'"):
        Chain([(FetchTool(), "page")]).run({})


def test_alias_satisfies_required_variable():
    skill = FakeSkill()
    assert Chain([(skill, "s", {"result": "text"})]).run({"text": "t"}) == "summary of t"


def test_missing_variable_values_never_in_message():
    with pytest.raises(ChainStepError) as info:
        Chain([FakeSkill()]).run({"api_key": "sk-secret-value"})
    assert "sk-secret-value" not in str(info.value)
    assert "'api_key'" in str(info.value)  # names are listed, values never


def test_required_variables_counts_the_first_step_minus_defaults():
    chain = Chain([(FetchTool(), "result", {"input": "source"}), FakeSkill()])
    assert chain.required_variables == frozenset({"source"})
    assert Chain([FakeSkill()], variables={"result": "d"}).required_variables == frozenset()
    assert Chain([lambda v: 1]).required_variables == frozenset()


# -- error policies -------------------------------------------------------------------


def test_raise_wraps_with_step_facts_and_cause():
    chain = Chain([(lambda v: "ok", "a"), Boom(), lambda v: "never"])
    with pytest.raises(ChainStepError) as info:
        chain.run()
    err = info.value
    assert str(err) == "step 1 'boom' failed: ValueError: kaboom"
    assert (err.step, err.name) == (1, "boom")
    assert isinstance(err.__cause__, ValueError)
    # The thread's view still shows what happened.
    assert [r.ok for r in chain.history] == [True, False]
    assert chain.history[1].error == "ValueError: kaboom"
    assert chain.accumulated == {"a": "ok"}


def test_stop_returns_last_success():
    chain = Chain([(lambda v: "ok", "a"), Boom(), lambda v: "never"], on_step_error="stop")
    assert chain.run() == "ok"
    assert len(chain.history) == 2 and chain.history[1].output is None


def test_stop_with_first_step_failing_returns_none():
    assert Chain([Boom()], on_step_error="stop").run() is None


def test_skip_warns_and_continues():
    chain = Chain([(lambda v: "ok", "a"), Boom(), (lambda v: v["a"] + "!", "b")])
    with pytest.warns(RuntimeWarning, match="step 1 'boom' failed.*skipped"):
        assert chain.run(on_step_error="skip") == "ok!"
    assert [r.ok for r in chain.history] == [True, False, True]


def test_skip_applies_to_missing_variables_too():
    skill = FakeSkill(name="summarise")
    chain = Chain([skill, (lambda v: "after", "z")], on_step_error="skip")
    with pytest.warns(RuntimeWarning, match="'summarise' was not run: missing variable 'result'"):
        assert chain.run() == "after"
    assert skill.calls == []


def test_per_run_policy_overrides_and_is_validated():
    chain = Chain([Boom()], on_step_error="stop")
    with pytest.raises(ChainStepError):
        chain.run(on_step_error="raise")
    with pytest.raises(ConfigurationError, match="on_step_error"):
        chain.run(on_step_error="ignore")


def test_cancel_is_never_swallowed():
    def cancelled(v):
        raise CancelledError("stop now")

    chain = Chain([cancelled], on_step_error="skip")
    with pytest.raises(CancelledError):
        chain.run()


def test_cancelled_scope_stops_before_next_step():
    ev = threading.Event()
    calls = []

    def first(v):
        ev.set()
        return "1"

    chain = Chain([first, lambda v: calls.append(1)])
    with _context.scope(cancel=ev), pytest.raises(CancelledError):
        chain.run()
    assert calls == [] and len(chain.history) == 1


# -- threads --------------------------------------------------------------------------


def test_fifty_threads_share_one_chain():
    n = 50
    barrier = threading.Barrier(n, timeout=10)

    def tag(v):
        barrier.wait()  # every flow is mid-run at once
        return f"item-{v['item']}"

    def charge(v):
        _context.current().record(Usage(v["item"], 0, v["item"]), requests=1)
        time.sleep(0.001 * (v["item"] % 5))
        return {"echo": v["result"]}

    chain = Chain([tag, charge, (lambda v: v["echo"].upper(), "final")], name="shared")

    def flow(i):
        out = chain.run({"item": i})
        return i, out, chain.history, chain.accumulated, chain.last_usage

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(flow, range(n)))

    for i, out, history, acc, usage in results:
        assert out == f"ITEM-{i}"
        assert [r.input["item"] for r in history] == [i, i, i]
        assert history[0].output == f"item-{i}"
        assert acc["final"] == out and acc["item"] == i
        assert usage == Usage(i, 0, i)


def test_run_detailed_across_threads():
    chain = Chain([(Costly(), "a"), lambda v: v["n"] * 2])
    with ThreadPoolExecutor(max_workers=16) as pool:
        runs = list(pool.map(lambda i: chain.run_detailed({"n": i}), range(40)))
    assert [r.output for r in runs] == [2 * i for i in range(40)]
    assert all(r.usage == Usage(1, 2, 3) for r in runs)


# -- usage ----------------------------------------------------------------------------


def test_usage_per_step_and_per_run():
    chain = Chain([(Costly(1), "a"), (lambda v: "free", "b"), (Costly(2), "c")])
    chain.run()
    assert [r.usage for r in chain.history] == [Usage(1, 2, 3), Usage(), Usage(2, 4, 6)]
    assert [r.requests for r in chain.history] == [1, 0, 1]
    assert chain.last_usage == Usage(3, 6, 9)


def test_usage_also_counts_in_the_enclosing_scope():
    outer = _context.Tally()
    with _context.scope(tally=outer):
        Chain([Costly(), Costly()]).run()
    assert outer.usage == Usage(2, 4, 6) and outer.requests == 2


def test_failed_step_usage_is_kept():
    def spend_then_fail(v):
        _context.current().record(Usage(5, 5, 10), requests=2)
        raise RuntimeError("after paying")

    chain = Chain([spend_then_fail], on_step_error="stop")
    chain.run()
    assert chain.last_usage == Usage(5, 5, 10) and chain.history[0].requests == 2


# -- connections and repr -------------------------------------------------------------


def test_reserve_connections_reaches_every_step():
    reserved = []

    class Model:
        def run(self, v):
            return "x"

        def _reserve_connections(self, n):
            reserved.append(n)

    inner = Chain([Model()])
    Chain([Model(), inner, lambda v: 1])._reserve_connections(7)
    assert reserved == [7, 7]


def test_repr_names_steps_never_values():
    chain = Chain(
        [(FetchTool(), "result", {"input": "source"}), FakeSkill(name="summarise")],
        name="per_item",
        variables={"api_key": "sk-secret"},
    )
    chain.run({"source": "s", "token": "tok-secret"})
    text = repr(chain)
    assert text == "Chain(name='per_item', steps=[convertToMD->result, summarise->result])"
    assert "secret" not in text


def test_steps_property_normalises():
    tool = FetchTool()
    chain = Chain([tool, (tool, "x", {"input": "u"})])
    assert chain.steps == ((tool, "result", {}), (tool, "x", {"input": "u"}))


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ([], "at least one step"),
        ("abc", "must be a list"),
        (None, "must be a list"),
        ([[Upper(), "x"]], "step 0 is a list; write it as a tuple"),
        ([Upper(), (Upper(),)], "step 1 has 1 elements"),
        ([(Upper(), "x", {}, {})], "step 0 has 4 elements"),
        ([(Upper(), 3)], "step 0: output_key must be a non-empty str"),
        ([(Upper(), "")], "output_key must be a non-empty str"),
        ([(Upper(), "x", ["text"])], "step 0: input_map must be a dict"),
        ([(Upper(), "x", {"text": 1})], "keys and values must be str"),
        ([(Upper(), "x", {"text": "{question}"})], "not templates; write 'text': 'question'"),
        ([(FetchTool(), "x", {"source": "url"})], "has no parameter 'source'.*'input'"),
        ([Upper(), 42], "step 1 must be"),
        ([FetchTool], "step 0 is the class FetchTool; pass an instance"),
    ],
)
def test_bad_steps_are_rejected_at_construction(steps, match):
    with pytest.raises(ConfigurationError, match=match):
        Chain(steps)


def test_bad_options_are_rejected():
    with pytest.raises(ConfigurationError, match="on_step_error"):
        Chain([Upper()], on_step_error="continue")
    with pytest.raises(ConfigurationError, match="variables must be a dict"):
        Chain([Upper()], variables=["a"])
    with pytest.raises(ConfigurationError, match="run variables must be a dict"):
        Chain([Upper()]).run("text")
    with pytest.raises(ValueError):  # ConfigurationError is also a ValueError
        Chain([])
