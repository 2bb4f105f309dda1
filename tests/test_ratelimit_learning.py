"""RateLimit learns from the providers' rate-limit headers: user limits are ceilings,
headers tighten them, a spent budget pauses; the account's own learned limit is shared by
every Model of that account. Bucket arithmetic on a fake clock; the Model path against
the loopback simulator."""

from __future__ import annotations

import itertools
import pickle
import time
import uuid

import pytest

from yait_aichain import _context
from yait_aichain.errors import APITimeoutError
from yait_aichain.models import Model
from yait_aichain.ratelimit import RateLimit
from yait_aichain.ratelimit._admit import admit
from yait_aichain.ratelimit._headers import Reading, read_headers
from yait_aichain.ratelimit._limiter import account_limit, pace_of
from yait_aichain.testing import Simulator

from . import test_ratelimit_redis
from .test_ratelimit import FakeClock

redis_url = test_ratelimit_redis.redis_url  # the session's redis-server


def openai_headers(rpm=600, rpm_left=599, tpm=100_000, tpm_left=99_000, reset="100ms"):
    return {
        "x-ratelimit-limit-requests": str(rpm), "x-ratelimit-remaining-requests": str(rpm_left),
        "x-ratelimit-reset-requests": reset, "x-ratelimit-limit-tokens": str(tpm),
        "x-ratelimit-remaining-tokens": str(tpm_left), "x-ratelimit-reset-tokens": reset,
    }


def reading(**kwargs) -> Reading:
    found = read_headers(openai_headers(**kwargs), time.time())
    assert found is not None
    return found


class Watcher:
    def __init__(self):
        self.seen = []

    def observe(self, seconds, *, status=200, waited=0.0, believed=None):
        self.seen.append((seconds, status, waited))


# -- a RateLimit learns ---------------------------------------------------------------

def test_headers_tighten_a_user_limit():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=1200, clock=clock, sleep=clock.sleep)
    assert [limit.acquire() for _ in range(3)] == pytest.approx([0.0, 0.05, 0.1])
    limit.learn(reading(rpm=600))
    assert limit.believed_requests_per_minute == 600
    assert limit.requests_per_minute == 1200  # the setting itself stays
    clock.now += 10
    assert [limit.acquire() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert "learned: 600 requests/min" in repr(limit)


def test_headers_never_loosen_a_user_limit():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=300, clock=clock, sleep=clock.sleep)
    limit.learn(reading(rpm=6000))
    assert limit.believed_requests_per_minute == 300
    assert [limit.acquire() for _ in range(2)] == pytest.approx([0.0, 0.2])


def test_a_token_limit_the_user_did_not_set_is_added():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=6000, clock=clock, sleep=clock.sleep)
    limit.learn(reading(rpm=60_000, tpm=6000))  # 100 tokens a second
    assert limit.believed_tokens_per_minute == 6000
    assert limit.acquire(tokens=100) == 0.0
    assert limit.acquire(tokens=100) == pytest.approx(1.0)


def test_a_response_naming_only_requests_keeps_the_learned_tokens():
    limit = RateLimit._learning()
    limit.learn(reading(rpm=600, tpm=50_000))
    only_requests = read_headers({"x-ratelimit-limit-requests": "500",
                                  "x-ratelimit-remaining-requests": "499"}, time.time())
    limit.learn(only_requests)
    assert (limit.believed_requests_per_minute, limit.believed_tokens_per_minute) == (500, 50_000)


def test_a_spent_budget_pauses_every_caller_until_its_reset():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=6000, clock=clock, sleep=clock.sleep)
    limit.learn(reading(rpm=600, rpm_left=0, reset="3s"))
    assert limit.acquire() == pytest.approx(3.0)


def test_a_learning_limit_never_waits_before_it_learned_anything():
    clock = FakeClock()
    limit = RateLimit._learning(clock=clock)
    limit.sleep = clock.sleep
    assert limit.believed_requests_per_minute is None
    assert [limit.acquire(tokens=10**9) for _ in range(50)] == [0.0] * 50
    limit.learn(reading(rpm=60, tpm=10**9))
    clock.now += 100
    assert [limit.acquire() for _ in range(2)] == pytest.approx([0.0, 1.0])


def test_a_retuned_bucket_gives_back_exactly_what_a_reservation_took():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=600, clock=clock, sleep=clock.sleep)
    backend = limit.backend
    backend.reserve(1, 0, None)
    _, handle = backend.reserve(1, 0, None)  # tat now +0.2
    limit.learn(reading(rpm=60))  # retuned to one a second
    backend.cancel(handle)  # back to +0.1; with the new interval it would go to -0.8
    # The next one is due at +0.1 + 1.0, minus one request's credit (1.0): 0.1 s.
    assert backend.reserve(1, 0, None)[0] == pytest.approx(0.1)


def test_learned_rates_pickle_with_the_limit():
    limit = RateLimit(requests_per_minute=1000)
    limit.learn(reading(rpm=600))
    copy = pickle.loads(pickle.dumps(limit))
    assert copy.believed_requests_per_minute == 600 and copy.requests_per_minute == 1000


# -- the account's learned limit --------------------------------------------------------

def test_one_learned_pace_per_account_kept_on_its_pause():
    a = account_limit("openai", "http://h/v1", "sk-1")
    assert pace_of(account_limit("openai", "http://h/v1", "sk-1")) is pace_of(a)
    assert pace_of(account_limit("openai", "http://h/v1", "sk-2")) is not pace_of(a)
    assert pace_of(account_limit("anthropic", "http://h/v1", "sk-1")) is not pace_of(a)
    assert "sk-1" not in repr(a) and "sk-1" not in repr(pace_of(a))


def test_permit_reports_headers_to_limits_and_attempts_to_observers():
    own = RateLimit(requests_per_minute=6000)
    account = account_limit("openai", "http://permit/v1", "sk-permit")
    watcher = Watcher()
    with _context.scope(observers=(watcher,)), \
            admit((account, own), account=account) as permit:
        permit.response(200, openai_headers(rpm=600))
    assert own.believed_requests_per_minute == 600
    assert pace_of(account).believed_requests_per_minute == 600
    assert account.pause_only  # the pause itself never paces by what was learned
    assert len(watcher.seen) == 1 and watcher.seen[0][1] == 200


def test_outside_an_auto_pool_the_account_neither_learns_nor_paces():
    account = account_limit("openai", "http://outside/v1", "sk-outside")
    pace_of(account).learn(reading(rpm=60, rpm_left=0, reset="30s"))  # spent: a 30 s wait
    started = time.monotonic()
    with admit((account,), account=account) as permit:
        permit.response(200, openai_headers(rpm=6000))
    assert time.monotonic() - started < 1.0
    assert pace_of(account).believed_requests_per_minute == pytest.approx(3.0)  # untouched
    with _context.scope(timeout=1.0, observers=(Watcher(),)), \
            pytest.raises(APITimeoutError):
        admit((account,), account=account)  # inside an auto Pool it would wait


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_model_learns_the_limits_the_simulator_states(provider):
    # The simulator states (and enforces) 600 requests and 100,000 tokens a minute in the
    # provider's own header family; one call teaches the Model's limit and its account.
    with Simulator(rpm=600, tpm=100_000) as sim:
        limit = RateLimit(requests_per_minute=6000)
        name, base = ("gpt-4o-mini", sim.openai_base_url) if provider == "openai" \
            else ("claude-haiku-4-5", sim.anthropic_base_url)
        model = Model(name, api_key=f"sk-learn-{provider}", base_url=base, rate_limit=limit,
                      max_tokens=20)
        with _context.scope(observers=(Watcher(),)):  # as inside a max_flows="auto" Pool
            model.generate("hello")
    assert limit.believed_requests_per_minute == 600
    assert limit.believed_tokens_per_minute == 100_000
    assert limit.requests_per_minute == 6000 and limit.tokens_per_minute is None
    pace = pace_of(model._account)
    assert (pace.believed_requests_per_minute, pace.believed_tokens_per_minute) == (600, 100_000)


def test_a_redis_limit_learns_and_the_learned_pace_holds_across_objects(redis_url):
    # Two objects stand for two processes: one budget in Redis, each tightened by the
    # headers its own responses carry.
    key = uuid.uuid4().hex
    a = RateLimit(requests_per_minute=6000, redis_url=redis_url, key=key)
    b = RateLimit(requests_per_minute=6000, redis_url=redis_url, key=key)
    for limit in (a, b):
        limit.learn(reading(rpm=600))
    waits = [limit.backend.reserve(1, 0, None)[0] for limit in (a, b, a, b)]
    assert waits[0] == 0.0
    for before, after in itertools.pairwise(waits):
        assert after - before == pytest.approx(0.1, abs=0.03)


def test_a_learning_limit_charges_what_answers_really_use_up_front():
    account = account_limit("openai", "http://usage/v1", "sk-usage")
    pace = pace_of(account)
    assert pace.output_tokens == 1000  # the documented first guess
    with _context.scope(observers=(Watcher(),)):  # as inside a max_flows="auto" Pool
        for _ in range(60):
            with admit((account,), account=account, prompt=50) as permit:
                permit.used = 50 + 40  # each answer used 40 output tokens
    assert 40 <= pace.output_tokens <= 60
    user = RateLimit(tokens_per_minute=100_000)
    with admit((user,), prompt=50) as permit:
        permit.used = 90
    assert user.output_tokens == 1000  # a user's limit keeps its setting
