"""The buckets of :mod:`._bucket` kept in Redis, so that every process (and host) using the
same URL and ``key`` shares one budget.

Each operation is one Lua script: a reservation is atomic across processes without a lock
round-trip. Times come from the Redis server's clock (``TIME``), since the callers'
monotonic clocks are unrelated; values are integer microseconds, exact in Lua's doubles.
Keys expire once the bucket would be full again, so an idle limit leaves nothing behind.
The ``redis`` package is an optional extra, imported on first use.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from ..errors import ConfigurationError, NetworkError
from ._bucket import Buckets, BucketSpec, TooLong

__all__ = ["RedisBackend", "sanitise_url"]

_INSTALL_HINT = ('the redis package is needed for RateLimit(redis_url=...): pip install redis '
                 '(or this project with its extra: pip install -e ".[redis]" in a checkout)')
_SOCKET_TIMEOUT = 5.0
_US = 1_000_000

# Every script: ``now`` from the server, and ``keep`` to store a time until it has passed.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function keep(key, value)
  local ms = math.floor((value - now) / 1000) + 1000
  if ms < 1000 then ms = 1000 end
  redis.call('SET', key, string.format('%.0f', value), 'PX', ms)
end
"""

# KEYS: requests tat, tokens tat, paused-until.  ARGV: per bucket (span_us, tolerance_us)
# x2, then max_wait_us (-1: no limit).  Returns {ok, wait_us, tat1, tat2}.
_RESERVE = _PRELUDE + """
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then wait = paused - now end
local new = {-1, -1}
for i = 1, 2 do
  local span = tonumber(ARGV[i * 2 - 1])
  if span > 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    new[i] = tat + span
    local go = new[i] - tonumber(ARGV[i * 2]) - now
    if go > wait then wait = go end
  end
end
local max_wait = tonumber(ARGV[5])
if max_wait >= 0 and wait > max_wait then return {0, wait, -1, -1} end
for i = 1, 2 do
  if new[i] >= 0 then keep(KEYS[i], new[i]) end
end
return {1, wait, new[1], new[2]}
"""

# KEYS: requests tat, tokens tat.  ARGV: per bucket (expected tat, span_us) x2.
_CANCEL = _PRELUDE + """
for i = 1, 2 do
  local expected = tonumber(ARGV[i * 2 - 1])
  if expected >= 0 and tonumber(redis.call('GET', KEYS[i]) or '-1') == expected then
    keep(KEYS[i], expected - tonumber(ARGV[i * 2]))
  end
end
return 1
"""

# KEYS: tokens tat.  ARGV: delta_us (negative: refund, never below now).
_ADJUST = _PRELUDE + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[1])
if tat < now then tat = now end
keep(KEYS[1], tat)
return 1
"""

# KEYS: paused-until.  ARGV: seconds_us.
_PAUSE = _PRELUDE + """
local untl = now + tonumber(ARGV[1])
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if old > untl then untl = old end
keep(KEYS[1], untl)
return 1
"""

_SCRIPTS = {"reserve": _RESERVE, "cancel": _CANCEL, "adjust": _ADJUST, "pause": _PAUSE}


def sanitise_url(url: str) -> str:
    """The URL with any password replaced, for repr and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    creds, _, host = rest.partition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ':'}***@{host}"


class RedisBackend(Buckets):
    """Bucket state in Redis under ``yait:ratelimit:{key}:*``. The client is made on first
    use, so building (or unpickling) a RateLimit never opens a connection."""

    def __init__(self, url: str, key: str, requests: BucketSpec | None, tokens: BucketSpec | None):
        super().__init__(requests, tokens)  # the rates travel with each script call
        self._url = url
        # The braces are a Redis Cluster hash tag: the three keys land on one shard, as a
        # multi-key script requires.
        base = f"yait:ratelimit:{{{key}}}"
        self._keys = [f"{base}:requests", f"{base}:tokens", f"{base}:paused"]
        self._lock = threading.Lock()
        self._scripts: dict[str, Any] = {}
        self._errors: tuple[type[BaseException], ...] = ()

    def _connect(self) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ConfigurationError(_INSTALL_HINT) from exc
        self._errors = (redis.exceptions.RedisError,)
        client = redis.Redis.from_url(self._url, socket_timeout=_SOCKET_TIMEOUT,
                                      socket_connect_timeout=_SOCKET_TIMEOUT)
        self._scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        if not self._scripts:
            with self._lock:
                if not self._scripts:
                    self._connect()
        try:
            return self._scripts[name](keys=keys, args=args)
        except self._errors as exc:
            # A NetworkError is retried by the Model's retry layer like any other
            # transient failure; the message never shows the URL's password.
            raise NetworkError(
                f"the rate limit's Redis server at {sanitise_url(self._url)} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def reserve(self, requests: int, tokens: int, max_wait: float | None) -> tuple[float, object]:
        spans = tuple(round(span * _US) for span in self._spans(requests, tokens))
        args: list[Any] = []
        for spec, span in zip(self._specs, spans, strict=True):
            args += [0, 0] if spec is None else [span, round(spec.tolerance * _US)]
        args.append(-1 if max_wait is None else max(0, int(max_wait * _US)))
        ok, wait_us, tat1, tat2 = self._run("reserve", self._keys, args)
        if not int(ok):
            raise TooLong(int(wait_us) / _US)
        return int(wait_us) / _US, (int(tat1), int(tat2), spans)

    def cancel(self, handle: object) -> None:
        tat1, tat2, spans = cast("tuple[int, int, tuple[int, int]]", handle)
        args: list[Any] = []
        for tat, span in zip((tat1, tat2), spans, strict=True):
            args += [tat if span else -1, span]
        self._run("cancel", self._keys[:2], args)

    def _shift(self, seconds: float) -> None:
        self._run("adjust", [self._keys[1]], [int(seconds * _US)])

    def pause(self, seconds: float) -> None:
        self._run("pause", [self._keys[2]], [int(seconds * _US)])
