"""One HTTP exchange: read the request, pick a fault or a reply, wait, write. Each
connection has its own handler thread, and nothing here holds a lock while it waits."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from . import _batch_http
from . import _errors as E
from . import _faults as F
from . import _limits as L
from . import _wire as W
from ._batches import BatchStore
from ._http import LeanRequestHandler, Server
from ._prompt_cache import PromptCache
from ._script import Capacity, FaultScript
from ._stats import Counters, RequestRecord

logger = logging.getLogger("yait_aichain.testing")

_REASONS = {529: "Site Overloaded"}
_ROUTES_HINT = ("/v1/messages, /v1/chat/completions and /v1/models/{model}:generateContent "
                "(or /v1beta/...)")
# Ollama's words when its queue is full (OLLAMA_MAX_QUEUE).
_BUSY = "server busy, please try again. maximum pending requests exceeded"
# Body pieces of a slow drip go out about this often, whatever the rate.
_DRIP_TICK = 0.05
_JSON = "application/json"


class Core:
    """State shared by a Simulator and its handler threads. Plain attributes: a reader
    sees either the old or the new value, which is all a test needs."""

    def __init__(self, seed: int | None, record: bool, max_log: int, limits: L.Limits,
                 strict: bool, rate_headers: bool, capacity: Capacity | None) -> None:
        self.limiter = L.Limiter(limits)
        self.counters = Counters(record, max_log)
        self.script = FaultScript(seed)
        self.stop = threading.Event()
        self.latency = self.jitter = 0.0
        self.reply: W.Reply | None = None
        self.require_key: str | None = None
        self.strict, self.rate_headers, self.capacity = strict, rate_headers, capacity
        # Schema answers stay invalid while a conversation has fewer assistant turns
        # than this (None: always); see Simulator.invalid_answers().
        self.invalid_first: int | None = 0
        self.prompt_cache = PromptCache()
        self.batches = BatchStore(self.prompt_cache)


class Handler(LeanRequestHandler):
    """Serves requests on one keep-alive connection."""

    server_version = "yait-simulator"
    sys_version = ""
    # Without it a reply written in two segments can stall ~40 ms on delayed ACKs.
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: tests and benchmarks share the terminal; records and stats are the log."""

    def _exchange(self) -> None:
        self.core: Core = self.server.core
        self._started, self._arrived = time.monotonic(), time.time()
        self.request_path = self.path.partition("?")[0]
        self._seq = self.core.counters.begin(self.request_path)
        self._accounted = False
        self.provider: str | None = None
        self._info: W.ReplyInfo | None = None
        self._fault: F.Fault | None = None
        self._key: str | None = None
        self._limit_state: L.Decision | None = None
        try:
            try:
                self._serve()
            except E.Refused as exc:
                self.send_problem(*exc.args)
        except OSError:
            # The client went away, or close() shut the socket under us.
            self.close_connection = True
        finally:
            self._account(0)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _exchange

    def _account(self, status: int) -> None:
        """Count the request once; called before its last byte goes out."""
        if self._accounted:
            return
        self._accounted = True
        info = self._info
        self.core.counters.end(status, self._fault is not None, lambda: RequestRecord(
            time=self._arrived, path=self.request_path, provider=self.provider,
            model=info.model if info else None, headers=self.request_headers, status=status,
            body=info.body if info else None, duration=time.monotonic() - self._started,
            last_user_text=info.last_user_text if info else None, fault=self._fault))

    def _serve(self) -> None:
        info = self._read_request()
        if info is None:
            return  # a batch route answered it
        core, key = self.core, self._key or ""
        fault = core.script.pick(info)
        value: Any = None
        estimate = 0
        if fault is None:
            # Scripted faults come first; only a request that would be served counts
            # against the limits.
            estimate = W.requested_output(info.body)
            decision = self._limit_state = core.limiter.admit(
                info.provider, key, info.input_tokens, estimate)
            if decision.exceeded is not None:  # the provider's real 429, with its hints
                body, extra = E.limit_exceeded(info.provider, decision, info.model,
                                               self._request_id())
                return self.send_json(body, 429, extra)
            value = self._value(info)
            fault = value if isinstance(value, F.Fault) else None
        if fault is not None:
            # Error statuses answer at once; a broken reply waits as a generated one would.
            if fault.action in (F.STATUS, F.HANG, F.DROP) or self._generate():
                self._serve_fault(info, fault)
            return None
        # The prompt cache is looked up on arrival and written when the reply goes out.
        ticket = core.prompt_cache.begin(info)
        if not self._generate():
            return None
        try:
            text, tool_input = W.render(info, value)
        except (TypeError, ValueError) as exc:
            raise E.Refused(500, f"reply callable returned an unusable value: {exc}") from None
        # Output tokens counted as reply_body counts them.
        core.limiter.settle(info.provider, key, estimate, max(1, len(text.split())))
        self._limit_state = None  # the headers read the settled state
        reply = W.reply_body(info, text, tool_input)
        core.prompt_cache.finish(ticket, reply)
        self.send_json(reply)

    def _generate(self) -> bool:
        """Take a slot (``capacity=``) for the reply's latency; False when the simulator
        is closing (nothing more may go out), a 503 when the line is full."""
        core = self.core
        capacity = core.capacity
        if capacity is not None and not capacity.enter(core.stop):
            raise E.Refused(503, _BUSY, F.OVERLOADED)
        try:
            if core.stop.wait(core.script.delay(core.latency, core.jitter)):
                self.close_connection = True  # counted as a 0 when _exchange ends
                return False
        finally:
            if capacity is not None:
                capacity.leave()
        return True

    def _read_request(self) -> W.ReplyInfo | None:
        """The request as a ReplyInfo, or None when a batch route answered it. Raises
        E.Refused for a request answered with an error."""
        try:
            raw = self.read_body()
        except ValueError as exc:
            self.close_connection = True  # the stream is out of step now
            raise E.Refused(400, f"Unreadable request body: {exc}") from None
        if _batch_http.serve(self, raw):
            return None
        found = W.route(self.request_path)
        if found is None:
            raise E.Refused(404, f"Unknown path {self.request_path!r}; the simulator serves "
                            f"{_ROUTES_HINT}")
        provider, path_model = found
        self.provider = provider
        if self.command != "POST":
            raise E.Refused(405, f"Method {self.command} is not allowed; use POST", F.GENERIC,
                            (("Allow", "POST"),))
        self._key = W.api_key(provider, self.request_headers) or ""
        if self.core.require_key not in (None, self._key):
            status = E.fault_status(provider, F.Fault.unauthorized())
            raise E.Refused(status, None, F.UNAUTHORIZED)
        data = self.read_json(raw)
        info = self._info = W.read_request(provider, data, path_model, self._seq)
        # Streaming is refused even when not strict: a reply a streaming client cannot
        # parse would hide the real cause.
        if self.core.strict or data.get("stream") is True:
            problem = W.strict_problem(info, self.request_headers)
            if problem:
                raise E.Refused(400, problem)
        return info

    def read_json(self, raw: bytes) -> dict[str, Any]:
        """The JSON object a body holds. Raises E.Refused (a 400) for anything else."""
        try:
            data = W.loads(raw)
        except ValueError as exc:
            raise E.Refused(400, f"Request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise E.Refused(400, "Request body must be a JSON object")
        return data

    def _value(self, info: W.ReplyInfo) -> Any:
        """The reply value or a Fault to serve (the default answer may be None: the
        instance of a null schema). Raises E.Refused (a 500) when the callable raised."""
        reply = self.core.reply
        if reply is None:
            return W.answer(info, self.core.invalid_first)
        try:
            value = reply(info)
        except Exception as exc:  # any bug in user code becomes a visible 500
            logger.exception("simulator reply callable raised")
            raise E.Refused(500, f"reply callable raised {type(exc).__name__}: {exc}") from None
        return "" if value is None else value

    def _serve_fault(self, info: W.ReplyInfo, fault: F.Fault) -> None:
        self._fault = fault
        action = fault.action
        if action == F.STATUS:
            return self._status_fault(info.provider, fault)
        if action == F.HANG:
            self.core.stop.wait(fault.seconds)
        if action in (F.HANG, F.DROP):
            self.close_connection = True  # no status line: counted as a 0
            return None
        if action == F.EMPTY_REPLY:
            return self.send_json(W.reply_body(info, "", None, empty=True))
        payload = W.dumps(W.reply_body(info, *W.render(info, W.default_output(info))))
        if action == F.MALFORMED:
            return self.send(200, payload[: len(payload) // 2])
        if action == F.TRUNCATED:
            self.send(200, payload[: len(payload) // 2], length=len(payload))
            self.close_connection = True
            return None
        return self._drip(payload, fault.bytes_per_second or 1.0)

    def _status_fault(self, provider: str, fault: F.Fault) -> None:
        status, body, extra = E.fault_status(provider, fault), fault.body, fault.headers
        if body is None:
            return self.send_problem(status, None, fault.category, extra)
        if isinstance(body, (dict, list)):
            return self.send_json(body, status, extra)
        payload = body.encode("utf-8") if isinstance(body, str) else body
        return self.send(status, payload, "text/plain; charset=utf-8", extra)

    def send_problem(self, status: int, message: str | None = None, category: str = F.GENERIC,
                     extra: F.Headers = ()) -> None:
        """An error reply in the shape of the request's provider (a guess for a path that
        names none); Gemini's body repeats a Retry-After in ``extra`` as its RetryInfo."""
        provider = self.provider = (self.provider
                                    or W.guess_provider(self.request_path, self.request_headers))
        body = E.error_body(provider, status, category, message, E.retry_after(extra),
                            self._info.model if self._info else "", self._request_id())
        self.send_json(body, status, extra)

    def _request_id(self) -> str:
        return f"req_sim{self._seq:012d}"

    def _head(self, status: int, length: int, content_type: str, extra: F.Headers) -> bytes:
        reason = self.responses.get(status, (_REASONS.get(status, "Unknown"),))[0]
        lines = [f"HTTP/1.1 {status} {reason}", "Server: yait-simulator"]
        if not any(name.lower() == "content-type" for name, _ in extra):
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {length}")
        id_header = W.REQUEST_ID_HEADER.get(self.provider or "")
        if id_header:
            lines.append(f"{id_header}: {self._request_id()}")
        if self._key is not None and self.provider is not None and self.core.rate_headers:
            # Known once the key is: every reply from then on reports the key's limits.
            state = self._limit_state or self.core.limiter.state(self.provider, self._key)
            extra = L.headers(self.provider, state) + extra
        lines.extend(f"{name}: {value}" for name, value in extra)
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, status: int, payload: bytes, content_type: str = _JSON,
              extra: F.Headers = (), length: int | None = None) -> None:
        head = self._head(status, len(payload) if length is None else length, content_type,
                          extra)
        self._account(status)
        # One write: head and body leave in the same segment when they fit.
        self.wfile.write(head + payload)

    def send_json(self, value: Any, status: int = 200, extra: F.Headers = ()) -> None:
        self.send(status, W.dumps(value), extra=extra)

    def _drip(self, payload: bytes, rate: float) -> None:
        self.wfile.write(self._head(200, len(payload), _JSON, ()))
        step = max(1, int(rate * _DRIP_TICK))
        pause = step / rate
        for start in range(0, len(payload), step):
            last = start + step >= len(payload)
            if last:
                self._account(200)
            self.wfile.write(payload[start:start + step])
            if not last and self.core.stop.wait(pause):
                self._account(200)  # the status line went out before we stopped
                self.close_connection = True
                return
