"""The three providers' Batch APIs: how a batch is created, polled, read and cancelled.

Each request inside a batch is the very body a live call sends (rendered by the Model and
its provider adapter); only the envelope differs:

- OpenAI: a JSONL file (``{custom_id, method, url, body}`` per line) uploaded to
  ``/files`` with purpose ``batch``, then ``POST /batches``; results are the output and
  error files. At most 50,000 requests and 200 MB per batch.
- Anthropic: ``POST /v1/messages/batches`` with ``{custom_id, params}`` requests; results
  are JSON Lines at ``/v1/messages/batches/{id}/results``. At most 100,000 requests and
  256 MB per batch.
- Gemini: ``POST /v1beta/models/{model}:batchGenerateContent`` with inlined requests
  (``{request, metadata: {key}}``), results inlined in the finished batch. Inlined batches
  are limited to 20 MB.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from .._text import json_bytes, json_loads
from ..errors import BatchError
from ..models.providers._base import WireRequest
from ._http import BatchHttp

__all__ = ["BACKENDS", "Backend", "Poll", "Raw"]

SUCCEEDED, ERRORED, EXPIRED, CANCELED = "succeeded", "errored", "expired", "canceled"


@dataclass(frozen=True)
class Poll:
    """A batch's state as the provider reports it: ``done`` once it has ended, and the
    provider's own request counts."""

    done: bool
    state: str
    counts: dict[str, int] = field(default_factory=dict)
    data: Any = None


@dataclass(frozen=True)
class Raw:
    """One request's result as the provider gave it: ``kind`` is succeeded, errored,
    expired or canceled; ``status`` the HTTP status its error stands for."""

    key: str
    kind: str
    status: int = 200
    body: Any = None


class Backend:
    """One provider's Batch API."""

    provider = ""
    max_requests = 0
    max_bytes = 0

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        """The request as the batch holds it."""
        raise NotImplementedError

    def create(self, http: BatchHttp, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        """Submit one batch; returns its id."""
        raise NotImplementedError

    def poll(self, http: BatchHttp, batch_id: str) -> Poll:
        raise NotImplementedError

    def results(self, http: BatchHttp, batch_id: str, poll: Poll) -> Iterator[Raw]:
        raise NotImplementedError

    def cancel(self, http: BatchHttp, batch_id: str) -> None:
        raise NotImplementedError


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object from untrusted data, else an empty one."""
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _jsonl(content: bytes) -> Iterator[dict[str, Any]]:
    for line in content.splitlines():
        if line.strip():
            try:
                value = json_loads(line)
            except ValueError:
                continue  # one torn line must not lose the others
            if isinstance(value, dict):
                yield value


class OpenAIBatches(Backend):
    provider = "openai"
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024
    _RUNNING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        url = urlsplit(base_url).path.rstrip("/") + wire.path
        return {"custom_id": key, "method": "POST", "url": url, "body": wire.body}

    def create(self, http: BatchHttp, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        content = b"".join(json_bytes(e, separators=(",", ":")) + b"\n" for e in entries)
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
                f"batch\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"batch.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n"
                ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
        upload = http.json("POST", "/files", raw=body,
                           content_type=f"multipart/form-data; boundary={boundary}")
        batch = http.json("POST", "/batches", {
            "input_file_id": upload.get("id"), "endpoint": entries[0]["url"],
            "completion_window": "24h", "metadata": {"client": "yait_aichain"}})
        return str(batch["id"])

    def poll(self, http: BatchHttp, batch_id: str) -> Poll:
        data = http.json("GET", f"/batches/{quote(batch_id, safe='')}")
        state = str(data.get("status"))
        counts = data.get("request_counts") or {}
        return Poll(state not in self._RUNNING, state,
                    {k: _int(counts.get(k)) for k in ("total", "completed", "failed")}, data)

    def results(self, http: BatchHttp, batch_id: str, poll: Poll) -> Iterator[Raw]:
        if poll.state == "failed":
            errors = (poll.data.get("errors") or {}).get("data") or []
            why = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise BatchError(f"the OpenAI batch {batch_id} failed validation: "
                             f"{why or 'no reason given'}", batch_id=batch_id,
                             provider=self.provider)
        for name in ("output_file_id", "error_file_id"):
            file_id = poll.data.get(name)
            if not file_id:
                continue
            content = http.call("GET", f"/files/{quote(str(file_id), safe='')}/content")
            for line in _jsonl(content):
                yield self._raw(line)

    @staticmethod
    def _raw(line: dict[str, Any]) -> Raw:
        key = str(line.get("custom_id"))
        response = line.get("response") if isinstance(line.get("response"), dict) else None
        if response is not None:
            status = _int(response.get("status_code"))
            return Raw(key, SUCCEEDED if status == 200 else ERRORED, status, response.get("body"))
        code = str((line.get("error") or {}).get("code") or "")
        if "expired" in code:
            return Raw(key, EXPIRED, 0)
        if "cancel" in code:
            return Raw(key, CANCELED, 0)
        return Raw(key, ERRORED, 500, {"error": line.get("error")})

    def cancel(self, http: BatchHttp, batch_id: str) -> None:
        http.json("POST", f"/batches/{quote(batch_id, safe='')}/cancel", {})


# Anthropic names the error type in a batch result, not an HTTP status.
_ANTHROPIC_STATUS = {"invalid_request_error": 400, "authentication_error": 401,
                     "billing_error": 402, "permission_error": 403, "not_found_error": 404,
                     "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                     "overloaded_error": 529}


class AnthropicBatches(Backend):
    provider = "anthropic"
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        return {"custom_id": key, "params": wire.body}

    def create(self, http: BatchHttp, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        return str(http.json("POST", "/v1/messages/batches", {"requests": entries})["id"])

    def poll(self, http: BatchHttp, batch_id: str) -> Poll:
        data = http.json("GET", f"/v1/messages/batches/{quote(batch_id, safe='')}")
        state = str(data.get("processing_status"))
        counts = data.get("request_counts") or {}
        return Poll(state == "ended", state, {k: _int(v) for k, v in counts.items()}, data)

    def results(self, http: BatchHttp, batch_id: str, poll: Poll) -> Iterator[Raw]:
        # The batch's own results_url is not followed: the key goes only to base_url.
        content = http.call("GET", f"/v1/messages/batches/{quote(batch_id, safe='')}/results")
        for line in _jsonl(content):
            result = _obj(line.get("result"))
            kind = str(result.get("type"))
            key = str(line.get("custom_id"))
            if kind == SUCCEEDED:
                yield Raw(key, SUCCEEDED, 200, result.get("message"))
            elif kind == ERRORED:
                body = _obj(result.get("error"))
                inner = _obj(body.get("error"))
                yield Raw(key, ERRORED, _ANTHROPIC_STATUS.get(str(inner.get("type")), 500), body)
            elif kind in (EXPIRED, CANCELED):
                yield Raw(key, kind, 0)

    def cancel(self, http: BatchHttp, batch_id: str) -> None:
        http.json("POST", f"/v1/messages/batches/{quote(batch_id, safe='')}/cancel", {})


# google.rpc.Code values to the HTTP statuses they stand for.
_GRPC_STATUS = {3: 400, 5: 404, 7: 403, 8: 429, 9: 400, 11: 400, 13: 500, 14: 503, 16: 401,
                4: 504, 10: 409, 12: 501}
_GEMINI_DONE = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED",
                "BATCH_STATE_EXPIRED"}


class GeminiBatches(Backend):
    provider = "gemini"
    max_requests = 100_000
    max_bytes = 20 * 1000 * 1000

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        return {"request": wire.body, "metadata": {"key": key}}

    def create(self, http: BatchHttp, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        path = wire.path.replace(":generateContent", ":batchGenerateContent")
        data = http.json("POST", path, {"batch": {
            "displayName": "yait_aichain", "inputConfig": {"requests": {"requests": entries}}}})
        name = str(data.get("name") or "")
        return name.split("/", 1)[1] if name.startswith("batches/") else name

    def poll(self, http: BatchHttp, batch_id: str) -> Poll:
        data = http.json("GET", f"/v1beta/batches/{quote(batch_id, safe='')}")
        meta = _obj(data.get("metadata"))
        state = str(meta.get("state"))
        stats = _obj(meta.get("batchStats"))
        counts = {k: _int(v) for k, v in stats.items()}
        return Poll(state in _GEMINI_DONE or data.get("done") is True, state, counts, data)

    def results(self, http: BatchHttp, batch_id: str, poll: Poll) -> Iterator[Raw]:
        data = poll.data
        if poll.state == "BATCH_STATE_FAILED":
            err = _obj(data.get("error"))
            raise BatchError(f"the Gemini batch {batch_id} failed: "
                             f"{err.get('message') or 'no reason given'}", batch_id=batch_id,
                             provider=self.provider)
        if poll.state in ("BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"):
            return  # nothing came back; the job marks every request of it
        meta = _obj(data.get("metadata"))
        output = meta.get("output") or data.get("response") or {}
        holder = output.get("inlinedResponses") if isinstance(output, dict) else None
        items = holder.get("inlinedResponses") if isinstance(holder, dict) else None
        if not isinstance(items, list):
            raise BatchError(f"the Gemini batch {batch_id} ended without inlined responses",
                             batch_id=batch_id, provider=self.provider)
        for item in items:
            key = str(((item.get("metadata") or {}).get("key")))
            if isinstance(item.get("response"), dict):
                yield Raw(key, SUCCEEDED, 200, item["response"])
                continue
            err = _obj(item.get("error"))
            code = _int(err.get("code"))
            status = code if code >= 100 else _GRPC_STATUS.get(code, 500)
            yield Raw(key, ERRORED, status, {"error": {"code": status,
                                                       "message": err.get("message")}})

    def cancel(self, http: BatchHttp, batch_id: str) -> None:
        http.json("POST", f"/v1beta/batches/{quote(batch_id, safe='')}:cancel", {})


BACKENDS: dict[str, Backend] = {b.provider: b for b in (OpenAIBatches(), AnthropicBatches(),
                                                        GeminiBatches())}
