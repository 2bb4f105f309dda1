"""Where items run: the Pool's own threads, or an executor the caller owns.

Both run :func:`run_item`, which returns an :class:`Outcome` and never touches a record;
they differ only in how a task is submitted and cancelled. For a foreign executor the
runner travels pickled once per run (cloudpickle when installed, else pickle); each worker
process unpickles it once and caches it, so its connection pool is reused across items.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import _context
from .._runner import call_runner, reserve_connections
from ..errors import ConfigurationError, RemoteError
from ._record import Outcome

try:  # cloudpickle also ships lambdas and classes defined in __main__
    import cloudpickle as _pickler
except ImportError:  # pragma: no cover - exercised only without the extra installed
    _pickler = pickle

# Runners kept unpickled per worker process; a few, since one run ships one runner.
_CACHE_SIZE = 8


@dataclass(frozen=True)
class ShippedRunner:
    """A pickled runner (and worker context) plus the token its worker cache knows it by
    (equality and hash are the token's alone)."""

    token: str
    blob: bytes = field(compare=False, repr=False)  # it may hold a key: never shown
    flows: int = field(compare=False)


def ship(runner: Any, worker_context: Any, flows: int) -> ShippedRunner:
    """Pickle ``runner`` and ``worker_context`` once for a run.

    Raises:
        ConfigurationError: they cannot be pickled; says what to fix.
    """
    try:
        blob = _pickler.dumps((runner, worker_context), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ConfigurationError(
            f"executor= sends the runner to other processes, but this "
            f"{type(runner).__name__} (or worker_context) cannot be pickled: "
            f"{type(exc).__name__}: {exc}. Use module-level functions and give classes that "
            "hold locks, sessions or thread-locals __getstate__/__setstate__.") from exc
    return ShippedRunner(uuid.uuid4().hex, blob, flows)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load(shipped: ShippedRunner) -> tuple[Any, Any]:
    # Unpickled here, so a Model reads its key from this worker's environment.
    loaded: tuple[Any, Any] = pickle.loads(shipped.blob)
    reserve_connections(loaded[0], shipped.flows)
    return loaded


def portable_error(exc: BaseException, tb: str | None) -> BaseException:
    """``exc`` itself when it survives a pickle round trip, else a :class:`RemoteError`."""
    try:
        same = type(pickle.loads(pickle.dumps(exc))) is type(exc)
    except Exception:  # noqa: BLE001 - any failure means "send a description instead"
        same = False
    return exc if same else RemoteError(type(exc).__qualname__, str(exc), tb)


def run_item(runner: Any, variables: dict[str, Any], budget: float | None,
             cancel: threading.Event | None = None, tally: _context.Tally | None = None,
             worker_context: Any = None) -> Outcome | None:
    """Run one item within ``budget`` seconds; None when ``cancel`` was set before it began.

    Module-level, so every executor can pickle it. Never raises for the runner: every
    exception, even SystemExit or a KeyboardInterrupt raised inside it, is in the outcome.
    A :class:`ShippedRunner` is unpickled here, and its errors come back picklable.
    """
    if cancel is not None and cancel.is_set():
        return None
    tally = tally or _context.Tally()
    start, t0 = time.time(), time.monotonic()
    output: Any = None
    error: BaseException | None = None
    tb: str | None = None
    shipped = isinstance(runner, ShippedRunner)
    try:
        if shipped:
            runner, worker_context = _load(runner)
        # The scope carries the item's budget and the cancel event down to every HTTP call
        # and retry sleep. worker_context wraps each item, not each thread: a thread pool
        # has no finalizer, and per-thread resources (Django's DB connections) must not
        # outlive the item.
        with _context.scope(timeout=budget, cancel=cancel, tally=tally), \
                (worker_context or contextlib.nullcontext)():
            output = call_runner(runner, variables)
    except BaseException as exc:  # noqa: BLE001 - a worker must never leave an item RUNNING
        error, tb, output = exc, traceback.format_exc(), None
        if shipped:
            error = portable_error(exc, tb)
    return Outcome(output, error, tb, tally.usage, tally.requests, tally.reasks,
                   tally.wait_seconds, start, time.time(), time.monotonic() - t0)


class ThreadFlows:
    """The Pool's own threads (one ThreadPoolExecutor per run, replaced when one is stuck).

    It never uses ``with ThreadPoolExecutor()``: leaving that block waits for every queued
    item, which is how the public project made "raise" and Ctrl-C wait for the whole batch.
    """

    def __init__(self, runner: Any, worker_context: Any, max_flows: int):
        self._runner, self._context, self._max_flows = runner, worker_context, max_flows
        self._executor: ThreadPoolExecutor | None = None
        self._all: list[ThreadPoolExecutor] = []

    def submit(self, variables: dict[str, Any], budget: float | None, cancel: threading.Event,
               tally: _context.Tally) -> Future[Outcome | None]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._max_flows, thread_name_prefix="yait-pool")
            self._all.append(self._executor)
        return self._executor.submit(run_item, self._runner, variables, budget, cancel, tally,
                                     self._context)

    def in_flight(self, live: int, stray: int) -> int:
        return live  # a stuck thread is replaced (see withdraw), so strays hold no flow

    def withdraw(self, future: Future[Any]) -> bool:
        """Give up on ``future``; True when it was cancelled before it started."""
        if future.cancel():
            return True
        # A thread cannot be killed: a timed-out item keeps its worker busy. New work goes
        # to a fresh executor so the run keeps max_flows real flows; the old one lets its
        # remaining items finish and then exits.
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        return False

    def shutdown(self) -> None:
        for executor in self._all:
            executor.shutdown(wait=False, cancel_futures=True)
        self._all.clear()
        self._executor = None


class ExecutorFlows:
    """A caller-owned executor (processes, Dask), never shut down by the Pool. Cancelling
    is best effort: a task already running stops at its own budget and keeps its slot
    (``max_flows`` caps what the executor holds, given-up tasks included) until it returns."""

    def __init__(self, executor: Any, runner: Any, worker_context: Any, max_flows: int):
        self._executor = executor
        self._shipped = ship(runner, worker_context, max_flows)

    def submit(self, variables: dict[str, Any], budget: float | None, cancel: threading.Event,
               tally: _context.Tally) -> Future[Outcome | None]:
        # Monotonic clocks differ between processes: the budget travels as seconds left.
        future: Future[Outcome | None] = self._executor.submit(
            run_item, self._shipped, variables, budget)
        return future

    def in_flight(self, live: int, stray: int) -> int:
        return live + stray

    def withdraw(self, future: Future[Any]) -> bool:
        return future.cancel()

    def shutdown(self) -> None:
        """Nothing to do: the executor is the caller's, and the Run withdraws each queued item."""


def flows_for(executor: Any, runner: Any, worker_context: Any,
              max_flows: int) -> ThreadFlows | ExecutorFlows:
    if executor is None:
        return ThreadFlows(runner, worker_context, max_flows)
    return ExecutorFlows(executor, runner, worker_context, max_flows)
