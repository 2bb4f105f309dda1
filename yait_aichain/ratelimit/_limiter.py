"""RateLimit: requests and tokens per minute, shared by every Model and Pool given it."""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from ._bucket import BucketSpec, LocalBackend
from ._headers import Reading
from ._learn import Belief, believe, tighter
from ._redis import RedisBackend, sanitise_url

__all__ = [
    "DEFAULT_MAX_PAUSE",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_TOKEN_BURST_SECONDS",
    "RateLimit",
]

#: Output tokens charged up front when a call sets no ``max_tokens``; corrected afterwards
#: from the response's usage.
DEFAULT_OUTPUT_TOKENS = 1000
#: Token credit a caller may use at once, in seconds of budget: smooth, like the requests
#: bucket, so no short window sees much more than its share. A request bigger than this
#: is not refused; it waits until its share has accrued.
DEFAULT_TOKEN_BURST_SECONDS = 1.0
#: The longest 429 ``Retry-After`` a limit passes on to everyone sharing it.
DEFAULT_MAX_PAUSE = 60.0
# A learned rate must move by more than this share before the buckets are retuned: each
# response reports a slightly different "remaining", and a steady pace is the point.
_RETUNE_SHARE = 0.02
_OUTPUT_HEADROOM = 1.25

# Local limits live here by id, so that a copy (deepcopy, pickling inside one process as
# Dask's threads do) keeps sharing the original's buckets instead of starting its own.
_local_backends: weakref.WeakValueDictionary[str, LocalBackend] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def _rate(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number or None; got {value!r}")
    return float(value)


class RateLimit:
    """At most ``requests_per_minute`` requests and ``tokens_per_minute`` tokens, for every
    call made through it.

    Give one object to several Models (``Model(..., rate_limit=limit)``) or Pools
    (``Pool(..., rate_limit=limit)``) and they share one budget; with ``redis_url`` every
    process and host using the same URL and ``key`` shares it. Calls wait for their turn
    (they are never refused): the wait is interruptible (Ctrl-C, a cancelled run) and
    bounded by the call's time budget.

    It also learns: every response that carries the provider's rate-limit headers
    (OpenAI's ``x-ratelimit-*``, Anthropic's ``anthropic-ratelimit-*``) tells it the
    account's real limits, and a limit lower than the one given here tightens it (the
    given limits are ceilings; a header never loosens them). A budget the headers report
    as spent pauses every caller until its reset. :attr:`believed_requests_per_minute`
    and :attr:`believed_tokens_per_minute` say what it paces by now. With ``redis_url``
    the budget itself is shared; each process learns the rates from its own responses.

    Both limits are smooth buckets: requests go out evenly, one every ``60 / rpm`` seconds
    at most, so every window of W seconds holds at most ``rpm / 60 * W + 1`` requests;
    tokens accrue at ``tpm / 60`` per second with one second of credit. Tokens are charged
    before a call from an estimate (prompt characters / 4, plus ``max_tokens`` or
    ``output_tokens``) and corrected from the response's usage.

    Args:
        requests_per_minute: the request budget, or None for no request limit.
        tokens_per_minute: the token budget (input plus output), or None.
        redis_url: e.g. ``"redis://127.0.0.1:6379/0"`` to share the limit across
            processes; needs the redis package (``pip install -e ".[redis]"`` in a checkout).
        key: the name of the shared budget in Redis (required with ``redis_url``);
            only a label otherwise.
        output_tokens: output tokens charged up front when a call sets no ``max_tokens``.
        clock: a monotonic clock for an in-process limit (tests inject a fake one).
        sleep: ``sleep(seconds)`` used for waits; None uses the current Pool item's
            interruptible sleep.

    Raises:
        ConfigurationError: no limit given, a bad number, or ``redis_url`` without ``key``.

    Thread-safe. Pickles as its settings only (not ``clock``/``sleep``): a copy in the
    same process shares this object's budget; a copy in another process shares it only
    through Redis (a local limit there is a separate budget of the same size).
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        redis_url: str | None = None,
        key: str | None = None,
        output_tokens: int = DEFAULT_OUTPUT_TOKENS,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ):
        self.requests_per_minute = _rate("requests_per_minute", requests_per_minute)
        self.tokens_per_minute = _rate("tokens_per_minute", tokens_per_minute)
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ConfigurationError(
                "RateLimit needs requests_per_minute=, tokens_per_minute= or both"
            )
        if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) \
                or output_tokens < 0:
            raise ConfigurationError(f"output_tokens must be an int >= 0; got {output_tokens!r}")
        if redis_url is not None:
            if not isinstance(redis_url, str) or not redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    "redis_url must look like 'redis://host:6379/0' (or rediss://, unix://)"
                )
            if not isinstance(key, str) or not key:
                raise ConfigurationError(
                    "RateLimit(redis_url=...) needs key='...': the name of the shared budget, "
                    "the same in every process that should share it"
                )
        elif key is not None and not isinstance(key, str):
            raise ConfigurationError(f"key must be a str; got {type(key).__name__}")
        if clock is not None and redis_url is not None:
            raise ConfigurationError("clock= applies to in-process limits; Redis keeps time itself")
        self._setup(redis_url, key, output_tokens, clock, sleep)

    def _setup(self, redis_url: str | None, key: str | None, output_tokens: int,
               clock: Callable[[], float] | None, sleep: Callable[[float], None] | None) -> None:
        self.redis_url = redis_url
        self.key = key
        self.output_tokens = output_tokens
        self._clock = clock
        self.sleep = sleep
        self._id = uuid.uuid4().hex
        self._learned: Belief | None = None
        self._output_mean: float | None = None
        self._backend: Any = None
        self._backend_pid = 0
        self._init_lock = threading.Lock()

    @property
    def pause_only(self) -> bool:
        """True for a provider account's 429 pause (no budget of its own)."""
        return self.believed_requests_per_minute is None and self.believed_tokens_per_minute is None

    # -- settings ------------------------------------------------------------------

    @classmethod
    def _learning(cls, clock: Callable[[], float] | None = None) -> RateLimit:
        """A limit with no ceilings that paces only by what headers teach it (the
        per-account budget of ``max_flows="auto"``); until then it never waits."""
        limit = cls(requests_per_minute=1, clock=clock)  # built lazily: nothing paced yet
        limit.requests_per_minute = None
        limit._output_mean = float(limit.output_tokens)  # adapts to the answers seen
        return limit

    def _saw_output(self, tokens: int) -> None:
        """A learning limit's up-front output charge follows the answers actually seen
        (a mean with some headroom): a fixed 1,000-token guess would hold so much budget
        for calls in flight that it, not the provider, would set the pace. The response's
        usage still corrects each charge."""
        mean = self._output_mean
        if mean is None:
            return  # a user's limit keeps its documented estimate
        mean = 0.9 * mean + 0.1 * max(0, tokens)
        self._output_mean = mean
        self.output_tokens = max(1, math.ceil(mean * _OUTPUT_HEADROOM))

    @property
    def believed_requests_per_minute(self) -> float | None:
        """The request rate it paces by: the given limit, or a lower one it learned."""
        learned = self._learned.requests_per_minute if self._learned else None
        return tighter(self.requests_per_minute, learned)

    @property
    def believed_tokens_per_minute(self) -> float | None:
        """The token rate it paces by: the given limit, or a lower one it learned."""
        learned = self._learned.tokens_per_minute if self._learned else None
        return tighter(self.tokens_per_minute, learned)

    def _specs(self) -> tuple[BucketSpec | None, BucketSpec | None]:
        requests = tokens = None
        rpm, tpm = self.believed_requests_per_minute, self.believed_tokens_per_minute
        if rpm is not None:
            interval = 60.0 / rpm
            requests = BucketSpec(interval, interval)  # a burst of one request
        if tpm is not None:
            tokens = BucketSpec(60.0 / tpm, DEFAULT_TOKEN_BURST_SECONDS)
        return requests, tokens

    def learn(self, reading: Reading) -> None:
        """Take in what one response's rate-limit headers said (Models do this on their
        own): tighten the pace to the provider's limits, pause while a budget is spent."""
        belief = believe(reading)
        old = (self.believed_requests_per_minute, self.believed_tokens_per_minute)
        before = self._learned
        if before is not None:  # a kind this response did not mention keeps its rate
            belief = Belief(
                _first(belief.requests_per_minute, before.requests_per_minute),
                _first(belief.tokens_per_minute, before.tokens_per_minute),
                belief.pause,
            )
        self._learned = belief
        new = (self.believed_requests_per_minute, self.believed_tokens_per_minute)
        if any(_moved(a, b) for a, b in zip(old, new, strict=True)):
            self.backend.retune(*self._specs())
        if belief.pause > 0:
            self.pause(belief.pause)

    @property
    def backend(self) -> Any:
        """The bucket state, built on first use (after unpickling, or in a forked child,
        too: a lock or socket inherited through fork() is not safe to use)."""
        pid = os.getpid()
        if self._backend is None or self._backend_pid != pid:
            with self._init_lock:
                if self._backend is None or self._backend_pid != pid:
                    self._backend = self._make_backend()
                    self._backend_pid = pid
        return self._backend

    def _make_backend(self) -> Any:
        requests, tokens = self._specs()
        if self.redis_url is not None:
            return RedisBackend(self.redis_url, self.key or "", requests, tokens)
        slot = f"{os.getpid()}:{self._id}"
        with _registry_lock:
            backend = _local_backends.get(slot)
            if backend is None:
                backend = LocalBackend(requests, tokens, self._clock or time.monotonic)
                _local_backends[slot] = backend
            return backend

    def check_fits(self, tokens: int) -> None:
        """Raise ConfigurationError when one request of ``tokens`` can never fit."""
        if self.tokens_per_minute is not None and tokens > self.tokens_per_minute:
            raise ConfigurationError(
                f"one request needs an estimated {tokens:,} tokens, more than the whole "
                f"tokens_per_minute={self.tokens_per_minute:,.0f} of {self!r}; raise the "
                f"limit, lower max_tokens or shorten the prompt"
            )

    # -- using it directly ---------------------------------------------------------

    def acquire(self, tokens: int = 0, *, timeout: float | None = None) -> float:
        """Wait until one request of ``tokens`` tokens may go, for code that calls an API
        itself (Models do this on their own). Correct the charge later with
        :meth:`adjust`.

        Args:
            tokens: tokens to charge now (0 with no token limit).
            timeout: longest wait in seconds; None waits as long as the current Pool
                item's time budget allows.

        Returns:
            The seconds waited.

        Raises:
            APITimeoutError: the wait would be longer than ``timeout`` (or the budget
                left); ``retry_after`` says how long it would have been.
            ConfigurationError: ``tokens`` exceeds the whole ``tokens_per_minute``.
            CancelledError: the surrounding run was cancelled while waiting.
        """
        from .. import _context
        from ._admit import admit

        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ConfigurationError(f"tokens must be an int >= 0; got {tokens!r}")
        with _context.scope(timeout=timeout):
            return admit((self,), exact=tokens).waited

    def adjust(self, tokens: int) -> None:
        """Charge ``tokens`` more tokens, or refund them when negative (say, the
        estimate minus what the response reported)."""
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise ConfigurationError(f"tokens must be an int; got {tokens!r}")
        self.backend.adjust(tokens)

    def pause(self, seconds: float) -> None:
        """Hold every caller of this limit for ``seconds`` (what a 429 with
        ``Retry-After`` does; Models report those themselves). Capped at
        ``DEFAULT_MAX_PAUSE``."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ConfigurationError(f"seconds must be a number >= 0; got {seconds!r}")
        if seconds > 0:
            self.backend.pause(min(float(seconds), DEFAULT_MAX_PAUSE))

    # -- identity and pickling -----------------------------------------------------

    def __repr__(self) -> str:
        parts = []
        if self.requests_per_minute is not None:
            parts.append(f"requests_per_minute={self.requests_per_minute:g}")
        if self.tokens_per_minute is not None:
            parts.append(f"tokens_per_minute={self.tokens_per_minute:g}")
        if self.redis_url is not None:
            parts.append(f"redis_url={sanitise_url(self.redis_url)!r}")
        if self.key is not None:
            parts.append(f"key={self.key!r}")
        if self._learned is not None:
            rpm, tpm = self.believed_requests_per_minute, self.believed_tokens_per_minute
            believed = [f"{rpm:g} requests/min" if rpm is not None else "",
                        f"{tpm:g} tokens/min" if tpm is not None else ""]
            parts.append("learned: " + ", ".join(b for b in believed if b))
        return f"RateLimit({', '.join(parts)})"

    def __getstate__(self) -> dict[str, Any]:
        # Settings only: no lock, no Redis client, no bucket state; the clock and sleep
        # hooks are for tests and may be lambdas, so they stay behind too.
        state = self.__dict__.copy()
        state.update(_backend=None, _backend_pid=0, _clock=None, sleep=None)
        del state["_init_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_lock = threading.Lock()


# The 429 pause of each provider account (provider, base URL and a hash of the key): a
# RateLimit with no budget, only the pause, held by every live Model of that account. Weak
# values, so the registry never holds more accounts than there are Models using them.
_accounts: weakref.WeakValueDictionary[str, RateLimit] = weakref.WeakValueDictionary()


def account_limit(provider: str, base_url: str, api_key: str | None) -> RateLimit:
    """The pause shared by every Model that uses this account: a 429 with a hint makes
    each of them wait until then before its next request, instead of each finding the
    limit on its own. Keyed by a hash, so the key itself is never stored."""
    digest = hashlib.sha256(f"{provider}\0{base_url}\0{api_key or ''}".encode()).hexdigest()
    with _registry_lock:
        limit = _accounts.get(digest)
        if limit is None:
            limit = RateLimit.__new__(RateLimit)
            limit.requests_per_minute = limit.tokens_per_minute = None
            limit._setup(None, f"account {provider} {digest[:8]}", 0, None, None)
            _accounts[digest] = limit
        return limit


def _first(value: float | None, fallback: float | None) -> float | None:
    return fallback if value is None else value


def _moved(old: float | None, new: float | None) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) > _RETUNE_SHARE * old


def check_rate_limit(value: Any) -> RateLimit | None:
    """``value`` if it is None or a RateLimit, else a ConfigurationError."""
    if value is None or isinstance(value, RateLimit):
        return value
    raise ConfigurationError(
        f"rate_limit must be a RateLimit(requests_per_minute=..., tokens_per_minute=...) or "
        f"None; got {type(value).__name__}"
    )
