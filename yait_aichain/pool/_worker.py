"""What runs where an item runs: one attempt at one item, returned as an :class:`Outcome`.

The same function runs on the Pool's own threads and on an executor you own (processes,
Dask). It never touches the records: the calling thread applies the outcome. For a
foreign executor the runner travels pickled once per run (cloudpickle when installed, else
pickle) as a :class:`ShippedRunner`; each worker process unpickles it once and keeps it in
a small cache, so its connection pool is reused across items instead of rebuilt per item.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import _context
from .._runner import call_runner, reserve_connections
from .._usage import Usage
from ..errors import ConfigurationError, RemoteError

try:  # cloudpickle also ships lambdas and classes defined in __main__
    import cloudpickle as _pickler
except ImportError:  # pragma: no cover - exercised only without the extra installed
    _pickler = pickle

# Runners kept unpickled per worker process; a few, since one run ships one runner.
_CACHE_SIZE = 8
_cache: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_cache_lock = threading.Lock()


class Outcome(NamedTuple):
    """What one item produced; small and picklable (a tuple: cheap to build per item)."""

    output: Any
    error: BaseException | None
    traceback: str | None
    usage: Usage
    attempts: int
    reasks: int
    wait_seconds: float
    start: float
    end: float
    duration: float


@dataclass(frozen=True)
class ShippedRunner:
    """A pickled runner (and worker context) plus the token its worker cache knows it by."""

    token: str
    blob: bytes
    flows: int

    def __repr__(self) -> str:  # the blob may hold a key: never show it
        return f"ShippedRunner(token={self.token!r}, size={len(self.blob)})"


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


def run_item(
    runner: Any, variables: dict[str, Any], budget: float | None,
    cancel: threading.Event | None = None, tally: _context.Tally | None = None,
    worker_context: Any = None,
) -> Outcome | None:
    """Run one item and return its outcome. Module-level, so every executor can pickle it.

    Never raises for a failure of the runner: every outcome, even a BaseException such as
    SystemExit or a KeyboardInterrupt raised inside it, is returned.

    Args:
        runner: the runner, or a :class:`ShippedRunner` (then errors come back picklable).
        variables: the item's merged variables.
        budget: seconds the item may take (its timeout, within the run's deadline), or None.
        cancel: the run's cancel event; also wakes sleeping retries.
        tally: where the calls inside the item count their usage (read live by the run).
        worker_context: a callable returning a context manager entered around the item.

    Returns:
        The :class:`Outcome`, or None when the run was cancelled before the item started.
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
