"""Guardrails for money, against the simulator: the circuit breaker stops a run whose items
all fail the same way, and budgets hold with many flows in flight."""

from __future__ import annotations

import socket
import time

import pytest

from yait_aichain import CANCELLED, DONE, FAILED, Model, Pool, Skill
from yait_aichain.cli import main
from yait_aichain.errors import (
    AuthenticationError,
    CancelledError,
    ConfigurationError,
    NetworkError,
)
from yait_aichain.pool import CircuitBreaker
from yait_aichain.testing import Fault


def _items(n: int) -> list[dict]:
    return [{"text": f"doc {i}"} for i in range(n)]


def _dead_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _systemic(pool: Pool) -> list[CancelledError]:
    return [r.error for r in pool.records
            if r.status == CANCELLED and getattr(r.error, "reason", None) == "systemic"]


# -- the circuit breaker ---------------------------------------------------------------


def test_a_revoked_key_sends_at_most_ten_requests_for_500_items(sim_env):
    sim_env.fail_when(lambda info: True, Fault.unauthorized())
    pool = Pool(Skill(model=Model("gpt-4o-mini"), prompt="{text}"), _items(500), progress=False)
    pool.run()
    assert sim_env.stats.requests <= 10
    status = pool.status
    assert status[FAILED] <= 10 and status[FAILED] + status[CANCELLED] == 500
    stopped = _systemic(pool)
    assert len(stopped) == status[CANCELLED] >= 490
    assert len({str(e) for e in stopped}) == 1  # one clear message
    message = str(stopped[0])
    assert "refused the API key" in message and "HTTP 401" in message
    assert isinstance(stopped[0].cause, AuthenticationError)
    assert "sk-" not in message


def test_a_base_url_where_nothing_listens_ends_500_items_within_10_s():
    model = Model("llama3.1", provider="ollama", base_url=f"http://127.0.0.1:{_dead_port()}/v1")
    pool = Pool(Skill(model=model, prompt="{text}"), _items(500), progress=False)
    started = time.monotonic()
    pool.run()
    assert time.monotonic() - started < 10
    assert pool.status[DONE] == 0 and pool.status[CANCELLED] >= 490
    message = str(_systemic(pool)[0])
    assert "is the server running at http://127.0.0.1:" in message
    assert isinstance(_systemic(pool)[0].cause, NetworkError)


def test_the_ollama_port_suggests_ollama_serve():
    model = Model("llama3.1", provider="ollama", base_url="http://127.0.0.1:11434/v1")
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 11434))  # nobody may listen while we test; skip if taken
    except OSError:
        pytest.skip("port 11434 is in use here")
    finally:
        sock.close()
    pool = Pool(Skill(model=model, prompt="{text}"), _items(20), progress=False)
    pool.run()
    assert "try `ollama serve`" in str(_systemic(pool)[0])


def test_one_failing_item_among_good_ones_never_trips_it(sim_env):
    sim_env.fail_when("doc 3.", Fault.unauthorized())  # this one item only
    items = [{"text": f"doc {i}."} for i in range(40)]
    pool = Pool(Skill(model=Model("gpt-4o-mini"), prompt="{text}"), items, max_flows=2,
                progress=False)
    pool.run()
    assert pool.status[DONE] == 39 and pool.status[FAILED] == 1 and not _systemic(pool)


def test_the_same_4xx_on_every_item_trips_it_and_it_can_be_tuned_or_turned_off(sim_env):
    sim_env.fail_when(lambda info: True, Fault.status(400))
    skill = Skill(model=Model("gpt-4o-mini"), prompt="{text}")
    pool = Pool(skill, _items(100), max_flows=1, progress=False)
    pool.run()
    assert sim_env.stats.requests == 5 and len(_systemic(pool)) == 95
    sim_env.reset()
    Pool(skill, _items(100), max_flows=1, progress=False,
         breaker=CircuitBreaker(same_error=2)).run()
    assert sim_env.stats.requests == 2
    sim_env.reset()
    off = Pool(skill, _items(30), max_flows=5, progress=False, breaker=False)
    off.run()
    assert sim_env.stats.requests == 30 and off.status[FAILED] == 30


def test_retry_failed_after_a_trip_runs_the_cancelled_items(sim_env):
    sim_env.fail_when(lambda info: True, Fault.unauthorized(), times=10)
    pool = Pool(Skill(model=Model("gpt-4o-mini"), prompt="{text}"), _items(50), progress=False)
    pool.run()
    assert pool.status[CANCELLED] >= 40
    pool.retry_failed()
    assert pool.status[DONE] == 50


def test_the_cli_exits_1_with_the_message(sim_env, tmp_path, capsys):
    sim_env.fail_when(lambda info: True, Fault.unauthorized())
    items = tmp_path / "items.jsonl"
    items.write_text("".join(f'{{"text": "doc {i}"}}\n' for i in range(100)), encoding="utf-8")
    code = main(["run", "-m", "gpt-4o-mini", "-p", "{text}", "-i", str(items), "-o",
                 str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and sim_env.stats.requests <= 10
    assert "refused the API key" in err and err.count("refused the API key") == 1


# -- budgets -----------------------------------------------------------------------------


def _priced(sim_env, **kw) -> Skill:
    # $100 per million tokens: each tiny call costs about $0.002.
    model = Model("gpt-4o-mini", price=(100.0, 100.0), max_tokens=20, **kw)
    return Skill(model=model, prompt="Summarise: {text}")


def test_max_cost_with_20_flows_never_records_more_than_the_budget(sim_env):
    sim_env.latency = 0.05  # many calls in flight at once
    pool = Pool(_priced(sim_env), _items(200), max_flows=20, max_cost=0.01, progress=False)
    pool.run()
    assert 0 < pool.usage.cost <= 0.01
    cancelled = [r for r in pool.records if r.status == CANCELLED]
    assert cancelled and all(r.error.reason == "budget" for r in cancelled)
    assert pool.status[DONE] + len(cancelled) == 200


def test_max_tokens_budget_holds_too(sim_env):
    sim_env.latency = 0.05
    pool = Pool(_priced(sim_env), _items(200), max_flows=20, max_tokens=500, progress=False)
    pool.run()
    assert 0 < pool.usage.total_tokens <= 500


def test_an_unpriced_model_with_max_cost_sends_nothing(sim_env):
    model = Model("llama3.1", provider="ollama", base_url=sim_env.openai_base_url)
    with pytest.raises(ConfigurationError, match=r"'llama3.1'.*price=.*max_tokens="):
        Pool(Skill(model=model, prompt="{text}"), _items(10), max_cost=1.0, progress=False)
    pool = Pool(Skill(model=model, prompt="{text}"), _items(10), progress=False)
    with pytest.raises(ConfigurationError, match="price="):
        pool.max_cost = 1.0  # set later: checked as it is set
    assert sim_env.stats.requests == 0
    # A token budget needs no price.
    Pool(Skill(model=model, prompt="{text}"), _items(3), max_cost=1.0, max_tokens=100_000,
         progress=False).run()
    assert sim_env.stats.requests == 3


def test_the_cli_max_cost_of_an_unpriced_model_is_exit_2(sim_env, tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_text('{"text": "a"}\n', encoding="utf-8")
    code = main(["run", "-m", "llama3.1", "--provider", "ollama", "--base-url",
                 sim_env.openai_base_url, "-p", "{text}", "-i", str(items), "-o",
                 str(tmp_path / "out.jsonl"), "--max-cost", "1"])
    assert code == 2 and sim_env.stats.requests == 0
    assert "--price" in capsys.readouterr().err
