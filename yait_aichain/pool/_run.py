"""The scheduler behind Pool.run(), iter_run() and retry_failed().

One :class:`Run` per call. It lives in the calling thread and never blocks it for long:

- it hands an item to a worker only when a flow is free, so at most ``max_flows`` items
  are in flight and a lazy iterable is pulled no further ahead than that (CPython's
  ``Executor.map`` would read every item first, bpo-32306);
- it waits on a queue fed by the futures' done-callbacks in short ticks, so Ctrl-C, item
  timeouts and the run's deadline are acted on within ~0.1 s;
- it never uses ``with ThreadPoolExecutor()``: leaving that block waits for every queued
  item, which is how the public project made "raise" and Ctrl-C wait for the whole batch.
  Executors are shut down with ``wait=False, cancel_futures=True`` instead.

Workers write outcomes straight into the :class:`RecordBook`, so ``pool.status`` is live;
the Run only reports finished records (callback, on_error policy, budget, progress).
"""

from __future__ import annotations

import copy
import queue
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .. import _context
from ..errors import CancelledError, ItemTimeoutError
from ._config import Settings
from ._items import SharedVariables, item_type_error
from ._progress import ProgressLine
from ._record import ItemRecord, RecordBook
from ._remote import RemoteFlows
from ._status import CANCELLED, DONE, FAILED
from ._worker import Job, run_job

TICK = 0.1  # longest the calling thread blocks at a time (Ctrl-C latency)
# A cooperative runner stops at its own time budget; the pool gives it this much longer to
# report before it declares the item timed out itself.
ITEM_TIMEOUT_GRACE = 0.2
_SCAN_INTERVAL = 0.05

_WHY = {
    "stop": "not started: an earlier item failed and on_error='stop'",
    "deadline": "not finished: the run's deadline was spent",
    "budget": "not started: the run's budget (max_cost / max_tokens) was spent",
    "raise": "cancelled: an item failed and on_error='raise'",
    "interrupt": "cancelled: the run was interrupted (Ctrl-C, or an error in the caller)",
    "cancelled": "cancelled: the enclosing run was cancelled",
}


def _stacklevel() -> int:
    """The stacklevel that points a warning at the first frame outside this package."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__package__):
        frame, level = frame.f_back, level + 1
    return level


class Run:
    """One pass over a plan of items; iterate :meth:`events` to drive it."""

    def __init__(
        self,
        settings: Settings,
        book: RecordBook,
        plan: Iterator[tuple[int, Any]],
        shared: SharedVariables,
        total: Callable[[], int | None],
        snapshots: bool = True,
    ):
        self.s = settings
        self.book = book
        self._plan = plan
        self._shared = shared
        self._total = total
        self._snapshots = snapshots or settings.on_item_done is not None
        self._cancel = threading.Event()
        self._done: queue.SimpleQueue[Future[bool]] = queue.SimpleQueue()
        self._live: dict[Future[bool], tuple[ItemRecord, int]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._executors: list[ThreadPoolExecutor] = []
        self._reason: str | None = None  # why nothing new starts: stop, deadline, budget
        self._abort_reason = "interrupt"
        self._exhausted = False
        self._deadline: float | None = None
        self._cost_warned = False
        self._journal: Any = None  # the checkpoint file of this run, when there is one
        # A caller-owned executor: the runner is pickled once and items travel as tasks.
        self._remote = (
            None if settings.executor is None else
            RemoteFlows(settings.executor, settings.runner, settings.worker_context,
                        settings.max_flows)
        )

    # -- the loop (calling thread) ----------------------------------------------------

    def events(self) -> Iterator[ItemRecord]:
        """Yield a snapshot of each item's record as it ends, in completion order.

        Raises:
            The first failure under on_error="raise"; KeyboardInterrupt or any other
            exception raised in the calling thread (also by on_item_done), after every
            unfinished item was marked CANCELLED; CancelledError when an enclosing run
            was cancelled.
        """
        s = self.s
        outer = _context.current()
        if s.deadline is not None:
            self._deadline = time.monotonic() + s.deadline
        if outer.deadline is not None:  # a Pool nested in another Pool's item
            mine = self._deadline
            self._deadline = outer.deadline if mine is None else min(mine, outer.deadline)
        if s.checkpoint is not None:
            self._journal = s.checkpoint.open(s.runner)
        progress = None
        if s.progress is not None:
            counts = self.book.counts()
            ended = counts[DONE] + counts[FAILED] + counts[CANCELLED]
            progress = ProgressLine(s.progress, s.label, already=ended)
        next_scan = 0.0
        try:
            while True:
                for rec in self._fill():
                    yield self._settle(rec, outer)
                if not self._live and (self._reason is not None or self._exhausted):
                    break
                for rec in self._collect(self._wait_time()):
                    yield self._settle(rec, outer)
                now = time.monotonic()
                if s.timeout is not None and now >= next_scan:
                    next_scan = now + _SCAN_INTERVAL
                    for rec in self._expire(now):
                        yield self._settle(rec, outer)
                if self._deadline is not None and now >= self._deadline:
                    self._reason = "deadline"
                    if now >= self._deadline + ITEM_TIMEOUT_GRACE:
                        for rec in self._expire(now, deadline=True):
                            yield self._settle(rec, outer, policy=False)
                if outer.cancels and outer.cancelled():
                    self._abort_reason = "cancelled"
                    raise CancelledError("the enclosing run was cancelled", reason="cancelled")
                if progress is not None:
                    progress.update(self.book.counts(), self._total(), self.book.run_spent,
                                    waiting=self._waiting())
            why = self._reason or "stop"
            leftovers = self.book.cancel_unfinished(lambda: CancelledError(_WHY[why], reason=why))
            for rec in leftovers:
                yield self._settle(rec, outer, policy=False)
        except BaseException:
            # Wake sleeping retries, drop queued work, and settle every record before the
            # exception reaches the caller; running threads are left to finish on their own.
            self._cancel.set()
            self._shutdown()
            why = self._abort_reason
            self.book.cancel_unfinished(lambda: CancelledError(_WHY[why], reason=why))
            raise
        finally:
            self._shutdown()
            self.book.recount()  # an interrupt may have landed between two count updates
            if self._journal is not None:
                self._journal.close(self.book)  # also keeps what ended but was not reported
            if progress is not None:
                progress.close(self.book.counts(), self._total(), self.book.run_spent)

    def _settle(self, rec: ItemRecord, outer: _context.Scope, policy: bool = True) -> ItemRecord:
        """Report one ended record in the calling thread; return its snapshot (the record
        itself when nobody looks at it: run() ignores what it is yielded)."""
        s = self.s
        if self._journal is not None:  # first: a callback that raises must not lose it
            self._journal.record(rec)
        snapshot = copy.copy(rec) if self._snapshots else rec
        if rec.status in (DONE, FAILED):
            if outer.tallies:  # a nested Pool: count this item in the enclosing item
                outer.record(rec.usage, rec.attempts, rec.wait_seconds)
            if self._reason is None and self._over_budget():
                self._reason = "budget"
        if s.on_item_done is not None:
            s.on_item_done(snapshot)
        if policy and rec.status == FAILED:
            if s.on_error == "skip":
                warnings.warn(
                    f"Pool item {rec.index} failed and was skipped: "
                    f"{rec.error_type}: {rec.error_message}",
                    RuntimeWarning,
                    stacklevel=_stacklevel(),
                )
            elif s.on_error == "stop" and self._reason is None:
                self._reason = "stop"
            elif s.on_error == "raise":
                self._abort_reason = "raise"
                raise rec.error  # type: ignore[misc]
        return snapshot

    def _over_budget(self) -> bool:
        s, spent = self.s, self.book.run_spent
        if s.max_tokens is not None and spent.total_tokens >= s.max_tokens:
            return True
        if s.max_cost is None:
            return False
        if spent.cost is None:
            if spent.total_tokens and not self._cost_warned:
                self._cost_warned = True
                warnings.warn(
                    "max_cost is set but the runner reports tokens without a cost (unknown "
                    "price), so the cost budget cannot be enforced; set max_tokens as well",
                    RuntimeWarning,
                    stacklevel=_stacklevel(),
                )
            return False
        return spent.cost >= s.max_cost

    # -- scheduling -----------------------------------------------------------------

    def _fill(self) -> list[ItemRecord]:
        """Hand items to free flows; return the items that ended without starting (not a
        dict, or DONE from the checkpoint)."""
        s, failed = self.s, []
        while self._reason is None and not self._exhausted and self._in_flight() < s.max_flows:
            try:
                index, item = next(self._plan)
            except StopIteration:
                self._exhausted = True
                break
            rec = self.book.get(index) if index < len(self.book) else self.book.add(index, item)
            if not isinstance(item, dict):
                self.book.fail_now(rec, item_type_error(index, item))
                failed.append(rec)
                if s.on_error in ("stop", "raise"):
                    break  # let the policy act before anything else starts
                continue
            rec.variables = merged = self._shared.merge(item)
            if self._journal is not None and self._journal.restore(self.book, rec):
                failed.append(rec)  # ended DONE from the checkpoint, nothing to run
                continue
            job = Job(
                self.book, rec, rec._ticket, s.runner, merged, s.timeout, self._deadline,
                self._cancel, s.worker_context,
            )
            future = self._submit(job)
            self._live[future] = (rec, job.ticket)
            future.add_done_callback(self._done.put)
        return failed

    def _waiting(self) -> int:
        """How many running items wait for a rate limit right now (for progress)."""
        count = 0
        for rec, _ in self._live.values():
            tally = rec._tally
            if tally is not None and tally.waiting > 0:
                count += 1
        return count

    def _wait_time(self) -> float:
        wait = TICK
        if self._deadline is not None:
            now = time.monotonic()
            target = self._deadline if now < self._deadline else self._deadline + ITEM_TIMEOUT_GRACE
            wait = min(wait, max(0.0, target - now))
        return wait

    def _collect(self, timeout: float) -> list[ItemRecord]:
        """Wait up to ``timeout`` for finished items; return the newly ended records."""
        ended: list[ItemRecord] = []
        try:
            future = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
        except queue.Empty:
            return ended
        while True:
            entry = self._live.pop(future, None)
            if entry is not None:
                rec, ticket = entry
                try:
                    recorded = future.result()
                except BaseException as exc:  # noqa: BLE001 - run_job itself broke; keep the item
                    recorded = self.book.abandon(rec, ticket, exc)
                if recorded:
                    ended.append(rec)
            try:
                future = self._done.get_nowait()
            except queue.Empty:
                return ended

    def _expire(self, now: float, deadline: bool = False) -> list[ItemRecord]:
        """Give up on running items past their budget (or on all of them at the deadline)."""
        s, ended = self.s, []
        for future, (rec, ticket) in list(self._live.items()):
            t0 = rec._t0
            if t0 is None and not deadline:
                continue  # handed over but not started yet
            if not deadline and now - t0 <= s.timeout + ITEM_TIMEOUT_GRACE:  # type: ignore
                continue
            if deadline:
                self._cancel.set()  # nothing handed over may start any more
                err = ItemTimeoutError(
                    f"Pool item {rec.index} was still running when the run's deadline of "
                    f"{s.deadline} s was spent", index=rec.index, timeout=s.deadline,
                )
            else:
                err = ItemTimeoutError(
                    f"Pool item {rec.index} did not finish within its timeout of {s.timeout} s",
                    index=rec.index, timeout=s.timeout,
                )
            why = CancelledError(_WHY["deadline"], reason="deadline")
            # An item that finished meanwhile stays live: its completion is on the queue.
            if self.book.abandon(rec, ticket, err, not_started=why):
                del self._live[future]
                ended.append(rec)
                if t0 is not None:
                    self._retire(future)
        return ended

    # -- executors ------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.s.max_flows, thread_name_prefix="yait-pool"
            )
            self._executors.append(self._executor)
        return self._executor

    def _submit(self, job: Job) -> Future[bool]:
        if self._remote is not None:
            return self._remote.submit(job)
        return self._pool().submit(run_job, job)

    def _in_flight(self) -> int:
        # On a foreign executor an abandoned task still holds its slot until it returns,
        # so max_flows caps what the executor holds, not just what the run still awaits.
        return len(self._live) if self._remote is None else self._remote.outstanding

    def _retire(self, future: Future[bool]) -> None:
        if self._remote is not None:
            self._remote.withdraw(future)  # never shut down an executor we do not own
            return
        # A thread cannot be killed: a timed-out item keeps its worker busy. New work goes
        # to a fresh executor so the run keeps max_flows real flows; the old one lets its
        # remaining items finish and then exits.
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def _shutdown(self) -> None:
        if self._remote is not None:
            self._remote.cancel_all()
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()
        self._executor = None
