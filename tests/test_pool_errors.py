"""Pool error policies (collect, skip, stop, raise) and retry_failed()."""

from __future__ import annotations

import threading
import time
import warnings

import pytest

from yait_aichain.errors import CancelledError
from yait_aichain.pool import CANCELLED, DONE, FAILED, PENDING, RUNNING, Pool

from .test_pool_fakes import FakeRunner, items


def _settled(pool):
    status = pool.status
    assert status[PENDING] == 0 and status[RUNNING] == 0
    return status


def test_collect_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Pool(FakeRunner(fail={0: ValueError("x")}), items(2)).run() == [None, 10]


def test_skip_warns_in_the_calling_thread_naming_the_item():
    caller = threading.get_ident()
    shown = []

    def showwarning(message, category, filename, lineno, file=None, line=None):
        shown.append((str(message), category, filename, threading.get_ident()))

    pool = Pool(FakeRunner(fail={2: ValueError("no title")}), items(4), on_error="skip")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = showwarning
        results = pool.run()
    assert results == [0, 10, None, 30]
    [(message, category, filename, thread)] = shown
    assert category is RuntimeWarning and thread == caller
    assert "Pool item 2" in message and "ValueError: no title" in message
    assert filename == __file__  # points at the caller's line, not at pool internals


def test_stop_starts_nothing_new_and_cancels_the_rest():
    fake = FakeRunner(delay=0.05, fail={1: ValueError("stop here")})
    pool = Pool(fake, items(20), max_flows=2, on_error="stop")
    results = pool.run()
    status = _settled(pool)
    assert status[FAILED] == 1 and status[CANCELLED] > 10
    assert status[DONE] + status[FAILED] + status[CANCELLED] == 20
    assert len(fake.calls) == status[DONE] + status[FAILED]  # cancelled ones never ran
    cancelled = [r for r in pool.records if r.status == CANCELLED]
    assert all(isinstance(r.error, CancelledError) and r.error.reason == "stop" for r in cancelled)
    assert results[0] == 0 and results[1] is None and results[-1] is None


def test_raise_reaches_the_caller_promptly_and_cancels_the_rest():
    boom = ValueError("item 0 is broken")
    # Item 0 fails at 0.1 s; the others would take 2 s each.
    fake = FakeRunner(delay=lambda v: 0.1 if v["i"] == 0 else 2.0, fail={0: boom})
    pool = Pool(fake, items(12), max_flows=4, on_error="raise")
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        pool.run()
    elapsed = time.monotonic() - start
    assert info.value is boom
    assert elapsed < 0.5, elapsed
    status = _settled(pool)
    assert status == {PENDING: 0, RUNNING: 0, DONE: 0, FAILED: 1, CANCELLED: 11}
    assert len(fake.calls) == 4  # nothing new started after the failure
    reasons = {r.error.reason for r in pool.records if r.status == CANCELLED}
    assert reasons == {"raise"}
    # The cancel event woke the 2 s sleepers: their threads end at once.
    deadline = time.monotonic() + 1
    while fake.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.active == 0


def test_retry_failed_calls_only_the_failed_items_and_updates_records_in_place():
    fake = FakeRunner(fail={2: RuntimeError("flaky"), 5: RuntimeError("flaky")})
    pool = Pool(fake, items(8), max_flows=3)
    assert pool.run() == [0, 10, None, 30, 40, None, 60, 70]
    fake.fail.clear()
    fake.calls.clear()
    assert pool.retry_failed() == [i * 10 for i in range(8)]
    assert sorted(fake.calls) == [2, 5]
    assert pool.status[DONE] == 8 and not pool.failures
    assert pool.records[2].error is None and pool.records[2].output == 20


def test_retry_failed_reuses_the_variables_of_the_last_run_unless_given():
    fake = FakeRunner(result=lambda v: v["greeting"], fail={1: RuntimeError("x")})
    pool = Pool(fake, items(2))
    assert pool.run({"greeting": "hi"}) == ["hi", None]
    fake.fail.clear()
    assert pool.retry_failed() == ["hi", "hi"]
    fake.fail[0] = RuntimeError("again")
    pool.run({"greeting": "hi"})
    fake.fail.clear()
    assert pool.retry_failed({"greeting": "hello"}) == ["hello", "hi"]


def test_retry_failed_works_for_a_lazy_iterable():
    fake = FakeRunner(fail={3: RuntimeError("x")})
    pool = Pool(fake, ({"i": i} for i in range(6)), max_flows=2)
    assert pool.run() == [0, 10, 20, None, 40, 50]
    fake.fail.clear()
    fake.calls.clear()
    assert pool.retry_failed() == [0, 10, 20, 30, 40, 50]
    assert fake.calls == [3]
    # The generator is spent; a fresh run() runs again what the pool has seen.
    assert pool.run() == [0, 10, 20, 30, 40, 50]


def test_a_non_dict_from_a_generator_fails_that_item_only():
    def rows():
        yield {"i": 0}
        yield "not a dict"
        yield {"i": 2}

    pool = Pool(FakeRunner(), rows())
    assert pool.run() == [0, None, 20]
    rec = pool.records[1]
    assert rec.status == FAILED and isinstance(rec.error, TypeError)
    assert "item 1" in str(rec.error) and "str" in str(rec.error)


def test_an_error_in_on_item_done_stops_the_run_and_is_raised():
    def callback(record):
        if record.index == 1:
            raise LookupError("my callback broke")

    fake = FakeRunner(delay=0.02)
    pool = Pool(fake, items(30), max_flows=1, on_item_done=callback)
    with pytest.raises(LookupError, match="my callback broke"):
        pool.run()
    status = _settled(pool)
    assert status[DONE] == 2 and status[CANCELLED] == 28
    assert {r.error.reason for r in pool.records if r.status == CANCELLED} == {"interrupt"}
    assert pool.retry_failed() == [i * 10 for i in range(30)]


def test_records_survive_a_raise_and_retry_finishes_the_work():
    fake = FakeRunner(fail={4: ValueError("x")})
    pool = Pool(fake, items(10), max_flows=1, on_error="raise")
    with pytest.raises(ValueError):
        pool.run()
    assert [r.status for r in pool.records[:4]] == [DONE] * 4
    fake.fail.clear()
    assert pool.retry_failed() == [i * 10 for i in range(10)]
