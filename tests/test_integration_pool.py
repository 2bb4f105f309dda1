"""Pool over a real Skill and Model against the loopback simulator."""

import os
import runpy
import signal
import threading
import time
from pathlib import Path

import pytest

from yait_aichain import CANCELLED, DONE, FAILED, Model, Pool, Skill
from yait_aichain.errors import AuthenticationError, ItemTimeoutError, RateLimitError
from yait_aichain.testing import Fault

SEED = Path(__file__).parent / "seed"


def test_seed_sample_2_runs_verbatim(sim_env, capsys):
    ns = runpy.run_path(str(SEED / "sample2_pool.py"))
    out = capsys.readouterr().out.splitlines()
    texts = [item["text"] for item in ns["items"]]
    assert ns["results"] == [f"Summary: Summarise in two sentences: {t}" for t in texts]
    assert out[:5] == ns["results"]
    assert out[-1] == "done=5 failed=0"
    assert ns["pool"].status[DONE] == 5 and ns["pool"].status[FAILED] == 0


def test_seed_max_flows_snippet(sim_env, capsys):
    ns = runpy.run_path(str(SEED / "sample1_loop.py"))  # defines skill and documents
    sim_env.reset()
    sim_env.latency = 0.05
    ns = runpy.run_path(str(SEED / "snippet_max_flows.py"), init_globals=ns)
    assert capsys.readouterr().out.strip().endswith("done=50 failed=0")
    assert ns["results"] == [f"Summary: Summarise in two sentences: Document {i} content..." for i in range(50)]
    assert sim_env.stats.peak_concurrency <= 10


def test_failures_are_kept_and_retry_failed_only_resends_them(sim_env):
    sim_env.fail_when("Doc 3", Fault.unauthorized(), times=1)
    sim_env.fail_when("Doc 7", Fault.unauthorized(), times=1)
    skill = Skill(model=Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, items=[{"text": f"Doc {i}"} for i in range(10)], max_flows=4)
    results = pool.run()
    assert results[3] is None and results[7] is None and results[0] == "Summary: Doc 0"
    assert pool.status[FAILED] == 2
    assert {type(r.error) for r in pool.failures} == {AuthenticationError}
    assert sim_env.stats.requests == 10
    results = pool.retry_failed()
    assert results == [f"Summary: Doc {i}" for i in range(10)]
    assert sim_env.stats.requests == 12  # only the two failures were sent again
    assert pool.status == {0: 0, 1: 0, DONE: 10, FAILED: 0, CANCELLED: 0}


def test_item_timeout_bounds_a_hung_provider(sim_env):
    sim_env.fail_when("Doc 2", Fault.hang())
    skill = Skill(model=Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, items=[{"text": f"Doc {i}"} for i in range(5)], max_flows=5, timeout=1)
    start = time.monotonic()
    results = pool.run()
    assert time.monotonic() - start < 2.0
    assert results[2] is None and isinstance(pool.records[2].error, (ItemTimeoutError, TimeoutError))
    assert pool.status[DONE] == 4


def test_a_long_retry_after_inside_an_item_budget_fails_fast(sim_env):
    sim_env.fail_next(Fault.rate_limit(retry_after=30))
    skill = Skill(model=Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, items=[{"text": "x"}], timeout=5)
    start = time.monotonic()
    pool.run()
    assert time.monotonic() - start < 1.0
    err = pool.records[0].error
    assert isinstance(err, RateLimitError) and err.retry_after == 30


def test_ctrl_c_wakes_items_sleeping_in_retry_backoff(sim_env):
    # Every request is refused with a hint: the items sit in retry sleeps (and, after the
    # interrupt, the account's shared cool-down still holds the retry back for ~2 s).
    sim_env.fail_rate(1.0, Fault.rate_limit(retry_after=2.5))
    skill = Skill(model=Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, items=[{"text": f"Doc {i}"} for i in range(20)], max_flows=5)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        pool.run()
    assert time.monotonic() - start < 1.5
    assert sum(pool.status.values()) == 20 and pool.status[CANCELLED] > 0
    sim_env.clear_faults()
    assert pool.retry_failed() == [f"Summary: Doc {i}" for i in range(20)]


def test_usage_totals_come_from_the_provider(sim_env):
    skill = Skill(model=Model("claude-sonnet-4-6"), prompt="{text}")
    pool = Pool(skill, items=[{"text": "one two three"}, {"text": "four five"}], max_flows=2)
    pool.run()
    per_item = [r.usage for r in pool.records]
    assert [u.input_tokens for u in per_item] == [3, 2]
    assert pool.usage.input_tokens == 5 and pool.usage.cost is not None
    assert [r.attempts for r in pool.records] == [1, 1]


def test_connections_grow_to_max_flows_and_are_reused(sim_env, caplog):
    import logging

    sim_env.latency = 0.3
    skill = Skill(model=Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, items=[{"text": f"Doc {i}"} for i in range(400)], max_flows=100)
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        results = pool.run()
    assert results == [f"Summary: Doc {i}" for i in range(400)]
    assert 80 <= sim_env.stats.peak_concurrency <= 100
    assert sim_env.stats.connections <= 100  # one per flow, reused across its items
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_one_chain_shared_by_fifty_flows_keeps_every_item_apart():
    from yait_aichain import Chain
    from yait_aichain.testing import FakeModel

    model = FakeModel(lambda text: text.upper(), latency=0.005)
    summarise = Skill(model=model, prompt="summary of {result}")
    chain = Chain(steps=[(lambda v: f"page {v['source']}", "result"), summarise])
    pool = Pool(chain.run_detailed, items=[{"source": str(i)} for i in range(300)], max_flows=50)
    runs = pool.run()
    assert [r.output for r in runs] == [f"SUMMARY OF PAGE {i}" for i in range(300)]
    for i, run in enumerate(runs):
        assert [step.output for step in run.history] == [f"page {i}", f"SUMMARY OF PAGE {i}"]
        assert run.history[1].input["result"] == f"page {i}"
        assert run.usage.input_tokens == 4  # "summary of page N": this item's call only


def test_retry_waits_show_in_the_record(sim_env):
    sim_env.fail_when("Doc 1", Fault.rate_limit(retry_after=0.5), times=1)
    sim_env.fail_when("Doc 2", Fault.unauthorized(), times=1)
    skill = Skill(model=Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, items=[{"text": f"Doc {i}"} for i in range(3)], max_flows=1)
    pool.run()
    waits = [r.wait_seconds for r in pool.records]
    assert waits[0] < 0.1 and waits[1] >= 0.5 and waits[2] < 0.1  # a failure is not "waiting"
    assert [r.attempts for r in pool.records] == [1, 2, 1]
