"""Pool basics: construction checks, ordering, variables, records and status."""

from __future__ import annotations

import random
import threading
import time
import types

import pytest

import yait_aichain.pool as pool_module
from yait_aichain._usage import Usage
from yait_aichain.errors import ConfigurationError
from yait_aichain.pool import (
    CANCELLED,
    DEFAULT_MAX_FLOWS,
    DONE,
    FAILED,
    MAX_FLOWS_LIMIT,
    PENDING,
    RUNNING,
    Pool,
)

from .test_pool_fakes import FakeRunner, items


def test_public_names_and_status_values():
    assert pool_module.__all__ == sorted(pool_module.__all__)
    assert {"Pool", "PENDING", "RUNNING", "DONE", "FAILED", "CANCELLED"} <= set(pool_module.__all__)
    # Plain ints, the values of the public project (CANCELLED is ours).
    assert (PENDING, RUNNING, DONE, FAILED, CANCELLED) == (0, 1, 2, 3, 4)
    assert MAX_FLOWS_LIMIT == 1024


def test_results_keep_input_order_with_random_durations():
    rng = random.Random(7)
    delays = {i: rng.uniform(0, 0.03) for i in range(60)}
    fake = FakeRunner(delay=lambda v: delays[v["i"]])
    pool = Pool(fake, items(60), max_flows=8)
    assert pool.run() == [i * 10 for i in range(60)]
    assert pool.status == {PENDING: 0, RUNNING: 0, DONE: 60, FAILED: 0, CANCELLED: 0}
    assert [r.index for r in pool.records] == list(range(60))
    assert 1 < fake.peak <= 8
    # Items ran in parallel: finishing order differs from input order.
    assert fake.ended != sorted(fake.ended)


def test_status_is_pollable_from_another_thread_and_always_sums_to_n():
    pool = Pool(FakeRunner(delay=0.03), items(40), max_flows=4)
    seen: list[dict[int, int]] = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            seen.append(pool.status)
            pool.history  # must never raise mid-run
            time.sleep(0.003)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        pool.run()
    finally:
        stop.set()
        poller.join()
    assert seen and all(sum(s.values()) == 40 for s in seen)
    assert all(set(s) == {PENDING, RUNNING, DONE, FAILED, CANCELLED} for s in seen)
    assert any(s[RUNNING] > 0 for s in seen)
    assert max(s[RUNNING] for s in seen) <= 4
    assert pool.status[DONE] == 40


@pytest.mark.parametrize(
    "bad",
    ["text", None, ["a"], types.MappingProxyType({"a": 1}), (x for x in range(2)), 3],
    ids=["str", "None", "list", "mapping", "generator", "int"],
)
def test_a_non_dict_item_is_a_type_error_before_any_call(bad):
    fake = FakeRunner()
    with pytest.raises(TypeError) as info:
        Pool(fake, [{"i": 0}, {"i": 1}, bad], max_flows=2)
    assert "item 2" in str(info.value)
    assert type(bad).__name__ in str(info.value)
    assert fake.calls == []


@pytest.mark.parametrize("bad", [{"i": 1}, "abc", 42, None])
def test_items_must_be_an_iterable_of_dicts(bad):
    with pytest.raises(TypeError):
        Pool(FakeRunner(), bad)


@pytest.mark.parametrize(
    "value, ok",
    [
        (1, True), (10, True), (MAX_FLOWS_LIMIT, True),
        (0, False), (-1, False), (2.5, False), (True, False), ("4", False), (None, False),
        (MAX_FLOWS_LIMIT + 1, False), (10_000, False),
    ],
)
def test_max_flows_is_checked_at_construction(value, ok):
    if ok:
        assert Pool(FakeRunner(), items(2), max_flows=value).max_flows == value
    else:
        with pytest.raises(ConfigurationError, match="max_flows"):
            Pool(FakeRunner(), items(2), max_flows=value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"on_error": "ignore"}, {"on_error": None},
        {"timeout": 0}, {"timeout": -1}, {"timeout": "5"}, {"timeout": float("nan")},
        {"timeout": float("inf")}, {"timeout": True}, {"deadline": 0},
        {"max_cost": -0.5}, {"max_tokens": 1.5}, {"max_tokens": 0},
        {"progress": "yes"}, {"on_item_done": 3}, {"name": 5},
    ],
)
def test_bad_settings_are_configuration_errors(kwargs):
    with pytest.raises(ConfigurationError):
        Pool(FakeRunner(), items(2), **kwargs)


def test_a_runner_that_cannot_be_called_is_rejected():
    with pytest.raises(ConfigurationError, match="runner"):
        Pool(object(), items(1))


def test_an_empty_list_returns_an_empty_list_without_threads(monkeypatch):
    import yait_aichain.pool._flows as run_module

    def no_threads(*args, **kwargs):
        raise AssertionError("no executor for an empty pool")

    monkeypatch.setattr(run_module, "ThreadPoolExecutor", no_threads)
    pool = Pool(FakeRunner(), [])
    assert pool.run() == []
    assert sum(pool.status.values()) == 0
    assert pool.retry_failed() == []


def test_shared_variables_are_merged_under_each_item_and_isolated():
    shared = {"tone": "dry", "lang": "en", "seen": [], "meta": {"n": 0}}

    def runner(v):
        v["seen"].append(v["i"])  # a flow mutating the shared values...
        v["meta"]["n"] += 1
        time.sleep(0.01)
        return (v["lang"], v["tone"], list(v["seen"]), v["meta"]["n"])

    pool = Pool(runner, [{"i": 0, "lang": "fr"}, {"i": 1}, {"i": 2}], max_flows=3)
    results = pool.run(shared)
    # ...is seen by nobody else: each flow had its own copy.
    assert results == [("fr", "dry", [0], 1), ("en", "dry", [1], 1), ("en", "dry", [2], 1)]
    assert shared == {"tone": "dry", "lang": "en", "seen": [], "meta": {"n": 0}}
    assert pool.history[0]["variables"]["lang"] == "fr"  # the item wins
    assert pool.records[1].variables["tone"] == "dry"


def test_shared_values_that_cannot_be_copied_are_shared_as_they_are():
    lock = threading.Lock()
    pool = Pool(lambda v: v["lock"] is lock, items(3))
    assert pool.run({"lock": lock}) == [True, True, True]


def test_failures_keep_the_exception_object_and_do_not_sink_the_batch():
    boom = ValueError("bad input 3")
    pool = Pool(FakeRunner(fail={3: boom}), items(8), max_flows=3)
    results = pool.run()
    assert results == [0, 10, 20, None, 40, 50, 60, 70]
    rec = pool.records[3]
    assert rec.status == FAILED and rec.error is boom
    assert rec.error_type == "ValueError" and rec.error_message == "bad input 3"
    assert "ValueError: bad input 3" in rec.traceback
    assert rec.duration is not None and rec.duration >= 0 and rec.end >= rec.start
    [failure] = pool.failures
    assert failure.index == 3 and failure.error is boom and failure.variables == {"i": 3}
    hist = pool.history[3]
    assert hist["error"] == "bad input 3" and hist["status"] == FAILED
    assert {"index", "variables", "status", "output", "error", "duration"} <= set(hist)
    assert pool.status[DONE] == 7


def test_a_runner_returning_none_is_done():
    pool = Pool(lambda v: None, items(3))
    assert pool.run() == [None, None, None]
    assert pool.status[DONE] == 3 and not pool.failures


class Custom(BaseException):
    pass


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), Custom("x")],
                         ids=["SystemExit", "KeyboardInterrupt", "custom"])
def test_a_base_exception_fails_the_item_and_the_pool_carries_on(exc):
    pool = Pool(FakeRunner(fail={1: exc}), items(5), max_flows=2)
    assert pool.run() == [0, None, 20, 30, 40]
    rec = pool.records[1]
    assert rec.status == FAILED and rec.error is exc
    assert pool.status[RUNNING] == 0 and pool.status[DONE] == 4


class Shouter:
    """An object with run(variables)."""

    def run(self, variables):
        return variables["text"].upper()


class EchoTool:
    """A Tool: declared parameters only, passed as keywords."""

    parameters = {"properties": {"text": {"type": "string"}}}

    def run(self, text):
        return f"<{text}>"


@pytest.mark.parametrize("runner, expected", [
    (Shouter(), ["A", "B"]),
    (lambda v: v["text"] * 2, ["aa", "bb"]),
    (EchoTool(), ["<a>", "<b>"]),
])
def test_every_kind_of_runner(runner, expected):
    assert Pool(runner, [{"text": "a", "extra": 1}, {"text": "b"}]).run() == expected


def test_repr_names_runner_count_flows_and_policy_never_a_key():
    class Secretive:
        name = "summarise"
        api_key = "sk-SECRET-123"

        def run(self, variables):
            return 1

    text = repr(Pool(Secretive(), items(4), max_flows=3, on_error="skip"))
    assert text == "Pool(runner='summarise', items=4, max_flows=3, on_error='skip')"
    assert "sk-" not in text
    lazy = Pool(Secretive(), ({"i": i} for i in range(3)))
    assert "items='iterable'" in repr(lazy)


def test_run_again_is_a_fresh_run():
    fake = FakeRunner(fail={1: RuntimeError("once")})
    pool = Pool(fake, items(3))
    assert pool.run() == [0, None, 20]
    del fake.fail[1]
    assert pool.run() == [0, 10, 20]
    assert sorted(fake.calls) == [0, 0, 1, 1, 2, 2]
    assert pool.status[DONE] == 3 and not pool.failures


def test_run_while_the_same_pool_runs_is_an_error():
    gate = threading.Event()
    pool = Pool(lambda v: gate.wait(2), items(2))
    worker = threading.Thread(target=pool.run)
    worker.start()
    try:
        deadline = time.monotonic() + 2
        while pool.status[RUNNING] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        with pytest.raises(RuntimeError, match="already running"):
            pool.run()
    finally:
        gate.set()
        worker.join()
    assert pool.status[DONE] == 2


def test_variables_must_be_a_dict():
    with pytest.raises(TypeError, match="variables"):
        Pool(FakeRunner(), items(1)).run(["not", "a", "dict"])


def test_records_are_snapshots_and_usage_adds_up():
    pool = Pool(FakeRunner(usage=Usage(10, 5, 15, 0.01), requests=2), items(10), max_flows=4)
    pool.run()
    assert pool.usage.total_tokens == 150 and pool.usage.input_tokens == 100
    assert pool.usage.cost == pytest.approx(0.1)
    rec = pool.records[0]
    assert rec.attempts == 2 and rec.usage == Usage(10, 5, 15, 0.01)
    assert pool.history[0]["usage"]["total_tokens"] == 15
    rec.status = FAILED  # changing a snapshot changes nothing in the pool
    assert pool.records[0].status == DONE


def test_one_runner_instance_serves_every_flow_without_mixing_items():
    class Slow:
        def run(self, variables):
            local = dict(variables)
            time.sleep(random.uniform(0, 0.01))
            return local["i"]

    pool = Pool(Slow(), items(100), max_flows=20)
    assert pool.run() == list(range(100))
    assert all(rec.variables == {"i": rec.index} for rec in pool.records)


def _pool_threads():
    return [t for t in threading.enumerate() if t.name.startswith("yait-pool")]


def test_worker_threads_exit_after_the_run():
    before = len(_pool_threads())
    pool = Pool(FakeRunner(delay=0.01), items(50), max_flows=10)
    pool.run()
    deadline = time.monotonic() + 1
    while len(_pool_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_pool_threads()) <= before


def test_retry_failed_before_any_run_runs_everything():
    fake = FakeRunner()
    assert Pool(fake, items(3)).retry_failed() == [0, 10, 20]
    assert sorted(fake.calls) == [0, 1, 2]


def test_settings_are_checked_when_assigned_and_records_are_plain():
    import dataclasses

    pool = Pool(FakeRunner(), items(2))
    with pytest.raises(ConfigurationError, match="max_flows"):
        pool.max_flows = 0
    with pytest.raises(ConfigurationError, match="timeout"):
        pool.timeout = -1
    assert pool.max_flows == DEFAULT_MAX_FLOWS and pool.timeout is None  # unchanged
    pool.max_cost = 2.5
    assert pool.max_cost == 2.5
    fields = {f.name for f in dataclasses.fields(pool.records[0])}
    assert not any(name.startswith("_") for name in fields)  # no scheduler state
