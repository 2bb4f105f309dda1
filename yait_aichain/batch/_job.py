"""A set of generation requests sent through the providers' Batch APIs: rendered as live
calls are, split by the providers' limits, submitted (or re-attached from a Journal),
polled, and mapped back by key to an output priced at the batch rate or a typed error."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._checks import NUMBER, checked
from .._text import wire_bytes
from .._usage import Usage
from ..errors import (AichainError, APIError, BatchCancelledError, BatchError, BatchExpiredError,
                      ConfigurationError, RequestTooLargeError)
from ..models._model import Model
from ..models._status import error_for_response
from ..models.providers._base import TEXT, OutputSpec, WireRequest
from ._journal import Journal, Submitted
from ._providers import BACKENDS, CANCELED, EXPIRED, SUCCEEDED, Backend, Http, Poll, Raw

__all__ = ["DEFAULT_POLL_INTERVAL", "BatchJob", "BatchRequest", "BatchResult", "describe"]

logger = logging.getLogger("yait_aichain.batch")

DEFAULT_POLL_INTERVAL = 60.0  # seconds between two looks at the unfinished batches


@dataclass(frozen=True)
class BatchRequest:
    """One generation to run in a batch: ``key`` names it (letters, digits, ``_`` and
    ``-``, at most 64), the rest is what ``model.generate()`` would take."""

    key: str
    model: Model
    messages: list[dict[str, Any]]
    output: OutputSpec = TEXT
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    """How one request ended: its ``output`` and ``usage`` (at batch prices), or its
    ``error``; ``batch_id`` is the provider batch that ran it, ``shared`` is True when
    an identical request's answer was reused."""

    key: str
    output: Any = None
    usage: Usage = field(default_factory=Usage)
    error: AichainError | None = None
    batch_id: str | None = None
    shared: bool = False


_Rendered = tuple[BatchRequest, dict[str, Any], WireRequest]  # with its batch entry


@dataclass
class _Group:
    """The requests of one submitted (or re-attached) batch."""

    backend: Backend
    http: Http
    specs: dict[str, OutputSpec]  # key -> the output each request asked for
    submitted: Submitted
    done: bool = False
    last: Poll | None = None

    @property
    def batch_id(self) -> str:
        return self.submitted.batch_id

    @property
    def model(self) -> Model:
        return self.http.model

    def facts(self, key: str) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "custom_id": key, "provider": self.model.provider,
                "model": self.model.name}


def _digest(model: Model, entries: list[dict[str, Any]]) -> str:
    text = json.dumps([model.base_url, entries], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _size(entry: dict[str, Any]) -> int:
    return len(wire_bytes(entry)) + 1  # as sent, one line of JSONL


class BatchJob:
    """Submit requests as provider batches and collect their results.

    Args:
        requests: :class:`BatchRequest` objects with unique keys.
        poll_interval: seconds between two looks at the unfinished batches.
        journal: where batch ids are saved as soon as they exist (None: in memory only).
        sleep, clock: injectable waiting and time (tests pass fakes).
        on_progress: called after every poll with ``{provider: {count name: n}}``, the
            counts as the providers report them.

    Raises:
        ConfigurationError: a request's provider has no Batch API, or keys repeat.
    """

    def __init__(self, requests: Iterable[BatchRequest], *,
                 poll_interval: float = DEFAULT_POLL_INTERVAL, journal: Journal | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 on_progress: Callable[[dict[str, dict[str, int]]], None] | None = None):
        self.poll_interval = checked(poll_interval, "poll_interval", NUMBER, above=True)
        self._journal = Journal() if journal is None else journal
        self._sleep, self._clock, self._on_progress = sleep, clock, on_progress
        self._requests = list(requests)
        keys = [r.key for r in self._requests]
        if len(set(keys)) != len(keys):
            raise ConfigurationError("batch request keys must be unique")
        for request in self._requests:
            if request.model.provider not in BACKENDS:
                raise ConfigurationError(
                    f"{request.model.provider} has no Batch API (model {request.model.name!r}); "
                    f"batch mode serves {', '.join(sorted(BACKENDS))}: use mode='live'")
        self._groups: list[_Group] = []
        self.results: dict[str, BatchResult] = {}
        self._aliases: dict[str, str] = {}  # key -> the key whose identical request is sent

    @property
    def submitted(self) -> list[Submitted]:
        """Every batch this job submitted or re-attached to."""
        return [g.submitted for g in self._groups]

    @property
    def batch_ids(self) -> list[str]:
        """Ids of every batch this job submitted or re-attached to."""
        return [g.batch_id for g in self._groups]

    def submit(self) -> list[Submitted]:
        """Render and submit the requests (byte-equal ones once); returns the batches.
        Batches in the journal for the same requests are re-attached, not paid twice."""
        by_model: dict[int, list[_Rendered]] = {}
        seen: dict[tuple[int, str], str] = {}
        for request in self._requests:
            rendered = self._render(request)
            if rendered is None:
                continue
            body_key = (id(request.model), json.dumps([rendered[2].path, rendered[2].body],
                                                      sort_keys=True, ensure_ascii=False))
            if body_key in seen:
                self._aliases[request.key] = seen[body_key]
                continue
            seen[body_key] = request.key
            by_model.setdefault(id(request.model), []).append(rendered)
        for group in by_model.values():
            for chunk in self._split(group):
                self._submit_chunk(chunk)
        return self.submitted

    def _render(self, request: BatchRequest) -> _Rendered | None:
        """None when the request is too large for a batch (its result says so)."""
        model = request.model
        wire = model.build_request(request.messages, request.output, **request.options)
        backend = BACKENDS[model.provider]
        entry = backend.entry(request.key, wire, model.base_url)
        if _size(entry) > backend.max_bytes:
            self.results[request.key] = BatchResult(request.key, error=RequestTooLargeError(
                f"the request is larger than a {model.provider} batch may be "
                f"({backend.max_bytes} bytes); shorten the input", status=413,
                provider=model.provider, model=model.name))
            return None
        return request, entry, wire

    @staticmethod
    def _split(group: list[_Rendered]) -> Iterator[list[_Rendered]]:
        backend = BACKENDS[group[0][0].model.provider]
        chunk: list[_Rendered] = []
        size = 0
        for rendered in group:
            n = _size(rendered[1])
            if chunk and (len(chunk) >= backend.max_requests or size + n > backend.max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(rendered)
            size += n
        if chunk:
            yield chunk

    def _submit_chunk(self, chunk: list[_Rendered]) -> None:
        model, wire = chunk[0][0].model, chunk[0][2]
        backend = BACKENDS[model.provider]
        entries = [entry for _, entry, _ in chunk]
        digest = _digest(model, entries)
        http = Http(model, wire.headers)
        specs = {request.key: request.output for request, _, _ in chunk}
        submitted = self._journal.find(digest)
        if submitted is not None:
            logger.info("re-attaching to %s batch %s", model.provider, submitted.batch_id)
        else:
            batch_id = backend.create(http, entries, wire)
            submitted = Submitted(batch_id, model.provider, model.name, digest, tuple(specs))
            self._journal.add(submitted)
        self._groups.append(_Group(backend, http, specs, submitted))

    def counts(self) -> dict[str, dict[str, int]]:
        """The latest request counts per provider, summed over its batches."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for group in self._groups:
            if group.last is not None:
                out[group.model.provider].update(group.last.counts)
        return {provider: dict(counts) for provider, counts in out.items()}

    def poll_once(self) -> bool:
        """Look at every unfinished batch once; True when all have ended."""
        for group in self._groups:
            if not group.done:
                self._poll(group)
        if self._on_progress is not None:
            self._on_progress(self.counts())
        return all(g.done for g in self._groups)

    def wait(self, deadline: float | None = None) -> dict[str, BatchResult]:
        """Poll until every batch has ended (or ``deadline`` on ``clock`` passes, then
        the unfinished requests fail with a BatchError saying the batch still runs)."""
        while not self.poll_once():
            left = None if deadline is None else deadline - self._clock()
            if left is not None and left <= 0:
                self._give_up("the time budget ran out while the batch was still running")
                break
            self._sleep(self.poll_interval if left is None else min(self.poll_interval, left))
        for key, twin in self._aliases.items():
            first = self.results.get(twin)
            if first is not None:
                self.results[key] = replace(first, key=key, usage=Usage(), shared=True)
        return {r.key: self.results[r.key] for r in self._requests if r.key in self.results}

    def cancel(self) -> int:
        """Ask the provider to cancel every unfinished batch; returns how many."""
        unfinished = [g for g in self._groups if not g.done]
        for group in unfinished:
            group.backend.cancel(group.http, group.batch_id)
        return len(unfinished)

    def _poll(self, group: _Group) -> None:
        error: APIError | None = None
        try:
            group.last = poll = group.backend.poll(group.http, group.batch_id)
            if not poll.done:
                return
            got = {raw.key: raw for raw in group.backend.results(group.http, group.batch_id,
                                                                 poll)}
        except APIError as exc:
            # Retries already ran inside the call; a still-transient failure waits for the
            # next poll, anything else (the batch is gone or failed, the key is wrong) ends it.
            if exc.retryable:
                logger.warning("polling batch %s failed (%s); trying again later",
                               group.batch_id, exc)
                return
            got, error = {}, exc
        for key in group.specs:
            result = error or self._result(group, key, got.get(key), poll)
            self.results[key] = result if isinstance(result, BatchResult) else BatchResult(
                key, error=result, batch_id=group.batch_id)
        group.done = True

    def _result(self, group: _Group, key: str, raw: Raw | None,
                poll: Poll) -> BatchResult | AichainError:
        model, batch_id = group.model, group.batch_id
        if raw is None:
            state = poll.state.lower()
            kind = CANCELED if "cancel" in state else EXPIRED if "expire" in state else None
            if kind is None:
                return BatchError(f"batch {batch_id} ended ({poll.state}) without a result "
                                  f"for {key}", **group.facts(key))
            raw = Raw(key, kind, 0)
        if raw.kind == EXPIRED:
            return BatchExpiredError(f"the request expired in batch {batch_id} before the "
                                     "provider ran it", **group.facts(key))
        if raw.kind == CANCELED:
            return BatchCancelledError(f"batch {batch_id} was cancelled before this request "
                                       "ran", batch_id=batch_id)
        if raw.kind != SUCCEEDED:
            return error_for_response(raw.status or 500, {}, json.dumps(raw.body).encode(),
                                      provider=model.provider, model=model.name)
        try:
            parsed = model.parse_response(raw.body, group.specs[key], batch=True)
        except APIError as exc:
            return exc
        return BatchResult(key, parsed.output, parsed.usage, batch_id=batch_id)

    def _give_up(self, why: str) -> None:
        for group in self._groups:
            if not group.done:
                for key in group.specs:
                    self.results[key] = BatchResult(key, error=BatchError(
                        f"{why}; batch {group.batch_id} goes on at {group.model.provider}: "
                        "collect it by running again with the same checkpoint",
                        **group.facts(key)), batch_id=group.batch_id)


def describe(submitted: Iterable[Submitted]) -> str:
    """One line per batch: provider, id, request count."""
    return "\n".join(f"  {s.provider} batch {s.batch_id} ({len(s.keys):,} requests)"
                     for s in submitted)
