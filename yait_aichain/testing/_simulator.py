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
from .._checks import NUMBER, checked
from ._faults import Fault
from ._handler import Core, Handler
from ._http import Server
from ._limits import Limits
from ._prompt_cache import PromptCache
from ._script import Match, check_capacity, setting
from ._stats import DEFAULT_MAX_LOG, RequestRecord, Stats
from ._wire import Reply

#: Interface the simulator binds by default: loopback only, never the network.
DEFAULT_HOST = "127.0.0.1"
# How often serve_forever() checks for shutdown; it bounds how long close() takes.
_POLL_INTERVAL = 0.05
_JOIN_TIMEOUT = 1.0


def _reply(value: Any) -> Reply | None:
    if value is not None and not callable(value):
        raise ConfigurationError("reply must be None or a callable(info) -> str | dict | Fault")
    reply: Reply | None = value
    return reply


def _key(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError("require_key must be None or a non-empty str")
    return value


def _limits(rpm: Any, tpm: Any, window: Any) -> Limits:
    return Limits(checked(rpm, "rpm", low=1, none=True), checked(tpm, "tpm", low=1, none=True),
                  checked(window, "rate_window", NUMBER, above=True))


class Simulator:
    """A local LLM API server speaking the Anthropic Messages, OpenAI Chat Completions
    and Gemini generateContent wire formats, with latency, scripted faults and counters.

    Use it as a context manager, or call :meth:`start` and :meth:`close`. Every method
    and property may be used from any thread while it runs; a changed setting applies
    from the next request on.

    Args:
        host, port: where to listen; loopback and a free port (read back :attr:`port`).
        latency, jitter: each reply waits ``latency`` plus uniform(0, ``jitter``) seconds.
        seed: seeds jitter and ``fail_rate`` draws; None for fresh randomness.
        reply: ``callable(info: ReplyInfo)`` returning a str, a JSON value or a
            :class:`Fault` to serve. Default: :func:`summary` of the last user text.
        require_key: when set, any other key in the provider's auth header gets a 401.
        strict: answer 400 where a real provider would (Anthropic without
            ``anthropic-version`` or ``max_tokens``, no model, no messages).
        record, max_log: keep the last ``max_log`` :class:`RequestRecord` in
            :attr:`requests_log`.
        rpm, tpm: requests and tokens (input plus ``max_tokens``, corrected to the tokens
            used) per key and provider per ``rate_window`` before the provider's real 429.
        rate_window: the simulated minute in seconds; shrink it for fast tests. Replies
            carry the provider's rate-limit headers (``rate_headers=False``: none).
        capacity, queue: serve at most ``capacity`` requests at once, as a local model
            server does; up to ``queue`` more wait in line (FIFO), any beyond get a 503.

    Raises:
        ConfigurationError: a bad argument.
    """

    latency = setting("_core", "latency", "Seconds each reply waits.")
    jitter = setting("_core", "jitter", "Upper bound of the uniform random extra wait, in seconds.")
    reply = setting("_core", "reply", "The reply callable, or None for the default summary.",
                    _reply)
    require_key = setting("_core", "require_key", "The only key accepted, or None to accept any.",
                          _key)

    def __init__(
        self, *, host: str = DEFAULT_HOST, port: int = 0, latency: float = 0.0,
        jitter: float = 0.0, seed: int | None = 0, reply: Reply | None = None,
        require_key: str | None = None, strict: bool = False, record: bool = True,
        max_log: int = DEFAULT_MAX_LOG, rpm: int | None = None, tpm: int | None = None,
        rate_window: float = 60.0, rate_headers: bool = True, capacity: int | None = None,
        queue: int | None = None,
    ) -> None:
        self._host, self._port = host, int(checked(port, "port", high=65535))
        self._core = Core(checked(seed, "seed", low=-math.inf, none=True), bool(record),
                          checked(max_log, "max_log", low=1), _limits(rpm, tpm, rate_window),
                          bool(strict), bool(rate_headers), check_capacity(capacity, queue))
        self.latency, self.jitter = latency, jitter
        self.reply, self.require_key = reply, require_key
        self._lifecycle = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = self._started = False

    def start(self) -> Simulator:
        """Bind and serve in a background thread; returns self. Raises RuntimeError when
        already started or closed (make a new Simulator), OSError when the port is taken."""
        with self._lifecycle:
            if self._closed:
                raise RuntimeError("this Simulator is closed; create a new one")
            if self._server is not None:
                raise RuntimeError("this Simulator is already running")
            server = Server((self._host, self._port), self._core, Handler)
            self._port = server.server_port
            thread = threading.Thread(target=server.serve_forever, daemon=True,
                                      name=f"yait-simulator-{self._port}",
                                      kwargs={"poll_interval": _POLL_INTERVAL})
            thread.start()
            self._server, self._thread, self._started = server, thread, True
        return self

    def close(self) -> None:
        """Stop serving and cut every connection, hung requests included, in well under
        a second; calling it again does nothing."""
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

    def __enter__(self) -> Simulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._server is not None

    def __repr__(self) -> str:
        state = "running" if self.running else ("closed" if self._closed else "not started")
        return f"<Simulator {self.url if self._started else self._host} {state}>"

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
        """``http://HOST:PORT``, the server root (RuntimeError before :meth:`start`)."""
        if not self._started:
            raise RuntimeError("the Simulator has no port yet; call start() or use 'with'")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for Anthropic and Gemini clients: the root (they add ``/v1/messages``
        and ``/v1[beta]/models/...``)."""
        return self.url

    gemini_base_url = anthropic_base_url

    @property
    def openai_base_url(self) -> str:
        """Base URL for OpenAI clients (``/v1``; they add ``/chat/completions``)."""
        return self.url + "/v1"

    def env(self, api_key: str | None = None) -> dict[str, str]:
        """The variables the official SDKs and yait_aichain read to find a server
        (``GOOGLE_GEMINI_BASE_URL`` for google-genai), and their keys when ``api_key``
        is given."""
        env = {"ANTHROPIC_BASE_URL": self.anthropic_base_url,
               "OPENAI_BASE_URL": self.openai_base_url,
               "GEMINI_BASE_URL": self.gemini_base_url,
               "GOOGLE_GEMINI_BASE_URL": self.gemini_base_url}
        if api_key is not None:
            env.update(ANTHROPIC_API_KEY=api_key, OPENAI_API_KEY=api_key, GEMINI_API_KEY=api_key)
        return env

    @property
    def limits(self) -> Limits:
        """The enforced limits (``rpm``, ``tpm``, ``window``)."""
        return self._core.limiter.limits

    def set_limits(self, rpm: int | None = None, tpm: int | None = None,
                   rate_window: float | None = None) -> None:
        """Change the enforced limits from the next request on (counts so far stay)."""
        window = self.limits.window if rate_window is None else rate_window
        self._core.limiter.limits = _limits(rpm, tpm, window)

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
        that break it while a conversation has fewer than ``first`` assistant turns: ``1``
        makes each first answer invalid and its re-ask valid, ``None`` all, ``0`` none.
        Without a ``reply`` callable only; scripted faults still come first."""
        self._core.invalid_first = checked(first, "first", none=True)

    def reset(self) -> None:
        """Zero the counters and empty the log; scripted faults stay."""
        self._core.counters.reset()

    def wait_for(self, condition: Callable[[Stats], bool], timeout: float = 5.0) -> bool:
        """Poll until ``condition(stats)`` is true, e.g. ``lambda s: s.in_flight == 3``;
        False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while not condition(self.stats):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True
