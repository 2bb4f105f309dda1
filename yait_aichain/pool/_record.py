"""One record per item, and the lock-guarded book that holds them.

Workers and the calling thread change records only through :class:`RecordBook`, under its
lock, so ``pool.status`` can be read from any thread and the counts always add up. Every
change checks the record's ticket: a ticket is issued each time an item is handed to a
worker, so a late result from an abandoned (timed-out) or cancelled attempt can never
overwrite what a newer attempt, or the pool itself, decided.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .._context import Tally
from .._usage import Usage
from ._status import (
    CANCELLED,
    DONE,
    FAILED,
    FINAL,
    PENDING,
    RUNNING,
    STATUS_NAMES,
    Status,
    empty_counts,
)

# Tickets are unique across runs and pools, so no stale worker can ever match.
_tickets = itertools.count(1)
_NO_USAGE = Usage()  # immutable, so every record may share it


@dataclass(eq=False)
class ItemRecord:
    """What happened to one item.

    Attributes:
        index: position of the item in the input.
        variables: the merged dict the runner received (the raw item until it starts).
        status: PENDING, RUNNING, DONE, FAILED or CANCELLED.
        output: the runner's return value (None unless DONE).
        error: the exception object (any BaseException) for FAILED and CANCELLED items.
        traceback: the formatted traceback of ``error``, when it came from the runner.
        attempts: HTTP requests the item sent (retries and re-asks included).
        reasks: times a Skill asked again because an answer did not match its schema.
        start, end: wall-clock times (``time.time()``); duration: monotonic seconds.
        usage: tokens and cost the item used; wait_seconds: time spent in retry waits
            and rate-limit waits.
        from_checkpoint: True when the output was read from the Pool's checkpoint file
            instead of being computed (nothing was sent; attempts and usage are 0).
    """

    index: int
    variables: dict[str, Any]
    status: Status = PENDING
    output: Any = None
    error: BaseException | None = None
    traceback: str | None = None
    attempts: int = 0
    reasks: int = 0
    start: float | None = None
    end: float | None = None
    duration: float | None = None
    usage: Usage = _NO_USAGE
    wait_seconds: float = 0.0
    from_checkpoint: bool = False
    _ticket: int = field(default=0, repr=False)
    _t0: float | None = field(default=None, repr=False)  # monotonic start of this attempt
    _tally: Tally | None = field(default=None, repr=False)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES[self.status]

    @property
    def error_type(self) -> str | None:
        """The error's class name (``"RateLimitError"``), or None."""
        return None if self.error is None else type(self.error).__name__

    @property
    def error_message(self) -> str | None:
        return None if self.error is None else str(self.error)

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dict (the keys of ``pool.history``)."""
        return {
            "index": self.index,
            "variables": self.variables,
            "status": self.status,  # a Status: equals its int, prints its name
            "status_name": self.status_name,
            "output": self.output,
            "error": self.error_message,
            "duration": None if self.duration is None else round(self.duration, 3),
            "error_type": self.error_type,
            "traceback": self.traceback,
            "attempts": self.attempts,
            "reasks": self.reasks,
            "start": self.start,
            "end": self.end,
            "usage": self.usage.as_dict(),
            "wait_seconds": self.wait_seconds,
            "from_checkpoint": self.from_checkpoint,
        }

    def __repr__(self) -> str:
        # Variables and output can be large (whole documents); keep the repr one line.
        parts = [f"index={self.index}", f"status={self.status_name}"]
        if self.duration is not None:
            parts.append(f"duration={self.duration:.3f}")
        if self.error is not None:
            parts.append(f"error={self.error_type}({self.error_message!r})")
        return f"ItemRecord({', '.join(parts)})"


class RecordBook:
    """The records of one Pool, their status counts and the money spent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._records: list[ItemRecord] = []
        self._counts = empty_counts()
        self.spent = Usage()  # everything spent since the last fresh run, failures included
        self.run_spent = Usage()  # the same, for the current run() or retry_failed() call only

    # -- reading (any thread) ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def counts(self) -> dict[Status, int]:
        with self.lock:
            return dict(self._counts)

    def snapshots(self) -> list[ItemRecord]:
        with self.lock:
            return [copy.copy(rec) for rec in self._records]

    def outputs(self) -> list[Any]:
        with self.lock:
            return [rec.output if rec.status == DONE else None for rec in self._records]

    def indices(self, statuses: frozenset[int]) -> list[int]:
        with self.lock:
            return [rec.index for rec in self._records if rec.status in statuses]

    def get(self, index: int) -> ItemRecord:
        return self._records[index]

    # -- run set-up (calling thread, no run in progress) ------------------------------

    def reset_all(self, items: list[Any]) -> None:
        """Fresh run: one PENDING record per known item; usage totals start again."""
        with self.lock:
            self._records = [
                ItemRecord(i, item, _ticket=next(_tickets)) for i, item in enumerate(items)
            ]
            self._counts = empty_counts()
            self._counts[PENDING] = len(self._records)
            self.spent = Usage()
            self.run_spent = Usage()

    def reset_some(self, indices: list[int], items: list[Any]) -> None:
        """Retry: put the given records back to PENDING, in place."""
        with self.lock:
            for i in indices:
                rec = self._records[i]
                self._counts[rec.status] -= 1
                self._counts[PENDING] += 1
                rec.variables = items[i]
                rec.status, rec.output, rec.error, rec.traceback = PENDING, None, None, None
                rec.attempts, rec.usage, rec.wait_seconds = 0, _NO_USAGE, 0.0
                rec.from_checkpoint = False
                rec.start = rec.end = rec.duration = rec._t0 = None
                rec._tally = None
                rec._ticket = next(_tickets)
            self.run_spent = Usage()

    def add(self, index: int, item: Any) -> ItemRecord:
        """A new item pulled from a lazy iterable."""
        with self.lock:
            assert index == len(self._records), "lazy items arrive in order"
            rec = ItemRecord(index, item, _ticket=next(_tickets))
            self._records.append(rec)
            self._counts[PENDING] += 1
            return rec

    def recount(self) -> None:
        """Rebuild the counts from the records (after an interrupt that may have landed
        between two updates)."""
        with self.lock:
            counts = empty_counts()
            for rec in self._records:
                counts[rec.status] += 1
            self._counts = counts

    # -- transitions ----------------------------------------------------------------

    def _move(self, rec: ItemRecord, status: Status) -> None:
        self._counts[rec.status] -= 1
        self._counts[status] += 1
        rec.status = status

    def begin(self, rec: ItemRecord, ticket: int, tally: Tally, cancel: threading.Event) -> bool:
        """Worker: mark the item RUNNING, unless its attempt was withdrawn meanwhile."""
        with self.lock:
            if rec._ticket != ticket or rec.status != PENDING or cancel.is_set():
                return False
            rec.start, rec._t0, rec._tally = time.time(), time.monotonic(), tally
            self._move(rec, RUNNING)
            return True

    def finish(
        self, rec: ItemRecord, ticket: int, output: Any, error: BaseException | None,
        tb: str | None, tally: Tally,
    ) -> bool:
        """Worker: store the outcome. Returns False when the result came too late (the
        pool already timed out or cancelled this attempt) and was discarded."""
        now, mono = time.time(), time.monotonic()
        with self.lock:
            if tally.usage or tally.usage.cost:
                # Spent is spent, even when the result itself is discarded.
                self.spent = self.spent + tally.usage
                self.run_spent = self.run_spent + tally.usage
            if rec._ticket != ticket or rec.status != RUNNING:
                return False
            self._fill(rec, now, mono, tally)
            rec.output = output if error is None else None
            rec.error, rec.traceback = error, tb
            self._move(rec, DONE if error is None else FAILED)
            return True

    def abandon(
        self, rec: ItemRecord, ticket: int, error: BaseException,
        not_started: BaseException | None = None,
    ) -> bool:
        """Calling thread: give up on an attempt. A running one ends FAILED with ``error``;
        one not started yet ends CANCELLED with ``not_started`` when that is given.
        Returns False when the attempt had already ended (or was not started and
        ``not_started`` is None)."""
        now, mono = time.time(), time.monotonic()
        with self.lock:
            if rec._ticket != ticket:
                return False
            if rec.status == PENDING and not_started is not None:
                rec.error = not_started
                self._move(rec, CANCELLED)
                return True
            if rec.status != RUNNING:
                return False
            self._fill(rec, now, mono, rec._tally)
            rec.error = error
            self._move(rec, FAILED)
            return True

    def restore(self, rec: ItemRecord, output: Any) -> None:
        """Calling thread: an item whose result a checkpoint already holds ends DONE
        without running."""
        with self.lock:
            rec.start = rec.end = time.time()
            rec.duration, rec.output, rec.from_checkpoint = 0.0, output, True
            self._move(rec, DONE)

    def fail_now(self, rec: ItemRecord, error: BaseException) -> None:
        """Calling thread: an item that cannot even start (not a dict)."""
        with self.lock:
            rec.start = rec.end = time.time()
            rec.duration, rec.error = 0.0, error
            self._move(rec, FAILED)

    def cancel_unfinished(self, make_error: Any) -> list[ItemRecord]:
        """Mark every PENDING or RUNNING record CANCELLED; return them in input order."""
        now, mono = time.time(), time.monotonic()
        cancelled = []
        with self.lock:
            for rec in self._records:
                if rec.status in FINAL:
                    continue
                if rec.status == RUNNING:
                    self._fill(rec, now, mono, rec._tally)
                rec.error = make_error()
                self._move(rec, CANCELLED)
                cancelled.append(rec)
        return cancelled

    @staticmethod
    def _fill(rec: ItemRecord, now: float, mono: float, tally: Tally | None) -> None:
        rec.end = now
        if rec._t0 is not None:
            rec.duration = mono - rec._t0
        if tally is not None:
            rec.usage, rec.attempts, rec.reasks = tally.usage, tally.requests, tally.reasks
            rec.wait_seconds = tally.wait_seconds
        rec._tally = None  # the hung thread may keep writing to it; stop looking
