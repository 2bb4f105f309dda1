"""Model and Skill against the real loopback simulator: sockets, threads, faults."""

import logging
import runpy
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from yait_aichain.errors import APITimeoutError, AuthenticationError, TemplateError
from yait_aichain.models import Model, RetryPolicy
from yait_aichain.skills import Skill
from yait_aichain.testing import Fault

from .conftest import CANARY

SEED = Path(__file__).parent / "seed"
PROMPT = {"messages": [{"role": "user", "parts": ["Summarise in two sentences:\n\n{text}"]}]}


def test_seed_sample_1_runs_verbatim(sim_env):
    ns = runpy.run_path(str(SEED / "sample1_loop.py"))
    assert ns["results"] == [f"Summary: Summarise in two sentences: Document {i} content..." for i in range(50)]
    assert sim_env.stats.requests == 50
    assert {r.provider for r in sim_env.requests_log} == {"anthropic"}


@pytest.mark.parametrize(
    "make_model",
    [
        lambda sim: Model("gpt-4o-mini", api_key="k"),
        lambda sim: Model("gemini-2.5-flash", api_key="k"),
        lambda sim: Model("llama3.1", provider="ollama", base_url=sim.openai_base_url),
    ],
    ids=["openai", "gemini", "ollama"],
)
def test_the_same_loop_on_every_provider(sim_env, make_model):
    skill = Skill(model=make_model(sim_env), input=PROMPT)
    results = [skill.run({"text": f"Doc {i}"}) for i in range(10)]
    assert results == [f"Summary: Summarise in two sentences: Doc {i}" for i in range(10)]


@pytest.mark.slow
def test_fifty_threads_through_429s_each_get_their_own_answer(sim_env, recwarn):
    sim_env.fail_rate(0.3, Fault.rate_limit(retry_after=1))
    model = Model("claude-sonnet-4-6", retry=RetryPolicy(max_retries=8))
    skill = Skill(model=model, input=PROMPT)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: skill.run({"text": f"Doc {i}"}), range(200)))
    assert results == [f"Summary: Summarise in two sentences: Doc {i}" for i in range(200)]
    stats = sim_env.stats
    assert stats.by_status.get(429, 0) > 0
    assert 200 < stats.requests <= 200 * 9
    assert stats.connections <= 60, stats  # about one per thread: connections are reused
    assert not [w for w in recwarn if "pool is full" in str(w.message)]


def test_no_pool_full_warning_in_logs(sim_env, caplog):
    skill = Skill(model=Model("gpt-4o-mini"), input=PROMPT)
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        with ThreadPoolExecutor(50) as pool:
            list(pool.map(lambda i: skill.run({"text": str(i)}), range(150)))
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert sim_env.stats.connections <= 55


def test_a_hung_server_times_out_within_budget(sim_env):
    sim_env.fail_next(Fault.hang(), times=10)
    model = Model("gpt-4o-mini", timeout=2)
    start = time.monotonic()
    with pytest.raises(APITimeoutError):
        model.generate("hello")
    assert time.monotonic() - start < 3.0


def test_a_slow_drip_is_cut_at_the_budget(sim_env):
    sim_env.fail_next(Fault.slow_drip(bytes_per_second=5), times=10)
    start = time.monotonic()
    with pytest.raises(APITimeoutError):
        Model("gpt-4o-mini", timeout=1.5).generate("hello")
    assert time.monotonic() - start < 2.5


def test_dropped_connection_is_retried(sim_env, no_wait):
    sim_env.fail_next(Fault.drop())
    gen = Model("gpt-4o-mini", retry=no_wait).generate("hello")
    assert gen.output == "Summary: hello" and gen.attempts == 2


def test_401_is_one_request_and_the_key_leaks_nowhere(sim_env, caplog):
    sim_env.require_key = "the-right-key"
    logging.getLogger().setLevel(logging.DEBUG)
    model = Model("claude-sonnet-4-6", api_key=CANARY)
    skill = Skill(model=model, input=PROMPT)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthenticationError) as info:
            skill.run({"text": "x"})
        err = info.value
        text = "".join(traceback.format_exception(err))
    assert sim_env.stats.requests == 1
    for place in (str(err), repr(err), repr(err.args), text, repr(vars(err)), repr(model), repr(skill)):
        assert CANARY not in place
    assert CANARY not in caplog.text
    assert sim_env.requests_log[0].headers["x-api-key"] == CANARY  # it did travel, in the header


def test_missing_variable_costs_no_request(sim_env):
    skill = Skill(model=Model("claude-sonnet-4-6"), input=PROMPT)
    with pytest.raises(TemplateError, match="'text'"):
        skill.run({"body": "x"})
    assert sim_env.stats.requests == 0


def test_429_with_hint_is_honoured(sim_env):
    sim_env.fail_next(Fault.rate_limit(retry_after=0.5))
    start = time.monotonic()
    gen = Model("gpt-4o-mini").generate("hello")
    assert gen.attempts == 2 and time.monotonic() - start >= 0.5


def test_shared_cool_down_holds_other_threads(sim_env):
    sim_env.fail_next(Fault.rate_limit(retry_after=1))
    model = Model("gpt-4o-mini")
    first = threading.Thread(target=model.generate, args=("a",))
    start = time.monotonic()
    first.start()
    assert sim_env.wait_for(lambda s: s.by_status.get(429, 0) == 1)
    # A second caller of the same account, after the 429: it waits out the hint instead of
    # discovering the limit on its own.
    Model("gpt-4o-mini").generate("b")
    first.join()
    assert time.monotonic() - start >= 1.0
    b_requests = [r for r in sim_env.requests_log if r.last_user_text == "b"]
    assert [r.status for r in b_requests] == [200]


def test_truncated_body_is_a_transient_network_error(sim_env, no_wait):
    sim_env.fail_next(Fault.truncated())
    gen = Model("gpt-4o-mini", retry=no_wait).generate("hello")
    assert gen.output == "Summary: hello" and gen.attempts == 2


def test_malformed_2xx_is_an_invalid_response_retried_once(sim_env, no_wait):
    from yait_aichain.errors import InvalidResponseError

    sim_env.fail_next(Fault.malformed(), times=5)
    with pytest.raises(InvalidResponseError) as info:
        Model("gpt-4o-mini", retry=RetryPolicy(max_retries=1, sleep=lambda s: None)).generate("x")
    assert info.value.reason == "malformed" and sim_env.stats.requests == 2


def test_retries_resend_the_identical_body(sim_env, no_wait):
    sim_env.fail_next(Fault.server_error(), times=2)
    Model("claude-sonnet-4-6", retry=no_wait).generate("same body please")
    bodies = [r.body for r in sim_env.requests_log]
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]


def test_dns_failure_names_the_host_and_gives_up_quickly(no_wait):
    from yait_aichain.errors import NetworkError

    model = Model("gpt-4o-mini", api_key="k", base_url="http://no-such-host.invalid/v1",
                  retry=RetryPolicy(max_retries=1, sleep=lambda s: None))
    start = time.monotonic()
    with pytest.raises(NetworkError, match="no-such-host.invalid"):
        model.generate("x")
    assert time.monotonic() - start < 5


def test_unreachable_proxy_names_the_host_not_the_password(monkeypatch):
    from yait_aichain.errors import NetworkError

    monkeypatch.setenv("HTTP_PROXY", "http://user:hunter2-secret@127.0.0.1:9")
    model = Model("gpt-4o-mini", api_key=CANARY, base_url="http://api.example.test/v1")
    with pytest.raises(NetworkError) as info:
        model.generate("x")
    text = "".join(traceback.format_exception(info.value))
    assert "hunter2-secret" not in text and CANARY not in text
    assert info.value.attempts == 1  # a broken proxy is configuration, not a blip
