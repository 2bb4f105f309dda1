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

from .. import _context
from .._checks import NUMBER, checked
from ..errors import ConfigurationError
from ._bucket import BucketSpec, LocalBackend, RedisBackend, sanitise_url
from ._headers import Reading, believe, tighter

__all__ = ["DEFAULT_MAX_PAUSE", "DEFAULT_OUTPUT_TOKENS", "DEFAULT_TOKEN_BURST_SECONDS", "RateLimit"]

#: Output tokens charged up front when a call sets no ``max_tokens`` (usage corrects it).
DEFAULT_OUTPUT_TOKENS = 1000
#: Token credit a caller may use at once, in seconds of budget: smooth, so no short window
#: sees much more than its share; a bigger request waits until its share has accrued.
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


class RateLimit:
    """At most ``requests_per_minute`` requests and ``tokens_per_minute`` tokens for every
    call made through it: Models and Pools given one object share its budget, and with
    ``redis_url`` so does every process and host using the same URL and ``key``.

    Calls wait their turn (never refused), interruptibly and within their time budget. Both
    limits are smooth buckets (any W seconds hold at most ``rpm / 60 * W + 1`` requests;
    tokens have one second of credit), charged from an estimate and corrected from usage.
    Rate-limit headers tighten the pace (given limits are ceilings) and a budget they report
    spent pauses every caller; ``believed_*_per_minute`` say what it paces by now.

    Args:
        requests_per_minute, tokens_per_minute: the budgets (tokens: input plus output);
            None for no limit of that kind.
        redis_url: e.g. ``"redis://127.0.0.1:6379/0"``, to share it (needs ``redis``).
        key: the name of the shared budget in Redis (required with ``redis_url``).
        output_tokens: output tokens charged up front when a call sets no ``max_tokens``.
        clock: a monotonic clock for an in-process limit (tests inject a fake one).
        sleep: ``sleep(seconds)`` for waits; None uses the Pool item's interruptible sleep.

    Raises:
        ConfigurationError: no limit given, a bad number, or ``redis_url`` without ``key``.

    Thread-safe. Pickles as its settings: a copy in the same process shares this budget; in
    another process only through Redis.
    """

    def __init__(self, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, *, redis_url: str | None = None,
                 key: str | None = None, output_tokens: int = DEFAULT_OUTPUT_TOKENS,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None):
        self.requests_per_minute = checked(requests_per_minute, "requests_per_minute", NUMBER,
                                           none=True, above=True)
        self.tokens_per_minute = checked(tokens_per_minute, "tokens_per_minute", NUMBER,
                                         none=True, above=True)
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ConfigurationError("RateLimit needs requests_per_minute=, tokens_per_minute= "
                                     "or both")
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
        self.redis_url = redis_url
        self.key = key
        self.output_tokens = checked(output_tokens, "output_tokens")
        self._clock = clock
        self.sleep = sleep
        self._id = uuid.uuid4().hex
        self._learned: tuple[float | None, float | None] | None = None  # (rpm, tpm)
        self._output_mean: float | None = None
        self._pace: RateLimit | None = None  # an account's learned pace (account_limit)
        self._backend: Any = None
        self._backend_pid = 0

    @classmethod
    def _learning(cls, clock: Callable[[], float] | None = None) -> RateLimit:
        """No ceilings: it paces only by what headers teach it (an account's pace under
        ``max_flows="auto"``) and never waits before that."""
        limit = cls(requests_per_minute=1, clock=clock)  # built lazily: nothing paced yet
        limit.requests_per_minute = None
        limit._output_mean = float(limit.output_tokens)  # adapts to the answers seen
        return limit

    def _saw_output(self, tokens: int) -> None:
        # A learning limit charges up front what answers use (a mean, with headroom): a fixed
        # 1,000-token guess would hold so much budget in flight that it would set the pace.
        if self._output_mean is not None:  # a user's limit keeps its documented estimate
            mean = self._output_mean = 0.9 * self._output_mean + 0.1 * max(0, tokens)
            self.output_tokens = max(1, math.ceil(mean * _OUTPUT_HEADROOM))

    @property
    def pause_only(self) -> bool:
        """True for a provider account's 429 pause (no budget of its own)."""
        # What was learned always names a rate (a reading has at least one window).
        return self._learned is None and self.requests_per_minute is None \
            and self.tokens_per_minute is None

    @property
    def believed_requests_per_minute(self) -> float | None:
        """The request rate it paces by: the given limit, or a lower one it learned."""
        return tighter(self.requests_per_minute, self._learned[0] if self._learned else None)

    @property
    def believed_tokens_per_minute(self) -> float | None:
        """The token rate it paces by: the given limit, or a lower one it learned."""
        return tighter(self.tokens_per_minute, self._learned[1] if self._learned else None)

    def _believed(self) -> tuple[float | None, float | None]:
        return self.believed_requests_per_minute, self.believed_tokens_per_minute

    def _specs(self) -> tuple[BucketSpec | None, BucketSpec | None]:
        rpm, tpm = self._believed()
        return (None if rpm is None else BucketSpec(60.0 / rpm, 60.0 / rpm),  # a burst of one
                None if tpm is None else BucketSpec(60.0 / tpm, DEFAULT_TOKEN_BURST_SECONDS))

    def learn(self, reading: Reading) -> None:
        """Take in one response's rate-limit headers (Models do this on their own): tighten
        the pace to the provider's limits, pause while a budget is spent."""
        belief, old = believe(reading), self._believed()
        # A kind this response did not mention keeps the rate learned before.
        rates = zip((belief.requests_per_minute, belief.tokens_per_minute),
                    self._learned or (None, None), strict=True)
        rpm, tpm = (was if new is None else new for new, was in rates)
        self._learned = rpm, tpm
        if any(_moved(a, b) for a, b in zip(old, self._believed(), strict=True)):
            self.backend.retune(*self._specs())
        if belief.pause > 0:
            self.pause(belief.pause)

    @property
    def backend(self) -> Any:
        """The bucket state, built on first use (after unpickling, or in a forked child,
        too: a lock or socket inherited through fork() is not safe to use)."""
        pid = os.getpid()
        if self._backend is None or self._backend_pid != pid:
            with _registry_lock:
                if self._backend is None or self._backend_pid != pid:
                    self._backend, self._backend_pid = self._make_backend(pid), pid
        return self._backend

    def _make_backend(self, pid: int) -> Any:
        requests, tokens = self._specs()
        if self.redis_url is not None:
            return RedisBackend(self.redis_url, self.key or "", requests, tokens)
        return _local_backends.setdefault(f"{pid}:{self._id}", LocalBackend(
            requests, tokens, self._clock or time.monotonic))

    def check_fits(self, tokens: int) -> None:
        """Raise ConfigurationError when one request of ``tokens`` can never fit."""
        if self.tokens_per_minute is not None and tokens > self.tokens_per_minute:
            raise ConfigurationError(
                f"one request needs an estimated {tokens:,} tokens, more than the whole "
                f"tokens_per_minute={self.tokens_per_minute:,.0f} of {self!r}; raise the "
                f"limit, lower max_tokens or shorten the prompt"
            )

    def acquire(self, tokens: int = 0, *, timeout: float | None = None) -> float:
        """Wait until one request of ``tokens`` tokens (0 with no token limit) may go, at
        most ``timeout`` seconds (None: the Pool item's budget), for code that calls an API
        itself; correct the charge with :meth:`adjust`. Returns the seconds waited.

        Raises:
            APITimeoutError: the wait would be longer (``retry_after`` says how long).
            ConfigurationError: ``tokens`` exceeds the whole ``tokens_per_minute``.
            CancelledError: the surrounding run was cancelled while waiting.
        """
        from ._admit import admit  # it imports this module

        with _context.scope(timeout=timeout):
            return admit((self,), exact=checked(tokens, "tokens")).waited

    def adjust(self, tokens: int) -> None:
        """Charge ``tokens`` more tokens, or refund them when negative."""
        self.backend.adjust(checked(tokens, "tokens", low=-math.inf))

    def pause(self, seconds: float) -> None:
        """Hold every caller of this limit for ``seconds``, at most ``DEFAULT_MAX_PAUSE``
        (what a 429 with ``Retry-After`` does; Models report those themselves)."""
        if checked(seconds, "seconds", NUMBER) > 0:
            self.backend.pause(min(float(seconds), DEFAULT_MAX_PAUSE))

    def __repr__(self) -> str:
        parts = [f"{name}={value:g}" for name, value in (
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_minute", self.tokens_per_minute)) if value is not None]
        if self.redis_url is not None:
            parts.append(f"redis_url={sanitise_url(self.redis_url)!r}")
        if self.key is not None:
            parts.append(f"key={self.key!r}")
        if self._learned is not None:
            parts.append("learned: " + ", ".join(
                f"{rate:g} {unit}/min" for rate, unit in
                zip(self._believed(), ("requests", "tokens"), strict=True) if rate is not None))
        return f"RateLimit({', '.join(parts)})"

    def __getstate__(self) -> dict[str, Any]:
        # Settings only: no Redis client, no bucket state; the clock and sleep hooks are
        # for tests and may be lambdas, so they stay behind too.
        return {**self.__dict__, "_backend": None, "_backend_pid": 0, "_clock": None,
                "sleep": None}


# The one 429 pause of each provider account (provider, base URL and a hash of the key): a
# RateLimit with no budget, held by every live Model of that account, with the pace its
# headers teach (``max_flows="auto"``). Weak values: the registry holds no more accounts
# than there are Models using them.
_accounts: weakref.WeakValueDictionary[str, RateLimit] = weakref.WeakValueDictionary()


def account_limit(provider: str, base_url: str, api_key: str | None) -> RateLimit:
    """The pause shared by every Model of this account: a 429 with a hint holds them all
    until then. Keyed by a hash, so the key itself is never stored."""
    digest = hashlib.sha256(f"{provider}\0{base_url}\0{api_key or ''}".encode()).hexdigest()
    with _registry_lock:
        limit = _accounts.get(digest)
        if limit is None:
            limit = RateLimit(requests_per_minute=1, output_tokens=0)  # no budget: a pause
            limit.requests_per_minute, limit.key = None, f"account {provider} {digest[:8]}"
            limit._pace = RateLimit._learning()
            _accounts[digest] = limit
        return limit


def pace_of(account: RateLimit) -> RateLimit | None:
    """The pace an account's headers taught (None for a limit that is no account)."""
    return account._pace


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
