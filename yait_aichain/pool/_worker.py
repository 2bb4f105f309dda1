"""What runs in a worker thread: one attempt at one item."""

from __future__ import annotations

import contextlib
import threading
import traceback
from typing import Any

from .. import _context
from .._runner import call_runner
from ._record import ItemRecord, RecordBook


class Job:
    """One attempt: the item's record, the ticket it was issued and what the runner gets."""

    # A plain slotted class: one is built per item, and a frozen dataclass costs more.
    __slots__ = ("book", "record", "ticket", "runner", "variables", "timeout", "deadline", "cancel",
                 "worker_context")

    def __init__(
        self, book: RecordBook, record: ItemRecord, ticket: int, runner: Any,
        variables: dict[str, Any], timeout: float | None, deadline: float | None,
        cancel: threading.Event, worker_context: Any = None,
    ):
        self.book, self.record, self.ticket, self.runner = book, record, ticket, runner
        self.variables, self.timeout, self.cancel = variables, timeout, cancel
        self.deadline = deadline  # monotonic end of the whole run, or None
        self.worker_context = worker_context  # callable returning a context manager, or None


def run_job(job: Job) -> bool:
    """Run one attempt and store its outcome in the book.

    Never raises: every outcome, even a BaseException such as SystemExit or a
    KeyboardInterrupt raised inside the runner, ends the item FAILED rather than RUNNING.

    Returns:
        True when the outcome was recorded; False when the attempt was withdrawn before it
        started or its result arrived after the pool had given up on it.
    """
    tally = _context.Tally()
    if not job.book.begin(job.record, job.ticket, tally, job.cancel):
        return False
    output: Any = None
    error: BaseException | None = None
    tb: str | None = None
    try:
        # The scope carries the item's time budget and the run's cancel event down to every
        # HTTP call and retry sleep, and collects this item's usage in its own tally.
        # worker_context wraps each item, not each thread: a thread pool has no finalizer,
        # and per-thread resources (Django's DB connections) must not outlive the item.
        with _context.scope(
            timeout=job.timeout, deadline=job.deadline, cancel=job.cancel, tally=tally
        ), (job.worker_context or contextlib.nullcontext)():
            output = call_runner(job.runner, job.variables)
    except BaseException as exc:  # noqa: BLE001 - a worker must never leave an item RUNNING
        error = exc
        tb = traceback.format_exc()
    return job.book.finish(job.record, job.ticket, output, error, tb, tally)
