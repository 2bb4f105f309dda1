"""What a provider's rate-limit headers say, and the pace a :class:`RateLimit` keeps by it.

OpenAI (and LiteLLM-style proxies) send ``x-ratelimit-{limit,remaining,reset}-{requests,
tokens}`` with Go-duration resets; Anthropic ``anthropic-ratelimit-{requests,tokens,
input-tokens,output-tokens}-{limit,remaining,reset}`` with RFC 3339 resets. Both state
per-minute limits that refill continuously. A bad header is ignored, never raised: a proxy's
odd header must not fail a call that succeeded.

The pace is the stated limit, unless what remains would run out before the reset at that
rate (someone else shares the key): then what is left, spread until the reset. A budget at
zero pauses until then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from ..models._status import non_negative
from ..models._status import parse_duration as go_duration

__all__ = ["Belief", "Reading", "Window", "believe", "read_headers", "tighter"]

#: Both providers state requests and tokens per minute.
MINUTE = 60.0
#: A reset further away than this means a per-day limit (OpenAI's RPD on some tiers).
DAY = 86_400.0
#: What remains must last at least this share of the stated rate before the pace follows
#: it down (noise in "remaining" must not shake a steady pace).
SPEND_SLACK = 0.9
#: Never pace below this share of the stated limit on one reading's word.
MIN_SHARE = 0.05


@dataclass(frozen=True)
class Window:
    """One budget as reported: ``limit`` units per minute or day, ``remaining`` now, fully
    refilled in ``reset`` seconds."""

    limit: float
    remaining: float
    reset: float

    @property
    def per_minute(self) -> float:
        """The limit per minute; a reset more than a minute away means a per-day limit."""
        return self.limit * MINUTE / (DAY if self.reset > MINUTE + 1.0 else MINUTE)


@dataclass(frozen=True)
class Reading:
    """The budgets one response reported; ``None`` for a kind it did not mention."""

    provider: str  # "openai" or "anthropic": which header family was read
    requests: Window | None
    tokens: Window | None


@dataclass(frozen=True)
class Belief:
    """The pace a reading allows: per minute (None: not stated), and seconds nobody
    should send (a budget at zero until its reset)."""

    requests_per_minute: float | None
    tokens_per_minute: float | None
    pause: float = 0.0


def parse_duration(text: str | None) -> float | None:
    """Seconds in a Go-style duration (``"1m30s"``, ``"250ms"``) or a bare number."""
    plain = non_negative(text)
    return plain if plain is not None or text is None else go_duration(text)


def parse_time(text: str | None, now: float) -> float | None:
    """Seconds from ``now`` (``time.time()``) until an RFC 3339 time (or bare seconds, as
    some proxies send); 0 for a time past, None when unparsable."""
    plain = non_negative(text)
    if plain is not None or text is None:
        return plain
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def _window(headers: Mapping[str, str], names: list[str],
            reset: Callable[[str | None], float | None]) -> Window | None:
    limit, remaining = non_negative(headers.get(names[0])), non_negative(headers.get(names[1]))
    if limit is None or limit <= 0 or remaining is None:
        return None
    return Window(limit, min(remaining, limit), reset(headers.get(names[2])) or 0.0)


def read_headers(headers: Mapping[str, str], now: float) -> Reading | None:
    """The budgets in ``headers`` (case-insensitive), or None when it has no rate-limit
    family; ``now`` is ``time.time()``, for Anthropic's absolute resets.

    For Anthropic the total ``tokens`` family wins (its most restrictive token limit);
    without it, the tighter of ``input-tokens`` and ``output-tokens``, charged with every
    token: conservative, never over.
    """
    parts = ("limit", "remaining", "reset")
    requests, tokens = (_window(headers, [f"x-ratelimit-{p}-{kind}" for p in parts],
                                parse_duration) for kind in ("requests", "tokens"))
    if requests is not None or tokens is not None:
        return Reading("openai", requests, tokens)
    found = {kind: _window(headers, [f"anthropic-ratelimit-{kind}-{p}" for p in parts],
                           lambda text: parse_time(text, now))
             for kind in ("requests", "tokens", "input-tokens", "output-tokens")}
    tokens = found["tokens"] or min(
        (w for w in (found["input-tokens"], found["output-tokens"]) if w is not None),
        key=lambda w: (w.per_minute, w.remaining), default=None)  # runs out first
    if found["requests"] is None and tokens is None:
        return None
    return Reading("anthropic", found["requests"], tokens)


def _pace(window: Window | None) -> tuple[float | None, float]:
    if window is None:
        return None, 0.0
    rate = window.per_minute
    if window.reset <= 0:
        return rate, 0.0  # already full again
    spend = window.remaining / window.reset * MINUTE
    if spend < rate * SPEND_SLACK:
        rate = max(spend, rate * MIN_SHARE)
    return rate, (window.reset if window.remaining < 1 else 0.0)


def believe(reading: Reading) -> Belief:
    (requests, pause_r), (tokens, pause_t) = _pace(reading.requests), _pace(reading.tokens)
    return Belief(requests, tokens, max(pause_r, pause_t))


def tighter(*rates: float | None) -> float | None:
    """The lowest of ``rates`` (None means "no limit")."""
    best = None
    for rate in rates:  # a loop, not min(): the admission of every call asks this
        if rate is not None and (best is None or rate < best):
            best = rate
    return best
