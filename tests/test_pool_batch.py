"""Pool(mode="batch") against the simulator's Batch APIs, and prompt caching in a Pool."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from yait_aichain import CANCELLED, DONE, FAILED, Chain, Model, Pool, Skill
from yait_aichain.errors import BatchExpiredError, ChainStepError, ConfigurationError

LIVE_PATHS = ("/v1/messages", "/v1/chat/completions")
LONG = " ".join(f"rule{i}" for i in range(5000))


def _items(n):
    return [{"text": f"doc {i}"} for i in range(n)]


def _live_calls(sim):
    return [r for r in sim.requests_log if r.path in LIVE_PATHS
            or r.path.endswith(":generateContent")]


@pytest.mark.parametrize("name", ["claude-sonnet-4-6", "gpt-4o-mini", "gemini-2.5-flash"])
def test_200_items_in_batch_mode_cost_half_and_make_no_live_call(sim_env, name):
    skill = Skill(Model(name), prompt="Summarise: {text}")
    pool = Pool(skill, _items(200), mode="batch", poll_interval=0.01)
    results = pool.run()
    assert results == [f"Summary: Summarise: doc {i}" for i in range(200)]
    assert pool.status[DONE] == 200 and _live_calls(sim_env) == []
    assert sim_env.batches.created == 1
    batch_cost = pool.usage.cost
    live = Pool(skill, _items(200), max_flows=20)
    assert live.run() == results
    assert batch_cost == pytest.approx(live.usage.cost / 2)
    assert pool.records[7].usage.input_tokens == live.records[7].usage.input_tokens


def test_per_request_errors_and_expiry_end_failed_and_retry_failed_resubmits_only_them(sim_env):
    sim_env.batches.fail_when("doc 3", status=400, message="bad")
    skill = Skill(Model("claude-sonnet-4-6"), prompt="Summarise: {text}")
    pool = Pool(skill, _items(6), mode="batch", poll_interval=0.01)
    pool.run()
    assert pool.status[FAILED] == 1 and pool.records[3].error.status == 400
    sim_env.batches.clear_failures()
    sim_env.batches.expire = True
    pool.retry_failed()
    assert isinstance(pool.records[3].error, BatchExpiredError)
    assert len(sim_env.batches.list()[-1].requests) == 1  # only the failed item went again
    sim_env.batches.expire = False
    assert pool.retry_failed(mode="live")[3] == "Summary: Summarise: doc 3"
    assert len(_live_calls(sim_env)) == 1 and pool.status[DONE] == 6


def test_a_chain_of_two_skill_steps_makes_exactly_two_batches(sim_env):
    model = Model("claude-sonnet-4-6")
    chain = Chain([
        (Skill(model, prompt="Summarise: {text}"), "summary"),
        (lambda v: {"length": len(v["summary"])}, "measure"),
        (Skill(model, prompt="Title for: {summary} ({length} chars)"), "title"),
    ])
    pool = Pool(chain, _items(100), mode="batch", poll_interval=0.01)
    results = pool.run()
    assert sim_env.batches.created == 2 and _live_calls(sim_env) == []
    assert results[5] == "Summary: Title for: Summary: Summarise: doc 5 (25 chars)"
    assert pool.status[DONE] == 100


def test_a_chains_own_variables_reach_its_batch_steps(sim_env):
    chain = Chain([(Skill(Model("gpt-4o-mini"), prompt="In {lang}: {text}"), "out")],
                  variables={"lang": "fr"})
    live = Pool(chain, _items(2)).run()
    assert Pool(chain, _items(2), mode="batch", poll_interval=0.01).run() == live
    assert live[1] == "Summary: In fr: doc 1"


def test_chain_step_failures_follow_on_step_error(sim_env):
    model = Model("claude-sonnet-4-6")
    sim_env.batches.fail_when("doc 1", status=400)
    chain = Chain([Skill(model, prompt="{text}"), Skill(model, prompt="again {result}")])
    pool = Pool(chain, _items(3), mode="batch", poll_interval=0.01)
    pool.run()
    assert isinstance(pool.records[1].error, ChainStepError)
    assert pool.records[1].error.step == 0 and pool.status[DONE] == 2


def test_a_skipped_chain_step_warns_in_batch_mode_as_in_a_live_run(sim_env):
    model = Model("claude-sonnet-4-6")
    sim_env.batches.fail_when("doc 1", status=400)
    chain = Chain([Skill(model, prompt="{text}"), (lambda v: "after", "tail")],
                  name="c", on_step_error="skip")
    with pytest.warns(RuntimeWarning, match=r"chain 'c' step 0 .* failed: .*; skipped"):
        results = Pool(chain, _items(3), mode="batch", poll_interval=0.01).run()
    assert results == ["after"] * 3


def test_runners_without_a_batch_api_are_refused_before_anything_is_sent(sim_env):
    with pytest.raises(ConfigurationError, match="neither"):
        Pool(lambda v: v, _items(2), mode="batch")
    local = Model("llama3", provider="ollama", base_url=sim_env.openai_base_url)
    with pytest.raises(ConfigurationError, match="Batch API"):
        Pool(Skill(local, prompt="{text}"), _items(2), mode="batch")
    with pytest.raises(ConfigurationError, match="mode"):
        Pool(lambda v: v, _items(2), mode="later")
    with pytest.raises(ConfigurationError, match="poll_interval"):
        Pool(lambda v: v, _items(2), poll_interval=-1)
    skill = Skill(Model("claude-sonnet-4-6"), prompt="{text}")
    with pytest.raises(ConfigurationError, match="max_cost"):
        Pool(skill, _items(2), mode="batch", max_cost=1.0)
    # Settings a submitted batch cannot honour are refused, not silently ignored.
    for on_error in ("stop", "skip"):
        with pytest.raises(ConfigurationError, match=f"on_error='{on_error}'.*collect"):
            Pool(skill, _items(2), mode="batch", on_error=on_error)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as executor, pytest.raises(ConfigurationError, match="executor="):
        Pool(skill, _items(2), mode="batch", executor=executor)
    pool = Pool(skill, _items(2), mode="batch")
    with pytest.raises(ConfigurationError, match="on_error='stop'"):
        pool.on_error = "stop"
    assert sim_env.stats.requests == 0


def test_progress_shows_the_providers_counts(sim_env):
    sim_env.batches.delay = 0.05
    stream = io.StringIO()
    skill = Skill(Model("gpt-4o-mini"), prompt="{text}")
    Pool(skill, _items(5), mode="batch", poll_interval=0.02, progress=stream).run()
    text = stream.getvalue()
    assert "openai" in text and "total 5" in text and "completed 5" in text


def test_submit_then_collect_in_a_later_run(sim_env, tmp_path):
    sim_env.batches.delay = 3600
    skill = Skill(Model("claude-sonnet-4-6"), prompt="Summarise: {text}")
    checkpoint = tmp_path / "job.jsonl"
    pool = Pool(skill, _items(20), mode="batch", checkpoint=checkpoint)
    submitted = pool.submit()
    assert [len(s.keys) for s in submitted] == [20] and sim_env.batches.created == 1
    with pytest.raises(ConfigurationError, match="checkpoint"):
        Pool(skill, _items(2), mode="batch").submit()
    sim_env.batches.finish_all()
    later = Pool(skill, _items(20), mode="batch", checkpoint=checkpoint, poll_interval=0.01)
    assert later.run()[19] == "Summary: Summarise: doc 19"
    assert sim_env.batches.created == 1 and _live_calls(sim_env) == []


_KILLED = textwrap.dedent("""
    import sys
    from yait_aichain import Model, Pool, Skill
    skill = Skill(Model("claude-sonnet-4-6"), prompt="Summarise: {text}")
    items = [{"text": f"doc {i}"} for i in range(200)]
    pool = Pool(skill, items, mode="batch", checkpoint=sys.argv[1], poll_interval=0.05)
    results = pool.run()
    print(sum(r is not None for r in results))
""")


def test_sigkill_after_submission_then_the_same_checkpoint_re_attaches(sim_env, tmp_path):
    sim_env.batches.delay = 3600
    checkpoint = tmp_path / "job.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(checkpoint)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert sim_env.wait_for(lambda s: any("/v1/messages/batches/" in r.path
                                              for r in sim_env.requests_log), timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert sim_env.batches.created == 1
    sim_env.batches.finish_all()
    again = subprocess.run([sys.executable, "-c", _KILLED, str(checkpoint)], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "200"
    assert sim_env.batches.created == 1 and _live_calls(sim_env) == []


def test_ctrl_c_leaves_the_batch_running_and_says_how_to_collect(sim_env, tmp_path, capsys):
    sim_env.batches.delay = 3600
    skill = Skill(Model("claude-sonnet-4-6"), prompt="{text}")
    pool = Pool(skill, _items(4), mode="batch", checkpoint=tmp_path / "c.jsonl",
                poll_interval=0.01)

    def interrupt(_seconds):
        raise KeyboardInterrupt

    pool._batch_timing = (interrupt, time.monotonic)
    with pytest.raises(KeyboardInterrupt):
        pool.run()
    err = capsys.readouterr().err
    assert "keep running" in err and "c.jsonl" in err and "cancel_batches" in err
    assert pool.status[CANCELLED] == 4
    assert sim_env.batches.list()[0].cancel_requested is None
    pool.cancel_batches()
    assert sim_env.batches.list()[0].cancel_requested is not None


def test_fifty_items_sharing_a_long_system_prompt_write_the_cache_once_first(sim_env):
    sim_env.latency = 0.05
    model = Model("claude-sonnet-4-6")
    cached = Skill(model, system=LONG, prompt="{text}")
    pool = Pool(cached, _items(50), max_flows=25)
    pool.run()
    log = sorted(sim_env.requests_log, key=lambda r: r.time)
    first, rest = log[0], log[1:]
    assert all(r.time >= first.time + first.duration for r in rest)  # written before others
    assert sim_env.prompt_cache.writes == 1 and sim_env.prompt_cache.reads == 49
    assert all(rec.usage.cache_read_tokens == 5000 for rec in pool.records[1:])
    price = model.price
    cached_input = sum(_input_cost(rec.usage, price) for rec in pool.records)
    sim_env.prompt_cache.clear()
    plain = Pool(Skill(model, system=LONG, prompt="{text}", cache=False), _items(50),
                 max_flows=25)
    plain.run()
    plain_input = sum(_input_cost(rec.usage, price) for rec in plain.records)
    assert cached_input < plain_input / 4


def _input_cost(usage, price):
    plain = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    return (plain * price.input + usage.cache_read_tokens * price.cache_read
            + usage.cache_write_tokens * price.cache_write) / 1e6


def test_identical_requests_are_sent_once_in_a_live_run(sim_env):
    skill = Skill(Model("claude-sonnet-4-6"), prompt="Summarise: {text}")
    items = [{"text": "same"}] * 5 + [{"text": "other"}]
    pool = Pool(skill, items, max_flows=3)
    assert pool.run() == ["Summary: Summarise: same"] * 5 + ["Summary: Summarise: other"]
    assert len(_live_calls(sim_env)) == 2
    assert [rec.shared for rec in pool.records] == [False, True, True, True, True, False]
    assert pool.records[1].usage.cost in (None, 0)


def test_an_identical_request_pulled_after_its_twin_ended_takes_its_answer(sim_env):
    skill = Skill(Model("claude-sonnet-4-6"), prompt="Summarise: {text}")
    items = [{"text": "same"}, {"text": "a"}, {"text": "b"}, {"text": "same"}]
    pool = Pool(skill, items, max_flows=1)  # item 0 has ended when item 3 is pulled
    assert pool.run()[3] == "Summary: Summarise: same" and pool.status[DONE] == 4
    assert len(_live_calls(sim_env)) == 3 and pool.records[3].shared


def test_identical_requests_are_sent_once_in_a_batch(sim_env):
    skill = Skill(Model("claude-sonnet-4-6"), prompt="Summarise: {text}")
    pool = Pool(skill, [{"text": "same"}] * 4, mode="batch", poll_interval=0.01)
    assert pool.run() == ["Summary: Summarise: same"] * 4
    assert len(sim_env.batches.list()[0].requests) == 1
    assert [rec.shared for rec in pool.records] == [False, True, True, True]


def test_batch_mode_never_waits_for_real_with_an_injected_sleep(sim_env):
    sim_env.batches.delay = 3600
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        sim_env.batches.finish_all()

    skill = Skill(Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, _items(3), mode="batch", poll_interval=600)
    pool._batch_timing = (sleep, time.monotonic)
    started = time.monotonic()
    assert pool.run()[2] == "Summary: doc 2"
    assert naps == [600.0] and time.monotonic() - started < 30


def test_on_error_raise_raises_after_every_record_is_settled(sim_env):
    from yait_aichain.errors import InvalidRequestError

    sim_env.batches.fail_when("doc 1", status=400)
    skill = Skill(Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, _items(3), mode="batch", poll_interval=0.01, on_error="raise")
    with pytest.raises(InvalidRequestError):
        pool.run()
    assert pool.status[DONE] == 2 and pool.status[FAILED] == 1


def test_the_deadline_bounds_the_wait_and_the_batch_goes_on(sim_env):
    from yait_aichain.errors import BatchError

    sim_env.batches.delay = 3600
    skill = Skill(Model("claude-sonnet-4-6"), prompt="{text}")
    pool = Pool(skill, _items(3), mode="batch", poll_interval=0.05, deadline=0.3)
    started = time.monotonic()
    pool.run()
    assert time.monotonic() - started < 10
    assert pool.status[FAILED] == 3
    error = pool.records[0].error
    assert isinstance(error, BatchError) and "goes on" in str(error)
    assert sim_env.batches.list()[0].cancel_requested is None
