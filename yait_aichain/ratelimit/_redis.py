"""The Redis backend: the same buckets as :mod:`._bucket`, kept in Redis so that every
process (and host) using the same URL and ``key`` shares one budget.

Each operation is one Lua script, so a reservation is atomic across processes without a
lock round-trip. Times come from the Redis server's own clock (``TIME``), since the
callers' monotonic clocks are unrelated across processes and hosts; values are integer
microseconds, exact in Lua's doubles. Keys expire once the bucket would be full again, so
an idle limit leaves nothing behind.

The ``redis`` package is an optional extra, imported on first use.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from ..errors import ConfigurationError, NetworkError
from ._bucket import BucketSpec, TooLong

__all__ = ["RedisBackend", "sanitise_url"]

_INSTALL_HINT = ('the redis package is needed for RateLimit(redis_url=...): pip install redis '
                 '(or this project with its extra: pip install -e ".[redis]" in a checkout)')
_SOCKET_TIMEOUT = 5.0
_US = 1_000_000

# KEYS: requests tat, tokens tat, paused-until.  ARGV: per bucket (cost, interval_us,
# tolerance_us) x2, then max_wait_us (-1: no limit).  Returns {ok, wait_us, tat1, tat2}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then wait = paused - now end
local new = {-1, -1}
for i = 1, 2 do
  local cost = tonumber(ARGV[i * 3 - 2])
  local interval = tonumber(ARGV[i * 3 - 1])
  local tolerance = tonumber(ARGV[i * 3])
  if interval > 0 and cost > 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    new[i] = tat + math.floor(cost * interval + 0.5)
    if new[i] - tolerance - now > wait then wait = new[i] - tolerance - now end
  end
end
local max_wait = tonumber(ARGV[7])
if max_wait >= 0 and wait > max_wait then return {0, wait, -1, -1} end
for i = 1, 2 do
  if new[i] >= 0 then
    redis.call('SET', KEYS[i], string.format('%.0f', new[i]),
               'PX', math.floor((new[i] - now) / 1000) + 1000)
  end
end
return {1, wait, new[1], new[2]}
"""

# KEYS: requests tat, tokens tat.  ARGV: per bucket (expected tat, amount_us) x2.
_CANCEL = """
for i = 1, 2 do
  local expected = tonumber(ARGV[i * 2 - 1])
  if expected >= 0 and tonumber(redis.call('GET', KEYS[i]) or '-1') == expected then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 1000 then ttl = 1000 end
    redis.call('SET', KEYS[i], string.format('%.0f', expected - tonumber(ARGV[i * 2])), 'PX', ttl)
  end
end
return 1
"""

# KEYS: tokens tat.  ARGV: delta_us (negative: refund).
_ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[1])
if tat < now then tat = now end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
return 1
"""

# KEYS: paused-until.  ARGV: seconds_us.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if old > untl then untl = old end
redis.call('SET', KEYS[1], string.format('%.0f', untl),
           'PX', math.floor((untl - now) / 1000) + 1000)
return 1
"""


def sanitise_url(url: str) -> str:
    """The URL with any password replaced, for repr and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    creds, _, host = rest.partition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ':'}***@{host}"


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(_INSTALL_HINT) from exc
    return redis


class RedisBackend:
    """Bucket state in Redis under ``yait:ratelimit:{key}:*``. The client is made on first
    use, so building (or unpickling) a RateLimit never opens a connection."""

    def __init__(self, url: str, key: str, requests: BucketSpec | None, tokens: BucketSpec | None):
        self._url = url
        # The braces are a Redis Cluster hash tag: the three keys land on one shard, as a
        # multi-key script requires.
        base = f"yait:ratelimit:{{{key}}}"
        self._keys = [f"{base}:requests", f"{base}:tokens", f"{base}:paused"]
        self._specs = (requests, tokens)
        self._lock = threading.Lock()
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._errors: tuple[type[BaseException], ...] = ()

    def _script(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    redis = _import_redis()
                    self._errors = (redis.exceptions.RedisError,)
                    client = redis.Redis.from_url(
                        self._url, socket_timeout=_SOCKET_TIMEOUT,
                        socket_connect_timeout=_SOCKET_TIMEOUT,
                    )
                    self._scripts = {
                        "reserve": client.register_script(_RESERVE),
                        "cancel": client.register_script(_CANCEL),
                        "adjust": client.register_script(_ADJUST),
                        "pause": client.register_script(_PAUSE),
                    }
                    self._client = client
        return self._scripts[name]

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._script(name)
        try:
            return script(keys=keys, args=args)
        except self._errors as exc:
            # A NetworkError is retried by the Model's retry layer like any other
            # transient failure; the message never shows the URL's password.
            raise NetworkError(
                f"the rate limit's Redis server at {sanitise_url(self._url)} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def reserve(self, requests: int, tokens: int, max_wait: float | None) -> tuple[float, object]:
        args: list[Any] = []
        for spec, cost in zip(self._specs, (requests, tokens), strict=True):
            if spec is None:
                args += [0, 0, 0]
            else:
                args += [cost, spec.interval * _US, round(spec.tolerance * _US)]
        args.append(-1 if max_wait is None else max(0, int(max_wait * _US)))
        ok, wait_us, tat1, tat2 = self._run("reserve", self._keys, args)
        wait = int(wait_us) / _US
        if not int(ok):
            raise TooLong(wait)
        # The amounts given back on cancel, fixed now: the rates may be retuned meanwhile.
        spans = tuple(0 if spec is None else int(cost * spec.interval * _US + 0.5)
                      for spec, cost in zip(self._specs, (requests, tokens), strict=True))
        return wait, (int(tat1), int(tat2), spans)

    def retune(self, requests: BucketSpec | None, tokens: BucketSpec | None) -> None:
        # The rates travel with each script call; the shared state is only the times.
        self._specs = (requests, tokens)

    def cancel(self, handle: object) -> None:
        tat1, tat2, spans = cast("tuple[int, int, tuple[int, int]]", handle)
        args: list[Any] = []
        for tat, amount in zip((tat1, tat2), spans, strict=True):
            args += [tat if amount else -1, amount]
        self._run("cancel", self._keys[:2], args)

    def adjust(self, tokens: int) -> None:
        spec = self._specs[1]
        if spec is None or tokens == 0:
            return
        self._run("adjust", [self._keys[1]], [int(tokens * spec.interval * _US)])

    def pause(self, seconds: float) -> None:
        self._run("pause", [self._keys[2]], [int(seconds * _US)])
