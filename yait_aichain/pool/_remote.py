"""Running a Pool's items on an executor the Pool did not create (processes, Dask, ...).

The calling process keeps everything that has state: the records, the scheduling loop,
progress, budgets and ``on_item_done``. Only a small, picklable task crosses over:

    run_item(ShippedRunner, variables, timeout)  ->  Outcome(output, error, usage, ...)

The runner is pickled once per run (cloudpickle when installed, else pickle) and sent
with every task as bytes; each worker process unpickles it once and keeps it in a small
cache, so its connection pool is reused across items instead of rebuilt per item.

Cancellation is best effort: futures that have not started are cancelled, and a task
already running on a worker stops at its own time budget (the item's ``timeout``, applied
by the worker's scope), not when the caller gives up on it.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .. import _context
from .._runner import call_runner, reserve_connections
from .._usage import Usage
from ..errors import CancelledError, ConfigurationError, RemoteError
from ._worker import Job

try:  # cloudpickle also ships lambdas and classes defined in __main__
    import cloudpickle as _pickler
except ImportError:  # pragma: no cover - exercised only without the extra installed
    _pickler = pickle  # type: ignore[assignment]

# Runners kept unpickled per worker process; a few, since one run ships one runner.
_CACHE_SIZE = 8
_cache: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ShippedRunner:
    """A pickled runner (and worker context) plus the token its worker cache knows it by."""

    token: str
    blob: bytes
    flows: int

    def __repr__(self) -> str:  # the blob may hold a key: never show it
        return f"ShippedRunner(token={self.token!r}, size={len(self.blob)})"


@dataclass(frozen=True)
class Outcome:
    """What one item produced on a worker; small and picklable."""

    output: Any
    error: BaseException | None
    traceback: str | None
    usage: Usage
    attempts: int
    wait_seconds: float
    start: float
    end: float
    duration: float
    reasks: int = 0


def check_executor(value: Any) -> Any:
    """None, or an object with ``submit(fn, *args)`` returning a concurrent.futures.Future.

    Raises:
        ConfigurationError: anything else.
    """
    if value is None or callable(getattr(value, "submit", None)):
        return value
    raise ConfigurationError(
        "executor must be a concurrent.futures.Executor (e.g. a ProcessPoolExecutor or "
        f"client.get_executor(pure=False) of Dask) or None; got {type(value).__name__}"
    )


def check_worker_context(value: Any) -> Any:
    """None, or a callable returning a context manager.

    Raises:
        ConfigurationError: anything else.
    """
    if value is None or callable(value):
        return value
    raise ConfigurationError(
        "worker_context must be a callable returning a context manager (e.g. "
        f"yait_aichain.integrations.django.close_db_connections) or None; got {type(value).__name__}"
    )


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
            "hold locks, sessions or thread-locals __getstate__/__setstate__."
        ) from exc
    return ShippedRunner(uuid.uuid4().hex, blob, flows)


def _load(shipped: ShippedRunner) -> tuple[Any, Any]:
    with _cache_lock:
        hit = _cache.get(shipped.token)
        if hit is not None:
            _cache.move_to_end(shipped.token)
            return hit
    # Unpickle outside the lock: a Model reads this worker's environment for its key.
    loaded = pickle.loads(shipped.blob)
    reserve_connections(loaded[0], shipped.flows)
    with _cache_lock:
        hit = _cache.setdefault(shipped.token, loaded)
        _cache.move_to_end(shipped.token)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return hit


def portable_error(exc: BaseException, tb: str | None) -> BaseException:
    """``exc`` itself when it survives a pickle round trip, else a :class:`RemoteError`."""
    try:
        same = type(pickle.loads(pickle.dumps(exc))) is type(exc)
    except Exception:  # noqa: BLE001 - any failure means "send a description instead"
        same = False
    return exc if same else RemoteError(type(exc).__qualname__, str(exc), tb)


def run_item(runner: Any, variables: dict[str, Any], timeout: float | None) -> Outcome:
    """Run one item on a worker. Module-level, so every executor can pickle it.

    Args:
        runner: a :class:`ShippedRunner`, or any picklable runner.
        variables: the item's merged variables.
        timeout: seconds the item may take here, or None.

    Returns:
        An :class:`Outcome`; it never raises for a failure of the runner.
    """
    tally = _context.Tally()
    start, t0 = time.time(), time.monotonic()
    output: Any = None
    error: BaseException | None = None
    tb: str | None = None
    try:
        context: Any = None
        if isinstance(runner, ShippedRunner):
            runner, context = _load(runner)
        with _context.scope(timeout=timeout, tally=tally), (context or contextlib.nullcontext)():
            output = call_runner(runner, variables)
    except BaseException as exc:  # noqa: BLE001 - the item fails, the worker goes on
        error = exc
        tb = traceback.format_exc()
    end, duration = time.time(), time.monotonic() - t0
    if error is not None:
        output, error = None, portable_error(error, tb)
    return Outcome(output, error, tb, tally.usage, tally.requests, tally.wait_seconds,
                   start, end, duration, tally.reasks)


class RemoteFlows:
    """The caller's side of a run on a foreign executor.

    ``submit`` hands one item over and returns a local Future that resolves to True once
    the outcome is in the record book (False when it arrived too late), the same
    contract as the Pool's own worker threads.
    """

    def __init__(self, executor: Any, runner: Any, worker_context: Any, flows: int):
        self._executor = executor
        self._shipped = ship(runner, worker_context, flows)
        self._lock = threading.Lock()
        self._remote: dict[Future[bool], Future[Any]] = {}  # local -> remote, not yet landed
        self._withdrawn: set[Future[bool]] = set()  # cancelled by us: the run settles them

    @property
    def outstanding(self) -> int:
        """Futures handed to the executor that have not come back yet."""
        with self._lock:
            return len(self._remote)

    def submit(self, job: Job) -> Future[bool]:
        """Mark the item RUNNING and hand it to the executor; see the class docstring."""
        local: Future[bool] = Future()
        tally = _context.Tally()
        if not job.book.begin(job.record, job.ticket, tally, job.cancel):
            local.set_result(False)
            return local
        budget = job.timeout
        if job.deadline is not None:
            # Monotonic clocks differ between processes: send the seconds left, not a time.
            left = max(0.001, job.deadline - time.monotonic())
            budget = left if budget is None else min(budget, left)
        try:
            remote = self._executor.submit(run_item, self._shipped, job.variables, budget)
        except Exception as exc:  # noqa: BLE001 - a shut-down or broken executor; Ctrl-C
            # here is the caller's own and must reach it
            local.set_result(self._record(job, None, exc, traceback.format_exc()))
            return local
        with self._lock:
            self._remote[local] = remote
        remote.add_done_callback(lambda fut: self._landed(job, local, fut))
        return local

    def withdraw(self, local: Future[bool]) -> None:
        """The caller gave up on this item: cancel its task if it has not started."""
        with self._lock:
            remote = self._remote.get(local)
            if remote is not None:
                self._withdrawn.add(local)
        if remote is not None:
            remote.cancel()

    def cancel_all(self) -> None:
        """Cancel every task still outstanding (best effort: running ones may go on)."""
        with self._lock:
            pending = list(self._remote.values())
            self._withdrawn.update(self._remote)
        for remote in pending:
            remote.cancel()

    def _landed(self, job: Job, local: Future[bool], remote: Future[Any]) -> None:
        # Runs in whatever thread completes the executor's future (Dask's event loop, a
        # process pool's manager thread): only lock-guarded book updates happen here.
        with self._lock:
            self._remote.pop(local, None)
            ours = local in self._withdrawn
            self._withdrawn.discard(local)
        try:
            if remote.cancelled():
                if ours:  # the run settles what it cancelled itself
                    local.set_result(False)
                    return
                # Cancelled elsewhere (the executor shut down under us): still end the item.
                err = CancelledError("the executor cancelled this item", reason="cancelled")
                recorded = self._record(job, None, err, None)
            else:
                exc = remote.exception()
                if exc is not None:  # the task itself broke: pickling, a killed worker
                    tb = "".join(traceback.format_exception(exc))
                    recorded = self._record(job, None, exc, tb)
                else:
                    recorded = self._record(job, remote.result(), None, None)
        except BaseException as exc:  # noqa: BLE001 - never leave the local future pending
            local.set_exception(exc)
            return
        local.set_result(recorded)

    @staticmethod
    def _record(job: Job, outcome: Outcome | None, error: BaseException | None,
                tb: str | None) -> bool:
        book, rec = job.book, job.record
        if outcome is None:
            return book.finish(rec, job.ticket, None, error, tb, _context.Tally())
        tally = _context.Tally(usage=outcome.usage, requests=outcome.attempts, calls=1,
                               wait_seconds=outcome.wait_seconds,
                               reasks=getattr(outcome, "reasks", 0))
        recorded = book.finish(rec, job.ticket, outcome.output, outcome.error,
                               outcome.traceback, tally)
        if recorded:
            with book.lock:  # the worker's clock tells when the item really ran
                rec.start, rec.end, rec.duration = outcome.start, outcome.end, outcome.duration
        return recorded
