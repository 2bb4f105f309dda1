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
from ._run import Run
from ._status import CANCELLED, FAILED, PENDING, Status


class Pool:
    """Run one runner over many items in parallel; results come back in input order.

    Every item ends DONE, FAILED or CANCELLED and keeps a record (output, the exception
    itself, attempts, duration, usage). One failure never sinks the batch, failed items can
    be run again alone, and ``run()`` stays a plain blocking call that Ctrl-C interrupts
    within a fraction of a second.

    Thread contract: one runner instance serves every flow, so it must not keep per-call
    state on itself (Skill, Chain and Model do not). ``status``, ``records``, ``history``,
    ``failures`` and ``usage`` may be read from any thread, also during a run. A Pool runs
    one run at a time: calling ``run()`` while it is running raises RuntimeError.

    Args:
        runner: a Skill, Chain, Tool, any object with ``run(variables)``, or a callable
            taking the variables dict. One instance serves every flow.
        items: a list or tuple of dicts (all checked now), or any other iterable of dicts,
            consumed lazily with at most ``max_flows`` items in flight, so a generator of
            millions of rows runs in constant memory apart from the records.
        max_flows: how many items run at once: an int from 1 to ``MAX_FLOWS_LIMIT``, or
            ``"auto"`` (recommended for real providers): the Pool adapts how many run at
            once, and every call paces itself by the rate limits the provider's headers
            state, so it runs at the provider's limit without 429s; without such headers
            it grows while round trips stay flat and backs off when they climb or the
            server answers 429/503/529. ``AutoFlows(max=500)`` sets its upper bound
            (default ``DEFAULT_AUTO_MAX_FLOWS``). ``pool.flow_log`` keeps its decisions.
        on_error: what one failed item does to the run: "collect" (default, the error is
            kept in its record), "skip" (the same plus a RuntimeWarning), "stop" (nothing
            new starts, running items finish, the rest end CANCELLED) or "raise" (cancel
            everything and raise the failure at once).
        timeout: seconds each item may run; past it the item ends FAILED with
            ItemTimeoutError and the run goes on without waiting for it.
        deadline: seconds for the whole run; when spent, nothing new starts, running items
            end FAILED (ItemTimeoutError), the rest CANCELLED, and the run returns.
        progress: True draws a live line on stderr, a file-like object draws it there,
            False never; None (default) draws it only when stderr is a terminal. On a
            terminal the line redraws in place, cut to its width; elsewhere (a log, CI)
            a plain line is written every 10 s. A tqdm class or instance is advanced
            instead.
        on_item_done: called with a snapshot of each ended record, in the calling thread.
            An exception it raises stops the run like the caller's own (see ``run``).
        max_cost: a USD budget per run that holds: every model call first reserves its
            worst case (a generous input estimate plus its ``max_tokens``, at the model's
            price) and settles with the real usage; a call that does not fit is not sent,
            nothing new starts, and the rest end CANCELLED
            (``CancelledError(reason="budget")``). A model whose price is unknown is a
            ConfigurationError at once: give it ``price=`` or budget with ``max_tokens``.
        max_tokens: the same, counted in total tokens.
        name: a label for the progress line and repr.
        executor: a ``concurrent.futures.Executor`` you own (a ProcessPoolExecutor, Dask's
            ``client.get_executor(pure=False)``, ...) to run the items on instead of the
            Pool's own threads; the runner, ``worker_context`` and items must then pickle.
            ``max_flows`` still caps the tasks it holds; the Pool never shuts it down.
            Records, progress and ``on_item_done`` stay in the calling thread.
        worker_context: a callable returning a context manager, entered around each item
            where it runs (e.g. ``integrations.django.close_db_connections``); an error it
            raises fails the item.
        rate_limit: a :class:`~yait_aichain.RateLimit` that every model call inside the
            items waits for (besides each Model's own); share one object between Pools to
            share the budget.
        checkpoint: a JSONL file path (or a ``Checkpoint``): each item that ends is
            appended as it ends; a later run with the same file takes the DONE results
            from it without calling anything (``record.from_checkpoint``), runs the rest,
            and returns all in input order. Keyed by the item's content and the runner's
            identity (its ``identity()``), so a changed prompt or model reuses nothing.
            Outputs must be JSON.
        breaker: the circuit breaker (on by default, see :class:`CircuitBreaker`): after
            3 items in a row fail with an error that cannot fix itself within the run
            (authentication, permission, billing, unknown model or endpoint, connection
            refused), or 5 with the same non-retryable error, nothing new starts and the
            rest end CANCELLED with ``CancelledError(reason="systemic", cause=...)`` saying
            what to fix. ``False`` turns it off; ``CircuitBreaker(...)`` tunes it.
        checkpoint_key: the version of a runner that cannot describe itself (a plain
            function, or a Chain with one among its steps): required for those, and to be
            changed whenever their answers would. In batch mode the provider batch ids are
            kept beside the checkpoint (``<checkpoint>.batches``) from the moment they exist.
        mode: ``"live"`` (default) calls the models item by item; ``"batch"`` sends the
            items' Skill calls through the providers' Batch APIs (half the price, results
            within 24 hours): a Skill is one batch, a Chain one batch per Skill step with
            its tools and callables run locally in between. Same ordered results and
            records, usage at batch prices.
        poll_interval: seconds between two looks at running batches (batch mode).

    Raises:
        ConfigurationError: a bad max_flows, on_error, timeout, deadline, budget, progress,
            callback, runner, executor or worker_context.
        TypeError: an item of a list or tuple is not a dict (names its index and type), or
            ``items`` is not an iterable of dicts.
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
        self,
        runner: Any,
        items: Iterable[dict[str, Any]],
        max_flows: int | str | AutoFlows = DEFAULT_MAX_FLOWS,
        *,
        on_error: str = "collect",
        timeout: float | None = None,
        deadline: float | None = None,
        progress: Any = None,
        on_item_done: Callable[[ItemRecord], Any] | None = None,
        max_cost: float | None = None,
        max_tokens: int | None = None,
        name: str | None = None,
        executor: Any = None,
        worker_context: Callable[[], Any] | None = None,
        rate_limit: Any = None,
        checkpoint: Any = None,
        checkpoint_key: str | None = None,
        mode: str = "live",
        poll_interval: float = 60.0,
        breaker: Any = True,
    ):
        self._settings = Settings(
            runner, max_flows, on_error=on_error, timeout=timeout, deadline=deadline,
            progress=progress, on_item_done=on_item_done, max_cost=max_cost,
            max_tokens=max_tokens, name=name, executor=executor, worker_context=worker_context,
            rate_limit=rate_limit, checkpoint=checkpoint, checkpoint_key=checkpoint_key,
            mode=mode, poll_interval=poll_interval,
            breaker=breaker,
        )
        self._source = ItemSource(items)
        self._book = RecordBook()
        self._book.reset_all(self._source.seen)
        self._variables: dict[str, Any] | None = None
        self._controller: FlowController | None = None  # the last "auto" run's
        self._busy = threading.Lock()
        self._batch_jobs: list[Any] = []  # the provider batches of the last batch-mode run
        self._batch_timing: tuple[Callable[[float], None], Callable[[], float]] = (
            time.sleep, time.monotonic)  # injectable: tests never wait for real

    # -- running --------------------------------------------------------------------

    def run(self, variables: dict[str, Any] | None = None) -> list[Any]:
        """Run every item and return the outputs in input order.

        Args:
            variables: shared variables merged under each item (``{**variables, **item}``,
                the item wins); each flow gets its own deep copy.

        Returns:
            One entry per item: the runner's output, or None for an item that FAILED or was
            CANCELLED (its record tells which, and why).

        Raises:
            RuntimeError: this Pool is already running.
            ConfigurationError: with ``executor=``, the runner cannot be pickled (before
                any item starts).
            TypeError: ``variables`` is not a dict.
            KeyboardInterrupt: Ctrl-C during the run, re-raised within ~0.1 s after the
                unfinished items were marked CANCELLED; ``retry_failed()`` resumes.
            Exception: the first failure under on_error="raise", or whatever on_item_done
                raised; records of ended items are kept.
        """
        for _ in self._events(variables, retry=False, snapshots=False):
            pass
        return self._book.outputs()

    def iter_run(self, variables: dict[str, Any] | None = None) -> Iterator[ItemRecord]:
        """Run every item, yielding each record as its item ends (completion order).

        The run happens in the calling thread while it iterates: timeouts and Ctrl-C are
        handled between yields, not while your loop body runs. Leaving a ``for`` loop early
        cancels the items not yet ended; an iterator kept aside unfinished holds the pool
        busy until you call its ``close()``.

        Args:
            variables: as for :meth:`run`.

        Returns:
            An iterator of record snapshots; ``pool.results`` has the ordered outputs after.

        Raises:
            As :meth:`run`, while iterating.
        """
        return self._events(variables, retry=False)

    def retry_failed(self, variables: dict[str, Any] | None = None,
                     mode: str | None = None) -> list[Any]:
        """Run again only the items that did not end DONE (FAILED, CANCELLED, or never
        started), updating their records in place; for a lazy iterable, then continue
        with the items not pulled yet.

        Args:
            variables: shared variables; by default those of the last run.
            mode: ``"live"`` or ``"batch"`` for this retry (default: the Pool's mode), e.g.
                a batch run's few failures retried live.

        Returns:
            The full ordered list of outputs, as :meth:`run` does.

        Raises:
            As :meth:`run`.
        """
        settings = self._settings if mode is None else dataclasses.replace(
            self._settings, mode=mode)
        for _ in self._events(variables, retry=True, snapshots=False, settings=settings):
            pass
        return self._book.outputs()

    def submit(self, variables: dict[str, Any] | None = None) -> list[Any]:
        """Batch mode, first phase: render and submit the batches, then return without
        waiting (for a cron job). A later :meth:`run` with the same ``checkpoint=``
        re-attaches to them and collects the results; nothing is submitted twice.

        Returns:
            The submitted batches (``batch_id``, ``provider``, ``keys``).

        Raises:
            ConfigurationError: not in batch mode, or no ``checkpoint=`` to find the
                batches again.
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
        count = 0
        for job in self._batch_jobs:
            count += job.cancel()
        return count

    def _events(
        self, variables: dict[str, Any] | None, retry: bool, snapshots: bool = True,
        settings: Settings | None = None, submit_only: bool = False,
    ) -> Iterator[ItemRecord]:
        if retry and variables is None:
            variables = self._variables
        shared = SharedVariables(variables)
        settings = settings or self._settings
        check_chain_items(self.runner, None if self._source.lazy else self._source.seen,
                          shared.source)
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                "this Pool is already running; wait for run() to return, or use another "
                "Pool for concurrent runs"
            )
        try:
            self._variables = shared.source
            if retry:
                indices = self._book.indices(frozenset({PENDING, FAILED, CANCELLED}))
                self._book.reset_some(indices, self._source.seen)
                plan = self._source.retry(indices)
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
        """``{PENDING: n, RUNNING: n, DONE: n, FAILED: n, CANCELLED: n}``: always every key,
        summing to the item count (for a lazy iterable: the items pulled so far). The keys
        are :class:`~yait_aichain.pool.Status` members: equal to the ints 0..4, printed
        by name."""
        return self._book.counts()

    @property
    def records(self) -> list[ItemRecord]:
        """Snapshots of every item's record, in input order."""
        return self._book.snapshots()

    @property
    def history(self) -> list[dict[str, Any]]:
        """The records as dicts: index, variables, status (a Status, shown by name),
        status_name (its name as a str), output, error (str), duration, plus error_type,
        traceback, attempts, start, end, usage and wait_seconds."""
        return [rec.as_dict() for rec in self._book.snapshots()]

    @property
    def failures(self) -> list[ItemRecord]:
        """Snapshots of the FAILED records, in input order (``record.error`` is the
        exception itself)."""
        return [rec for rec in self._book.snapshots() if rec.status == FAILED]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per item, in input order, for ``pandas.DataFrame(...)`` or CSV:
        ``index``, ``status`` (its name), ``error_type``, ``error``, ``attempts``,
        ``reasks``, ``input_tokens``, ``output_tokens``, ``total_tokens``, ``cost``,
        ``duration``, then the output's fields (a model instance or dict flattened to
        dotted names, e.g. ``customer.name``; any other output as ``output``)."""
        from ._rows import item_row

        return [item_row(rec) for rec in self._book.snapshots()]

    @property
    def flow_log(self) -> list[FlowDecision]:
        """What ``max_flows="auto"`` decided in the last run, in order: the flow limit,
        the round trip behind it, the rate limits it believed and the time spent waiting
        for them (empty for an int ``max_flows``). Safe to read during a run."""
        controller = self._controller
        return [] if controller is None else list(controller.log)

    @property
    def usage(self) -> Usage:
        """Tokens and cost of the last run and any retries since, failed attempts included."""
        with self._book.lock:
            return self._book.spent

    def report(self, path: Any) -> Any:
        """Write an HTML picture of the last run (a timeline bar per item, the summary
        numbers on top) to ``path``; returns it as a ``pathlib.Path``. Rows are labelled
        by each item's ``"id"`` where it has one. See
        :mod:`yait_aichain.report`."""
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
        return (
            f"Pool(runner={describe_runner(self.runner)!r}, items={items}, "
            f"max_flows={self.max_flows}, on_error={self.on_error!r})"
        )

