"""One HTTP exchange: read the request, pick a fault or a reply, wait, write.

Each connection gets its own handler thread; nothing here holds a lock while it waits,
so slow replies overlap freely.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from . import _batch_http
from . import _errors as E
from . import _faults as F
from . import _instances
from . import _limits as L
from . import _wire as W
from ._batches import BatchStore
from ._prompt_cache import PromptCache
from ._http import LeanRequestHandler
from ._capacity import Capacity
from ._script import FaultScript
from ._stats import Counters, RequestRecord

logger = logging.getLogger("yait_aichain.testing")

_REASONS = {529: "Site Overloaded"}
_ROUTES_HINT = ("/v1/messages, /v1/chat/completions and /v1/models/{model}:generateContent "
                "(or /v1beta/...)")
# Ollama's words when its queue is full (OLLAMA_MAX_QUEUE).
_BUSY = "server busy, please try again. maximum pending requests exceeded"
# Body pieces of a slow drip go out about this often, whatever the rate.
_DRIP_TICK = 0.05


class Core:
    """State shared by a Simulator and its handler threads. Plain attributes: a reader
    sees either the old or the new value, which is all a test needs."""

    def __init__(
        self,
        *,
        latency: float,
        jitter: float,
        seed: int | None,
        reply: Callable[[W.ReplyInfo], Any] | None,
        require_key: str | None,
        strict: bool,
        record: bool,
        max_log: int,
        limits: L.Limits,
    ) -> None:
        self.limiter = L.Limiter(limits)
        self.latency = latency
        self.jitter = jitter
        self.reply = reply
        self.require_key = require_key
        self.strict = strict
        self.counters = Counters(record, max_log)
        self.script = FaultScript(seed)
        self.stop = threading.Event()
        self.capacity: Capacity | None = None  # Simulator(capacity=, queue=)
        self.rate_headers = True  # Simulator(rate_headers=False): a server that says nothing
        # Schema answers stay invalid while a conversation has fewer assistant turns
        # than this (None: always); see Simulator.invalid_answers().
        self.invalid_first: int | None = 0
        # Batch APIs (their own module): batches answer with the live reply logic.
        self.prompt_cache = PromptCache()
        self.batches = BatchStore(W.read_request, self.prompt_cache)


class Handler(LeanRequestHandler):
    """Serves requests on one keep-alive connection."""

    server_version = "yait-simulator"
    sys_version = ""
    # Without it a reply written in two segments can stall ~40 ms on delayed ACKs.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        # Tests and benchmarks share the terminal; records and stats are the log.
        pass

    def do_POST(self) -> None:
        self._exchange(post=True)

    def do_GET(self) -> None:
        self._exchange(post=False)

    do_PUT = do_DELETE = do_PATCH = do_GET

    # ------------------------------------------------------------------ bookkeeping

    def _exchange(self, post: bool) -> None:
        core: Core = self.server.core  # type: ignore[attr-defined]
        self._core = core
        self._started = time.monotonic()
        self._arrived = time.time()
        self._path = self.path.partition("?")[0]
        self._seq = core.counters.begin(self._path)
        self._accounted = False
        self._provider: str | None = None
        self._model: str | None = None
        self._body: Any = None
        self._last: str | None = None
        self._fault: F.Fault | None = None
        self._key: str | None = None
        self._limit_state: L.Decision | None = None
        self._headers: dict[str, str] = self.headers  # type: ignore[assignment]
        try:
            self._serve(post)
        except OSError:
            # The client went away, or close() shut the socket under us.
            self.close_connection = True
        finally:
            self._account(0)

    def _account(self, status: int) -> None:
        """Count the request once; called before its last byte goes out."""
        if self._accounted:
            return
        self._accounted = True
        counters = self._core.counters
        record = None
        if counters.recording:
            record = RequestRecord(
                time=self._arrived,
                path=self._path,
                provider=self._provider,
                model=self._model,
                headers=self._headers,
                body=self._body,
                status=status,
                last_user_text=self._last,
                duration=time.monotonic() - self._started,
                fault=self._fault,
            )
        counters.end(status, self._fault is not None, record)

    def _wait(self, seconds: float | None) -> bool:
        """Sleep without holding anything; False when the simulator is closing."""
        if seconds is not None and seconds <= 0:
            return not self._core.stop.is_set()
        return not self._core.stop.wait(seconds)

    def _abort(self) -> None:
        self._account(0)
        self.close_connection = True

    # ------------------------------------------------------------------ the exchange

    def _serve(self, post: bool) -> None:
        info = self._read_request(post)
        if info is None:
            return  # an error reply went out
        core = self._core
        fault = core.script.pick(info)
        value: Any = None
        estimate = 0
        if fault is None:
            # Scripted faults come first; only a request that would be served counts
            # against the limits.
            estimate = W.requested_output(info.body)
            decision = core.limiter.admit(info.provider, self._key or "", info.input_tokens,
                                          estimate)
            self._limit_state = decision
            if not decision.allowed:
                return self._over_limit(info, decision)
            value, fault = self._value(info)
            if value is None and fault is None:
                return  # the reply callable failed; a 500 went out
        if fault is not None and fault.action in (F.STATUS, F.HANG, F.DROP):
            return self._serve_fault(info, fault)
        # The prompt cache is looked up on arrival and written when the reply goes out.
        ticket = core.prompt_cache.begin(info) if fault is None else None
        if not self._generate(info):
            return None
        if fault is not None:
            return self._serve_fault(info, fault)
        try:
            text, tool_input = W.render(info, value)
        except (TypeError, ValueError) as exc:
            return self._error(info.provider, 500, message=f"reply callable returned an "
                               f"unusable value: {exc}")
        self._settle(estimate, text)
        reply = W.reply_body(info, text, tool_input)
        core.prompt_cache.finish(ticket, reply)
        self._send(200, _dumps(reply))

    def _generate(self, info: W.ReplyInfo) -> bool:
        """Take a slot (``capacity=``) for the reply's latency; False when nothing more
        may go out (a 503 for a full line went out, or the simulator is closing)."""
        core = self._core
        capacity = core.capacity
        if capacity is not None and not capacity.enter(core.stop):
            self._error(info.provider, 503, F.OVERLOADED, message=_BUSY)
            return False
        try:
            if not self._wait(core.script.delay(core.latency, core.jitter)):
                self._abort()
                return False
        finally:
            if capacity is not None:
                capacity.leave()
        return True

    def _read_request(self, post: bool) -> W.ReplyInfo | None:
        """The request as a ReplyInfo, or None after answering it with an error."""
        try:
            raw = self._read_body()
        except ValueError as exc:
            self.close_connection = True  # the stream is out of step now
            provider = W.guess_provider(self._path, self._headers)
            self._error(provider, 400, message=f"Unreadable request body: {exc}")
            return None
        if _batch_http.serve(self, raw):
            return None
        found = W.route(self._path)
        if found is None:
            provider = W.guess_provider(self._path, self._headers)
            message = f"Unknown path {self._path!r}; the simulator serves {_ROUTES_HINT}"
            self._error(provider, 404, message=message)
            return None
        provider, path_model = found
        self._provider = provider
        if not post:
            self._error(provider, 405, message=f"Method {self.command} is not allowed; "
                        "use POST", extra=(("Allow", "POST"),))
            return None
        key = W.api_key(provider, self._headers)
        if self._core.require_key is not None and key != self._core.require_key:
            self._error(provider, E.fault_status(provider, F.Fault.unauthorized()),
                        F.UNAUTHORIZED)
            return None
        self._key = key or ""
        data = self._json(provider, raw)
        if data is None:
            return None
        self._body = data
        info = W.read_request(provider, data, path_model, self._seq)
        self._model, self._last = info.model, info.last_user_text
        # Streaming is refused even when not strict: a reply a streaming client cannot
        # parse would hide the real cause.
        if self._core.strict or data.get("stream") is True:
            problem = W.strict_problem(info, self._headers)
            if problem:
                self._error(provider, 400, message=problem)
                return None
        return info

    def _json(self, provider: str, raw: bytes) -> dict[str, Any] | None:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            self._error(provider, 400, message=f"Request body is not valid JSON: {exc}")
            return None
        if not isinstance(data, dict):
            self._error(provider, 400, message="Request body must be a JSON object")
            return None
        return data

    def _settle(self, estimate: int, text: str) -> None:
        if self._key is not None and self._provider is not None:
            used = max(1, len(text.split()))  # as reply_body counts output tokens
            self._core.limiter.settle(self._provider, self._key, estimate, used)
            self._limit_state = None  # the headers read the settled state

    def _over_limit(self, info: W.ReplyInfo, d: L.Decision) -> None:
        """The provider's real 429 for a configured limit, with its hints."""
        assert d.exceeded is not None
        limit = d.rpm if d.exceeded == "requests" else d.tpm
        body = E.limit_exceeded(info.provider, d.exceeded, limit, d.retry_after, info.model,
                                self._request_id())
        extra: tuple[tuple[str, str], ...] = ()
        if info.provider != W.GEMINI:  # Gemini's hint is the RetryInfo in the body
            extra = (("retry-after", str(max(1, math.ceil(d.retry_after)))),)
        self._send(429, _dumps(body), extra=extra)

    def _value(self, info: W.ReplyInfo) -> tuple[Any, F.Fault | None]:
        reply = self._core.reply
        if reply is None:
            return _instances.answer(info, self._core.invalid_first), None
        try:
            value = reply(info)
        except Exception as exc:  # any bug in user code becomes a visible 500
            logger.exception("simulator reply callable raised")
            self._error(info.provider, 500,
                        message=f"reply callable raised {type(exc).__name__}: {exc}")
            return None, None
        if isinstance(value, F.Fault):
            return None, value
        if value is None:
            value = ""
        return value, None

    def _serve_fault(self, info: W.ReplyInfo, fault: F.Fault) -> None:
        self._fault = fault
        action = fault.action
        if action == F.STATUS:
            return self._status_fault(info.provider, fault)
        if action == F.HANG:
            self._wait(fault.seconds)
            return self._abort()
        if action == F.DROP:
            return self._abort()
        if action == F.EMPTY_REPLY:
            return self._send(200, _dumps(W.empty_body(info)))
        payload = _dumps(W.reply_body(info, *W.render(info, W.default_output(info))))
        if action == F.MALFORMED:
            return self._send(200, payload[: len(payload) // 2])
        if action == F.TRUNCATED:
            self._send(200, payload[: len(payload) // 2], length=len(payload))
            self.close_connection = True
            return None
        return self._drip(payload, fault.bytes_per_second or 1.0)

    def _status_fault(self, provider: str, fault: F.Fault) -> None:
        status = E.fault_status(provider, fault)
        extra = fault.headers
        body = fault.body
        content_type = "application/json"
        if body is None:
            retry_after = next((v for k, v in extra if k.lower() == "retry-after"), None)
            payload = _dumps(E.error_body(provider, status, fault.category,
                                          retry_after=retry_after, model=self._model or "",
                                          request_id=self._request_id()))
        elif isinstance(body, (dict, list)):
            payload = _dumps(body)
        else:
            payload = body.encode("utf-8") if isinstance(body, str) else body
            content_type = "text/plain; charset=utf-8"
        self._send(status, payload, content_type, extra)

    def _error(
        self,
        provider: str,
        status: int,
        category: str = F.GENERIC,
        message: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._provider = self._provider or provider
        body = E.error_body(provider, status, category, message, model=self._model or "",
                            request_id=self._request_id())
        self._send(status, _dumps(body), extra=extra)

    def _request_id(self) -> str:
        return f"req_sim{self._seq:012d}"

    # ------------------------------------------------------------------ the socket

    def _read_body(self) -> bytes:
        if "chunked" in self._headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = self._headers.get("content-length")
        if not length:
            return b""
        size = int(length)
        if size < 0:
            raise ValueError("negative Content-Length")
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionResetError("the client closed the connection mid-body")
        return data

    def _read_chunked(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionResetError("the client closed the connection mid-body")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(pieces)
            pieces.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _head(
        self,
        status: int,
        length: int,
        content_type: str,
        extra: tuple[tuple[str, str], ...],
    ) -> bytes:
        reason = self.responses.get(status, (_REASONS.get(status, "Unknown"),))[0]
        lines = [f"HTTP/1.1 {status} {reason}", "Server: yait-simulator"]
        if not any(name.lower() == "content-type" for name, _ in extra):
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {length}")
        id_header = W.REQUEST_ID_HEADER.get(self._provider or "")
        if id_header:
            lines.append(f"{id_header}: {self._request_id()}")
        lines.extend(f"{name}: {value}" for name, value in self._limit_headers())
        lines.extend(f"{name}: {value}" for name, value in extra)
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _limit_headers(self) -> tuple[tuple[str, str], ...]:
        # Known once the key is: every reply from then on reports the key's limits.
        if self._key is None or self._provider is None or self._provider == W.GEMINI \
                or not self._core.rate_headers:
            return ()
        state = self._limit_state or self._core.limiter.state(self._provider, self._key)
        return L.headers(self._provider, state)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        extra: tuple[tuple[str, str], ...] = (),
        length: int | None = None,
    ) -> None:
        head = self._head(status, len(payload) if length is None else length, content_type,
                          extra)
        self._account(status)
        # One write: head and body leave in the same segment when they fit.
        self.wfile.write(head + payload)

    def _drip(self, payload: bytes, rate: float) -> None:
        self.wfile.write(self._head(200, len(payload), "application/json", ()))
        step = max(1, int(rate * _DRIP_TICK))
        pause = step / rate
        for start in range(0, len(payload), step):
            last = start + step >= len(payload)
            if last:
                self._account(200)
            self.wfile.write(payload[start:start + step])
            if not last and not self._wait(pause):
                self._account(200)  # the status line went out before we stopped
                self.close_connection = True
                return


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
