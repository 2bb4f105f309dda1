"""Pool(executor=...): items on an executor the caller owns; what must pickle, and how.

Process pools use the "spawn" start method: it is what other hosts (Dask) amount to, and
forking a threaded test process is deprecated from Python 3.12 on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from yait_aichain import Chain, Model, Pool, Skill
from yait_aichain.errors import (
    AichainError,
    APITimeoutError,
    CancelledError,
    ConfigurationError,
    ItemTimeoutError,
    MissingAPIKeyError,
)
from yait_aichain.pool import CANCELLED, DONE, FAILED, PENDING, RemoteError
from yait_aichain.pool._flows import ship
from yait_aichain.testing import Fault
from yait_aichain.tools import convertToMD

from .conftest import CANARY

cloudpickle = pytest.importorskip("cloudpickle")

ITEMS = [{"text": f"item {i}", "n": i} for i in range(12)]
PAGE = "<html><head><title>T</title></head><body><main><h1>Hi</h1><p>there</p></main></body></html>"


# -- runners: module level, so a spawned process can import them --------------------------

def shout(variables):
    return variables["text"].upper()


def shout_md(variables):
    return variables["md"].upper()


def where(variables):
    return os.getpid()


def nap(variables):
    time.sleep(variables.get("nap", 0.02))
    return variables["n"]


def fails_plainly(variables):
    if variables["n"] == 3:
        raise ValueError(f"bad item {variables['n']}")
    return variables["n"]


class Unpicklable(Exception):
    def __init__(self, message, *, lock):
        super().__init__(message)
        self.lock = lock


def fails_oddly(variables):
    raise Unpicklable("odd failure", lock=threading.Lock())


class Identity:
    """Answers with the process and the runner object that served the item."""

    def run(self, variables):
        return os.getpid(), id(self)


class Locked:
    def __init__(self):
        self.lock = threading.Lock()

    def run(self, variables):
        return 1


_inside = threading.local()


@contextlib.contextmanager
def marking():
    _inside.value = True
    try:
        yield
    finally:
        _inside.value = False


def inside(variables):
    return getattr(_inside, "value", False)


class Recorder:
    """A progress stream that notes which process and thread wrote to it."""

    def __init__(self):
        self.writers, self.text = set(), ""

    def write(self, text):
        self.writers.add((os.getpid(), threading.get_ident()))
        self.text += text

    def flush(self):
        pass


class Counting(ThreadPoolExecutor):
    """A thread pool that remembers the most futures it ever held at once."""

    def __init__(self, workers):
        super().__init__(workers)
        self._lock = threading.Lock()
        self.outstanding = self.peak = 0

    def submit(self, fn, *args, **kwargs):
        with self._lock:
            self.outstanding += 1
            self.peak = max(self.peak, self.outstanding)
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._landed)
        return future

    def _landed(self, future):
        with self._lock:
            self.outstanding -= 1


@pytest.fixture(scope="module")
def processes():
    executor = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def threads():
    executor = Counting(4)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


# -- on another process --------------------------------------------------------------------

def test_items_run_elsewhere_and_everything_else_stays_here(processes):
    me = (os.getpid(), threading.get_ident())
    callbacks, stream = set(), Recorder()
    pool = Pool(shout, ITEMS, max_flows=3, executor=processes, progress=stream,
                on_item_done=lambda rec: callbacks.add((os.getpid(), threading.get_ident())))
    assert pool.run() == [f"ITEM {i}" for i in range(12)]
    assert pool.status[DONE] == 12 and callbacks == {me} and stream.writers == {me}
    assert "12/12" in stream.text
    assert all(rec.start <= rec.end and rec.duration >= 0 for rec in pool.records)
    assert os.getpid() not in Pool(where, ITEMS, executor=processes).run()
    assert processes.submit(pow, 2, 5).result() == 32, "the pool must not shut it down"


def test_errors_come_back_typed_or_described(processes):
    pool = Pool(fails_plainly, ITEMS[:5], max_flows=2, executor=processes)
    assert pool.run() == [0, 1, 2, None, 4]
    rec = pool.records[3]
    assert rec.status == FAILED and type(rec.error) is ValueError
    assert str(rec.error) == "bad item 3" and "fails_plainly" in rec.traceback

    odd = Pool(fails_oddly, ITEMS[:2], executor=processes)
    odd.run()
    err = odd.records[0].error
    assert isinstance(err, RemoteError) and isinstance(err, AichainError)
    assert (err.type_name, err.message) == ("Unpicklable", "odd failure")
    assert "fails_oddly" in err.remote_traceback and str(err) == "Unpicklable: odd failure"


def test_each_worker_process_unpickles_the_runner_once(processes):
    served = Pool(Identity(), ITEMS, max_flows=4, executor=processes).run()
    pids = {pid for pid, _ in served}
    assert len(set(served)) == len(pids)  # one runner object per process, reused


def test_lambdas_travel_too_thanks_to_cloudpickle(processes):
    chain = Chain([(lambda v: v["text"] + "!", "loud")])
    assert Pool(chain, ITEMS[:3], executor=processes).run() == ["item 0!", "item 1!", "item 2!"]


def test_worker_context_travels_with_the_task(processes):
    assert Pool(inside, ITEMS[:4], executor=processes, worker_context=marking).run() == [True] * 4
    assert Pool(inside, ITEMS[:4], executor=processes).run() == [False] * 4


def test_the_item_timeout_also_applies_on_the_worker(processes, sim):
    sim.fail_next(Fault.hang(), times=2)
    model = Model("gpt-4o-mini", api_key="sk-test", base_url=sim.openai_base_url, max_retries=0)
    pool = Pool(Skill(model=model, prompt="{text}"), ITEMS[:2], executor=processes, timeout=0.5)
    started = time.monotonic()
    pool.run()
    assert time.monotonic() - started < 5  # the simulator hangs for ever
    # The worker's own scope ended the call: the error is the model's, not the caller's.
    assert [type(rec.error) for rec in pool.records] == [APITimeoutError, APITimeoutError]


# -- scheduling on a caller-owned executor -------------------------------------------------

def test_max_flows_caps_the_futures_the_executor_holds(threads):
    items = [{"n": i} for i in range(20)]
    assert Pool(nap, items, max_flows=3, executor=threads).run() == list(range(20))
    assert threads.peak == 3


def test_timed_out_tasks_keep_their_slot_until_they_return(threads):
    items = [{"n": i, "nap": 0.5} for i in range(4)]
    pool = Pool(nap, items, max_flows=2, executor=threads, timeout=0.1)
    pool.run()
    assert all(isinstance(rec.error, ItemTimeoutError) for rec in pool.records)
    assert threads.peak == 2


def test_leaving_early_cancels_what_has_not_started():
    single = Counting(1)
    items = [{"n": i, "nap": 0.2} for i in range(8)]
    pool = Pool(nap, items, max_flows=6, executor=single)
    for _ in pool.iter_run():
        break
    assert single.outstanding <= 1  # queued tasks were cancelled; one may be running
    status = pool.status
    assert status[DONE] == 1 and status[CANCELLED] == 7
    assert isinstance(pool.records[7].error, CancelledError)
    assert single.submit(pow, 3, 2).result() == 9, "the pool must not shut it down"
    single.shutdown(wait=True)


def test_on_error_stop_and_retry_failed_work_remotely(threads):
    pool = Pool(fails_plainly, ITEMS[:6], max_flows=1, executor=threads, on_error="stop")
    pool.run()
    assert [r.status for r in pool.records] == [DONE] * 3 + [FAILED] + [CANCELLED] * 2
    pool.runner = nap
    assert pool.retry_failed() == list(range(6))


def test_the_run_deadline_returns_promptly(threads):
    items = [{"n": i, "nap": 0.4} for i in range(10)]
    pool = Pool(nap, items, max_flows=2, executor=threads, deadline=0.2)
    started = time.monotonic()
    pool.run()
    assert time.monotonic() - started < 1.5  # the items alone would take 2 s
    assert pool.status[FAILED] == 2 and pool.status[CANCELLED] == 8


def test_an_executor_that_refuses_work_fails_the_items():
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    pool = Pool(shout, ITEMS[:3], executor=closed)
    assert pool.run() == [None, None, None]
    assert {rec.error_type for rec in pool.records} == {"RuntimeError"}


def test_an_unpicklable_runner_fails_before_anything_starts(threads):
    pool = Pool(Locked(), ITEMS[:3], executor=threads)
    with pytest.raises(ConfigurationError, match="cannot be pickled.*_thread.lock"):
        pool.run()
    assert pool.status[PENDING] == 3 and threads.peak == 0


def test_bad_executor_or_worker_context_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="executor must be"):
        Pool(shout, ITEMS, executor=object())
    with pytest.raises(ConfigurationError, match="worker_context must be"):
        Pool(shout, ITEMS, worker_context=contextlib.nullcontext())


# -- worker_context on the Pool's own threads ----------------------------------------------

def test_worker_context_wraps_each_item_in_its_worker_thread():
    events, caller = [], threading.get_ident()

    @contextlib.contextmanager
    def context():
        events.append(("enter", threading.get_ident()))
        yield
        events.append(("exit", threading.get_ident()))

    assert Pool(shout, ITEMS, max_flows=4, worker_context=context).run()[0] == "ITEM 0"
    assert len(events) == 2 * len(ITEMS)
    assert all(ident != caller for _, ident in events)


def test_an_error_leaving_the_worker_context_fails_the_item():
    @contextlib.contextmanager
    def broken():
        yield
        raise OSError("cleanup failed")

    pool = Pool(shout, ITEMS[:2], worker_context=broken)
    assert pool.run() == [None, None]
    assert {rec.error_type for rec in pool.records} == {"OSError"}


# -- what pickles, and where the key goes --------------------------------------------------

def _runners():
    model = Model("gpt-4o-mini", api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    skill = Skill(model=model, prompt="Summarise: {text}")
    inner = Chain([(convertToMD(), "md", {"input": "html"})], name="inner")
    return [model, skill, convertToMD(), Chain([inner, (skill, "summary")], name="outer")]


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_every_runner_pickles_and_works_after(dumps):
    for runner in _runners():
        clone = pickle.loads(dumps(runner))
        assert type(clone) is type(runner)
    tool = pickle.loads(dumps(convertToMD()))
    assert tool.run(PAGE).startswith("# T")
    chain = pickle.loads(dumps(Chain([(convertToMD(), "md", {"input": "html"}), shout_md])))
    assert "THERE" in chain.run({"html": PAGE}) and chain.history  # thread-locals rebuilt


def test_rate_limits_pickle_and_apply_on_the_worker(sim, threads):
    ratelimit = pytest.importorskip("yait_aichain.ratelimit")
    limit = ratelimit.RateLimit(requests_per_minute=6000)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        assert type(pickle.loads(dumps(limit))) is ratelimit.RateLimit
    model = Model("gpt-4o-mini", api_key="sk-test", base_url=sim.openai_base_url,
                  rate_limit=limit)
    pool = Pool(Skill(model=model, prompt="{text}"), ITEMS[:4], executor=threads,
                rate_limit=limit)
    assert pool.run() == [f"Summary: item {i}" for i in range(4)]


def test_a_given_key_travels_inside_the_task_but_never_in_a_repr():
    model = Model("gpt-4o-mini", api_key=CANARY)
    shipped = ship(Skill(model=model, prompt="{text}"), None, 4)
    assert CANARY.encode() in shipped.blob  # documented: the task carries it
    assert CANARY not in repr(shipped) and CANARY not in repr(model)
    assert pickle.loads(pickle.dumps(model))._key.get() == CANARY


def test_a_key_from_the_environment_is_read_again_where_the_model_is_unpickled(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-caller-env")
    blob = pickle.dumps(Model("claude-sonnet-4-6"))
    assert b"sk-caller-env" not in blob
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-worker-env")
    assert pickle.loads(blob)._key.get() == "sk-worker-env"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        pickle.loads(blob)


def test_workers_use_their_own_environment_key(sim, monkeypatch, threads):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-caller")
    model = Model("gpt-4o-mini", base_url=sim.openai_base_url)
    sim.require_key = "sk-worker"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-worker")  # what the worker's process has
    skill = Skill(model=model, prompt="{text}")
    assert Pool(skill, ITEMS[:3], executor=threads).run() == [f"Summary: item {i}" for i in range(3)]

    monkeypatch.delenv("OPENAI_API_KEY")  # a worker without the key: each item says so
    pool = Pool(skill, ITEMS[:3], executor=threads)
    pool.run()
    assert {rec.error_type for rec in pool.records} == {"MissingAPIKeyError"}
