"""RateLimit: the bucket arithmetic (fake clock, no real waiting), then Models and Pools
against the loopback simulator, measuring the rate from the simulator's request log."""

from __future__ import annotations

import io
import pickle
import random
import threading
import time

import pytest

from yait_aichain import _context
from yait_aichain._usage import Usage
from yait_aichain.errors import APITimeoutError, CancelledError, ConfigurationError, RateLimitError
from yait_aichain.models import Model, RetryPolicy
from yait_aichain.pool import DONE, Pool
from yait_aichain.pool._progress import format_line
from yait_aichain.ratelimit import RateLimit
from yait_aichain.skills import Skill
from yait_aichain.testing import Fault, Simulator

# -- helpers ---------------------------------------------------------------------------

class FakeClock:
    """A monotonic clock that only moves when told to (or when ``sleep`` is called)."""

    def __init__(self, advance_on_sleep: bool = False):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.advance_on_sleep = advance_on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance_on_sleep:
            self.now += seconds


def max_in_window(times: list[float], width: float) -> int:
    """The most events in any window ``[t, t + width)`` (t ranging over event times)."""
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


def max_sum_in_window(events: list[tuple[float, int]], width: float) -> int:
    """The largest sum of amounts in any window of ``width`` seconds."""
    events = sorted(events)
    best = total = j = 0
    for t, amount in events:
        total += amount
        while events[j][0] <= t - width:
            total -= events[j][1]
            j += 1
        best = max(best, total)
    return best


def assert_request_rate(times: list[float], per_second: float, windows=(2.0, 5.0)) -> None:
    """Every window holds at most ``per_second * width`` requests (+10%) plus the one
    request a smooth bucket lets through at the window's edge. (Windows of real traffic
    are 2 s or more: the 10% must absorb thread-scheduling jitter on a busy machine.)"""
    for width in windows:
        seen = max_in_window(times, width)
        assert seen <= per_second * width * 1.1 + 1, (width, seen)


def openai_model(sim: Simulator, **kwargs) -> Model:
    return Model("gpt-4o-mini", api_key="sk-test", base_url=sim.openai_base_url, **kwargs)


# -- the bucket, with a fake clock -----------------------------------------------------

def test_requests_queue_up_evenly_spaced():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=600, clock=clock, sleep=clock.sleep)
    waits = [limit.acquire() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_an_idle_limit_banks_no_burst():
    clock = FakeClock(advance_on_sleep=True)
    limit = RateLimit(requests_per_minute=600, clock=clock, sleep=clock.sleep)
    limit.acquire()
    clock.now += 3600  # an hour idle
    assert [limit.acquire() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.1])


def test_every_window_holds_under_random_contention():
    # 200 callers arriving at random moments within 5 s; the send time of each is its
    # arrival plus the wait the limit told it: every window must hold the rate.
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=600, clock=clock, sleep=clock.sleep)
    rng = random.Random(7)
    sends = []
    for arrival in sorted(rng.uniform(0, 5) for _ in range(200)):
        clock.now = 1000.0 + arrival
        sends.append(clock.now + limit.acquire())
    assert_request_rate(sends, 10, windows=(0.5, 1.0, 5.0, 10.0))
    assert max(sends) - min(sends) == pytest.approx(19.9)  # and no slot is wasted


def test_tokens_are_charged_then_corrected():
    clock = FakeClock()
    # 6000 per minute = 100 per second, with one second (100 tokens) of credit.
    limit = RateLimit(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)
    assert limit.acquire(tokens=100) == 0.0
    assert limit.acquire(tokens=100) == pytest.approx(1.0)
    limit.adjust(-100)  # the second call used nothing after all
    assert limit.acquire(tokens=100) == pytest.approx(1.0)
    limit.adjust(250)  # and this one used 350
    assert limit.acquire(tokens=100) == pytest.approx(4.5)


def test_a_big_request_waits_for_its_share_and_a_too_big_one_is_a_clear_error():
    clock = FakeClock()
    limit = RateLimit(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)
    assert limit.acquire(tokens=3000) == pytest.approx(29.0)  # never a deadlock
    assert limit.acquire(tokens=6000) > 0  # exactly a minute's budget is allowed
    with pytest.raises(ConfigurationError, match=r"6,001 tokens.*tokens_per_minute=6,000"):
        limit.acquire(tokens=6001)


def test_a_wait_longer_than_the_timeout_fails_at_once_and_reserves_nothing():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=60, clock=clock, sleep=clock.sleep)
    limit.acquire()
    with pytest.raises(APITimeoutError) as info:
        limit.acquire(timeout=0.5)
    assert info.value.retry_after == pytest.approx(1.0)
    assert isinstance(info.value, TimeoutError) and clock.sleeps == []
    assert limit.acquire() == pytest.approx(1.0)  # the refused call took no slot


def test_a_cancelled_reservation_is_given_back_only_from_the_end_of_the_queue():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=60, clock=clock)
    backend = limit.backend
    _, first = backend.reserve(1, 0, None)
    wait, _ = backend.reserve(1, 0, None)
    assert wait == pytest.approx(1.0)
    backend.cancel(first)  # someone queued behind it: giving it back would double up
    assert backend.reserve(1, 0, None)[0] == pytest.approx(2.0)
    _, last = backend.reserve(1, 0, None)
    backend.cancel(last)
    assert backend.reserve(1, 0, None)[0] == pytest.approx(3.0)


def test_pause_holds_every_caller():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=600, clock=clock, sleep=clock.sleep)
    limit.pause(2.5)
    assert limit.acquire() == pytest.approx(2.5)
    limit.pause(10_000)  # capped: a bogus Retry-After must not park everyone for hours
    assert limit.acquire() <= 60.0


def test_bad_settings_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="requests_per_minute=, tokens_per_minute="):
        RateLimit()
    with pytest.raises(ConfigurationError, match="requests_per_minute must be None or a finite "
                                                 "number > 0, got 0"):
        RateLimit(requests_per_minute=0)
    with pytest.raises(ConfigurationError, match="tokens_per_minute must .* got True"):
        RateLimit(tokens_per_minute=True)
    with pytest.raises(ConfigurationError, match="key="):
        RateLimit(60, redis_url="redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="redis://"):
        RateLimit(60, redis_url="http://127.0.0.1:6379", key="k")
    with pytest.raises(ConfigurationError, match="rate_limit must be a RateLimit"):
        Model("gpt-4o-mini", api_key="k", rate_limit=60)
    with pytest.raises(ConfigurationError, match="rate_limit must be a RateLimit"):
        Pool(len, [{}], rate_limit={"rpm": 60})


@pytest.mark.parametrize("url, shown", [
    ("redis://:hunter2@db:6379/0", "redis://:***@db:6379/0"),
    ("rediss://app:hunter2@db/1", "rediss://app:***@db/1"),
    ("redis://app:hun@ter2@db/0", "redis://app:***@db/0"),  # "@" inside the password
    ("redis://db:6379/0?name=a@b", "redis://db:6379/0?name=a@b"),
])
def test_the_repr_never_shows_the_redis_password(url, shown):
    assert f"redis_url={shown!r}" in repr(RateLimit(60, redis_url=url, key="k"))

def test_it_pickles_as_settings_and_a_copy_shares_the_budget_in_process():
    clock = FakeClock()
    limit = RateLimit(requests_per_minute=60, tokens_per_minute=6000, clock=clock, sleep=clock.sleep)
    limit.acquire()
    blob = pickle.dumps(limit)
    assert b"_thread" not in blob and b"LocalBackend" not in blob
    copy = pickle.loads(blob)
    assert repr(copy) == "RateLimit(requests_per_minute=60, tokens_per_minute=6000)"
    assert copy.backend is limit.backend  # one budget, not two
    model = Model("gpt-4o-mini", api_key="k", rate_limit=limit)
    assert pickle.loads(pickle.dumps(model)).rate_limit.backend is limit.backend


def test_a_wait_is_interrupted_by_cancel():
    limit = RateLimit(requests_per_minute=6)  # one request every 10 s
    limit.acquire()
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    with _context.scope(cancel=cancel), pytest.raises(CancelledError):
        limit.acquire()
    assert time.monotonic() - started < 1.0


def test_the_progress_line_shows_rate_limited_items():
    counts = {0: 5, 1: 4, 2: 1, 3: 0, 4: 0}
    line = format_line("pool", counts, 10, 1.0, Usage(), waiting=3)
    assert "4 running | 3 rate-limited" in line
    assert "rate-limited" not in format_line("pool", counts, 10, 1.0, Usage())


# -- Models against the simulator ------------------------------------------------------

def test_model_charges_the_estimate_then_the_reported_usage(sim):
    clock = FakeClock()
    limit = RateLimit(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)
    model = openai_model(sim, max_tokens=50, rate_limit=limit)
    result = model.generate("one two three four five six seven eight")
    used = result.usage.total_tokens
    assert used == 8 + 9  # the simulator counts words: 8 in, "Summary: one ... eight" out
    # The bucket holds exactly what was used, not the estimate (39 chars/4 + 50 = 60).
    assert limit.acquire(tokens=100) == pytest.approx(used / 100)


def test_an_oversized_request_fails_before_sending(sim):
    model = openai_model(sim, max_tokens=5000, rate_limit=RateLimit(tokens_per_minute=4000))
    with pytest.raises(ConfigurationError, match="tokens_per_minute=4,000"):
        model.generate("hello")
    assert sim.stats.requests == 0


def test_a_wait_beyond_the_call_budget_is_a_timeout_without_a_request(sim):
    limit = RateLimit(requests_per_minute=6)
    model = openai_model(sim, rate_limit=limit, timeout=2)
    model.generate("first")
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="would exceed") as info:
        model.generate("second")
    assert time.monotonic() - started < 0.5  # refused at once, never slept into a timeout
    assert info.value.retry_after == pytest.approx(10, abs=0.5)
    assert sim.stats.requests == 1


def test_a_429_pauses_everyone_sharing_the_limit(sim):
    # Two accounts (two keys, so two separate retry cool-downs) share one limit: the 429
    # one of them gets must hold the other too.
    limit = RateLimit(requests_per_minute=6000)
    sim.fail_next(Fault.rate_limit(retry_after=1))
    first = openai_model(sim, rate_limit=limit, retry=RetryPolicy(max_retries=0))
    other = Model("gpt-4o-mini", api_key="sk-other", base_url=sim.openai_base_url, rate_limit=limit)
    with pytest.raises(RateLimitError):
        first.generate("a")
    started = time.monotonic()
    other.generate("b")
    assert time.monotonic() - started >= 0.95


def test_pool_and_model_limits_both_apply_and_waits_show_in_records(sim):
    loose = RateLimit(requests_per_minute=60_000)
    tight = RateLimit(requests_per_minute=1200)  # 20/s
    skill = Skill(model=openai_model(sim, rate_limit=loose), prompt="{text}")
    progress = io.StringIO()
    progress.isatty = lambda: True  # a terminal: the line redraws at ~10 a second
    pool = Pool(skill, [{"text": f"t{i}"} for i in range(40)], max_flows=10,
                rate_limit=tight, progress=progress)
    started = time.monotonic()
    pool.run()
    assert time.monotonic() - started >= 1.9  # 40 requests at 20/s: the tight one ruled
    assert pool.status[DONE] == 40
    times = [r.time for r in sim.requests_log]
    assert_request_rate(times, 20, windows=(2.0,))
    waits = [rec.wait_seconds for rec in pool.records]
    assert sum(waits) > 3 and max(waits) > 0.4
    assert "rate-limited" in progress.getvalue()


def test_a_model_limit_applies_outside_any_pool(sim):
    model = openai_model(sim, rate_limit=RateLimit(requests_per_minute=1200))
    started = time.monotonic()
    for i in range(6):
        model.generate(f"x{i}")
    assert time.monotonic() - started >= 0.24


# -- Pools sharing one limit -----------------------------------------------------------

def _two_pools(sim: Simulator, limit: RateLimit, per_pool: int) -> tuple[list[Pool], float]:
    skill = Skill(model=openai_model(sim), prompt="{text}")
    pools = [
        Pool(skill, [{"text": f"pool {p} item {i}"} for i in range(per_pool)], max_flows=10,
             rate_limit=limit, name=f"p{p}")
        for p in range(2)
    ]
    results: dict[int, list] = {}
    threads = [threading.Thread(target=lambda p=p: results.__setitem__(p, pools[p].run()))
               for p in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    for p in range(2):
        assert pools[p].status[DONE] == per_pool
        assert results[p] == [f"Summary: pool {p} item {i}" for i in range(per_pool)]
    return pools, elapsed


def test_two_pools_share_one_limit(sim):
    sim.latency = 0.02
    _, elapsed = _two_pools(sim, RateLimit(requests_per_minute=1200), per_pool=40)
    times = [r.time for r in sim.requests_log]
    assert len(times) == 80
    assert_request_rate(times, 20, windows=(2.0, 3.0))
    assert elapsed >= 79 / 20 - 0.1


@pytest.mark.slow
def test_two_pools_share_600_rpm_for_20_seconds(sim):
    sim.latency = 0.05
    _, elapsed = _two_pools(sim, RateLimit(requests_per_minute=600), per_pool=100)
    times = [r.time for r in sim.requests_log]
    assert len(times) == 200
    assert_request_rate(times, 10, windows=(2.0, 5.0, 10.0))
    assert max_in_window(times, 5.0) <= 55
    assert elapsed >= 19.8


def test_tokens_per_minute_holds_for_prompts_of_varied_size():
    rng = random.Random(3)
    tpm = 48_000  # 800 tokens per second
    limit = RateLimit(tokens_per_minute=tpm)
    sizes = [rng.randint(5, 150) for _ in range(40)]
    with Simulator(latency=0.02, reply=lambda info: "ok") as sim:
        skill = Skill(model=openai_model(sim, max_tokens=5), prompt="{text}")
        items = [{"text": " ".join(["lorem"] * n)} for n in sizes]
        started = time.monotonic()
        Pool(skill, items, max_flows=10, rate_limit=limit).run()
        elapsed = time.monotonic() - started
        # What the simulator billed: one token per input word, one for "ok".
        events = [(r.time, len(r.body["messages"][-1]["content"].split()) + 1)
                  for r in sim.requests_log]
    total = sum(n for _, n in events)
    per_second = tpm / 60
    for width in (2.0, 3.0):
        # rate x width (+10%), the one second of credit, and one request at the edge.
        bound = per_second * width * 1.1 + per_second + max(sizes) + 1
        assert max_sum_in_window(events, width) <= bound, width
    assert elapsed >= (total - per_second) / per_second * 0.9
