"""Usage travels one way: each model call adds to the tally of every scope it runs in.

Every reader (Skill.last_usage, Chain.last_usage and its step records, ChainRun, a Pool's
records, pool.usage and the report) reads that one channel, so no call is counted twice
or lost, whether a runner runs alone, in a Chain, in a Pool, or retries and re-asks.
"""

import pytest
import responses

from yait_aichain import Chain, Model, Pool, Skill, Usage
from yait_aichain.errors import OutputValidationError
from yait_aichain.report import render_report
from yait_aichain.testing import FakeModel

ONE = Usage(1, 2, 3, cost=0.5)
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
OPENAI_OK = {
    "id": "c1", "object": "chat.completion", "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
}


def times(n):
    return sum([ONE] * n, Usage())


def skill(model=None, **kwargs):
    return Skill(model=model or FakeModel(usage=ONE), prompt="say {x}", **kwargs)


def test_a_skill_counts_each_call_once_and_each_run_afresh():
    s = skill()
    s.run({"x": 1})
    assert s.last_usage == ONE
    s.run({"x": 2})
    assert s.last_usage == ONE  # the latest run, not a running total


def test_a_re_asked_answer_counts_both_calls_and_a_failed_run_keeps_its_usage():
    model = FakeModel(usage=ONE).enqueue({"n": "x"}, {"n": 1})
    s = skill(model, output={"format": {"type": "json_schema", "schema": SCHEMA}})
    assert s.run({"x": 1}) == {"n": 1}
    assert s.last_usage == times(2) and s.history == [{"n": "x"}, {"n": 1}]
    model.enqueue({"n": "x"}, {"n": "y"})
    with pytest.raises(OutputValidationError):
        s.run({"x": 1})
    assert s.last_usage == times(2) and len(s.history) == 2


def test_a_chain_of_skills_counts_each_step_once():
    first, second = skill(), skill()
    chain = Chain([(first, "x"), (second, "y")])
    run = chain.run_detailed({"x": 0})
    assert [r.usage for r in run.history] == [ONE, ONE] and run.usage == times(2)
    assert chain.last_usage == times(2) and run.requests == 2
    assert first.last_usage == ONE and second.last_usage == ONE  # the same calls, seen inside


def test_a_pool_of_skills_counts_each_item_once():
    s = skill()
    pool = Pool(s, [{"x": i} for i in range(20)], max_flows=5)
    pool.run()
    assert [r.usage for r in pool.records] == [ONE] * 20 and pool.usage == times(20)
    html = render_report(pool.records, max_flows=pool.max_flows)
    assert '<b>60</b><span>tokens</span>' in html and '<b>$10.0000</b>' in html
    # The thread-local views describe the caller's own direct runs; the items ran on the
    # Pool's threads, so their usage is on the records, not here.
    assert s.last_usage is None


def test_a_pool_of_chains_counts_every_step_of_every_item_once():
    chain = Chain([(skill(), "x"), (skill(), "y")])
    pool = Pool(chain, [{"x": i} for i in range(10)], max_flows=4)
    pool.run()
    assert [r.usage for r in pool.records] == [times(2)] * 10 and pool.usage == times(20)
    assert [r.attempts for r in pool.records] == [2] * 10


def test_a_pool_inside_a_chain_step_counts_once_in_the_chain():
    inner = Pool(skill(), [{"x": i} for i in range(3)], max_flows=3)
    chain = Chain([(inner, "pooled"), (skill(), "y")])
    run = chain.run_detailed({"x": 0})
    assert run.history[0].usage == times(3) and run.usage == times(4)


def test_re_asks_in_a_pool_count_on_the_record():
    model = FakeModel(usage=ONE).enqueue({"n": "x"}, {"n": 1})
    s = skill(model, output={"format": {"type": "json_schema", "schema": SCHEMA}})
    pool = Pool(s, [{"x": 0}], max_flows=1)
    pool.run()
    (rec,) = pool.records
    assert rec.usage == times(2) and rec.attempts == 2 and rec.reasks == 1
    assert pool.usage == times(2)


@responses.activate
def test_retried_requests_count_the_answer_once(no_wait):
    url = "https://api.openai.com/v1/chat/completions"
    responses.post(url, status=503, json={"error": {"message": "busy"}})
    responses.post(url, json=OPENAI_OK)
    s = skill(Model("gpt-4o", api_key="k", retry=no_wait))
    chain = Chain([(s, "y")])
    chain.run({"x": 1})
    assert s.last_usage.total_tokens == 10 and chain.last_usage == s.last_usage
    assert chain.history[0].requests == 2
    responses.post(url, status=503, json={"error": {"message": "busy"}})
    responses.post(url, json=OPENAI_OK)
    pool = Pool(s, [{"x": 1}], max_flows=1)
    pool.run()
    assert pool.records[0].usage == s.last_usage == pool.usage and pool.records[0].attempts == 2
