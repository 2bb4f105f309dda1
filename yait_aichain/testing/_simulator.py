"""The public simulator object: lifecycle, settings, fault scripting and counters."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError
from ._batches import BatchControl
from ._capacity import check_capacity
from ._faults import Fault
from ._prompt_cache import PromptCache
from ._handler import Core
from ._limits import Limits
from ._script import Match
from ._server import Server
from ._stats import DEFAULT_MAX_LOG, RequestRecord, Stats
from ._wire import ReplyInfo

#: Interface the simulator binds by default: loopback only, never the network.
DEFAULT_HOST = "127.0.0.1"
# How often serve_forever() checks for shutdown; it bounds how long close() takes.
_POLL_INTERVAL = 0.05
_JOIN_TIMEOUT = 1.0

Reply = Callable[[ReplyInfo], Any]


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise ConfigurationError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _reply(value: Any) -> Reply | None:
    if value is not None and not callable(value):
        raise ConfigurationError("reply must be None or a callable(info) -> str | dict | Fault")
    reply: Reply | None = value
    return reply


def _limit(value: Any, name: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ConfigurationError(f"{name} must be None or an int >= 1, got {value!r}")
    return value


def _limits(rpm: Any, tpm: Any, window: Any) -> Limits:
    seconds = _seconds(window, "rate_window")
    if seconds <= 0:
        raise ConfigurationError(f"rate_window must be > 0, got {window!r}")
    return Limits(_limit(rpm, "rpm"), _limit(tpm, "tpm"), seconds)


def _key(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError("require_key must be None or a non-empty str")
    return value


class Simulator:
    """A local LLM API server speaking the Anthropic Messages, OpenAI Chat Completions
    and Gemini generateContent wire formats, with latency, scripted faults and counters.

    Use it as a context manager, or call :meth:`start` and :meth:`close`. Every method
    and property may be used from any thread while it runs; a changed setting applies
    from the next request on.

    Args:
        host: interface to bind; loopback by default.
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        latency: seconds each successful reply waits (settable later).
        jitter: adds uniform(0, jitter) seconds to each wait (settable later).
        seed: seeds jitter and ``fail_rate`` draws; None for fresh randomness.
        reply: ``callable(info: ReplyInfo)`` returning the reply: a str, a JSON value,
            or a :class:`Fault` to serve. Default: :func:`summary` of the last user text.
        require_key: when set, any other key in the provider's auth header gets a 401.
        strict: answer 400 where a real provider would (Anthropic without
            ``anthropic-version`` or ``max_tokens``, no model, no messages).
        record: keep a :class:`RequestRecord` per request in :attr:`requests_log`.
        max_log: most records kept; the oldest are dropped first.
        rpm: requests per key per ``rate_window`` before the provider's real 429 (None:
            unlimited). Keys are counted apart, per provider.
        tpm: tokens per key per ``rate_window`` (input tokens plus the ``max_tokens``
            asked for; corrected to the tokens used once answered).
        rate_window: the length of the simulated minute in seconds (60 by default;
            shrink it to make rate-limit tests fast). Every reply carries the provider's
            rate-limit headers for its key; Gemini's 429 carries ``RetryInfo`` instead.
        rate_headers: False sends no rate-limit headers at all (a local server).
        capacity: serve at most this many requests at once (None: no limit), as a local
            model server does: more wait in line, first come first served, so past it
            the round trip grows with the load while throughput stays flat.
        queue: with ``capacity``, at most this many wait (None: no bound); any beyond get
            a 503 at once, as Ollama answers when ``OLLAMA_MAX_QUEUE`` is full.

    Raises:
        ConfigurationError: a bad argument.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        latency: float = 0.0,
        jitter: float = 0.0,
        seed: int | None = 0,
        reply: Reply | None = None,
        require_key: str | None = None,
        strict: bool = False,
        record: bool = True,
        max_log: int = DEFAULT_MAX_LOG,
        rpm: int | None = None,
        tpm: int | None = None,
        rate_window: float = 60.0,
        rate_headers: bool = True,
        capacity: int | None = None,
        queue: int | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be an int from 0 to 65535, got {port!r}")
        if isinstance(max_log, bool) or not isinstance(max_log, int) or max_log < 1:
            raise ConfigurationError(f"max_log must be an int >= 1, got {max_log!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigurationError(f"seed must be an int or None, got {seed!r}")
        self._host = host
        self._port = port
        self._core = Core(
            latency=_seconds(latency, "latency"),
            jitter=_seconds(jitter, "jitter"),
            seed=seed,
            reply=_reply(reply),
            require_key=_key(require_key),
            strict=bool(strict),
            record=bool(record),
            max_log=max_log,
            limits=_limits(rpm, tpm, rate_window),
        )
        self._core.capacity = check_capacity(capacity, queue)
        self._core.rate_headers = bool(rate_headers)
        self._lifecycle = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Simulator:
        """Bind and serve in a background thread; returns self.

        Raises:
            RuntimeError: already started, or closed (make a new Simulator instead).
            OSError: the port could not be bound.
        """
        with self._lifecycle:
            if self._closed:
                raise RuntimeError("this Simulator is closed; create a new one")
            if self._server is not None:
                raise RuntimeError("this Simulator is already running")
            server = Server((self._host, self._port), self._core)
            self._port = server.server_port
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"yait-simulator-{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            self._started = True
        return self

    def close(self) -> None:
        """Stop serving and cut every connection, hung requests included. Returns in
        well under a second; calling it again does nothing."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._closed = True
            self._server = self._thread = None
        if server is None or thread is None:
            return
        # Order matters: wake sleeping and hung handlers first, then stop accepting,
        # then cut idle keep-alive connections whose handlers wait on a read.
        self._core.stop.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> Simulator:  # noqa: PYI034 (typing.Self needs 3.11)
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._server is not None

    def __repr__(self) -> str:
        state = "running" if self.running else ("closed" if self._closed else "not started")
        where = self.url if self._started else self._host
        return f"<Simulator {where} {state}>"

    # ------------------------------------------------------------------ addresses

    @property
    def host(self) -> str:
        """The bound interface."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (known after :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, the server root.

        Raises:
            RuntimeError: the simulator has not been started.
        """
        if not self._started:
            raise RuntimeError("the Simulator has no port yet; call start() or use 'with'")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for Anthropic clients (the root; they add ``/v1/messages``)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """Base URL for OpenAI clients (``/v1``; they add ``/chat/completions``)."""
        return self.url + "/v1"

    @property
    def gemini_base_url(self) -> str:
        """Base URL for Gemini clients (the root; they add ``/v1/models/...`` or
        ``/v1beta/models/...``)."""
        return self.url

    def env(self, api_key: str | None = None) -> dict[str, str]:
        """Environment variables that point clients here, the ones the official SDKs
        and yait_aichain read: ``ANTHROPIC_BASE_URL`` (anthropic), ``OPENAI_BASE_URL``
        (openai), ``GOOGLE_GEMINI_BASE_URL`` (google-genai) and ``GEMINI_BASE_URL``; plus
        ``ANTHROPIC_API_KEY``/``OPENAI_API_KEY``/``GEMINI_API_KEY`` when ``api_key`` is
        given."""
        env = {
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "OPENAI_BASE_URL": self.openai_base_url,
            "GEMINI_BASE_URL": self.gemini_base_url,
            "GOOGLE_GEMINI_BASE_URL": self.gemini_base_url,
        }
        if api_key is not None:
            env.update(ANTHROPIC_API_KEY=api_key, OPENAI_API_KEY=api_key, GEMINI_API_KEY=api_key)
        return env

    # ------------------------------------------------------------------ settings

    @property
    def latency(self) -> float:
        """Seconds each successful reply waits."""
        return self._core.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._core.latency = _seconds(value, "latency")

    @property
    def jitter(self) -> float:
        """Upper bound of the uniform random extra wait, in seconds."""
        return self._core.jitter

    @jitter.setter
    def jitter(self, value: float) -> None:
        self._core.jitter = _seconds(value, "jitter")

    @property
    def reply(self) -> Reply | None:
        """The reply callable, or None for the default summary."""
        return self._core.reply

    @reply.setter
    def reply(self, value: Reply | None) -> None:
        self._core.reply = _reply(value)

    @property
    def require_key(self) -> str | None:
        """The only key accepted, or None to accept any."""
        return self._core.require_key

    @require_key.setter
    def require_key(self, value: str | None) -> None:
        self._core.require_key = _key(value)

    @property
    def limits(self) -> Limits:
        """The enforced limits (``rpm``, ``tpm``, ``window``)."""
        return self._core.limiter.limits

    def set_limits(self, rpm: int | None = None, tpm: int | None = None,
                   rate_window: float | None = None) -> None:
        """Change the enforced limits from the next request on (counts so far stay)."""
        window = self.limits.window if rate_window is None else rate_window
        self._core.limiter.limits = _limits(rpm, tpm, window)

    # ------------------------------------------------------------------ faults

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        """Serve ``fault`` to the next ``times`` requests (queued after earlier ones)."""
        self._core.script.fail_next(fault, times)

    def fail_rate(self, share: float, fault: Fault) -> None:
        """Serve ``fault`` to a seeded random ``share`` (0..1) of requests. Calls add up;
        the shares together must not exceed 1."""
        self._core.script.fail_rate(share, fault)

    def fail_when(self, match: Match, fault: Fault, times: int | None = None) -> None:
        """Serve ``fault`` when the last user text contains ``match`` (a str), or when
        ``match(info)`` is true; ``times`` limits how often (None: always)."""
        self._core.script.fail_when(match, fault, times)

    def clear_faults(self) -> None:
        """Forget every scripted fault."""
        self._core.script.clear()

    @property
    def pending_faults(self) -> int:
        """How many ``fail_next`` faults are still queued."""
        return self._core.script.pending()

    @property
    def batches(self) -> BatchControl:
        """The Batch APIs' settings and state: ``delay``, ``expire``, ``fail_when()``,
        ``finish_all()``, ``created`` and ``list()``."""
        return BatchControl(self._core.batches)

    @property
    def prompt_cache(self) -> PromptCache:
        """The simulated prompt cache: ``ttl``, ``writes``, ``reads``, ``clear()``."""
        return self._core.prompt_cache

    # ------------------------------------------------------------------ counters

    @property
    def stats(self) -> Stats:
        """A consistent snapshot of the counters."""
        return self._core.counters.snapshot()

    @property
    def requests_log(self) -> list[RequestRecord]:
        """The recorded requests, oldest first (empty when ``record=False``)."""
        return self._core.counters.records()

    def invalid_answers(self, first: int | None = 1) -> None:
        """Answer structured-output requests (a JSON schema, a forced tool) with values
        that break their schema, to exercise re-asking.

        Each conversation is judged by itself, so this holds for any number of parallel
        items: answers are invalid while the request carries fewer than ``first`` earlier
        assistant turns. ``first=1`` makes each first answer invalid and a re-ask (which
        carries the bad answer) valid; ``None`` makes every answer invalid; ``0`` turns it
        off. Without a ``reply`` callable only; scripted faults still come first.
        """
        if first is not None and (isinstance(first, bool) or not isinstance(first, int)
                                  or first < 0):
            raise ConfigurationError(f"first must be an int >= 0 or None, got {first!r}")
        self._core.invalid_first = first

    def reset(self) -> None:
        """Zero the counters and empty the log; scripted faults stay."""
        self._core.counters.reset()

    def wait_for(self, condition: Callable[[Stats], bool], timeout: float = 5.0) -> bool:
        """Poll until ``condition(stats)`` is true, e.g. ``lambda s: s.in_flight == 3``;
        False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if condition(self.stats):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
