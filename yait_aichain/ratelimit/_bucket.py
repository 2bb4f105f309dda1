"""GCRA buckets (the generic cell rate algorithm) for requests and tokens, in this process or
in Redis.

One number per bucket, the "theoretical arrival time" (``tat``): no polling, no thundering
herd, first come first served, and a burst of one request keeps every window at ``rate *
length + 1``. A reservation is made before the caller sleeps: ``new_tat = max(tat, now) +
cost * interval``, to go at ``new_tat - tolerance``; sending later never breaks the limit,
so several limits are reserved one after another and the caller waits for the latest.

In Redis each operation is one Lua script (atomic across processes, no lock round-trip) on
the server's clock (``TIME``: callers' monotonic clocks are unrelated), in integer
microseconds. Keys expire once the bucket is full again: an idle limit leaves nothing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, NetworkError

__all__ = ["BucketSpec", "LocalBackend", "RedisBackend", "sanitise_url"]

_INSTALL_HINT = ('the redis package is needed for RateLimit(redis_url=...): pip install redis '
                 '(or this project with its extra: pip install -e ".[redis]" in a checkout)')
_SOCKET_TIMEOUT = 5.0
_US = 1_000_000


@dataclass(frozen=True)
class BucketSpec:
    """``interval`` seconds per unit (request or token); ``tolerance`` seconds of credit a
    caller may use at once (the burst, in time)."""

    interval: float
    tolerance: float


class _Buckets:
    """What both stores share: the (requests, tokens) specs, which headers may retune."""

    _specs: tuple[BucketSpec | None, BucketSpec | None]

    def retune(self, requests: BucketSpec | None, tokens: BucketSpec | None) -> None:
        """New rates from now on; waits already reserved stand, as the provider counted."""
        self._specs = (requests, tokens)

    def _spans(self, requests: int, tokens: int) -> tuple[float, float]:
        # The seconds each reservation takes, kept in its handle: giving it back stays
        # exact even when the rates are retuned in between.
        r, t = self._specs
        return (0.0 if r is None or requests <= 0 else requests * r.interval,
                0.0 if t is None or tokens <= 0 else tokens * t.interval)

    def cancel(self, handle: Any) -> None:
        """Give a reservation back, but only while nobody reserved after it: handing back
        a slot in the middle of the queue would let a newcomer go beside a waiter."""
        tats, spans = handle
        for i, (tat, span) in enumerate(zip(tats, spans, strict=True)):
            if tat is not None and span:
                self._shift(i, -span, tat)

    def adjust(self, tokens: int) -> None:
        """Charge ``tokens`` more (a refund when negative) once the real usage is known."""
        spec = self._specs[1]
        if spec is not None and tokens != 0:
            self._shift(1, tokens * spec.interval)

    def _shift(self, i: int, seconds: float, expected: Any = None) -> None:
        # Move bucket i's tat by ``seconds`` (only while it is ``expected``, if given), never
        # below now: a refund creates no credit older than now (an idle bucket is full).
        raise NotImplementedError


class LocalBackend(_Buckets):
    """Thread-safe bucket state for one process. ``clock`` is a monotonic clock."""

    def __init__(self, requests: BucketSpec | None, tokens: BucketSpec | None,
                 clock: Callable[[], float]):
        self.retune(requests, tokens)
        self._tats = [0.0, 0.0]
        self._paused_until = 0.0
        self._clock = clock
        self._lock = threading.Lock()

    def reserve(self, requests: int, tokens: int, max_wait: float | None) -> tuple[float, Any]:
        """Reserve ``requests`` and ``tokens``: (seconds to wait, handle), or (wait, None)
        and nothing reserved when the wait would exceed ``max_wait``."""
        spans = self._spans(requests, tokens)
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            new: list[float | None] = [None, None]
            for i, spec in enumerate(self._specs):
                if spec is not None and spans[i] > 0:
                    tat = max(self._tats[i], now) + spans[i]
                    new[i] = tat
                    wait = max(wait, tat - spec.tolerance - now)
            if max_wait is not None and wait > max_wait:
                return wait, None
            for i, reserved in enumerate(new):
                if reserved is not None:
                    self._tats[i] = reserved
        return wait, (new, spans)

    def _shift(self, i: int, seconds: float, expected: Any = None) -> None:
        with self._lock:
            if expected is None or self._tats[i] == expected:
                now = self._clock()
                self._tats[i] = max(max(self._tats[i], now) + seconds, now)

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when none). One float read: no lock."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Nobody may go for ``seconds`` from now (the provider answered 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


# Every script: ``now`` from the server, and ``keep`` to store a time until it has passed.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function keep(key, value)
  local ms = math.max(1000, math.floor((value - now) / 1000) + 1000)
  redis.call('SET', key, string.format('%.0f', value), 'PX', ms)
end
"""

# KEYS: requests tat, tokens tat, paused-until.  ARGV: per bucket (span_us, tolerance_us)
# x2, then max_wait_us (-1: no limit).  Returns {ok, wait_us, tat1, tat2}.
_RESERVE = _PRELUDE + """
local wait = math.max(0, tonumber(redis.call('GET', KEYS[3]) or '0') - now)
local new = {-1, -1}
for i = 1, 2 do
  local span = tonumber(ARGV[i * 2 - 1])
  if span > 0 then
    new[i] = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now) + span
    wait = math.max(wait, new[i] - tonumber(ARGV[i * 2]) - now)
  end
end
local max_wait = tonumber(ARGV[5])
if max_wait >= 0 and wait > max_wait then return {0, wait, -1, -1} end
for i = 1, 2 do
  if new[i] >= 0 then keep(KEYS[i], new[i]) end
end
return {1, wait, new[1], new[2]}
"""

# KEYS: a tat.  ARGV: the expected tat (-1: any), delta_us; never below now.
_SHIFT = _PRELUDE + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '-1')
local expected = tonumber(ARGV[1])
if expected >= 0 and tat ~= expected then return 0 end
keep(KEYS[1], math.max(math.max(tat, now) + tonumber(ARGV[2]), now))
return 1
"""

# KEYS: paused-until.  ARGV: seconds_us.
_PAUSE = _PRELUDE + """
keep(KEYS[1], math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + tonumber(ARGV[1])))
return 1
"""

_SCRIPTS = {"reserve": _RESERVE, "shift": _SHIFT, "pause": _PAUSE}


def sanitise_url(url: str) -> str:
    """The URL with any password replaced, for repr and error messages."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    creds, at, host = authority.rpartition("@")  # a password may hold "@" itself
    if not sep or not at:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}{slash}{path}"


class RedisBackend(_Buckets):
    """Bucket state in Redis under ``yait:ratelimit:{key}:*``. The client is made on first
    use, so building (or unpickling) a RateLimit never opens a connection."""

    def __init__(self, url: str, key: str, requests: BucketSpec | None, tokens: BucketSpec | None):
        self.retune(requests, tokens)  # the rates travel with each script call
        self._url = url
        # The braces are a Redis Cluster hash tag: the three keys land on one shard, as a
        # multi-key script requires.
        base = f"yait:ratelimit:{{{key}}}"
        self._keys = [f"{base}:requests", f"{base}:tokens", f"{base}:paused"]

    @functools.cached_property
    def _client(self) -> tuple[dict[str, Any], tuple[type[BaseException], ...]]:
        # The scripts, and the errors that mean "Redis failed".
        try:
            import redis
        except ImportError as exc:
            raise ConfigurationError(_INSTALL_HINT) from exc
        client = redis.Redis.from_url(self._url, socket_timeout=_SOCKET_TIMEOUT,
                                      socket_connect_timeout=_SOCKET_TIMEOUT)
        scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}
        return scripts, (redis.exceptions.RedisError,)

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        scripts, errors = self._client
        try:
            return scripts[name](keys=keys, args=args)
        except errors as exc:
            # A NetworkError is retried by the Model's retry layer like any other
            # transient failure; the message never shows the URL's password.
            raise NetworkError(
                f"the rate limit's Redis server at {sanitise_url(self._url)} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def reserve(self, requests: int, tokens: int, max_wait: float | None) -> tuple[float, Any]:
        spans = self._spans(requests, tokens)
        args: list[Any] = []
        for spec, span in zip(self._specs, spans, strict=True):
            args += [0, 0] if spec is None else [round(span * _US), round(spec.tolerance * _US)]
        args.append(-1 if max_wait is None else max(0, int(max_wait * _US)))
        ok, wait_us, *tats = self._run("reserve", self._keys, args)
        handle = ([int(t) if int(t) >= 0 else None for t in tats], spans) if int(ok) else None
        return int(wait_us) / _US, handle

    def _shift(self, i: int, seconds: float, expected: Any = None) -> None:
        # round(): a span given back is exactly the microseconds it reserved.
        self._run("shift", [self._keys[i]],
                  [-1 if expected is None else expected, round(seconds * _US)])

    def pause(self, seconds: float) -> None:
        self._run("pause", [self._keys[2]], [int(seconds * _US)])
