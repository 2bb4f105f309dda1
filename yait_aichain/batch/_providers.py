"""The three providers' Batch APIs: how a batch is created, polled, read and cancelled.

Each request in a batch is the very body a live call sends; only the envelope differs, one
:class:`Backend` per provider: OpenAI uploads a JSONL file and reads output and error files,
Anthropic sends and reads JSON Lines, Gemini inlines requests and results.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from urllib3 import encode_multipart_formdata

from .._text import json_loads, wire_bytes
from ..errors import BatchError, InvalidResponseError
from ..models._model import Model
from ..models._status import decode_body, sanitise
from ..models.providers._base import WireRequest

__all__ = ["BACKENDS", "Backend", "Http", "Poll", "Raw"]

SUCCEEDED, ERRORED, EXPIRED, CANCELED = "succeeded", "errored", "expired", "canceled"


@dataclass(frozen=True)
class Http:
    """The Batch API requests of one model, sent by :meth:`Model.send` (its base URL, key,
    transport and retries: a 429 or 5xx is retried as a live call is, a redirect refused,
    the key only ever in the adapter's auth header) with the adapter's ``headers``."""

    model: Model
    headers: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             content_type: str = "application/json") -> bytes:
        """The body of the 2xx response to one request (``body`` sent as JSON, or ``raw``).

        Raises:
            APIError: the subclass for the status; ``InvalidResponseError`` for a redirect.
        """
        payload = raw if raw is not None else b"" if body is None else wire_bytes(body)
        return self.model.send(method, path, payload,
                               headers={**self.headers, "Content-Type": content_type})

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """As :meth:`call`, decoding a JSON body."""
        data, text = decode_body(self.call(method, path, body, **kwargs))
        if data is None:
            raise InvalidResponseError(
                f"the batch endpoint {path!r} answered with something that is not JSON: "
                f"{sanitise(text, 120)!r}", reason="malformed", status=200,
                provider=self.model.provider, model=self.model.name)
        return data


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


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object from untrusted data, else an empty one."""
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _counts(values: Any, names: tuple[str, ...] | None = None) -> dict[str, int]:
    values = _obj(values)
    return {k: _int(values.get(k)) for k in (names or values)}


def _jsonl(content: bytes) -> Iterator[dict[str, Any]]:
    for line in content.splitlines():
        if line.strip():
            try:
                value = json_loads(line)
            except ValueError:
                continue  # one torn line must not lose the others
            if isinstance(value, dict):
                yield value


class Backend:
    """One provider's Batch API: its limits (requests and bytes per batch), where its
    batches live (``{batches}/{id}``, cancelled at ``{batches}/{id}{cancel_at}``), how a
    request sits in a batch (``entry``), and how a batch is created, read and answered."""

    provider = ""
    name = ""
    max_requests = 0
    max_bytes = 0
    batches = ""
    cancel_at = "/cancel"

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, http: Http, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        raise NotImplementedError

    def state(self, data: dict[str, Any]) -> Poll:
        raise NotImplementedError

    def results(self, http: Http, batch_id: str, poll: Poll) -> Iterator[Raw]:
        raise NotImplementedError

    def url(self, batch_id: str) -> str:
        return f"{self.batches}/{quote(batch_id, safe='')}"

    def poll(self, http: Http, batch_id: str) -> Poll:
        return self.state(_obj(http.json("GET", self.url(batch_id))))

    def cancel(self, http: Http, batch_id: str) -> None:
        http.json("POST", self.url(batch_id) + self.cancel_at, {})

    def _failed(self, batch_id: str, why: str) -> BatchError:
        return BatchError(f"the {self.name} batch {batch_id} {why}", batch_id=batch_id,
                          provider=self.provider)


class OpenAIBatches(Backend):
    provider, name, batches = "openai", "OpenAI", "/batches"
    max_requests, max_bytes = 50_000, 200 * 1024 * 1024
    _RUNNING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        url = urlsplit(base_url).path.rstrip("/") + wire.path
        return {"custom_id": key, "method": "POST", "url": url, "body": wire.body}

    def create(self, http: Http, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        content = b"".join(wire_bytes(e) + b"\n" for e in entries)
        body, content_type = encode_multipart_formdata(
            {"purpose": "batch", "file": ("batch.jsonl", content, "application/jsonl")})
        upload = http.json("POST", "/files", raw=body, content_type=content_type)
        batch = http.json("POST", self.batches, {
            "input_file_id": upload.get("id"), "endpoint": entries[0]["url"],
            "completion_window": "24h", "metadata": {"client": "yait_aichain"}})
        return str(batch["id"])

    def state(self, data: dict[str, Any]) -> Poll:
        state = str(data.get("status"))
        counts = _counts(data.get("request_counts"), ("total", "completed", "failed"))
        return Poll(state not in self._RUNNING, state, counts, data)

    def results(self, http: Http, batch_id: str, poll: Poll) -> Iterator[Raw]:
        if poll.state == "failed":
            errors = _obj(poll.data.get("errors")).get("data") or []
            why = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise self._failed(batch_id, f"failed validation: {why or 'no reason given'}")
        for name in ("output_file_id", "error_file_id"):
            file_id = poll.data.get(name)
            if file_id:
                content = http.call("GET", f"/files/{quote(str(file_id), safe='')}/content")
                yield from map(self._raw, _jsonl(content))

    @staticmethod
    def _raw(line: dict[str, Any]) -> Raw:
        key = str(line.get("custom_id"))
        response = line.get("response")
        if isinstance(response, dict):
            status = _int(response.get("status_code"))
            return Raw(key, SUCCEEDED if status == 200 else ERRORED, status, response.get("body"))
        code = str(_obj(line.get("error")).get("code") or "")
        kind = EXPIRED if "expired" in code else CANCELED if "cancel" in code else ERRORED
        return Raw(key, kind, 500 if kind == ERRORED else 0, {"error": line.get("error")})


# Anthropic names the error type in a batch result, not an HTTP status.
_ANTHROPIC_STATUS = {"invalid_request_error": 400, "authentication_error": 401,
                     "billing_error": 402, "permission_error": 403, "not_found_error": 404,
                     "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                     "overloaded_error": 529}


class AnthropicBatches(Backend):
    provider, name, batches = "anthropic", "Anthropic", "/v1/messages/batches"
    max_requests, max_bytes = 100_000, 256 * 1024 * 1024

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        return {"custom_id": key, "params": wire.body}

    def create(self, http: Http, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        return str(http.json("POST", self.batches, {"requests": entries})["id"])

    def state(self, data: dict[str, Any]) -> Poll:
        state = str(data.get("processing_status"))
        return Poll(state == "ended", state, _counts(data.get("request_counts")), data)

    def results(self, http: Http, batch_id: str, poll: Poll) -> Iterator[Raw]:
        # The batch's own results_url is not followed: the key goes only to base_url.
        for line in _jsonl(http.call("GET", self.url(batch_id) + "/results")):
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


# google.rpc.Code values to the HTTP statuses they stand for.
_GRPC_STATUS = {3: 400, 5: 404, 7: 403, 8: 429, 9: 400, 11: 400, 13: 500, 14: 503, 16: 401,
                4: 504, 10: 409, 12: 501}
_GEMINI_DONE = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED",
                "BATCH_STATE_EXPIRED"}


class GeminiBatches(Backend):
    provider, name, batches, cancel_at = "gemini", "Gemini", "/v1beta/batches", ":cancel"
    max_requests, max_bytes = 100_000, 20 * 1000 * 1000  # inlined requests: 20 MB at most

    def entry(self, key: str, wire: WireRequest, base_url: str) -> dict[str, Any]:
        return {"request": wire.body, "metadata": {"key": key}}

    def create(self, http: Http, entries: list[dict[str, Any]], wire: WireRequest) -> str:
        path = wire.path.replace(":generateContent", ":batchGenerateContent")
        data = http.json("POST", path, {"batch": {
            "displayName": "yait_aichain", "inputConfig": {"requests": {"requests": entries}}}})
        return str(data.get("name") or "").removeprefix("batches/")

    def state(self, data: dict[str, Any]) -> Poll:
        meta = _obj(data.get("metadata"))
        state = str(meta.get("state"))
        done = state in _GEMINI_DONE or data.get("done") is True
        return Poll(done, state, _counts(meta.get("batchStats")), data)

    def results(self, http: Http, batch_id: str, poll: Poll) -> Iterator[Raw]:
        data = poll.data
        if poll.state == "BATCH_STATE_FAILED":
            why = _obj(data.get("error")).get("message") or "no reason given"
            raise self._failed(batch_id, f"failed: {why}")
        if poll.state in ("BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"):
            return  # nothing came back; the job marks every request of it
        output = _obj(_obj(data.get("metadata")).get("output") or data.get("response"))
        items = _obj(output.get("inlinedResponses")).get("inlinedResponses")
        if not isinstance(items, list):
            raise self._failed(batch_id, "ended without inlined responses")
        for item in map(_obj, items):
            key = str(_obj(item.get("metadata")).get("key"))
            if isinstance(item.get("response"), dict):
                yield Raw(key, SUCCEEDED, 200, item["response"])
                continue
            err = _obj(item.get("error"))
            code = _int(err.get("code"))
            status = code if code >= 100 else _GRPC_STATUS.get(code, 500)
            yield Raw(key, ERRORED, status, {"error": {"code": status,
                                                       "message": err.get("message")}})


BACKENDS: dict[str, Backend] = {b.provider: b for b in (OpenAIBatches(), AnthropicBatches(),
                                                        GeminiBatches())}
