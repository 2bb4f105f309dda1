"""Pool: an ordered parallel map of one runner over many items."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .._runner import describe, describe_runner, reserve_connections, runner_name
from .._usage import Usage
from ..errors import ConfigurationError
from ._batch import BatchRun
from ..ratelimit._adaptive import AutoFlows, FlowController, FlowDecision
from ._config import DEFAULT_MAX_FLOWS, Setting, Settings
from ._items import ItemSource, SharedVariables, check_chain_items
from ._record import ItemRecord, RecordBook
from ._rows import item_row
from ._run import Run
from ._status import FAILED, Status


class Pool:
    """Run one runner over many items in parallel; results come back in input order.

    Every item ends DONE, FAILED or CANCELLED and keeps a record; one failure never sinks
    the batch, and ``run()`` is a plain blocking call that Ctrl-C interrupts within ~0.1 s.
    The README's "Pool" and later sections show each option at work.

    Thread contract: one runner instance serves every flow, so it must keep no per-call
    state on itself (Skill, Chain and Model do not). The results and records may be read
    from any thread, also during a run; a second concurrent ``run()`` is a RuntimeError.

    Args:
        runner: a Skill, Chain, Tool, any object with ``run(variables)``, or a callable
            taking the variables dict.
        items: dicts; a list or tuple is checked now, any other iterable is pulled lazily
            with at most ``max_flows`` items in flight.
        max_flows: items at once, 1 to ``MAX_FLOWS_LIMIT``, or ``"auto"`` /
            ``AutoFlows(max=...)`` to adapt to the provider (see ``flow_log``).
        on_error: "collect" (default: keep the error in the record), "skip" (also warn),
            "stop" (start nothing new) or "raise" (cancel all and raise the failure).
        timeout: seconds per item; past it the item ends FAILED (ItemTimeoutError).
        deadline: seconds for the whole run; then running items end FAILED, the rest CANCELLED.
        progress: True (a line on stderr), a file-like object, a tqdm class or instance,
            False; None (default) draws only when stderr is a terminal.
        on_item_done: called in the calling thread with a snapshot of each ended record;
            what it raises stops the run.
        max_cost: a USD budget per run: each model call reserves its worst case first, one
            that does not fit is not sent and the rest end CANCELLED (reason "budget").
        max_tokens: the same, in total tokens.
        name: a label for the progress line and repr.
        executor: a ``concurrent.futures.Executor`` you own (processes, Dask) to run the
            items on; the runner, ``worker_context`` and items must pickle.
        worker_context: a callable returning a context manager entered around each item
            where it runs; an error it raises fails the item.
        rate_limit: a :class:`~yait_aichain.RateLimit` every model call waits for; share
            one between Pools to share the budget.
        checkpoint: a JSONL path (or a ``Checkpoint``): ended items are appended, and a
            later run reuses the DONE results keyed by item content and runner identity.
        breaker: the :class:`CircuitBreaker` (default on): stop starting items that all
            fail the same way; ``False`` turns it off.
        checkpoint_key: the version of a runner that cannot describe itself (a plain
            function); change it whenever its answers would.
        mode: ``"live"`` (default) or ``"batch"``: send the Skill calls through the
            providers' Batch APIs (half the price, results within 24 hours).
        poll_interval: seconds between two looks at running batches (batch mode).

    Raises:
        ConfigurationError: a bad option (checked here and on assignment, never mid-run).
        TypeError: an item of a list or tuple is not a dict, or ``items`` is not an
            iterable of dicts.
    """

    # Each is checked when assigned, so a bad value never reaches a run.
    runner: Setting[Any] = Setting()
    max_flows: Setting[int | str | AutoFlows] = Setting()
    on_error: Setting[str] = Setting()
    timeout: Setting[float | None] = Setting()
    deadline: Setting[float | None] = Setting()
    progress: Setting[Any] = Setting()
    on_item_done: Setting[Callable[[ItemRecord], Any] | None] = Setting()
    max_cost: Setting[float | None] = Setting()
    max_tokens: Setting[int | None] = Setting()
    name: Setting[str | None] = Setting()
    executor: Setting[Any] = Setting()
    worker_context: Setting[Callable[[], Any] | None] = Setting()
    rate_limit: Setting[Any] = Setting()
    checkpoint: Setting[Any] = Setting()
    checkpoint_key: Setting[str | None] = Setting()
    mode: Setting[str] = Setting()
    poll_interval: Setting[float] = Setting()
    breaker: Setting[Any] = Setting()

    def __init__(
        self, runner: Any, items: Iterable[dict[str, Any]],
        max_flows: int | str | AutoFlows = DEFAULT_MAX_FLOWS, *,
        on_error: str = "collect", timeout: float | None = None, deadline: float | None = None,
        progress: Any = None, on_item_done: Callable[[ItemRecord], Any] | None = None,
        max_cost: float | None = None, max_tokens: int | None = None, name: str | None = None,
        executor: Any = None, worker_context: Callable[[], Any] | None = None,
        rate_limit: Any = None, checkpoint: Any = None, checkpoint_key: str | None = None,
        mode: str = "live", poll_interval: float = 60.0, breaker: Any = True,
    ):
        self._settings = Settings(
            runner, max_flows, on_error=on_error, timeout=timeout, deadline=deadline,
            progress=progress, on_item_done=on_item_done, max_cost=max_cost,
            max_tokens=max_tokens, name=name, executor=executor, worker_context=worker_context,
            rate_limit=rate_limit, checkpoint=checkpoint, checkpoint_key=checkpoint_key,
            mode=mode, poll_interval=poll_interval, breaker=breaker)
        self._source = ItemSource(items)
        self._book = RecordBook(self._source.seen)
        self._variables: dict[str, Any] | None = None
        self._controller: FlowController | None = None  # the last "auto" run's
        self._busy = threading.Lock()
        self._batch_jobs: list[Any] = []  # the provider batches of the last batch-mode run
        self._batch_timing: tuple[Callable[[float], None], Callable[[], float]] = (
            time.sleep, time.monotonic)  # injectable: tests never wait for real

    # -- running --------------------------------------------------------------------

    def run(self, variables: dict[str, Any] | None = None) -> list[Any]:
        """Run every item; return the outputs in input order (None where not DONE).

        Args:
            variables: shared variables merged under each item (the item wins); each flow
                gets its own deep copy.

        Raises:
            RuntimeError: this Pool is already running.
            ConfigurationError: with ``executor=``, the runner cannot be pickled.
            TypeError: ``variables`` is not a dict.
            Exception: Ctrl-C, the first failure under on_error="raise", or what
                on_item_done raised, once the unfinished items are CANCELLED.
        """
        for _ in self._events(variables, retry=False, snapshots=False):
            pass
        return self._book.outputs()

    def iter_run(self, variables: dict[str, Any] | None = None) -> Iterator[ItemRecord]:
        """Run every item, yielding a snapshot of each record as its item ends.

        The run advances while you iterate (timeouts and Ctrl-C are handled between
        yields); leaving the loop early cancels the rest, and an iterator kept aside
        unfinished holds the Pool busy until its ``close()``. Raises as :meth:`run`.
        """
        return self._events(variables, retry=False)

    def retry_failed(self, variables: dict[str, Any] | None = None,
                     mode: str | None = None) -> list[Any]:
        """Run again only the items not DONE (records updated in place), then any a lazy
        iterable has left; return all outputs as :meth:`run` does, and raise as it does.

        Args:
            variables: shared variables; by default those of the last run.
            mode: ``"live"`` or ``"batch"`` for this retry (default: the Pool's mode).
        """
        settings = self._settings if mode is None else dataclasses.replace(
            self._settings, mode=mode)
        for _ in self._events(variables, retry=True, snapshots=False, settings=settings):
            pass
        return self._book.outputs()

    def submit(self, variables: dict[str, Any] | None = None) -> list[Any]:
        """Batch mode: submit the batches and return them (``batch_id``, ``provider``,
        ``keys``) without waiting; a later :meth:`run` with the same ``checkpoint=``
        collects the results, submitting nothing twice.

        Raises:
            ConfigurationError: not in batch mode, or no ``checkpoint=``.
        """
        if self.mode != "batch" or self.checkpoint is None:
            raise ConfigurationError(
                "submit() needs mode='batch' and checkpoint=... (the batch ids are kept "
                "there for the run() that collects them)")
        for _ in self._events(variables, retry=False, snapshots=False, submit_only=True):
            pass
        self._book.reset_all(self._source.seen)
        return [sub for job in self._batch_jobs for sub in job.submitted]

    def cancel_batches(self) -> int:
        """Ask the providers to cancel the unfinished batches of the last batch-mode run
        (say, after Ctrl-C); returns how many batches were asked."""
        return sum(job.cancel() for job in self._batch_jobs)

    def _events(self, variables: dict[str, Any] | None, retry: bool, snapshots: bool = True,
                settings: Settings | None = None, submit_only: bool = False,
                ) -> Iterator[ItemRecord]:
        if retry and variables is None:
            variables = self._variables
        shared = SharedVariables(variables)
        settings = settings or self._settings
        check_chain_items(self.runner, None if self._source.lazy else self._source.seen,
                          shared.source)
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this Pool is already running; wait for run() to return, or "
                               "use another Pool for concurrent runs")
        try:
            self._variables = shared.source
            if retry:
                plan = self._source.retry(self._book.reset_unfinished(self._source.seen))
            else:
                known, plan = self._source.fresh()
                self._book.reset_all(known)
            if settings.mode == "batch":
                sleep, clock = self._batch_timing
                batch = BatchRun(settings, self._book, plan, shared, submit_only=submit_only,
                                 sleep=sleep, clock=clock)
                self._batch_jobs = batch.jobs
                yield from batch.events()
                return
            reserve_connections(self.runner, settings.flow_bound)
            run = Run(settings, self._book, plan, shared, lambda: self._source.count, snapshots)
            self._controller = run.controller
            yield from run.events()
        finally:
            self._busy.release()

    # -- results and records (safe from any thread) -------------------------------------

    @property
    def results(self) -> list[Any]:
        """The outputs in input order (None where not DONE)."""
        return self._book.outputs()

    @property
    def status(self) -> dict[Status, int]:
        """``{PENDING: n, RUNNING: n, ..., CANCELLED: n}``: every key, summing to the items
        (pulled so far, for a lazy iterable)."""
        return self._book.counts()

    @property
    def records(self) -> list[ItemRecord]:
        """Snapshots of every item's record, in input order."""
        return self._book.snapshots()

    @property
    def history(self) -> list[dict[str, Any]]:
        """The records as dicts (``ItemRecord.as_dict``: the error as a str, plus
        ``status_name`` and ``error_type``)."""
        return [rec.as_dict() for rec in self._book.snapshots()]

    @property
    def failures(self) -> list[ItemRecord]:
        """Snapshots of the FAILED records, in input order."""
        return [rec for rec in self._book.snapshots() if rec.status == FAILED]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per item, in input order, for ``pandas.DataFrame(...)`` or CSV:
        the item's facts, then the output's fields with dotted names (see ``pool._rows``)."""
        return [item_row(rec) for rec in self._book.snapshots()]

    @property
    def flow_log(self) -> list[FlowDecision]:
        """What ``max_flows="auto"`` decided in the last run, in order (empty for an int);
        safe to read during a run."""
        return [] if self._controller is None else list(self._controller.log)

    @property
    def usage(self) -> Usage:
        """Tokens and cost of the last run and any retries since, failed attempts included."""
        return self._book.spent  # one read of an immutable value: no lock needed

    def report(self, path: Any) -> Any:
        """Write an HTML timeline of the last run to ``path`` (see :mod:`yait_aichain.report`);
        returns it as a ``pathlib.Path``."""
        from ..report import write_report  # only runs that draw a report pay for it

        title = f"{self.name or runner_name(self.runner, 'pool')}: run report"
        records = self.records
        # Rows are named by the item's own "id" where it has one, else by position.
        ids = [rec.variables.get("id") if isinstance(rec.variables, dict) else None
               for rec in records]
        labels = ids if any(i is not None for i in ids) else None
        return write_report(path, records, max_flows=self._settings.max_flows, title=title,
                            usage=self.usage, labels=labels)

    def identity(self) -> dict[str, Any]:
        """What the answers of this Pool, used as a runner, depend on (checkpoint keys)."""
        return {"runner": describe(self.runner)}

    def __repr__(self) -> str:
        count = self._source.count
        items = "'iterable'" if count is None else count
        return (f"Pool(runner={describe_runner(self.runner)!r}, items={items}, "
                f"max_flows={self.max_flows}, on_error={self.on_error!r})")

