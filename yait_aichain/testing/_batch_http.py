"""The simulator's Batch API endpoints, in each provider's wire shape.

OpenAI: ``/v1/files`` (multipart upload, retrieve, ``/content``) and ``/v1/batches``
(create, list, retrieve, ``/cancel``). Anthropic: ``/v1/messages/batches`` (create, list,
retrieve, ``/cancel``, ``/results`` as JSON Lines, delete). Gemini:
``/v1beta/models/{model}:batchGenerateContent`` with inlined requests, and
``/v1beta/batches`` (list, get, ``:cancel``, delete). The official SDKs' batch calls work
against them. ``serve()`` is the one hook the request handler calls.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import unquote

from . import _errors as E
from . import _wire as W
from ._batches import CANCELED, ERRORED, EXPIRED, SUCCEEDED, Batch, BatchStore

__all__ = ["serve"]

_OPENAI = re.compile(r"^/v1/(files|batches)(?:/([^/]+))?(?:/(content|cancel))?$")
_ANTHROPIC = re.compile(r"^/v1/messages/batches(?:/([^/]+))?(?:/(cancel|results))?$")
_GEMINI_CREATE = re.compile(r"^/v1beta/models/([^/:]+):batchGenerateContent$")
_GEMINI = re.compile(r"^/v1beta/batches(?:/([^/:]+))?(?::(cancel))?$")
_LIVE_PATH = {"/v1/chat/completions": W.OPENAI}


def serve(handler: Any, raw: bytes) -> bool:
    """Answer a Batch API request; False when the path is not one (the live routes go on)."""
    path = handler._path
    for pattern, provider, func in ((_ANTHROPIC, W.ANTHROPIC, _anthropic),
                                    (_OPENAI, W.OPENAI, _openai),
                                    (_GEMINI_CREATE, W.GEMINI, _gemini_create),
                                    (_GEMINI, W.GEMINI, _gemini)):
        match = pattern.match(path)
        if match:
            handler._provider = provider
            core = handler._core
            if core.require_key is not None and \
                    W.api_key(provider, handler._headers) != core.require_key:
                _error(handler, provider, 401, "Invalid API key (simulated)")
                return True
            func(handler, core, match, raw)
            return True
    return False


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object from untrusted data, else an empty one."""
    return value if isinstance(value, dict) else {}


# -- helpers ------------------------------------------------------------------------------

def _json(handler: Any, value: Any, status: int = 200) -> None:
    handler._send(status, json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _error(handler: Any, provider: str, status: int, message: str) -> None:
    _json(handler, E.error_body(provider, status, message=message), status)


def _body(handler: Any, provider: str, raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        _error(handler, provider, 400, f"Request body is not valid JSON: {exc}")
        return None
    if not isinstance(data, dict):
        _error(handler, provider, 400, "Request body must be a JSON object")
        return None
    return data


def _rfc3339(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lines(values: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(v, separators=(",", ":")).encode("utf-8") + b"\n" for v in values)


def _store(core: Any) -> BatchStore:
    store: BatchStore = core.batches
    return store


def _found(handler: Any, provider: str, batch: Batch | None, batch_id: str) -> Batch | None:
    if batch is None or batch.provider != provider:
        _error(handler, provider, 404, f"No batch found with id '{batch_id}' (simulated)")
        return None
    return batch


# -- OpenAI -------------------------------------------------------------------------------

def _openai(handler: Any, core: Any, match: re.Match[str], raw: bytes) -> None:
    kind, ident, action = match.groups()
    store, method = _store(core), handler.command
    if kind == "files":
        if method == "POST" and ident is None:
            return _upload(handler, store, raw)
        entry = store.files.get(ident or "")
        if entry is None:
            return _error(handler, W.OPENAI, 404, f"No such File object: {ident}")
        if action == "content":
            handler._send(200, entry["content"], "application/jsonl")
            return None
        return _json(handler, {k: v for k, v in entry.items() if k != "content"})
    if method == "POST" and ident is None:
        return _openai_create(handler, store, raw)
    if ident is None:
        data = [_openai_batch(store, b) for b in reversed(store.all(core.reply))
                if b.provider == W.OPENAI]
        return _json(handler, {"object": "list", "data": data, "has_more": False,
                               "first_id": data[0]["id"] if data else None,
                               "last_id": data[-1]["id"] if data else None})
    if action == "cancel":
        store.cancel(ident)
    batch = _found(handler, W.OPENAI, store.get(ident, core.reply), ident)
    if batch is not None:
        _json(handler, _openai_batch(store, batch))


def _upload(handler: Any, store: BatchStore, raw: bytes) -> None:
    head = f"Content-Type: {handler._headers.get('content-type', '')}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            fields[str(name)] = (part.get_filename(), content)
    if "file" not in fields:
        return _error(handler, W.OPENAI, 400, "Upload needs a multipart 'file' field")
    filename, content = fields["file"]
    purpose = fields.get("purpose", (None, b"batch"))[1].decode("utf-8", "replace")
    entry = store.add_file(content, filename or "upload.jsonl", purpose)
    _json(handler, {k: v for k, v in entry.items() if k != "content"})


def _openai_create(handler: Any, store: BatchStore, raw: bytes) -> None:
    data = _body(handler, W.OPENAI, raw)
    if data is None:
        return
    entry = store.files.get(str(data.get("input_file_id")))
    if entry is None:
        return _error(handler, W.OPENAI, 400, "input_file_id does not name an uploaded file")
    endpoint = data.get("endpoint")
    if _LIVE_PATH.get(str(endpoint)) is None:
        return _error(handler, W.OPENAI, 400, f"endpoint {endpoint!r} is not supported here")
    requests = []
    for number, line in enumerate(entry["content"].splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            requests.append((str(item["custom_id"]), dict(item["body"]), None))
        except (ValueError, KeyError, TypeError):
            return _error(handler, W.OPENAI, 400, f"line {number} of the input file is not a "
                          "batch request ({custom_id, method, url, body})")
    ids = [cid for cid, _, _ in requests]
    if len(set(ids)) != len(ids):
        return _error(handler, W.OPENAI, 400, "custom_id values must be unique in a batch")
    batch = store.create(W.OPENAI, requests, "batch_", endpoint=endpoint,
                         input_file_id=entry["id"], metadata=data.get("metadata"),
                         completion_window=data.get("completion_window", "24h"))
    _json(handler, _openai_batch(store, batch))


def _openai_batch(store: BatchStore, batch: Batch) -> dict[str, Any]:
    counts = batch.counts()
    status = "in_progress"
    output_file = error_file = None
    if batch.done:
        kinds = {o.kind for o in batch.outcomes or ()}
        status = ("cancelled" if CANCELED in kinds else "expired" if EXPIRED in kinds
                  else "completed")
        output_file, error_file = _openai_files(store, batch)
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
    if "output_file_id" not in batch.extra:
        good: list[dict[str, Any]] = []
        bad: list[dict[str, Any]] = []
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
            (good if outcome.kind == SUCCEEDED else bad).append(line)
        batch.extra["output_file_id"] = (
            store.add_file(_lines(good), f"{batch.id}_output.jsonl", "batch_output")["id"]
            if good else None)
        batch.extra["error_file_id"] = (
            store.add_file(_lines(bad), f"{batch.id}_error.jsonl", "batch_output")["id"]
            if bad else None)
    return batch.extra["output_file_id"], batch.extra["error_file_id"]


# -- Anthropic ----------------------------------------------------------------------------

def _anthropic(handler: Any, core: Any, match: re.Match[str], raw: bytes) -> None:
    ident, action = match.groups()
    store, method = _store(core), handler.command
    if ident is None and method == "POST":
        return _anthropic_create(handler, store, raw)
    if ident is None:
        data = [_anthropic_batch(handler, b) for b in reversed(store.all(core.reply))
                if b.provider == W.ANTHROPIC]
        return _json(handler, {"data": data, "has_more": False,
                               "first_id": data[0]["id"] if data else None,
                               "last_id": data[-1]["id"] if data else None})
    if method == "DELETE":
        if not store.delete(ident):
            return _error(handler, W.ANTHROPIC, 404, f"No batch {ident} (simulated)")
        return _json(handler, {"id": ident, "type": "message_batch_deleted"})
    if action == "cancel":
        store.cancel(ident)
    batch = _found(handler, W.ANTHROPIC, store.get(ident, core.reply), ident)
    if batch is None:
        return
    if action == "results":
        if not batch.done:
            return _error(handler, W.ANTHROPIC, 400, "Batch is still processing (simulated)")
        handler._send(200, _lines([_anthropic_result(o) for o in batch.outcomes or ()]),
                      "application/binary")
        return None
    _json(handler, _anthropic_batch(handler, batch))


def _anthropic_create(handler: Any, store: BatchStore, raw: bytes) -> None:
    data = _body(handler, W.ANTHROPIC, raw)
    if data is None:
        return
    items = data.get("requests")
    if not isinstance(items, list) or not items:
        return _error(handler, W.ANTHROPIC, 400, "requests: must be a non-empty list")
    requests = []
    for n, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("custom_id"), str)
                and re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", item["custom_id"])
                and isinstance(item.get("params"), dict)):
            return _error(handler, W.ANTHROPIC, 400, f"requests.{n}: needs a custom_id matching "
                          "^[a-zA-Z0-9_-]{1,64}$ and params")
        requests.append((item["custom_id"], item["params"], None))
    if len({cid for cid, _, _ in requests}) != len(requests):
        return _error(handler, W.ANTHROPIC, 400, "custom_id values must be unique")
    batch = store.create(W.ANTHROPIC, requests, "msgbatch_")
    _json(handler, _anthropic_batch(handler, batch))


def _anthropic_batch(handler: Any, batch: Batch) -> dict[str, Any]:
    counts = batch.counts()
    status = "ended" if batch.done else ("canceling" if batch.cancel_requested else "in_progress")
    host = handler._headers.get("host") or f"127.0.0.1:{handler.server.server_port}"
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


def _anthropic_result(outcome: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"type": outcome.kind}
    if outcome.kind == SUCCEEDED:
        result["message"] = outcome.body
    elif outcome.kind == ERRORED:
        result["error"] = outcome.body
    return {"custom_id": outcome.custom_id, "result": result}


# -- Gemini -------------------------------------------------------------------------------

_GRPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 500: 13, 501: 12, 503: 14,
              504: 4}
_GEMINI_STATE = {"running": "BATCH_STATE_RUNNING", SUCCEEDED: "BATCH_STATE_SUCCEEDED",
                 CANCELED: "BATCH_STATE_CANCELLED", EXPIRED: "BATCH_STATE_EXPIRED"}


def _gemini_create(handler: Any, core: Any, match: re.Match[str], raw: bytes) -> None:
    data = _body(handler, W.GEMINI, raw)
    if data is None:
        return
    model = unquote(match.group(1))
    spec = _obj(data.get("batch"))
    config = _obj(spec.get("inputConfig"))
    holder = _obj(config.get("requests"))
    items = holder.get("requests")
    if not isinstance(items, list) or not items:
        return _error(handler, W.GEMINI, 400, "batch.inputConfig.requests.requests must be a "
                      "non-empty list (the simulator takes inlined requests)")
    requests = []
    for n, item in enumerate(items):
        request = item.get("request") if isinstance(item, dict) else None
        if not isinstance(request, dict):
            return _error(handler, W.GEMINI, 400, f"requests[{n}].request must be an object")
        meta = _obj(item.get("metadata"))
        requests.append((str(meta.get("key", n)), request, model))
    batch = _store(core).create(W.GEMINI, requests, "", model=f"models/{model}",
                                display_name=spec.get("displayName") or "batch",
                                metadata=[i.get("metadata") for i in items])
    _json(handler, _gemini_batch(batch))


def _gemini(handler: Any, core: Any, match: re.Match[str], raw: bytes) -> None:
    ident, action = match.groups()
    store = _store(core)
    if ident is None:
        ops = [_gemini_batch(b) for b in reversed(store.all(core.reply)) if b.provider == W.GEMINI]
        return _json(handler, {"operations": ops})
    if handler.command == "DELETE":
        store.delete(ident)
        return _json(handler, {})
    if action == "cancel":
        if _found(handler, W.GEMINI, store.cancel(ident), ident) is not None:
            _json(handler, {})
        return
    batch = _found(handler, W.GEMINI, store.get(ident, core.reply), ident)
    if batch is not None:
        _json(handler, _gemini_batch(batch))


def _gemini_batch(batch: Batch) -> dict[str, Any]:
    counts = batch.counts()
    kinds = {o.kind for o in batch.outcomes or ()}
    state = "running"
    if batch.done:
        state = CANCELED if CANCELED in kinds else EXPIRED if EXPIRED in kinds else SUCCEEDED
    meta: dict[str, Any] = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
        "model": batch.extra.get("model"), "displayName": batch.extra.get("display_name"),
        "state": _GEMINI_STATE[state], "createTime": _rfc3339(batch.created),
        "updateTime": _rfc3339(batch.ended or time.time()),
        "batchStats": {"requestCount": str(len(batch.requests)),
                       "successfulRequestCount": str(counts[SUCCEEDED]),
                       "failedRequestCount": str(counts[ERRORED]),
                       "pendingRequestCount": str(counts["processing"])},
    }
    op: dict[str, Any] = {"name": f"batches/{batch.id}", "metadata": meta, "done": batch.done}
    if batch.done:
        meta["endTime"] = _rfc3339(batch.ended)
    if state == SUCCEEDED:
        keys = batch.extra.get("metadata") or []
        responses = []
        for n, outcome in enumerate(batch.outcomes or ()):
            entry: dict[str, Any] = {"metadata": keys[n] if n < len(keys) and keys[n]
                                     else {"key": outcome.custom_id}}
            if outcome.kind == SUCCEEDED:
                entry["response"] = outcome.body
            else:
                # A batch reports google.rpc.Status codes, not HTTP statuses.
                err = (outcome.body or {}).get("error") or {}
                entry["error"] = {"code": _GRPC_CODE.get(outcome.status, 13),
                                  "message": err.get("message", "failed (simulated)")}
            responses.append(entry)
        output = {"inlinedResponses": {"inlinedResponses": responses}}
        meta["output"] = output
        op["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                                   "GenerateContentBatchOutput", **output}
    return op
