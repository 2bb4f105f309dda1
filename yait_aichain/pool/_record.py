"""One record per item, and the lock-guarded book that holds them.

Only the run's calling thread changes records, through :class:`RecordBook` and under its
lock, so ``pool.status`` can be read from any thread and the counts always add up. Records
are plain snapshots: what an item in flight needs lives in the scheduler (``pool._run``).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from .._usage import Usage
from ..errors import CancelledError
from ._status import (CANCELLED, DONE, FAILED, FINAL, PENDING, RUNNING, STATUS_NAMES, Status,
                      empty_counts)

_NO_USAGE = Usage()  # immutable, so every record may share it


class Outcome(NamedTuple):
    """What one item produced, named like the record's fields; small and picklable (it comes
    back from workers in other processes)."""

    output: Any
    error: BaseException | None
    traceback: str | None
    usage: Usage
    attempts: int
    reasks: int
    wait_seconds: float
    start: float | None
    end: float
    duration: float


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
        usage: tokens and cost the item used; wait_seconds: time in retry and rate-limit
            waits.
        from_checkpoint: the output was read from the checkpoint (nothing sent).
        shared: another item sent the byte-equal request; this one shares its answer
            (nothing sent).
        flows: the flow limit when the item started (None: never started).
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
    shared: bool = False
    flows: int | None = None

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
        data = {"index": self.index, "variables": self.variables,
                "status": self.status,  # a Status: equals its int, prints its name
                "status_name": self.status_name, "output": self.output, "error": self.error_message,
                "duration": None if self.duration is None else round(self.duration, 3),
                "error_type": self.error_type}
        data.update((f.name, getattr(self, f.name)) for f in fields(self) if f.name not in data)
        data["usage"] = self.usage.as_dict()
        return data

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

    def __init__(self, items: list[Any] | None = None) -> None:
        self.lock = threading.RLock()  # re-entrant: the resets recount while holding it
        self.reset_all(items or [])

    # -- reading (any thread) ---------------------------------------------------------

    def counts(self) -> dict[Status, int]:
        with self.lock:
            return dict(self._counts)

    def snapshots(self) -> list[ItemRecord]:
        with self.lock:
            return [copy.copy(rec) for rec in self._records]

    def outputs(self) -> list[Any]:
        with self.lock:
            return [rec.output if rec.status == DONE else None for rec in self._records]

    def get(self, index: int) -> ItemRecord:
        return self._records[index]

    # -- run set-up (calling thread, no run in progress) ------------------------------

    def reset_all(self, items: list[Any]) -> None:
        """Fresh run: one PENDING record per known item; usage totals start again."""
        with self.lock:
            self._records = [ItemRecord(i, item) for i, item in enumerate(items)]
            self.recount()
            self.spent = Usage()  # everything spent since the last fresh run, failures included
            self.run_spent = Usage()  # the same, for the current run() or retry_failed() only

    def reset_unfinished(self, items: list[Any]) -> list[int]:
        """Retry: put the records not DONE back to PENDING, in place; returns their indices."""
        with self.lock:
            indices = [rec.index for rec in self._records if rec.status != DONE]
            for i in indices:
                self._records[i] = ItemRecord(i, items[i])
            self.recount()
            self.run_spent = Usage()
        return indices

    def get_or_add(self, index: int, item: Any) -> ItemRecord:
        with self.lock:
            if index < len(self._records):
                return self._records[index]
            assert index == len(self._records), "lazy items arrive in order"
            rec = ItemRecord(index, item)
            self._records.append(rec)
            self._counts[PENDING] += 1
            return rec

    def recount(self) -> None:
        """Rebuild the counts (after an interrupt that may have landed between two updates)."""
        with self.lock:
            self._counts = {**empty_counts(), **Counter(rec.status for rec in self._records)}

    # -- transitions (the calling thread only) -----------------------------------------

    def _move(self, rec: ItemRecord, status: Status) -> None:
        self._counts[rec.status] -= 1
        self._counts[status] += 1
        rec.status = status

    def charge(self, usage: Usage) -> None:
        """Count what an attempt spent, also one whose result is discarded: spent is spent."""
        if usage or usage.cost:
            with self.lock:
                self.spent = self.spent + usage
                self.run_spent = self.run_spent + usage

    def start(self, rec: ItemRecord, flows: int | None = None) -> None:
        with self.lock:
            rec.start, rec.flows = time.time(), flows
            self._move(rec, RUNNING)

    def end(self, rec: ItemRecord, status: Status, **facts: Any) -> None:
        with self.lock:
            if rec.end is None and "end" not in facts:
                rec.end = time.time()
            for name, value in facts.items():
                setattr(rec, name, value)
            self._move(rec, status)

    def end_now(self, rec: ItemRecord, status: Status, **facts: Any) -> None:
        """End ``rec`` without running it (it takes no time)."""
        now = time.time()
        self.end(rec, status, start=now, end=now, duration=0.0, **facts)

    def finish(self, rec: ItemRecord, outcome: Outcome) -> None:
        """End ``rec`` with an :class:`Outcome`, on the worker's clock: DONE, or FAILED with
        its error, except that a CancelledError (a call the budget refused, a cancel)
        stopped the item rather than failed it."""
        stopped = isinstance(outcome.error, CancelledError)
        status = DONE if outcome.error is None else CANCELLED if stopped else FAILED
        self.end(rec, status, **outcome._asdict())

    def cancel_unfinished(self, make_error: Callable[[], BaseException]) -> list[ItemRecord]:
        """Mark every PENDING or RUNNING record CANCELLED; return them in input order."""
        now = time.time()
        with self.lock:
            cancelled = [rec for rec in self._records if rec.status not in FINAL]
            for rec in cancelled:
                if rec.status == RUNNING:
                    rec.end, rec.duration = now, None if rec.start is None else now - rec.start
                rec.error = make_error()
                self._move(rec, CANCELLED)
        return cancelled
