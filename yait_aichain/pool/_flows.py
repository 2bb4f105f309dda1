"""Where items run: the Pool's own threads, or an executor the caller owns.

The two differ only in how a task is submitted and cancelled; both return a
``concurrent.futures.Future`` whose result is the worker's :class:`~._worker.Outcome`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .._context import Tally
from ._worker import Outcome, run_item, ship


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
               tally: Tally) -> Future[Outcome | None]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._max_flows, thread_name_prefix="yait-pool")
            self._all.append(self._executor)
        return self._executor.submit(run_item, self._runner, variables, budget, cancel, tally,
                                     self._context)

    def in_flight(self, live: int) -> int:
        return live

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
    """A caller-owned executor (processes, Dask): the runner is pickled once per run and
    items travel as small tasks. Cancelling is best effort: a task already running on a
    worker stops at its own budget, not when the caller gives up on it, and it keeps its
    slot (``max_flows`` caps what the executor holds) until it returns. The Pool never
    shuts the executor down."""

    def __init__(self, executor: Any, runner: Any, worker_context: Any, max_flows: int):
        self._executor = executor
        self._shipped = ship(runner, worker_context, max_flows)
        self._lock = threading.Lock()
        self._outstanding: set[Future[Any]] = set()

    @property
    def outstanding(self) -> int:
        with self._lock:
            return len(self._outstanding)

    def submit(self, variables: dict[str, Any], budget: float | None, cancel: threading.Event,
               tally: Tally) -> Future[Outcome | None]:
        # Monotonic clocks differ between processes: the budget travels as seconds left.
        future: Future[Outcome | None] = self._executor.submit(
            run_item, self._shipped, variables, budget)
        with self._lock:
            self._outstanding.add(future)
        future.add_done_callback(self._returned)
        return future

    def _returned(self, future: Future[Any]) -> None:
        # Runs in whatever thread completes the future (Dask's event loop, a process pool's
        # manager thread).
        with self._lock:
            self._outstanding.discard(future)

    def in_flight(self, live: int) -> int:
        return self.outstanding

    def withdraw(self, future: Future[Any]) -> bool:
        return future.cancel()

    def shutdown(self) -> None:
        with self._lock:
            pending = list(self._outstanding)
        for future in pending:
            future.cancel()


def flows_for(executor: Any, runner: Any, worker_context: Any,
              max_flows: int) -> ThreadFlows | ExecutorFlows:
    if executor is None:
        return ThreadFlows(runner, worker_context, max_flows)
    return ExecutorFlows(executor, runner, worker_context, max_flows)
