"""Pool(mode="batch"): the items' model calls go through the providers' Batch APIs.

A Skill runner is one batch step; a Chain runs step by step, every Skill step one batch
across the items still going, its tools and callables locally in between. The records end
as in a live run (usage at batch prices, in input order); with ``checkpoint=`` the batch
ids are saved beside it (``<checkpoint>.batches``), so a restarted run re-attaches.
"""

from __future__ import annotations

import copy
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .._checks import NUMBER, checked
from .._runner import runner_name
from .._usage import Usage
from ..batch import BatchJob, BatchRequest, BatchResult, Journal
from ..batch._job import describe
from ..batch._providers import BACKENDS
from ..chain._chain import Chain, keep_output, run_step, step_failure
from ..chain._steps import Step, aliased
from ..errors import (AichainError, CancelledError, ConfigurationError, OutputValidationError,
                      TemplateError)
from ..skills._skill import Skill
from ._checkpoint import Journal as CheckpointJournal
from ._config import Settings
from ._items import SharedVariables, item_type_error
from ._progress import resolve_progress, write
from ._record import ItemRecord, Outcome, RecordBook
from ._sharing import real_model
from ._status import FAILED

__all__ = ["BatchRun", "batch_steps", "check_batch"]


def check_batch(s: Settings) -> None:
    """A Pool's ``poll_interval``; in batch mode, also that the runner can run as batches
    and that no setting is given that a batch could not honour (before anything is sent):
    a budget, ``on_error`` "stop"/"skip", an executor."""
    checked(s.poll_interval, "poll_interval", NUMBER, above=True)
    if s.mode != "batch":
        return
    batch_steps(s.runner)
    # The provider runs a submitted batch whole: nothing can stop it at a budget or error.
    for refused, why in (
            (s.max_cost is not None or s.max_tokens is not None, "max_cost and max_tokens "
             "cannot be enforced in mode='batch' (a submitted batch runs whole at the "
             "provider); remove them"),
            (s.on_error in ("stop", "skip"), f"on_error={s.on_error!r} cannot act in "
             "mode='batch': every item of a submitted batch is answered; use 'collect' or "
             "'raise'"),
            (s.executor is not None or s.worker_context is not None, "executor= and "
             "worker_context= do not apply in mode='batch': the provider runs the requests "
             "and this process only submits and collects them; drop them")):
        if refused:
            raise ConfigurationError(f"{why}, or use mode='live'")


def _batchable(runner: Any) -> bool:
    return isinstance(runner, Skill) and real_model(runner) and runner.model.provider in BACKENDS


def batch_steps(runner: Any) -> tuple[Step, ...]:
    """The steps a batch run goes through, or a ConfigurationError saying why the runner
    cannot run in batch mode (before anything is sent)."""
    if isinstance(runner, Skill):
        if not _batchable(runner):
            model = runner.model
            raise ConfigurationError(
                f"mode='batch' needs a Skill whose model has a Batch API (anthropic, openai, "
                f"gemini); {getattr(model, 'name', type(model).__name__)!r} has none: use "
                f"mode='live'")
        return (Step(0, runner, "result", {}, "skill", runner.name or "skill"),)
    if isinstance(runner, Chain):
        steps = runner.normalized_steps
        for step in steps:
            if step.kind == "chain":
                raise ConfigurationError(
                    f"mode='batch' runs a Chain's Skill steps as batches; {step.label} is a "
                    f"nested Chain: flatten its steps into this Chain")
        return steps
    raise ConfigurationError(
        f"mode='batch' runs a Skill or a Chain (its Skill steps as batches); "
        f"{type(runner).__name__} is neither: use mode='live'")


@dataclass
class _Item:
    """One item's state across the steps."""

    rec: ItemRecord
    accumulated: dict[str, Any]
    output: Any = None
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    shared: bool = False
    error: BaseException | None = None  # a CancelledError cancels the item, others fail it
    stopped: bool = False  # on_step_error="stop": no later step runs, the output so far stays


class BatchRun:
    """One batch-mode pass over a plan of items; iterate :meth:`events` to drive it
    (``submit_only``: stop once the first batch step is submitted, for ``pool.submit()``)."""

    def __init__(self, settings: Settings, book: RecordBook, plan: Iterator[tuple[int, Any]],
                 shared: SharedVariables, *, submit_only: bool = False,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.s, self.book, self._plan, self._shared = settings, book, plan, shared
        self._submit_only = submit_only
        self._sleep, self._clock = sleep, clock
        self._steps = batch_steps(settings.runner)
        # A Chain's steps see its variables= under the item's, as Chain.run gives them.
        self._defaults = settings.runner.variables if isinstance(settings.runner, Chain) else {}
        self.jobs: list[BatchJob] = []
        self._stream = resolve_progress(settings.progress)
        self._label = settings.name or runner_name(settings.runner, "pool")
        self._started = clock()
        self._deadline = None if settings.deadline is None else self._started + settings.deadline

    # -- the run ----------------------------------------------------------------------

    def events(self) -> Iterator[ItemRecord]:
        """Yield a snapshot of each record as it ends (input order once the batches are
        in); on Ctrl-C the batches keep running and the message says how to collect them."""
        s, checkpoint = self.s, self.s.checkpoint
        journal = None if checkpoint is None else CheckpointJournal(checkpoint, s.runner,
                                                                    s.checkpoint_key)
        batches = Journal(None if checkpoint is None else f"{checkpoint.path}.batches")
        items: list[_Item] = []
        try:
            yield from self._admit(journal, items)
            if not self._run_steps(items, batches):
                return  # submit_only: the batches are out
            for it in items:
                yield self._finish(it, journal)
            failed = next((it.error for it in items if it.rec.status == FAILED), None)
            if failed is not None and self.s.on_error == "raise":
                raise failed  # after every record is settled: the batch has run anyway
        except BaseException as exc:
            self._interrupted(exc)
            for rec in self.book.cancel_unfinished(
                    lambda: CancelledError("cancelled: the batch run was interrupted; the "
                                           "batches go on at the provider", reason="interrupt")):
                self._ended(rec)
            raise
        finally:
            if journal is not None:
                journal.close(self.book)

    def _admit(self, journal: Any, items: list[_Item]) -> Iterator[ItemRecord]:
        """Start every item of the plan, or end it at once (not a dict, DONE in the checkpoint)."""
        for index, item in self._plan:
            rec = self.book.get_or_add(index, item)
            if not isinstance(item, dict):
                self.book.end_now(rec, FAILED, error=item_type_error(index, item))
            else:
                rec.variables = self._shared.merge(item)
                if journal is None or not journal.restore(self.book, rec):
                    self.book.start(rec)
                    items.append(_Item(rec, {**self._defaults, **rec.variables}))
                    continue
            yield self._ended(rec, journal)

    def _run_steps(self, items: list[_Item], batches: Journal) -> bool:
        """Every step over the items still going; False when only submitting."""
        for step in self._steps:
            alive = [it for it in items if it.error is None and not it.stopped]
            if not alive:
                break
            if _batchable(step.runner):
                if not self._batch_step(step, alive, batches):
                    return False
            else:
                self._local_step(step, alive)
        return True

    def _batch_step(self, step: Step, alive: list[_Item], batches: Journal) -> bool:
        skill: Skill = step.runner
        requests, by_key = [], {}
        for it in alive:
            try:
                messages = skill.render(aliased(step, it.accumulated))
            except TemplateError as exc:
                self._step_ended(step, it, None, exc)
                continue
            key = f"s{step.index}-i{it.rec.index}"
            requests.append(BatchRequest(key, skill.model, messages, skill.output,
                                         dict(skill.options)))
            by_key[key] = it
        if not requests:
            return True
        job = BatchJob(requests, poll_interval=self.s.poll_interval, journal=batches,
                       sleep=self._sleep, clock=self._clock, on_progress=self._progress)
        self.jobs.append(job)
        job.submit()
        if self._submit_only:
            return False
        results = job.wait(self._deadline)
        if self._stream is not None:
            self._stream = write(self._stream, "\n")
        for key, it in by_key.items():
            self._apply(step, it, results[key])
        return True

    def _apply(self, step: Step, it: _Item, result: BatchResult) -> None:
        it.usage = it.usage + result.usage
        it.requests += 0 if result.shared else 1
        it.shared = it.shared or result.shared
        output, error = result.output, result.error
        typed = getattr(step.runner, "_typed", None)
        if error is None and typed is not None and typed.validates:
            output, problems = typed.check(output)
            if problems:
                error = OutputValidationError(
                    f"the batch answer does not match {typed.name}: {problems[0]}; "
                    f"retry_failed(mode='live') re-asks", raw=result.output, errors=problems,
                    schema_name=typed.name)
        self._step_ended(step, it, output, error)

    def _local_step(self, step: Step, alive: list[_Item]) -> None:
        for it in alive:
            record, refused = run_step(step, it.accumulated)  # as a live Chain runs it
            it.usage, it.requests = it.usage + record.usage, it.requests + record.requests
            self._step_ended(step, it, record.output, record.exception, refused)

    def _step_ended(self, step: Step, it: _Item, output: Any, error: BaseException | None,
                    refused: bool = False) -> None:
        """Keep a step's output or apply on_step_error, as a live Chain does (never to a cancel)."""
        runner = self.s.runner
        if error is None:
            it.output = keep_output(step, it.accumulated, output)
        elif not isinstance(runner, Chain):
            it.error = error
        else:
            it.error = step_failure(runner, runner.on_step_error, step, error, refused)
            it.stopped = runner.on_step_error == "stop"

    # -- records ------------------------------------------------------------------------

    def _finish(self, it: _Item, journal: Any) -> ItemRecord:
        rec, error, now = it.rec, it.error, time.time()
        start = rec.start or now
        self.book.charge(it.usage)
        tb = None if error is None else "".join(traceback.format_exception_only(error))
        rec.shared = it.shared
        self.book.finish(rec, Outcome(it.output if error is None else None, error, tb,
                                      it.usage, it.requests, 0, 0.0, start, now, now - start))
        return self._ended(rec, journal)

    def _ended(self, rec: ItemRecord, journal: Any = None) -> ItemRecord:
        if journal is not None:  # it keeps what ended DONE or FAILED
            journal.record(rec)
        snapshot = copy.copy(rec)
        if self.s.on_item_done is not None:
            self.s.on_item_done(snapshot)
        return snapshot

    # -- progress and interruption -------------------------------------------------------

    def _progress(self, counts: dict[str, dict[str, int]]) -> None:
        if self._stream is None:
            return
        elapsed = self._clock() - self._started
        parts = [f"{provider} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if v)
                 for provider, c in sorted(counts.items())]
        line = f"{self._label}: batch | {' | '.join(parts) or 'submitted'} | {elapsed:.0f}s"
        self._stream = write(self._stream, "\r" + line)

    def _interrupted(self, exc: BaseException) -> None:
        submitted = [sub for job in self.jobs for sub in job.submitted]
        if not submitted or not isinstance(exc, (KeyboardInterrupt, AichainError)):
            return
        where = (f"run the same Pool again with checkpoint={str(self.s.checkpoint.path)!r} "
                 f"to collect them" if self.s.checkpoint is not None else
                 "without checkpoint= they cannot be collected by a later run")
        sys.stderr.write(
            f"\n{self._label}: interrupted; {len(submitted)} batch(es) keep running at the "
            f"provider:\n{describe(submitted)}\n{where}, or call pool.cancel_batches() to "
            f"cancel them.\n")
