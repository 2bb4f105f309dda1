"""Streaming results (iter_run, on_item_done), progress, and lazy iterables."""

from __future__ import annotations

import io
import sys
import threading
import time

import pytest

from yait_aichain._usage import Usage
from yait_aichain.pool import CANCELLED, DONE, FAILED, PENDING, RUNNING, Pool
from yait_aichain.pool._progress import format_line

from .test_pool_fakes import FakeRunner, items


def test_iter_run_yields_records_as_items_end_in_the_calling_thread():
    caller = threading.get_ident()
    # Item i may finish only once the caller has received item i + 1: completion order is
    # then 4, 3, 2, 1, 0 by construction, not by sleeps that a loaded machine reorders.
    may_finish = [threading.Event() for _ in range(5)]
    may_finish[4].set()

    def result(v):
        assert may_finish[v["i"]].wait(10)
        return v["i"] * 10

    fake = FakeRunner(result=result)
    pool = Pool(fake, items(5), max_flows=5)
    got, threads = [], set()
    for record in pool.iter_run():
        threads.add(threading.get_ident())
        got.append(record.index)
        assert record.status == DONE and record.output == record.index * 10
        if record.index > 0:
            may_finish[record.index - 1].set()
    assert threads == {caller} and caller not in fake.threads
    assert got == [4, 3, 2, 1, 0]  # completion order
    assert pool.results == [0, 10, 20, 30, 40]


def test_on_item_done_runs_in_the_calling_thread_once_per_item():
    caller = threading.get_ident()
    calls = []
    pool = Pool(FakeRunner(fail={1: ValueError("x")}), items(6), max_flows=3,
                on_item_done=lambda r: calls.append((r.index, r.status, threading.get_ident())))
    pool.run()
    assert sorted(i for i, _, _ in calls) == list(range(6))
    assert {t for _, _, t in calls} == {caller}
    assert dict((i, s) for i, s, _ in calls)[1] == FAILED


def test_leaving_iter_run_early_cancels_the_rest():
    fake = FakeRunner(delay=0.02)
    pool = Pool(fake, items(50), max_flows=2)
    for record in pool.iter_run():
        break
    status = pool.status
    assert status[PENDING] == status[RUNNING] == 0 and status[CANCELLED] >= 45
    assert pool.retry_failed() == [i * 10 for i in range(50)]  # and the pool is free again


class Terminal(io.StringIO):
    """A stream that says it is a terminal (the line then redraws in place)."""

    def isatty(self):
        return True


def test_progress_draws_a_throttled_line_and_a_final_one():
    out = Terminal()
    pool = Pool(FakeRunner(delay=0.01, usage=Usage(1, 1, 2, 0.001), fail={3: ValueError("x")}),
                items(40), max_flows=2, progress=out, name="demo")
    start = time.monotonic()
    pool.run()
    elapsed = time.monotonic() - start
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    final = text.rsplit("\r", 1)[-1]
    assert final.startswith("demo: 40/40") and "1 failed" in final and "80 tokens" in final
    assert "$0.0400" in final
    assert text.count("\r") <= elapsed * 10 + 3  # ~10 updates a second at most


def test_progress_defaults_to_off_when_stderr_is_not_a_terminal(monkeypatch):
    fake_stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", fake_stderr)
    Pool(FakeRunner(), items(3)).run()
    Pool(FakeRunner(), items(3), progress=False).run()
    assert fake_stderr.getvalue() == ""
    Pool(FakeRunner(), items(3), progress=True).run()
    assert "3/3" in fake_stderr.getvalue()


def test_the_progress_line_shows_rate_eta_and_unknown_totals():
    counts = {PENDING: 50, RUNNING: 10, DONE: 30, FAILED: 10, CANCELLED: 0}
    line = format_line("p", counts, 100, 10.0, Usage(0, 0, 1234, 0.5))
    assert line == (
        "p: 40/100 | 10 failed | 10 running | 4.0 items/s | ETA 0:15 | 1,234 tokens | $0.5000"
    )
    assert format_line("p", counts, None, 0.0, Usage()).startswith("p: 40/? |")


def test_a_broken_progress_stream_does_not_fail_the_run():
    class Broken:
        def write(self, text):
            raise OSError("closed")

    assert Pool(FakeRunner(), items(3), progress=Broken()).run() == [0, 10, 20]


def _run_generator(n, max_flows):
    """Run ``n`` trivial items from a generator; check the first call comes at once and
    the generator is never pulled far ahead of completed items."""
    state = {"pulled": 0, "ahead": 0, "first_call": None}
    lock = threading.Lock()
    completed = [0]

    def rows():
        for i in range(n):
            with lock:
                state["pulled"] += 1
                state["ahead"] = max(state["ahead"], state["pulled"] - completed[0])
            yield {"i": i}

    def runner(v):
        if state["first_call"] is None:
            state["first_call"] = time.monotonic()
        with lock:
            completed[0] += 1
        return v["i"]

    pool = Pool(runner, rows(), max_flows=max_flows, progress=False)
    start = time.monotonic()
    results = pool.run()
    total = time.monotonic() - start
    assert state["first_call"] - start < 1.0
    assert state["ahead"] <= 2 * max_flows + 10, state["ahead"]
    assert len(results) == n and results[-1] == n - 1
    assert pool.status[DONE] == n
    return total


def test_a_generator_runs_in_a_bounded_window():
    assert _run_generator(10_000, max_flows=200) < 3


@pytest.mark.slow
def test_a_generator_of_100k_items_runs_in_a_bounded_window():
    # Submitting all 1e5 items up front would cost ~200 MB and >1 s before the first call.
    _run_generator(100_000, max_flows=200)


def test_a_lazy_iterable_status_counts_the_items_seen_so_far():
    gate = threading.Event()
    seen = []

    def rows():
        for i in range(10):
            yield {"i": i}

    def runner(v):
        gate.wait(2)
        return v["i"]

    pool = Pool(runner, rows(), max_flows=3)
    assert sum(pool.status.values()) == 0
    worker = threading.Thread(target=pool.run)
    worker.start()
    try:
        deadline = time.monotonic() + 2
        while pool.status[RUNNING] < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(pool.status)
    finally:
        gate.set()
        worker.join()
    assert sum(seen[0].values()) == 3
    assert pool.status[DONE] == 10 and "items=10" in repr(pool)


def test_a_generator_that_raises_stops_the_run_with_its_error():
    def rows():
        yield {"i": 0}
        raise OSError("the CSV file went away")

    pool = Pool(FakeRunner(delay=0.01), rows())
    with pytest.raises(OSError, match="went away"):
        pool.run()
    assert pool.status[PENDING] == pool.status[RUNNING] == 0
