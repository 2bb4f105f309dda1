"""Pool timeouts, deadline, Ctrl-C and budgets."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from yait_aichain._usage import Usage
from yait_aichain.errors import CancelledError, ItemTimeoutError
from yait_aichain.pool import CANCELLED, DONE, FAILED, PENDING, RUNNING, Pool

from .test_pool_fakes import FakeRunner, Hang, items


@pytest.fixture
def hang():
    waiter = Hang()
    yield waiter
    waiter.release()  # so no worker thread outlives the test


def test_a_hung_item_times_out_and_run_does_not_wait_for_it(hang):
    def runner(v):
        if v["i"] == 0:
            hang(10)  # ignores the pool's scope entirely
            return "late"
        return v["i"]

    pool = Pool(runner, items(6), max_flows=2, timeout=1)
    start = time.monotonic()
    results = pool.run()
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, elapsed
    assert results == [None, 1, 2, 3, 4, 5]
    rec = pool.records[0]
    assert rec.status == FAILED and isinstance(rec.error, ItemTimeoutError)
    assert isinstance(rec.error, TimeoutError) and rec.error.index == 0
    assert 1.0 <= rec.duration < 1.5
    # The late result is discarded: it never overwrites the record.
    hang.release()
    time.sleep(0.05)
    assert pool.records[0].status == FAILED and pool.records[0].output is None


def test_other_items_keep_max_flows_while_a_thread_is_stuck(hang):
    def runner(v):
        if v["i"] == 0:
            hang(10)
        else:
            time.sleep(0.05)
        return v["i"]

    # Item 0 holds one of the 2 flows until it is given up at ~0.5 s; after that the stuck
    # thread must not cost a flow: ~0.5 s + 30 items / 2 flows x 0.05 s = ~1.25 s, where a
    # single flow would need 40 x 0.05 = 2 s.
    pool = Pool(runner, items(41), max_flows=2, timeout=0.3)
    start = time.monotonic()
    pool.run()
    assert time.monotonic() - start < 1.7
    assert pool.status[DONE] == 40 and pool.status[FAILED] == 1


def test_the_deadline_ends_the_run(hang):
    def runner(v):
        if v["i"] == 1:
            hang(10)
        else:
            time.sleep(0.2)
        return v["i"]

    pool = Pool(runner, items(20), max_flows=2, deadline=0.5)
    start = time.monotonic()
    pool.run()
    elapsed = time.monotonic() - start
    assert elapsed < 1.0, elapsed
    status = pool.status
    assert status[PENDING] == status[RUNNING] == 0
    assert status[DONE] >= 1 and status[CANCELLED] > 10
    stuck = pool.records[1]
    assert stuck.status == FAILED and isinstance(stuck.error, ItemTimeoutError)
    reasons = {r.error.reason for r in pool.records if r.status == CANCELLED}
    assert reasons == {"deadline"}


def test_the_item_scope_carries_the_timeout_to_cooperative_waits():
    seen = []

    def runner(v):
        from yait_aichain import _context

        seen.append(_context.current().remaining())
        return v["i"]

    Pool(runner, items(2), timeout=5).run()
    assert all(left is not None and 4 < left <= 5 for left in seen)


def test_ctrl_c_cancels_promptly_and_retry_failed_finishes_the_rest():
    durations = {"seconds": 2.0}
    fake = FakeRunner(delay=lambda v: durations["seconds"])
    pool = Pool(fake, items(100), max_flows=5)
    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            pool.run()
    finally:
        timer.cancel()
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, elapsed
    status = pool.status
    assert sum(status.values()) == 100
    assert status[PENDING] == status[RUNNING] == 0
    assert status[CANCELLED] == 100  # 5 running ones and 95 never started
    assert len(fake.calls) == 5
    assert {r.error.reason for r in pool.records} == {"interrupt"}

    durations["seconds"] = 0.005
    fake.calls.clear()
    assert pool.retry_failed() == [i * 10 for i in range(100)]
    assert sorted(fake.calls) == list(range(100))
    assert pool.status[DONE] == 100


def test_max_tokens_budget_stops_new_work():
    fake = FakeRunner(usage=Usage(2, 1, 3))
    pool = Pool(fake, items(20), max_flows=1, max_tokens=10)
    pool.run()
    status = pool.status
    assert status[DONE] == 4  # 3, 6, 9, 12 tokens: spent after the fourth
    assert status[CANCELLED] == 16 and len(fake.calls) == 4
    rec = pool.records[10]
    assert isinstance(rec.error, CancelledError) and rec.error.reason == "budget"
    assert pool.usage.total_tokens == 12


def test_max_cost_budget_stops_new_work_and_can_be_raised_for_a_retry():
    fake = FakeRunner(usage=Usage(100, 50, 150, cost=0.25))
    pool = Pool(fake, items(10), max_flows=1, max_cost=0.5)
    pool.run()
    assert pool.status[DONE] == 2 and pool.status[CANCELLED] == 8
    pool.max_cost = 10.0
    assert pool.retry_failed() == [i * 10 for i in range(10)]
    assert pool.usage.cost == pytest.approx(2.5)


def test_a_cost_budget_without_prices_warns_once():
    pool = Pool(FakeRunner(usage=Usage(1, 1, 2)), items(3), max_flows=1, max_cost=1.0)
    with pytest.warns(RuntimeWarning, match="cannot be enforced"):
        pool.run()
    assert pool.status[DONE] == 3


def test_a_nested_pool_counts_its_usage_in_the_enclosing_item():
    inner_fake = FakeRunner(usage=Usage(1, 1, 2, 0.001))

    def outer_runner(v):
        inner = Pool(inner_fake, items(3), max_flows=3)
        return sum(inner.run())

    outer = Pool(outer_runner, items(4), max_flows=2)
    assert outer.run() == [30] * 4
    assert all(rec.usage.total_tokens == 6 for rec in outer.records)
    assert outer.usage.total_tokens == 24
