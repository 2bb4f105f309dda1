"""The scheduler behind Pool.run(), iter_run() and retry_failed(): one :class:`Run` per call.

It lives in the calling thread and never blocks it for long. It hands an item to a flow only
when one is free, so a lazy iterable is pulled no further ahead than ``max_flows`` (CPython's
``Executor.map`` would read every item first, bpo-32306); it waits on the futures' done
queue in short ticks, so Ctrl-C, timeouts and the deadline act within ~0.1 s. Workers only
return an :class:`~._record.Outcome`: every change to a record happens here. What starts
next, and when, is decided in ``_may_start`` and ``_fill``.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError as FutureCancelled, Future
from typing import Any

from .. import _context
from .._runner import runner_name, user_stacklevel
from ..errors import CancelledError, ItemTimeoutError
from ..ratelimit._adaptive import FlowController
from ..ratelimit._admit import with_rate_limits
from ._config import Settings
from ._breaker import Guards
from ._checkpoint import Journal
from ._flows import flows_for
from ._items import SharedVariables, check_chain_items, item_type_error
from ._progress import progress_line, resolve_progress
from ._record import ItemRecord, Outcome, RecordBook
from ._sharing import Sharing
from ._status import CANCELLED, DONE, FAILED, Status

TICK = 0.1  # longest the calling thread blocks at a time (Ctrl-C latency)
# A cooperative runner stops at its own time budget; the pool gives it this much longer to
# report before it declares the item timed out itself.
ITEM_TIMEOUT_GRACE = 0.2
_SCAN_INTERVAL = 0.05


class Flow:
    """The scheduler's side of one item in flight (never stored on the record)."""

    __slots__ = ("record", "t0", "tally")

    def __init__(self, record: ItemRecord):
        self.record, self.t0, self.tally = record, time.monotonic(), _context.Tally()


class Run:
    """One pass over a plan of items; iterate :meth:`events` to drive it."""

    def __init__(self, settings: Settings, book: RecordBook, plan: Iterator[tuple[int, Any]],
                 shared: SharedVariables, total: Callable[[], int | None], snapshots: bool = True):
        self.s = s = settings
        self.book, self._plan, self._shared, self._total = book, plan, shared, total
        self._snapshots = snapshots or s.on_item_done is not None
        self._cancel = threading.Event()
        self._outer = _context.current()
        # The run's deadline, set once: within any enclosing run's (a Pool inside an item).
        self._scope = self._outer.child(timeout=s.deadline)
        self.controller = None if s.auto is None else FlowController(s.auto)
        observers = () if self.controller is None else (self.controller,)
        runner = with_rate_limits(s.runner, s.rate_limit, observers)
        # A foreign executor gets the runner pickled here, before any item starts.
        self._flows = flows_for(s.executor, runner, s.worker_context, s.flow_bound)
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self._live: dict[Future[Any], Flow] = {}
        self._stray: set[Future[Any]] = set()  # given up on, still running: their usage counts
        self._reason: str | None = None  # why nothing new starts: stop, deadline, budget
        self._abort_reason = "interrupt"
        self._exhausted = self._checked = False
        self._next_scan = 0.0
        self._sharing = Sharing(s.runner)
        self._guards = Guards(s.breaker, s.max_cost, s.max_tokens)  # breaker and budget
        # Last, so that nothing fails after the file is opened: keyed by the runner itself
        # (a rate limit changes when, not what).
        self._journal = None if s.checkpoint is None else Journal(
            s.checkpoint, s.runner, s.checkpoint_key)
        stream = resolve_progress(s.progress)
        # The line says what "auto" decided (described only when it is drawn).
        self._progress = None if stream is None else progress_line(
            stream, s.name or runner_name(s.runner, "pool"), book.counts(),
            getattr(self.controller, "describe", None))

    # -- the loop (calling thread) ----------------------------------------------------

    def events(self) -> Iterator[ItemRecord]:
        """Yield a snapshot of each item's record as it ends, in completion order; what
        the calling thread raises (on_error="raise", on_item_done, Ctrl-C, an enclosing
        run's CancelledError) reaches the caller once every unfinished item is CANCELLED."""
        try:
            yield from self._loop()
            why = self._reason or "stop"
            for rec in self.book.cancel_unfinished(lambda: self._guards.cancelled(why)):
                yield from self._settle(rec, policy=False)
        except BaseException:
            # Wake sleeping retries, drop queued work, and settle every record before the
            # exception reaches the caller; running threads are left to finish on their own.
            self._cancel.set()
            self._flows.shutdown()
            why = self._abort_reason
            for future, flow in list(self._live.items()):
                self._give_up(future, flow, CANCELLED, self._guards.cancelled(why))
            self.book.cancel_unfinished(lambda: self._guards.cancelled(why))
            raise
        finally:
            self._close()

    def _loop(self) -> Iterator[ItemRecord]:
        while True:
            for rec in self._fill():
                yield from self._settle(rec)
            if not self._live and (self._reason is not None or self._exhausted):
                return
            for rec in self._collect(self._wait_time()):
                yield from self._settle(rec)
            yield from self._check_time(time.monotonic())
            if self._outer.cancels and self._outer.cancelled():
                self._abort_reason = "cancelled"
                raise CancelledError("the enclosing run was cancelled", reason="cancelled")
            if self._progress is not None:
                waiting = sum(1 for flow in self._live.values() if flow.tally.waiting > 0)
                self._progress.update(self.book.counts(), self._total(), self.book.run_spent,
                                      waiting)

    def _close(self) -> None:
        self._flows.shutdown()
        # What is still running after the run counts its usage when it returns.
        for future in self._stray | set(self._live):
            future.add_done_callback(self._result)
        self.book.recount()  # an interrupt may have landed between two count updates
        if self._journal is not None:
            self._journal.close(self.book)
        if self._progress is not None:
            self._progress.close(self.book.counts(), self._total(), self.book.run_spent)

    def _settle(self, rec: ItemRecord, policy: bool = True) -> list[ItemRecord]:
        """Report an ended record, then the items that shared its request; return their
        snapshots (or the records themselves, see ``_snapshots``)."""
        if self._journal is not None:  # first: a callback that raises must not lose it
            self._journal.record(rec)
        self._sharing.warm_up = False  # an item has ended: the prompt cache is written
        snapshot = copy.copy(rec) if self._snapshots else rec
        followers = self._end_followers(rec)
        if rec.status in (DONE, FAILED):
            if self._outer.tallies:  # a nested Pool: count this item in the enclosing item
                self._outer.record(rec.usage, rec.attempts, rec.wait_seconds)
            if self._reason is None and self._guards.over_budget(self.book.run_spent):
                self._reason = "budget"
            tripped = self._guards.observe(rec.status == DONE, rec.error)
            if tripped is not None and self._reason is None:
                self._reason = "systemic"
        if self.s.on_item_done is not None:
            self.s.on_item_done(snapshot)
        if policy and rec.status == FAILED:
            self._on_failure(rec)
        return [snapshot, *(shot for ended in followers for shot in self._settle(ended))]

    def _end_followers(self, leader: ItemRecord) -> list[ItemRecord]:
        """End the items that wait for ``leader``'s identical request as it ended, once it
        has ended DONE or FAILED."""
        if leader.status not in (DONE, FAILED):
            return []
        followers = self._sharing.followers(leader.index)
        for rec in followers:
            self.book.end(rec, leader.status, output=leader.output, error=leader.error,
                          traceback=leader.traceback, shared=True,
                          duration=0.0 if rec.start is None else time.time() - rec.start)
        return followers

    def _on_failure(self, rec: ItemRecord) -> None:
        on_error = self.s.on_error
        if on_error == "skip":
            warnings.warn(f"Pool item {rec.index} failed and was skipped: {rec.error_type}: "
                          f"{rec.error_message}", RuntimeWarning, stacklevel=user_stacklevel())
        elif on_error == "stop" and self._reason is None:
            self._reason = "stop"
        elif on_error == "raise":
            self._abort_reason = "raise"
            raise rec.error  # type: ignore[misc]

    # -- scheduling policy: what starts next, and when --------------------------------

    def _may_start(self) -> bool:
        """Start more while nothing stops the run (guards, cache warm-up) and a flow is free."""
        if self._reason is None:
            self._reason = self._guards.stop_reason()
        in_flight = self._flows.in_flight(len(self._live), len(self._stray))
        return (self._reason is None and not self._exhausted
                and in_flight < self._flow_limit()
                and self._sharing.may_start(len(self._live))
                and not (in_flight and self._guards.doubtful))

    def _flow_limit(self) -> int:
        """``max_flows``, or what the "auto" controller decided (told how many are in
        flight now: only a limit in use is evidence that it may grow)."""
        if self.controller is None:
            return self.s.flow_bound
        self.controller.saw_in_flight(len(self._live))
        return self.controller.limit

    def _budget(self) -> float | None:
        """Seconds the next item may take: its timeout, within what is left of the run."""
        left = self._scope.remaining()
        limits = (self.s.timeout, None if left is None else max(0.001, left))
        return min((limit for limit in limits if limit is not None), default=None)

    def _fill(self) -> list[ItemRecord]:
        """Hand items to free flows; return those that ended without running (not a dict,
        DONE from the checkpoint, refused by the executor)."""
        ended = []
        while self._may_start():
            pulled = next(self._plan, None)  # input order, pulled only now
            if pulled is None:
                self._exhausted = True
                break
            index, item = pulled
            rec = self.book.get_or_add(index, item)
            if not isinstance(item, dict):
                self.book.end_now(rec, FAILED, error=item_type_error(index, item))
                ended.append(rec)
                if self.s.on_error in ("stop", "raise"):
                    break  # let the policy act before anything else starts
                continue
            rec.variables = self._shared.merge(item)
            if not self._checked:  # a Chain is walked against the first item before it runs
                self._checked = True
                check_chain_items(self.s.runner, [rec.variables], None, first=index)
            if self._journal is not None and self._journal.restore(self.book, rec):
                ended.append(rec)
            elif (leader := self._sharing.follows(rec)) is not None:
                self.book.start(rec)  # waits for the item sending the same, unless it ended
                ended += self._end_followers(self.book.get(leader))
            elif not self._start(rec):
                ended.append(rec)
        return ended

    def _start(self, rec: ItemRecord) -> bool:
        """Mark ``rec`` RUNNING and submit it; False when the submission itself failed."""
        flow = Flow(rec)
        flow.tally.budget = self._guards.budget  # every model call in the item reserves here
        self.book.start(rec, flows=self._flow_limit())
        try:
            future = self._flows.submit(rec.variables, self._budget(), self._cancel, flow.tally)
        except Exception as exc:  # noqa: BLE001 - a shut-down or broken executor; Ctrl-C
            # here is the caller's own and must reach it
            self.book.end(rec, FAILED, error=exc, traceback=traceback.format_exc(),
                          duration=time.monotonic() - flow.t0)
            return False
        self._live[future] = flow
        future.add_done_callback(self._done.put)
        return True

    # -- outcomes and time limits ---------------------------------------------------

    def _wait_time(self) -> float:
        deadline = self._scope.deadline
        if deadline is None:
            return TICK
        now = time.monotonic()
        target = deadline if now < deadline else deadline + ITEM_TIMEOUT_GRACE
        return min(TICK, max(0.0, target - now))

    def _collect(self, timeout: float) -> list[ItemRecord]:
        ended: list[ItemRecord] = []
        try:
            future = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
            while True:
                rec = self._apply(future)
                if rec is not None:
                    ended.append(rec)
                future = self._done.get_nowait()
        except queue.Empty:
            return ended

    def _apply(self, future: Future[Any]) -> ItemRecord | None:
        """Apply a finished task to its record; None if nobody awaits it or it never started."""
        self._stray.discard(future)
        flow = self._live.pop(future, None)
        outcome = self._result(future)
        if flow is None or outcome is None:
            return None
        rec = flow.record
        if isinstance(outcome, BaseException):  # the task broke: pickling, a killed worker
            tb = "".join(traceback.format_exception(outcome))
            outcome = Outcome(None, outcome, tb, rec.usage, 0, 0, 0.0, rec.start,
                              time.time(), time.monotonic() - flow.t0)
        self.book.finish(rec, outcome)
        return rec

    def _check_time(self, now: float) -> Iterator[ItemRecord]:
        if self.s.timeout is not None and now >= self._next_scan:
            self._next_scan = now + _SCAN_INTERVAL
            for rec in self._expire(now):
                yield from self._settle(rec)
        deadline = self._scope.deadline
        if deadline is not None and now >= deadline:
            self._reason = "deadline"
            if now >= deadline + ITEM_TIMEOUT_GRACE:
                self._cancel.set()  # nothing handed over may start any more
                for rec in self._expire(now, deadline=True):
                    yield from self._settle(rec, policy=False)

    def _expire(self, now: float, deadline: bool = False) -> list[ItemRecord]:
        """Give up on items past their timeout (or on all of them at the deadline)."""
        ended = []
        limit = (self.s.deadline if deadline else self.s.timeout) or 0.0  # set, to get here
        for future, flow in list(self._live.items()):
            if future.done() or (not deadline and now - flow.t0 <= limit + ITEM_TIMEOUT_GRACE):
                continue  # in time, or finished meanwhile: its outcome is on the queue
            index = flow.record.index
            what = (f"was still running when the run's deadline of {limit} s was spent"
                    if deadline else f"did not finish within its timeout of {limit} s")
            err = ItemTimeoutError(f"Pool item {index} {what}", index=index, timeout=limit)
            why = self._guards.cancelled("deadline") if deadline else None
            ended.append(self._give_up(future, flow, FAILED, err, not_started=why))
        return ended

    def _give_up(self, future: Future[Any], flow: Flow, status: Status, error: BaseException,
                 not_started: BaseException | None = None) -> ItemRecord:
        """End a live item without waiting for it. One that runs keeps what it has spent so
        far; a task cancelled before it started ends with ``not_started`` when given."""
        del self._live[future]
        if not self._flows.withdraw(future):
            self._stray.add(future)
        elif not_started is not None:
            status, error = CANCELLED, not_started
        tally = flow.tally
        self.book.end(flow.record, status, error=error, usage=tally.usage,
                      attempts=tally.requests, reasks=tally.reasks, wait_seconds=tally.wait_seconds,
                      duration=time.monotonic() - flow.t0)
        return flow.record

    def _result(self, future: Future[Any]) -> Outcome | BaseException | None:
        """A finished task's Outcome (its usage charged: spent is spent, even too late), None
        (it never started) or the exception that broke the task itself."""
        try:
            outcome: Outcome | None = future.result(timeout=0)
        except FutureCancelled:
            return CancelledError("the executor cancelled this item", reason="cancelled")
        except BaseException as exc:  # noqa: BLE001 - the task itself broke; the item keeps it
            return exc
        if outcome is not None:
            self.book.charge(outcome.usage)
        return outcome
