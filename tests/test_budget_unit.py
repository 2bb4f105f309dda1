"""The budget's reservation arithmetic and the breaker's bookkeeping, without a Pool."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from yait_aichain import Usage
from yait_aichain._budget import DEFAULT_RESERVED_OUTPUT, Budget, worst_case
from yait_aichain.errors import (
    AuthenticationError,
    CancelledError,
    ChainStepError,
    ConfigurationError,
    InvalidRequestError,
    ServerError,
)
from yait_aichain.models._prices import Price
from yait_aichain.pool._breaker import CircuitBreaker, check_breaker
from yait_aichain.pool._breaker import Guards as BreakerState

PRICE = Price(input=1.0, output=2.0)  # USD per million tokens
MESSAGES = [{"role": "user", "parts": [{"type": "text", "text": "x" * 200}]}]


def test_worst_case_is_a_generous_input_estimate_plus_max_tokens():
    worst = worst_case(PRICE, MESSAGES, max_tokens=100)
    assert worst.input_tokens >= 200 / 2 and worst.output_tokens == 100
    assert worst.cost == pytest.approx(PRICE.cost(worst))
    assert worst_case(PRICE, MESSAGES, None).output_tokens == DEFAULT_RESERVED_OUTPUT
    assert worst_case(None, MESSAGES, 10).cost is None


def test_concurrent_reservations_never_pass_the_budget():
    budget = Budget(max_cost=0.01)
    worst = worst_case(PRICE, MESSAGES, max_tokens=1000)  # ~$0.0023 each
    holds, refused = [], []
    lock = threading.Lock()

    def call():
        try:
            hold = budget.reserve(worst)
        except CancelledError as exc:
            with lock:
                refused.append(exc)
            return
        with lock:
            holds.append(hold)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # all but the ones that fit now wait for room
    fitted = len(holds)
    assert fitted == int(0.01 // worst.cost) and sum(h.cost for h in holds) <= 0.01
    actual = Usage(10, 10, 20, PRICE.cost(Usage(10, 10, 20)))
    while any(t.is_alive() for t in threads):  # each settles far below its worst case
        with lock:
            open_holds = [h for h in holds if not h.settled]
        for hold in open_holds:
            hold.settle(actual)
        time.sleep(0.01)
    for t in threads:
        t.join()
    assert len(holds) + len(refused) == 20 and len(holds) > fitted  # room came back
    assert all(e.reason == "budget" for e in refused)


def test_a_call_that_cannot_fit_even_alone_is_refused_at_once():
    budget = Budget(max_cost=0.001)
    with pytest.raises(CancelledError, match="does not fit") as info:
        budget.reserve(worst_case(PRICE, MESSAGES, max_tokens=1000))
    assert info.value.reason == "budget" and budget.refused is info.value


def test_an_unpriced_model_under_max_cost_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="price=.*max_tokens="):
        Budget(max_cost=1.0).reserve(worst_case(None, MESSAGES, 10), "'llama3.1'")
    Budget(max_tokens=10_000).reserve(worst_case(None, MESSAGES, 10))  # tokens need no price


def test_a_budget_does_not_travel_to_another_process():
    assert pickle.loads(pickle.dumps(Budget(max_cost=1.0))) is None


def _auth():
    return AuthenticationError("[HTTP 401] invalid key", status=401, provider="openai")


def test_breaker_trips_after_systemic_failures_in_a_row_and_a_done_resets():
    state = BreakerState(CircuitBreaker(systemic=3))
    assert state.observe(False, _auth()) is None and state.doubtful
    assert state.observe(True, None) is None and not state.doubtful
    assert state.observe(False, _auth()) is None
    assert state.observe(False, _auth()) is None
    wrapped = ChainStepError("step 0 failed", step=0, name="s")
    wrapped.__cause__ = _auth()
    tripped = state.observe(False, wrapped)  # found behind a Chain's wrapper
    assert isinstance(tripped, AuthenticationError) and state.tripped is tripped


def test_breaker_trips_on_the_same_non_retryable_error_but_not_on_5xx():
    state = BreakerState(CircuitBreaker(same_error=3))
    for _ in range(10):
        assert state.observe(False, ServerError("[HTTP 500] boom", status=500)) is None
    bad = [InvalidRequestError(f"[HTTP 400] max_tokens {n} too large", status=400)
           for n in (5000, 6000, 7000)]
    assert state.observe(False, bad[0]) is None and state.observe(False, bad[1]) is None
    assert state.observe(False, bad[2]) is bad[2]


def test_breaker_settings_are_checked():
    assert check_breaker(True) == CircuitBreaker() and check_breaker(False) is None
    with pytest.raises(ConfigurationError, match="systemic"):
        CircuitBreaker(systemic=0)
    with pytest.raises(ConfigurationError, match="breaker"):
        check_breaker("yes")
    assert BreakerState(None).observe(False, _auth()) is None


def test_models_are_found_through_skills_chains_and_closures():
    from yait_aichain import Chain, Model, Skill
    from yait_aichain._budget import check_prices, models_in

    priced = Model("gpt-4o-mini", api_key="sk-x")
    local = Model("llama3.1", provider="ollama", base_url="http://127.0.0.1:9/v1")
    skill = Skill(model=local, prompt="{text}")
    chain = Chain([(Skill(model=priced, prompt="{text}"), "a"), (skill, "b")])

    def wrapper(v):
        return skill.run(v)

    assert models_in(chain) == [priced, local] and models_in(wrapper) == [local]
    with pytest.raises(ConfigurationError, match="'llama3.1'"):
        check_prices(chain, 1.0, None)
    check_prices(chain, 1.0, 1000)  # a token budget needs no price
    check_prices(Skill(model=priced, prompt="{text}"), 1.0, None)
