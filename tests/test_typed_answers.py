"""Typed answers end to end against the simulator: a pydantic class or a JSON-schema dict
in, validated instances out, re-asks with the errors, OutputValidationError at the end."""

from __future__ import annotations

import csv
import io
import json
import pickle

import pytest

from yait_aichain import DONE, FAILED, Model, OutputValidationError, Pool, Skill
from yait_aichain.errors import AichainError, ConfigurationError
from yait_aichain.pool._rows import write_csv
from yait_aichain.skills._typed import DEFAULT_MAX_REASKS
from yait_aichain.testing import Fault

from .typed_models import Customer, Invoice, Line, Status

# Claude 4.5+ answers through output_config, older Claude through a forced tool.
MODELS = ["gpt-4o-mini", "claude-sonnet-4-6", "claude-3-5-haiku-20241022", "gemini-2.5-flash"]
TAGS = {"type": "object", "properties": {
    "title": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "score": {"type": "integer", "minimum": 1, "maximum": 5},
}, "required": ["title", "tags", "score"]}
SCHEMA_OUTPUT = {"format": {"type": "json_schema", "schema": TAGS, "name": "tags"}}


def invoice_skill(model: str, **kwargs) -> Skill:
    return Skill(model=Model(model), prompt="Extract the invoice from: {doc}", output=Invoice,
                 **kwargs)


@pytest.mark.parametrize("model", MODELS)
def test_a_pool_of_50_gives_50_invoices_in_order(sim_env, model):
    sim_env.latency = 0.01
    docs = [{"doc": f"invoice number {i}"} for i in range(50)]
    pool = Pool(invoice_skill(model), items=docs, max_flows=10)
    results = pool.run()
    assert pool.status[DONE] == 50
    assert all(type(r) is Invoice for r in results)
    # Every string of a simulated answer carries its own prompt: order is the input's.
    assert [r.number for r in results] == [
        f"Summary: Extract the invoice from: invoice number {i}" for i in range(50)]
    first = results[0]
    assert isinstance(first.status, Status) and isinstance(first.customer, Customer)
    assert first.lines and all(isinstance(line, Line) for line in first.lines)
    assert sim_env.stats.requests == 50
    assert all(rec.attempts == 1 and rec.reasks == 0 for rec in pool.records)


@pytest.mark.parametrize("model", MODELS)
def test_invalid_first_answers_are_re_asked_once_and_all_end_done(sim_env, model):
    sim_env.invalid_answers(first=1)
    docs = [{"doc": f"invoice number {i}"} for i in range(50)]
    pool = Pool(invoice_skill(model), items=docs, max_flows=10)
    results = pool.run()
    assert pool.status[DONE] == 50 and all(type(r) is Invoice for r in results)
    assert [r.number for r in results] == [
        f"Summary: Extract the invoice from: invoice number {i}" for i in range(50)]
    assert [rec.reasks for rec in pool.records] == [1] * 50
    assert [rec.attempts for rec in pool.records] == [2] * 50
    assert [row["reasks"] for row in pool.to_records()] == [1] * 50
    assert [h["reasks"] for h in pool.history] == [1] * 50
    assert sim_env.stats.requests == 100
    # The usage counts both answers of every item.
    assert pool.usage.output_tokens == sum(rec.usage.output_tokens for rec in pool.records)
    assert all(rec.usage.output_tokens >= 2 for rec in pool.records)


@pytest.mark.parametrize("model", MODELS)
def test_an_answer_invalid_every_time_ends_failed_with_the_errors(sim_env, model):
    sim_env.invalid_answers(first=None)
    pool = Pool(invoice_skill(model), items=[{"doc": "a"}, {"doc": "b"}], max_flows=2)
    assert pool.run() == [None, None]
    assert pool.status[FAILED] == 2
    for rec in pool.records:
        err = rec.error
        assert isinstance(err, OutputValidationError) and isinstance(err, AichainError)
        assert err.attempts == DEFAULT_MAX_REASKS + 1 == rec.attempts
        assert rec.reasks == DEFAULT_MAX_REASKS
        assert err.errors and any("number" in e for e in err.errors)
        assert isinstance(err.raw, dict) and "number" not in err.raw
        assert err.schema_name == "Invoice"
        assert "Invoice" in str(err)
    rows = pool.to_records()
    assert [r["status"] for r in rows] == ["FAILED", "FAILED"]
    assert rows[0]["error_type"] == "OutputValidationError"


def test_the_re_ask_carries_the_bad_answer_and_its_errors(sim_env):
    skill = Skill(model=Model("gpt-4o-mini"), prompt="Tag: {text}", output=SCHEMA_OUTPUT)
    skill.run({"text": "pools"})
    once = skill.last_usage
    sim_env.reset()
    sim_env.invalid_answers(first=1)
    value = skill.run({"text": "pools"})
    assert value == {"title": "Summary: Tag: pools", "tags": ["Summary: Tag: pools"], "score": 1}
    first, second = (r.body["messages"] for r in sim_env.requests_log)
    assert len(first) == 1 and len(second) == 3
    assert second[1]["role"] == "assistant" and "title" not in json.loads(second[1]["content"])
    assert second[2]["role"] == "user"
    assert "$: 'title' is a required property" in second[2]["content"]
    assert len(skill.history) == 2 and skill.history[1] == value
    # Both calls are in the usage: more input (the re-ask is longer) and more output.
    assert skill.last_usage.input_tokens > 2 * once.input_tokens
    assert skill.last_usage.output_tokens > once.output_tokens


@pytest.mark.parametrize("max_reasks", [0, 2, 3])
def test_max_reasks_bounds_the_requests(sim_env, max_reasks):
    sim_env.invalid_answers(first=None)
    skill = Skill(model=Model("gemini-2.5-flash"), prompt="Tag: {text}", output=SCHEMA_OUTPUT,
                  max_reasks=max_reasks)
    with pytest.raises(OutputValidationError) as info:
        skill.run({"text": "x"})
    assert sim_env.stats.requests == max_reasks + 1 == info.value.attempts
    assert len(skill.history) == max_reasks + 1
    assert info.value.errors == ["$: 'title' is a required property"]


def test_a_dict_schema_is_validated_with_its_own_constraints(sim_env):
    # "score" keeps its bounds locally even where the provider dropped them.
    skill = Skill(model=Model("claude-sonnet-4-6"), prompt="Tag: {text}", output=SCHEMA_OUTPUT)
    assert skill.run({"text": "x"})["score"] == 1
    sim_env.reply = lambda info: {"title": "t", "tags": [], "score": 9}
    with pytest.raises(OutputValidationError) as info:
        skill.run({"text": "x"})
    assert info.value.errors == ["$.score: 9 is greater than the maximum of 5",
                                 "$.tags: [] should be non-empty"]
    assert info.value.raw == {"title": "t", "tags": [], "score": 9}


def test_pydantic_errors_name_the_nested_path(sim_env):
    good = Invoice(number="1", status="paid", customer={"name": "Ada"},
                   lines=[{"item": "tea", "quantity": 2, "price": 1.5}], issued="2024-05-01")
    bad = good.model_dump(mode="json")
    bad["lines"][0]["quantity"] = "two"
    bad["status"] = "lost"
    sim_env.reply = lambda info: bad if len(info.body["messages"]) == 1 else good.model_dump(
        mode="json")
    skill = invoice_skill("gpt-4o-mini")
    assert skill.run({"doc": "x"}) == good
    retry = sim_env.requests_log[-1].body["messages"][-1]["content"]
    assert "$.status: Input should be 'paid', 'open' or 'void'" in retry
    assert "$.lines[0].quantity: Input should be a valid integer" in retry


def test_text_and_json_outputs_are_not_validated(sim_env):
    assert Skill(model=Model("gpt-4o-mini"), prompt="{t}").run({"t": "hi"}) == "Summary: hi"
    assert Skill(model=Model("gpt-4o-mini"), prompt="{t}", output="json").run({"t": "hi"}) == {
        "summary": "Summary: hi"}


def test_claude_json_output_is_answered_offline(sim_env):
    skill = Skill(model=Model("claude-sonnet-4-6"), prompt="Describe {t}", output="json")
    assert skill.run({"t": "tea"}) == {"summary": "Summary: Describe tea"}
    told = Skill(model=Model("claude-sonnet-4-6"), prompt="Describe {t} as JSON", output="json")
    assert told.run({"t": "tea"}) == {"summary": "Summary: Describe tea as JSON"}
    # A text request that never mentions JSON still gets text.
    assert Skill(model=Model("claude-sonnet-4-6"), prompt="{t}").run({"t": "tea"}) == \
        "Summary: tea"


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
def test_max_reasks_must_be_a_non_negative_int(bad):
    with pytest.raises(ConfigurationError, match="max_reasks"):
        Skill(model=Model("gpt-4o-mini", api_key="k"), prompt="x", output=Invoice,
              max_reasks=bad)


def test_an_invalid_json_schema_is_refused_at_construction():
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema"):
        Skill(model=Model("gpt-4o-mini", api_key="k"), prompt="x",
              output={"format": {"type": "json_schema", "schema": {
                  "type": "object", "properties": {"a": {"type": "strnig"}}}}})


def test_a_pydantic_v1_style_class_gets_a_clear_error():
    class Old:
        @classmethod
        def schema(cls):
            return {}

        @classmethod
        def parse_obj(cls, value):
            return value

    with pytest.raises(ConfigurationError, match="pydantic v1"):
        Skill(model=Model("gpt-4o-mini", api_key="k"), prompt="x", output=Old)


def test_a_typed_skill_pickles_and_still_validates(sim_env):
    skill = pickle.loads(pickle.dumps(invoice_skill("gpt-4o-mini")))
    assert type(skill.run({"doc": "x"})) is Invoice
    dict_skill = pickle.loads(pickle.dumps(
        Skill(model=Model("gpt-4o-mini"), prompt="{t}", output=SCHEMA_OUTPUT)))
    sim_env.reply = lambda info: {"title": 1}
    with pytest.raises(OutputValidationError):
        dict_skill.run({"t": "x"})


def test_output_validation_error_pickles_with_its_facts():
    err = OutputValidationError("bad", raw={"a": 1}, errors=["$.a: wrong"], attempts=2,
                                schema_name="X")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.raw, clone.errors, clone.attempts, clone.schema_name) == (
        {"a": 1}, ["$.a: wrong"], 2, "X")


# -- rows for pandas and CSV ------------------------------------------------------------


def test_to_records_gives_flat_rows_with_status_names_and_usage(sim_env):
    pool = Pool(invoice_skill("gpt-4o-mini"), items=[{"doc": "doc 0"}, {"doc": "doc 1"}])
    pool.run()
    rows = pool.to_records()
    assert [r["index"] for r in rows] == [0, 1]
    row = rows[0]
    assert row["status"] == "DONE" and row["error"] is None and row["reasks"] == 0
    assert row["number"] == "Summary: Extract the invoice from: doc 0"
    assert row["status"] == "DONE" and row["output.status"] == "paid"  # the field, renamed
    assert row["customer.name"] == row["number"] and row["issued"] == "2024-01-01"
    assert row["lines"] == [{"item": row["number"], "quantity": 0, "price": 0.0}]
    assert row["input_tokens"] > 0 and row["total_tokens"] == row["input_tokens"] + row[
        "output_tokens"]
    assert {"attempts", "cost", "duration", "error_type"} <= set(row)


def test_to_records_keeps_plain_outputs_in_one_column():
    pool = Pool(lambda v: v["x"] * 2, items=[{"x": 1}, {"x": 2}])
    pool.run()
    assert [r["output"] for r in pool.to_records()] == [2, 4]
    pool = Pool(lambda v: {"a": {"b": v["x"]}}, items=[{"x": 1}])
    pool.run()
    assert pool.to_records()[0]["a.b"] == 1


def test_rows_write_as_csv_with_one_column_per_field(sim_env):
    sim_env.fail_when("doc 1", Fault.unauthorized())
    pool = Pool(invoice_skill("gpt-4o-mini"), items=[{"doc": "doc 1"}, {"doc": "doc 2"}])
    pool.run()
    out = io.StringIO()
    write_csv(pool.to_records(), out)
    read = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert read[0]["status"] == "FAILED" and read[0]["number"] == ""
    assert read[0]["error_type"] == "AuthenticationError"
    assert read[1]["status"] == "DONE" and read[1]["customer.name"].endswith("doc 2")
    assert json.loads(read[1]["lines"])[0]["quantity"] == 0



def test_typed_results_resume_from_a_checkpoint_as_instances(sim_env, tmp_path):
    path = tmp_path / "run.jsonl"
    docs = [{"doc": f"doc {i}"} for i in range(4)]
    first = Pool(invoice_skill("gpt-4o-mini"), items=docs, checkpoint=path)
    expected = first.run()
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(isinstance(e["output"], dict) and e["output"]["status"] == "paid" for e in stored)
    sim_env.reset()
    again = Pool(invoice_skill("gpt-4o-mini"), items=docs, checkpoint=path)
    assert again.run() == expected and all(type(r) is Invoice for r in again.results)
    assert sim_env.stats.requests == 0
    assert all(rec.from_checkpoint for rec in again.records)


def test_re_asks_are_counted_when_items_run_on_an_executor(sim_env):
    from concurrent.futures import ThreadPoolExecutor

    sim_env.invalid_answers(first=1)
    with ThreadPoolExecutor(2) as executor:
        pool = Pool(invoice_skill("gemini-2.5-flash"), items=[{"doc": "a"}, {"doc": "b"}],
                    executor=executor)
        assert all(type(r) is Invoice for r in pool.run())
    assert [(rec.attempts, rec.reasks) for rec in pool.records] == [(2, 1), (2, 1)]


def test_a_chain_hands_a_typed_answer_to_the_next_step_as_json(sim_env):
    from yait_aichain import Chain

    chain = Chain([
        (invoice_skill("gpt-4o-mini"), "invoice"),
        (Skill(model=Model("gpt-4o-mini"), prompt="Check {invoice}"), "check"),
    ])
    sim_env.invalid_answers(first=1)
    out = chain.run({"doc": "d"})
    sent = sim_env.requests_log[-1].body["messages"][-1]["content"]
    assert sent.startswith("Check {") and json.loads(sent[len("Check "):])["status"] == "paid"
    assert out.startswith("Summary: Check {")
    assert [(r.requests, r.reasks) for r in chain.history] == [(2, 1), (1, 0)]
    assert chain.history[0].as_dict()["reasks"] == 1


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gemini-2.5-flash", "claude-sonnet-4-6"])
def test_a_reply_that_is_not_json_is_re_asked_too(sim_env, model):
    good = {"title": "t", "tags": ["a"], "score": 2}
    sim_env.reply = lambda info: "Sorry, here it is: title t" if info.sequence == 1 else good
    skill = Skill(model=Model(model), prompt="Tag: {text}", output=SCHEMA_OUTPUT)
    assert skill.run({"text": "x"}) == good
    assert sim_env.stats.requests == 2 and skill.history == [None, good]
    retry = sim_env.requests_log[1].body
    assert "not valid JSON" in json.dumps(retry)


def test_a_reply_that_is_never_json_raises_the_provider_error(sim_env):
    from yait_aichain.errors import InvalidResponseError

    sim_env.reply = lambda info: "no JSON here"
    skill = Skill(model=Model("gpt-4o-mini"), prompt="Tag: {text}", output=SCHEMA_OUTPUT)
    with pytest.raises(InvalidResponseError) as info:
        skill.run({"text": "x"})
    assert info.value.reason == "invalid_json" and sim_env.stats.requests == 2


def test_fake_model_answers_are_validated_and_re_asked():
    from yait_aichain.testing import FakeModel

    good = {"number": "7", "status": "open", "customer": {"name": "Ada"}, "lines": [],
            "issued": "2024-02-03"}
    fake = FakeModel().enqueue({"number": 7}, good)
    skill = Skill(model=fake, prompt="{doc}", output=Invoice)
    invoice = skill.run({"doc": "x"})
    assert invoice == Invoice.model_validate(good) and invoice.status is Status.open
    assert len(fake.calls) == 2
    follow_up = fake.calls[1][0][-1]["parts"][0]["text"]
    assert "$.number: Input should be a valid string" in follow_up


# -- the simulator's structured answers -------------------------------------------------

CONSTRAINED = {"type": "object", "properties": {
    "code": {"type": "string", "maxLength": 4},
    "long": {"type": "string", "minLength": 50},
    "when": {"type": "string", "format": "date"},
    "mail": {"type": "string", "format": "email"},
    "level": {"type": "integer", "enum": [3, 5]},
    "count": {"type": "integer", "minimum": 7, "maximum": 9},
    "ratio": {"type": "number", "exclusiveMinimum": 0.5},
    "items": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    "maybe": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
}, "required": ["code", "long", "when", "mail", "level", "count", "ratio", "items", "maybe"]}


@pytest.mark.parametrize("model", MODELS)
def test_simulated_answers_honour_constraints_the_dialect_only_restates(sim_env, model):
    import jsonschema

    skill = Skill(model=Model(model), prompt="Fill: {x}", max_reasks=0,
                  output={"format": {"type": "json_schema", "schema": CONSTRAINED}})
    value = skill.run({"x": "it"})
    jsonschema.validate(value, CONSTRAINED, format_checker=jsonschema.FormatChecker())
    assert sim_env.stats.requests == 1


@pytest.mark.parametrize("model", MODELS)
def test_scripted_invalid_answers_break_the_schema_on_every_wire_format(sim_env, model):
    sim_env.invalid_answers(first=None)
    skill = Skill(model=Model(model), prompt="Fill: {x}", max_reasks=0,
                  output={"format": {"type": "json_schema", "schema": CONSTRAINED}})
    with pytest.raises(OutputValidationError) as info:
        skill.run({"x": "it"})
    assert info.value.errors == ["$: 'code' is a required property"]


def test_invalid_answers_leave_text_requests_alone_and_reject_bad_settings(sim):
    from yait_aichain.errors import ConfigurationError as Bad

    sim.invalid_answers(first=None)
    model = Model("gpt-4o-mini", api_key="k", base_url=sim.openai_base_url)
    assert Skill(model=model, prompt="{t}").run({"t": "hi"}) == "Summary: hi"
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(Bad, match="first"):
            sim.invalid_answers(first=bad)
    sim.invalid_answers(0)
    assert Skill(model=model, prompt="{t}", output=Invoice).run({"t": "x"}).status is Status.paid


def test_pydantic_and_jsonschema_are_imported_only_when_needed():
    import subprocess
    import sys

    code = ("import sys, yait_aichain; from yait_aichain import Skill, Pool\n"
            "from yait_aichain.testing import Simulator\n"
            "assert 'pydantic' not in sys.modules and 'jsonschema' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
