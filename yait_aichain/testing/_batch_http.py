"""The simulator's Batch API endpoints, in each provider's wire shape (the official SDKs'
batch calls work against them): the routes are in ``_ROUTES``, shared by the providers
(:func:`_batches`), each provider's shapes an :class:`_API`. ``serve()`` is the one hook
the request handler calls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import _wire as W
from ._errors import Refused
from ._batches import CANCELED, ERRORED, EXPIRED, SUCCEEDED, Batch, BatchStore, Request

if TYPE_CHECKING:
    from ._handler import Handler

__all__ = ["serve"]

_Created = tuple[list[Request], dict[str, Any]]


def _rfc3339(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lines(values: list[dict[str, Any]]) -> bytes:
    return b"".join(W.dumps(v) + b"\n" for v in values)


def _listing(views: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": views, "has_more": False, "first_id": views[0]["id"] if views else None,
            "last_id": views[-1]["id"] if views else None}


@dataclass(frozen=True)
class _API:
    """One provider's batch shapes: what a create call holds (``requests``: the requests
    and the batch's own fields, or :class:`Refused`), how a batch and a list of them look,
    and what its cancel and delete calls answer (``deleted`` None: no delete)."""

    provider: str
    id_prefix: str
    requests: Callable[[BatchStore, dict[str, Any], re.Match[str]], _Created]
    view: Callable[[Any, BatchStore, Batch], dict[str, Any]]
    listing: Callable[[list[dict[str, Any]]], dict[str, Any]] = _listing
    cancelled: Callable[[Any, BatchStore, Batch], dict[str, Any]] | None = None  # None: view
    deleted: Callable[[str], dict[str, Any]] | None = None
    unique_ids: bool = True  # custom_id values must differ within a batch
    collection_creates: bool = True  # a POST to the batch list creates (Gemini: a model path)


# -- OpenAI -------------------------------------------------------------------------------

_OPENAI_STATUS = {"running": "in_progress", SUCCEEDED: "completed", CANCELED: "cancelled",
                  EXPIRED: "expired"}


def _openai_requests(store: BatchStore, data: dict[str, Any], match: re.Match[str]) -> _Created:
    entry = store.files.get(str(data.get("input_file_id")))
    if entry is None:
        raise Refused(400, "input_file_id does not name an uploaded file")
    endpoint = data.get("endpoint")
    if endpoint != "/v1/chat/completions":  # the one live OpenAI route
        raise Refused(400, f"endpoint {endpoint!r} is not supported here")
    requests: list[Request] = []
    for number, line in enumerate(entry["content"].splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = W.loads(line)
            requests.append((str(item["custom_id"]), dict(item["body"]), None))
        except (ValueError, KeyError, TypeError):
            raise Refused(400, f"line {number} of the input file is not a batch request "
                                "({custom_id, method, url, body})") from None
    return requests, {"endpoint": endpoint, "input_file_id": entry["id"],
                      "metadata": data.get("metadata"),
                      "completion_window": data.get("completion_window", "24h")}


def _openai_batch(handler: Handler, store: BatchStore, batch: Batch) -> dict[str, Any]:
    counts = batch.counts()
    status = _OPENAI_STATUS[batch.state]
    output_file, error_file = _openai_files(store, batch) if batch.done else (None, None)
    ended = int(batch.ended) if batch.ended else None
    return {
        "id": batch.id, "object": "batch", "endpoint": batch.extra.get("endpoint"),
        "errors": None, "input_file_id": batch.extra.get("input_file_id"),
        "completion_window": batch.extra.get("completion_window", "24h"), "status": status,
        "output_file_id": output_file, "error_file_id": error_file,
        "created_at": int(batch.created), "in_progress_at": int(batch.created),
        "expires_at": int(batch.created) + 86400, "finalizing_at": ended,
        "completed_at": ended if status == "completed" else None, "failed_at": None,
        "expired_at": ended if status == "expired" else None,
        "cancelling_at": int(batch.cancel_requested) if batch.cancel_requested else None,
        "cancelled_at": ended if status == "cancelled" else None,
        "request_counts": {"total": len(batch.requests), "completed": counts[SUCCEEDED],
                           "failed": counts[ERRORED] + counts[EXPIRED] + counts[CANCELED]},
        "metadata": batch.extra.get("metadata"),
    }


def _openai_files(store: BatchStore, batch: Batch) -> tuple[str | None, str | None]:
    """The output and error files of a finished batch, written the first time asked."""
    if "output_file_id" not in batch.extra:
        lines: dict[str, list[dict[str, Any]]] = {"output": [], "error": []}
        for n, outcome in enumerate(batch.outcomes or (), 1):
            line: dict[str, Any] = {"id": f"batch_req_{batch.id}_{n}",
                                    "custom_id": outcome.custom_id, "response": None,
                                    "error": None}
            if outcome.kind in (SUCCEEDED, ERRORED):
                line["response"] = {"status_code": outcome.status,
                                    "request_id": f"req_{batch.id}_{n}", "body": outcome.body}
            else:
                line["error"] = {"code": f"batch_{outcome.kind}".replace("canceled", "cancelled"),
                                 "message": f"This request could not be executed before the "
                                            f"batch was {outcome.kind} (simulated)."}
            lines["output" if outcome.kind == SUCCEEDED else "error"].append(line)
        for name, found in lines.items():
            batch.extra[f"{name}_file_id"] = store.add_file(
                _lines(found), f"{batch.id}_{name}.jsonl", "batch_output")["id"] if found else None
    return batch.extra["output_file_id"], batch.extra["error_file_id"]


# -- Anthropic ----------------------------------------------------------------------------

def _anthropic_requests(store: BatchStore, data: dict[str, Any], match: re.Match[str]
                        ) -> _Created:
    items = data.get("requests")
    if not isinstance(items, list) or not items:
        raise Refused(400, "requests: must be a non-empty list")
    for n, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("custom_id"), str)
                and re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", item["custom_id"])
                and isinstance(item.get("params"), dict)):
            raise Refused(400, f"requests.{n}: needs a custom_id matching "
                                "^[a-zA-Z0-9_-]{1,64}$ and params")
    return [(item["custom_id"], item["params"], None) for item in items], {}


def _anthropic_batch(handler: Handler, store: BatchStore, batch: Batch) -> dict[str, Any]:
    counts = batch.counts()
    status = "ended" if batch.done else ("canceling" if batch.cancel_requested else "in_progress")
    host = handler.request_headers.get("host") or f"127.0.0.1:{handler.server.server_port}"
    return {
        "id": batch.id, "type": "message_batch", "processing_status": status,
        "request_counts": {"processing": counts["processing"], "succeeded": counts[SUCCEEDED],
                           "errored": counts[ERRORED], "canceled": counts[CANCELED],
                           "expired": counts[EXPIRED]},
        "ended_at": _rfc3339(batch.ended), "created_at": _rfc3339(batch.created),
        "expires_at": _rfc3339(batch.created + 86400), "archived_at": None,
        "cancel_initiated_at": _rfc3339(batch.cancel_requested),
        "results_url": f"http://{host}/v1/messages/batches/{batch.id}/results"
        if batch.done else None,
    }


def _anthropic_results(handler: Handler, batch: Batch) -> None:
    if not batch.done:
        raise Refused(400, "Batch is still processing (simulated)")
    lines = []
    for outcome in batch.outcomes or ():
        result: dict[str, Any] = {"type": outcome.kind}
        if outcome.kind == SUCCEEDED:
            result["message"] = outcome.body
        elif outcome.kind == ERRORED:
            result["error"] = outcome.body
        lines.append({"custom_id": outcome.custom_id, "result": result})
    handler.send(200, _lines(lines), "application/binary")


# -- Gemini -------------------------------------------------------------------------------

# A batch reports google.rpc.Status codes, not HTTP statuses.
_GRPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 500: 13, 501: 12, 503: 14,
              504: 4}
_GEMINI_STATE = {"running": "BATCH_STATE_RUNNING", SUCCEEDED: "BATCH_STATE_SUCCEEDED",
                 CANCELED: "BATCH_STATE_CANCELLED", EXPIRED: "BATCH_STATE_EXPIRED"}
_GEMINI_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"


def _gemini_requests(store: BatchStore, data: dict[str, Any], match: re.Match[str]) -> _Created:
    spec = W.as_dict(data.get("batch"))
    items = W.as_dict(W.as_dict(spec.get("inputConfig")).get("requests")).get("requests")
    if not isinstance(items, list) or not items:
        raise Refused(400, "batch.inputConfig.requests.requests must be a non-empty list "
                            "(the simulator takes inlined requests)")
    model = unquote(match.group(1))
    requests: list[Request] = []
    for n, item in enumerate(items):
        request = item.get("request") if isinstance(item, dict) else None
        if not isinstance(request, dict):
            raise Refused(400, f"requests[{n}].request must be an object")
        requests.append((str(W.as_dict(item.get("metadata")).get("key", n)), request, model))
    return requests, {"model": f"models/{model}", "display_name": spec.get("displayName")
                      or "batch", "metadata": [i.get("metadata") for i in items]}


def _gemini_batch(handler: Handler, store: BatchStore, batch: Batch) -> dict[str, Any]:
    counts = batch.counts()
    meta: dict[str, Any] = {
        "@type": _GEMINI_TYPE, "model": batch.extra.get("model"),
        "displayName": batch.extra.get("display_name"), "state": _GEMINI_STATE[batch.state],
        "createTime": _rfc3339(batch.created), "updateTime": _rfc3339(batch.ended or time.time()),
        "batchStats": {"requestCount": str(len(batch.requests)),
                       "successfulRequestCount": str(counts[SUCCEEDED]),
                       "failedRequestCount": str(counts[ERRORED]),
                       "pendingRequestCount": str(counts["processing"])},
    }
    op: dict[str, Any] = {"name": f"batches/{batch.id}", "metadata": meta, "done": batch.done}
    if batch.done:
        meta["endTime"] = _rfc3339(batch.ended)
    if batch.state == SUCCEEDED:
        responses = []
        for outcome, metadata in zip(batch.outcomes or (), batch.extra["metadata"], strict=True):
            entry: dict[str, Any] = {"metadata": metadata or {"key": outcome.custom_id}}
            if outcome.kind == SUCCEEDED:
                entry["response"] = outcome.body
            else:
                err = (outcome.body or {}).get("error") or {}
                entry["error"] = {"code": _GRPC_CODE.get(outcome.status, 13),
                                  "message": err.get("message", "failed (simulated)")}
            responses.append(entry)
        meta["output"] = output = {"inlinedResponses": {"inlinedResponses": responses}}
        op["response"] = {"@type": _GEMINI_TYPE + "Output", **output}
    return op


_OPENAI = _API(W.OPENAI, "batch_", _openai_requests, _openai_batch,
               lambda views: {"object": "list", **_listing(views)})
_ANTHROPIC = _API(W.ANTHROPIC, "msgbatch_", _anthropic_requests, _anthropic_batch,
                  deleted=lambda ident: {"id": ident, "type": "message_batch_deleted"})
_GEMINI = _API(W.GEMINI, "", _gemini_requests, _gemini_batch,
               lambda views: {"operations": views}, cancelled=lambda *_: {},
               deleted=lambda ident: {}, unique_ids=False, collection_creates=False)


def _files(handler: Handler, api: _API, match: re.Match[str], raw: bytes) -> None:
    ident, action = match.groups()
    store: BatchStore = handler.core.batches
    entry = (_upload(handler, store, raw) if handler.command == "POST" and ident is None
             else store.files.get(ident or ""))
    if entry is None:
        raise Refused(404, f"No such File object: {ident}")
    if action == "content":
        handler.send(200, entry["content"], "application/jsonl")
    else:
        handler.send_json({k: v for k, v in entry.items() if k != "content"})


def _upload(handler: Handler, store: BatchStore, raw: bytes) -> dict[str, Any]:
    head = f"Content-Type: {handler.request_headers.get('content-type', '')}\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head.encode("latin-1") + raw)
    parts = {str(part.get_param("name", header="content-disposition")): part
             for part in (message.iter_parts() if message.is_multipart() else ())}
    if "file" not in parts:
        raise Refused(400, "Upload needs a multipart 'file' field")
    content = parts["file"].get_payload(decode=True)
    purpose = parts["purpose"].get_content() if "purpose" in parts else "batch"
    return store.add_file(content if isinstance(content, bytes) else b"",
                          parts["file"].get_filename() or "upload.jsonl", purpose)


def _create(handler: Handler, api: _API, match: re.Match[str], raw: bytes) -> None:
    data = handler.read_json(raw or b"{}")
    store: BatchStore = handler.core.batches
    requests, extra = api.requests(store, data, match)
    if api.unique_ids and len({cid for cid, _, _ in requests}) != len(requests):
        raise Refused(400, "custom_id values must be unique in a batch")
    batch = store.create(api.provider, requests, api.id_prefix, **extra)
    handler.send_json(api.view(handler, store, batch))


def _batches(handler: Handler, api: _API, match: re.Match[str], raw: bytes) -> None:
    ident, action = match.groups()
    store, reply = handler.core.batches, handler.core.reply
    if ident is None and handler.command == "POST" and api.collection_creates:
        return _create(handler, api, match, raw)
    if ident is None:
        views = [api.view(handler, store, b) for b in reversed(store.all(reply))
                 if b.provider == api.provider]
        return handler.send_json(api.listing(views))
    if handler.command == "DELETE" and api.deleted is not None:
        if not store.delete(ident):
            raise Refused(404, f"No batch {ident} (simulated)")
        return handler.send_json(api.deleted(ident))
    if action == "cancel":
        store.cancel(ident)
    batch = store.get(ident, reply)
    if batch is None or batch.provider != api.provider:
        raise Refused(404, f"No batch found with id '{ident}' (simulated)")
    if action == "results":  # only Anthropic's route has it
        return _anthropic_results(handler, batch)
    answer = api.cancelled if action == "cancel" and api.cancelled else api.view
    handler.send_json(answer(handler, store, batch))


_Route = Callable[[Any, _API, "re.Match[str]", bytes], None]
_ROUTES: tuple[tuple[re.Pattern[str], _API, _Route], ...] = (
    (re.compile(r"^/v1/messages/batches(?:/([^/]+))?(?:/(cancel|results))?$"), _ANTHROPIC,
     _batches),
    (re.compile(r"^/v1/files(?:/([^/]+))?(?:/(content))?$"), _OPENAI, _files),
    (re.compile(r"^/v1/batches(?:/([^/]+))?(?:/(cancel))?$"), _OPENAI, _batches),
    (re.compile(r"^/v1beta/models/([^/:]+):batchGenerateContent$"), _GEMINI, _create),
    (re.compile(r"^/v1beta/batches(?:/([^/:]+))?(?::(cancel))?$"), _GEMINI, _batches),
)


def serve(handler: Handler, raw: bytes) -> bool:
    """Answer a Batch API request; False when the path is not one (the live routes go on).
    Raises Refused for a request answered with an error."""
    for pattern, api, route in _ROUTES:
        match = pattern.match(handler.request_path)
        if match:
            handler.provider = api.provider
            key = W.api_key(api.provider, handler.request_headers)
            if handler.core.require_key not in (None, key):
                raise Refused(401, "Invalid API key (simulated)")
            route(handler, api, match, raw)
            return True
    return False
