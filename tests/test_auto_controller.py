"""max_flows="auto", the pure parts: header families, the pace they allow, and the flow
controller driven by scripted responses on an injected clock (nothing sleeps)."""

from __future__ import annotations

import heapq
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yait_aichain.errors import ConfigurationError
from yait_aichain.ratelimit._adaptive import (
    DEFAULT_AUTO_MAX_FLOWS,
    AutoFlows,
    FlowController,
    check_auto,
)
from yait_aichain.ratelimit._headers import (
    Window,
    believe,
    parse_duration,
    parse_time,
    read_headers,
    tighter,
)

NOW = 1_800_000_000.0  # a fixed wall clock for Anthropic's absolute resets


def rfc3339(seconds_from_now: float) -> str:
    when = datetime.fromtimestamp(NOW + seconds_from_now, tz=timezone.utc)
    return when.isoformat().replace("+00:00", "Z")


# -- header families ------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("1s", 1.0), ("20ms", 0.02), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("0.5s", 0.5),
    ("59.999s", 59.999), ("2m59.56s", 179.56), ("7", 7.0), ("1m", 60.0),
])
def test_openai_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "s", "-1s", "1s junk", "inf", "nan", "1 s"])
def test_bad_durations_are_ignored(text):
    assert parse_duration(text) is None


def test_openai_family():
    reading = read_headers({
        "x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "599",
        "x-ratelimit-reset-requests": "100ms", "x-ratelimit-limit-tokens": "100000",
        "x-ratelimit-remaining-tokens": "99000", "x-ratelimit-reset-tokens": "600ms",
    }, NOW)
    assert reading is not None and reading.provider == "openai"
    assert reading.requests == Window(600, 599, 0.1)
    assert reading.tokens == Window(100000, 99000, 0.6)
    assert reading.requests.per_minute == 600


def test_anthropic_family_rfc3339():
    reading = read_headers({
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "10",
        "anthropic-ratelimit-requests-reset": rfc3339(30),
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-tokens-remaining": "80000",
        "anthropic-ratelimit-tokens-reset": rfc3339(-5),  # past: full again
    }, NOW)
    assert reading is not None and reading.provider == "anthropic"
    assert reading.requests.limit == 50 and reading.requests.remaining == 10
    assert reading.requests.reset == pytest.approx(30, abs=0.01)
    assert reading.tokens.reset == 0.0


def test_anthropic_offsets_and_fractions():
    when = datetime.fromtimestamp(NOW + 2.5, tz=timezone(timedelta(hours=2)))
    assert parse_time(when.isoformat(), NOW) == pytest.approx(2.5, abs=1e-3)
    assert parse_time("not a time", NOW) is None
    assert parse_time("2026-13-45T00:00:00Z", NOW) is None


def test_anthropic_input_output_only_uses_the_tighter():
    reading = read_headers({
        "anthropic-ratelimit-input-tokens-limit": "400000",
        "anthropic-ratelimit-input-tokens-remaining": "400000",
        "anthropic-ratelimit-input-tokens-reset": rfc3339(0),
        "anthropic-ratelimit-output-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-remaining": "79000",
        "anthropic-ratelimit-output-tokens-reset": rfc3339(1),
    }, NOW)
    assert reading is not None and reading.requests is None
    assert reading.tokens.limit == 80000


@pytest.mark.parametrize("headers", [
    {},
    {"x-ratelimit-limit-requests": "abc", "x-ratelimit-remaining-requests": "1"},
    {"x-ratelimit-limit-requests": "0", "x-ratelimit-remaining-requests": "0"},
    {"x-ratelimit-limit-requests": "-5", "x-ratelimit-remaining-requests": "1"},
    {"x-ratelimit-limit-requests": "inf", "x-ratelimit-remaining-requests": "1"},
    {"x-ratelimit-remaining-requests": "5"},  # no limit: nothing to pace by
    {"anthropic-ratelimit-requests-limit": "50"},
])
def test_no_usable_family(headers):
    assert read_headers(headers, NOW) is None


def test_remaining_above_limit_is_clamped_and_bad_reset_means_full():
    reading = read_headers({
        "x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-reset-requests": "whenever",
    }, NOW)
    assert reading.requests == Window(10, 10, 0.0)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(
    st.sampled_from([
        f"{prefix}{kind}" for prefix in ("x-ratelimit-limit-", "x-ratelimit-remaining-",
                                         "x-ratelimit-reset-") for kind in ("requests", "tokens")
    ] + [
        f"anthropic-ratelimit-{kind}-{part}" for kind in ("requests", "tokens", "input-tokens")
        for part in ("limit", "remaining", "reset")
    ]),
    st.text(max_size=30),
))
def test_any_header_values_never_raise(headers):
    reading = read_headers(headers, NOW)
    if reading is not None:
        for window in (reading.requests, reading.tokens):
            if window is not None:
                assert window.limit > 0 and 0 <= window.remaining <= window.limit
                assert window.reset >= 0
                belief = believe(reading)
                assert belief.pause >= 0


def test_a_day_long_reset_is_a_daily_limit():
    window = Window(limit=14400, remaining=100, reset=3600.0)
    assert window.per_minute == pytest.approx(10.0)


# -- the pace a reading allows --------------------------------------------------------

def test_a_healthy_budget_paces_at_the_stated_limit():
    belief = believe(read_headers({
        "x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "590",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "100000",
        "x-ratelimit-remaining-tokens": "97000", "x-ratelimit-reset-tokens": "1.8s",
    }, NOW))
    assert belief.requests_per_minute == 600 and belief.tokens_per_minute == 100000
    assert belief.pause == 0


def test_a_budget_drained_by_someone_else_spreads_what_is_left_until_reset():
    # 30 requests left for 30 s: 60 a minute, not the stated 600.
    belief = believe(read_headers({
        "x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "30",
        "x-ratelimit-reset-requests": "30s",
    }, NOW))
    assert belief.requests_per_minute == pytest.approx(60)
    assert belief.tokens_per_minute is None


def test_an_empty_budget_pauses_until_its_reset():
    belief = believe(read_headers({
        "anthropic-ratelimit-requests-limit": "600",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": rfc3339(4),
    }, NOW))
    assert belief.pause == pytest.approx(4, abs=0.01)
    assert belief.requests_per_minute == pytest.approx(30)  # MIN_SHARE of the limit


def test_user_limits_are_ceilings():
    assert tighter(500, 600) == 500
    assert tighter(500, 300) == 300
    assert tighter(None, 300) == 300
    assert tighter(500, None) == 500
    assert tighter(None, None) is None


# -- configuration --------------------------------------------------------------------

def test_auto_values():
    assert check_auto("auto") == AutoFlows() == check_auto(" AUTO ")
    assert check_auto(AutoFlows(max=500)).max == 500
    assert check_auto(10) is None and check_auto("fast") is None
    assert AutoFlows().max == DEFAULT_AUTO_MAX_FLOWS


@pytest.mark.parametrize("kwargs", [
    {"max": 0}, {"max": 5000}, {"max": True}, {"max": 2.5}, {"initial": 0},
    {"max": 3, "initial": 4},
])
def test_bad_auto_bounds(kwargs):
    with pytest.raises(ConfigurationError):
        AutoFlows(**kwargs)


# -- the flow controller, against simulated servers -----------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Server:
    """A server with ``capacity`` slots, each serving one request in ``base`` seconds;
    more wait in line (first come, first served), as vLLM or Ollama batch; with more than
    ``queue`` waiting it answers 503 at once (Ollama's OLLAMA_MAX_QUEUE). ``capacity``
    None: every request takes ``base``."""

    def __init__(self, base, capacity=None, queue=None, jitter=0.2, seed=3):
        self.base, self.capacity, self.queue = base, capacity, queue
        self.slots = [0.0] * (capacity or 0)
        self.at_server = 0
        self.rng = random.Random(seed)
        self.jitter = jitter  # each request takes base x (1 +- jitter), as real ones vary

    def service(self):
        return self.base * (1 + self.jitter * (2 * self.rng.random() - 1))

    def accept(self, now):
        """The finish time of a request sent at ``now``, or None for a 503."""
        if self.capacity is None:
            return now + self.service()
        if self.queue is not None and self.at_server >= self.capacity + self.queue:
            return None
        free = heapq.heappop(self.slots)
        finish = max(now, free) + self.service()
        heapq.heappush(self.slots, finish)
        self.at_server += 1
        return finish

    def finished(self):
        if self.capacity is not None:
            self.at_server -= 1


def drive(limit_of, server, items, clock, observe=None, backoff=0.5):
    """A discrete-event Pool: keep ``limit_of()`` items in flight against ``server``; a
    503 makes the item's flow sleep ``backoff`` before trying again (as a Model's retry
    does, keeping its flow). Returns (finish time, statuses, in-flight history)."""
    heap: list[tuple[float, int, str, float]] = []  # (when, seq, what, request started)
    seq = started = done = 0
    statuses: list[int] = []
    history: list[int] = []

    def attempt():
        nonlocal seq
        seq += 1
        finish = server.accept(clock.now)
        if finish is None:
            heapq.heappush(heap, (clock.now + 0.001, seq, "503", clock.now))
        else:
            heapq.heappush(heap, (finish, seq, "200", clock.now))

    while done < items:
        while started < items and len(heap) < limit_of():
            started += 1
            attempt()
        if observe is not None:
            observe.saw_in_flight(len(heap))
        history.append(len(heap))
        when, _, what, began = heapq.heappop(heap)
        clock.now = when
        if what == "retry":
            attempt()
            continue
        status = int(what)
        statuses.append(status)
        if status == 200:
            server.finished()
            done += 1
        else:
            seq += 1
            heapq.heappush(heap, (clock.now + backoff, seq, "retry", clock.now))
        if observe is not None:
            observe.observe(when - began, status=status)
    return clock.now, statuses, history


def test_flat_latency_grows_to_the_upper_bound_and_stays():
    clock = Clock()
    ctl = FlowController(AutoFlows(max=120), clock=clock)
    _, _, history = drive(lambda: ctl.limit, Server(0.2), 5000, clock, observe=ctl)
    assert ctl.limit == 120
    tail = history[-2000:-200]
    assert min(tail) == max(tail) == 120  # no oscillation on a steady server


def test_saturating_server_auto_matches_the_best_fixed_limit_without_503s():
    capacity, base, items = 40, 0.5, 4000
    clock = Clock()
    ctl = FlowController(AutoFlows(max=500), clock=clock)
    auto_time, statuses, history = drive(lambda: ctl.limit, Server(base, capacity, capacity),
                                         items, clock, observe=ctl)
    fixed = {}
    for flows in (5, 20, 30, 40, 50, 60, 80, 100, 500):
        fixed[flows], _, _ = drive(lambda f=flows: f, Server(base, capacity, capacity), items,
                                   Clock())
    best = min(fixed.values())
    assert auto_time <= best * 1.10, (auto_time, fixed)
    assert statuses.count(503) <= items * 0.01
    # It settles: the last part of the run holds one level, near the capacity.
    tail = history[len(history) // 2:-200]  # before the last items drain away
    assert capacity <= min(tail) <= max(tail) <= capacity * 1.7, (min(tail), max(tail))
    assert max(tail) - min(tail) <= 8, (min(tail), max(tail))


def test_overload_backs_off_multiplicatively():
    clock = Clock()
    ctl = FlowController(AutoFlows(max=100, initial=40), clock=clock)
    ctl.saw_in_flight(40)
    for _ in range(40):  # one window: as many answers as the limit
        ctl.observe(0.001, status=429)
    assert ctl.limit == 30
    assert ctl.phase == "steady"
    for status in (503, 529) * 15:
        ctl.observe(0.001, status=status)
    assert ctl.limit < 30


def test_network_failures_are_no_evidence_either_way():
    clock = Clock()
    ctl = FlowController(AutoFlows(max=100, initial=8), clock=clock)
    for _ in range(100):
        ctl.observe(30.0, status=0)
    assert ctl.limit == 8 and ctl.decisions == 0


def test_unused_flows_are_not_grown():
    clock = Clock()
    ctl = FlowController(AutoFlows(max=100, initial=8), clock=clock)
    for _ in range(200):
        ctl.saw_in_flight(2)  # a Pool with two items left
        clock.now += 0.1
        ctl.observe(0.1)
    assert ctl.limit == 8


def test_budget_bound_shrinks_toward_what_the_pace_needs():
    # 10 requests/s allowed, 0.5 s each: 5 in flight do it; the Pool holds 100.
    clock = Clock()
    ctl = FlowController(AutoFlows(max=200, initial=100), clock=clock)
    for _ in range(2000):
        ctl.saw_in_flight(ctl.limit)
        clock.now += 0.1
        ctl.observe(0.5, waited=2.0)
    needed = 10 * 0.5
    assert needed < ctl.limit <= needed * 1.5 + 3


def test_the_controller_is_thread_safe():
    import threading

    import time

    ctl = FlowController(AutoFlows(max=300), clock=time.monotonic)

    def hammer():
        for _ in range(2000):
            ctl.saw_in_flight(ctl.limit)
            ctl.observe(0.0)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= ctl.limit <= 300 and ctl.decisions > 0


def test_budget_bound_with_too_few_flows_grows_to_keep_the_budget_busy():
    # 10 requests/s allowed, 0.8 s each: 8 must be in flight, with headroom about 14.
    clock = Clock()
    ctl = FlowController(AutoFlows(max=200, initial=6), clock=clock)
    for _ in range(400):
        ctl.saw_in_flight(ctl.limit)
        clock.now += 0.1
        ctl.observe(0.8, waited=0.05)
    assert 10 * 0.8 < ctl.limit <= 10 * 0.8 * 1.5 + 3
