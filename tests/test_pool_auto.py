"""Pool(max_flows="auto") end to end against the loopback simulator: a header-less
server that saturates, the settings, and what records and the flow log show.

Speed claims live in benchmarks/bench_auto.py; these tests check behaviour that holds on
a loaded machine too (it grows past its start, stays near the server's capacity, causes
no 503 storm, every item ends DONE)."""

from __future__ import annotations

import concurrent.futures
import io
import time

import pytest

from yait_aichain import AutoFlows, Model, Pool, Skill
from yait_aichain.errors import ConfigurationError
from yait_aichain.pool import DONE
from yait_aichain.testing import Simulator


def skill_for(sim: Simulator, key: str = "sk-auto") -> Skill:
    model = Model("gpt-4o-mini", api_key=key, base_url=sim.openai_base_url, max_tokens=20)
    return Skill(model=model, prompt="Summarise: {text}")


def items(n: int) -> list[dict[str, str]]:
    return [{"text": f"document {i}"} for i in range(n)]


def test_auto_finds_a_saturating_servers_capacity_without_a_503_storm():
    with Simulator(latency=0.1, capacity=8, queue=8) as sim:
        pool = Pool(skill_for(sim), items(400), max_flows="auto", progress=False)
        pool.run()
        statuses = dict(sim.stats.by_status)
    assert all(r.status == DONE for r in pool.records)
    flows = [r.flows for r in pool.records]
    assert flows[0] == AutoFlows().initial
    assert max(flows) >= 8  # it grew to the capacity...
    assert max(flows) <= 8 + 8 + 4  # ...not far past the point where the line is full
    assert statuses.get(503, 0) <= 0.05 * sum(statuses.values())
    log = pool.flow_log
    assert log and all(d.round_trip is not None for d in log)
    assert max(flows) <= max(d.flows for d in log)


def test_fixed_max_flows_keeps_todays_behaviour():
    with Simulator(latency=0.01) as sim:
        pool = Pool(skill_for(sim), items(30), max_flows=7, progress=False)
        pool.run()
    assert {r.flows for r in pool.records} == {7}
    assert pool.flow_log == []


def test_an_upper_bound_holds():
    with Simulator(latency=0.05) as sim:
        pool = Pool(skill_for(sim), items(300), max_flows=AutoFlows(max=6), progress=False)
        pool.run()
        peak = sim.stats.peak_concurrency
    assert max(r.flows for r in pool.records) == 6
    assert peak <= 6


@pytest.mark.parametrize("value", ["fast", "AUTOMATIC", 0, 2000, True, 2.5, None, ("auto", 5)])
def test_bad_max_flows_names_the_choices(value):
    with pytest.raises(ConfigurationError, match="auto"):
        Pool(lambda v: v, items(1), max_flows=value)


def test_auto_needs_the_pools_own_threads():
    with concurrent.futures.ThreadPoolExecutor(2) as executor, \
            pytest.raises(ConfigurationError, match="own threads"):
        Pool(lambda v: v, items(1), max_flows="auto", executor=executor)


def test_auto_is_a_setting_like_any_other():
    pool = Pool(lambda v: v["text"], items(20), max_flows=3)
    pool.max_flows = "auto"
    assert pool.run() == [f"document {i}" for i in range(20)]
    with pytest.raises(ConfigurationError):
        pool.max_flows = "sometimes"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_auto_paces_by_the_limits_the_headers_state(provider):
    # A scaled-down "must show": 3,000 requests a minute stated in the provider's header
    # family. Unpaced, 20 flows at 0.05 s would send 400 a second; "auto" keeps to 50.
    items_n, rpm = 250, 3000
    with Simulator(latency=0.05, rpm=rpm, tpm=10_000_000) as sim:
        name, base = ("gpt-4o-mini", sim.openai_base_url) if provider == "openai" \
            else ("claude-haiku-4-5", sim.anthropic_base_url)
        model = Model(name, api_key=f"sk-pace-{provider}", base_url=base, max_tokens=20)
        pool = Pool(Skill(model=model, prompt="Summarise: {text}"), items(items_n),
                    max_flows="auto", progress=False)
        started = time.monotonic()
        pool.run()
        wall = time.monotonic() - started
        statuses = dict(sim.stats.by_status)
    assert all(r.status == DONE for r in pool.records)
    assert statuses.get(429, 0) == 0
    floor = (items_n - AutoFlows().initial) / (rpm / 60)  # the first few go before it knows
    assert wall >= floor * 0.95  # paced: never faster than the stated limit
    assert wall <= floor * 2.0  # and not far slower (generous: CI machines are loaded)
    assert pool.flow_log[-1].requests_per_minute == rpm


def test_the_progress_line_and_the_report_show_what_auto_decided(tmp_path):
    stream = io.StringIO()
    with Simulator(latency=0.05, capacity=6, queue=6, rpm=6000) as sim:
        pool = Pool(skill_for(sim, "sk-show"), items(150), max_flows="auto", progress=stream)
        pool.run()
    last = stream.getvalue().strip().splitlines()[-1]
    assert f"auto {pool.flow_log[-1].flows} flows, limit 6k req/min" in last
    html = pool.report(tmp_path / "run.html").read_text()
    assert 'class="limit"' in html and 'max_flows="auto" set' in html
