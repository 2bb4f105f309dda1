"""The simulator's Batch APIs: the state of every batch and file, and how each ends.

A batch stays in progress for ``delay`` seconds, then every request is answered at once as
the live endpoint would answer it, or fails as scripted (:meth:`BatchControl.fail_when`),
or expires (:attr:`BatchControl.expire`). Nothing runs in the background: a batch finishes
the first time anyone looks at it after its time is up. The HTTP side is ``_batch_http``.
"""

from __future__ import annotations

import itertools
from collections import Counter
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .._checks import NUMBER, checked
from ..errors import ConfigurationError
from . import _faults as F
from . import _errors as E
from . import _wire as W
from ._prompt_cache import PromptCache
from ._script import Match, setting

__all__ = ["Batch", "BatchControl", "BatchStore", "Outcome", "Request"]

SUCCEEDED, ERRORED, EXPIRED, CANCELED = "succeeded", "errored", "expired", "canceled"
Request = tuple[str, dict[str, Any], str | None]  # custom_id, body as sent, model of its path


@dataclass(frozen=True)
class Outcome:
    """How one request of a batch ended: ``kind`` is succeeded, errored, expired or
    canceled; ``status`` and ``body`` are what the live endpoint would have answered."""

    custom_id: str
    kind: str
    status: int = 200
    body: dict[str, Any] | None = None


@dataclass
class Batch:
    """One batch as the simulator keeps it."""

    id: str
    provider: str
    created: float
    ready_at: float
    requests: list[Request]
    extra: dict[str, Any] = field(default_factory=dict)
    outcomes: list[Outcome] | None = None
    cancel_requested: float | None = None
    ended: float | None = None

    @property
    def done(self) -> bool:
        return self.outcomes is not None

    @property
    def state(self) -> str:
        """"running", or how the batch ended: canceled, expired, or succeeded (it ran)."""
        kinds = {o.kind for o in self.outcomes or ()}
        if not self.done:
            return "running"
        return CANCELED if CANCELED in kinds else EXPIRED if EXPIRED in kinds else SUCCEEDED

    def counts(self) -> dict[str, int]:
        """Requests per outcome kind, plus those still processing."""
        tally = Counter(o.kind for o in self.outcomes or ())
        tally["processing"] = 0 if self.done else len(self.requests)
        return tally


class BatchControl:
    """What a test sets about batches (``sim.batches``)."""

    delay = setting("_store", "delay", "The seconds a new batch stays in progress.",
                    lambda value: checked(value, "batch delay", NUMBER))
    expire = setting("_store", "expire", "True to have batches that come due expire instead.", bool)

    def __init__(self, store: BatchStore) -> None:
        self._store = store

    def fail_when(self, match: Match, status: int = 400, message: str | None = None) -> None:
        """Requests whose last user text contains ``match`` (or for which
        ``match(info)`` is true) end errored with this status."""
        if not (isinstance(match, str) or callable(match)):
            raise ConfigurationError("fail_when needs a str or a callable(info) -> bool")
        self._store.failures.append((match, int(status), message))

    def clear_failures(self) -> None:
        """Forget every ``fail_when`` rule."""
        self._store.failures.clear()

    def finish_all(self) -> None:
        """Make every batch in progress ready now, whatever its delay."""
        with self._store.lock:
            for batch in self._store.batches.values():
                batch.ready_at = min(batch.ready_at, time.time())

    @property
    def created(self) -> int:
        """How many batches were created."""
        return self._store.created

    def list(self) -> list[Batch]:
        """Every batch, oldest first."""
        with self._store.lock:
            return list(self._store.batches.values())


class BatchStore:
    """Batches and uploaded files of one simulator; thread-safe."""

    def __init__(self, cache: PromptCache) -> None:
        self.lock = threading.Lock()
        self.batches: dict[str, Batch] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.delay = 0.0
        self.expire = False
        self.failures: list[tuple[Match, int, str | None]] = []  # fail_when rules
        self.created = 0
        self._ids = itertools.count(1)
        self._cache = cache
        self._sequence = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):012d}sim"

    def add_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = self.new_id("file-")
        entry = {"id": file_id, "object": "file", "bytes": len(content),
                 "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                 "status": "processed", "expires_at": None, "status_details": None,
                 "content": content}
        with self.lock:
            self.files[file_id] = entry
        return entry

    def create(self, provider: str, requests: list[Request], prefix: str, **extra: Any) -> Batch:
        now = time.time()
        batch = Batch(self.new_id(prefix), provider, now, now + self.delay, requests, extra)
        with self.lock:
            self.batches[batch.id] = batch
            self.created += 1
        return batch

    def get(self, batch_id: str, reply: W.Reply | None) -> Batch | None:
        """The batch, finished first if its time has come."""
        with self.lock:
            batch = self.batches.get(batch_id)
        if batch is not None and not batch.done and time.time() >= batch.ready_at:
            self._finish(batch, reply)
        return batch

    def all(self, reply: W.Reply | None) -> list[Batch]:
        with self.lock:
            ids = list(self.batches)
        return [b for b in (self.get(i, reply) for i in ids) if b is not None]

    def cancel(self, batch_id: str) -> None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is not None and not batch.done:
                batch.cancel_requested = batch.ended = time.time()
                batch.outcomes = [Outcome(cid, CANCELED, 0) for cid, _, _ in batch.requests]

    def delete(self, batch_id: str) -> bool:
        with self.lock:
            return self.batches.pop(batch_id, None) is not None

    def _finish(self, batch: Batch, reply: W.Reply | None) -> None:
        if self.expire:
            outcomes = [Outcome(cid, EXPIRED, 0) for cid, _, _ in batch.requests]
        else:
            outcomes = [self._answer(batch.provider, cid, body, model, reply)
                        for cid, body, model in batch.requests]
        with self.lock:
            if batch.outcomes is None:  # another thread may have finished it first
                batch.outcomes = outcomes
                batch.ended = time.time()

    def _answer(self, provider: str, custom_id: str, body: dict[str, Any],
                path_model: str | None, reply: W.Reply | None) -> Outcome:
        info = W.read_request(provider, body, path_model, next(self._sequence))
        for match, status, message in self.failures:
            if (match in info.last_user_text) if isinstance(match, str) else match(info):
                return Outcome(custom_id, ERRORED, status,
                               E.error_body(provider, status, message=message))
        value = W.default_output(info) if reply is None else reply(info)
        if isinstance(value, F.Fault):
            status = E.fault_status(provider, value)
            return Outcome(custom_id, ERRORED, status,
                           E.error_body(provider, status, value.category))
        text, tool_input = W.render(info, "" if value is None else value)
        body = W.reply_body(info, text, tool_input)
        # Batch requests use the prompt cache too, in turn.
        self._cache.finish(self._cache.begin(info), body)
        return Outcome(custom_id, SUCCEEDED, 200, body)
