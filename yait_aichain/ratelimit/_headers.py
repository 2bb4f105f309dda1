"""What a provider's rate-limit headers say about the account's budget.

Pure functions over a response's headers, with the wall clock passed in:

- OpenAI (and LiteLLM-style proxies): ``x-ratelimit-{limit,remaining,reset}-{requests,
  tokens}``; resets are durations in Go's format (``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``).
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``; resets are RFC 3339 times (``"2026-01-01T12:00:30Z"``).

Both providers describe per-minute limits that refill continuously (a token bucket), so
one :class:`Window` per kind (requests, tokens) is enough to pace by. A header that is
missing, negative, infinite or unparsable is ignored, never raised: a proxy's odd header
must not fail a call that succeeded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from ..models._status import parse_duration as go_duration

__all__ = ["Reading", "Window", "read_headers"]

#: The period a stated limit covers when the reset does not say otherwise: both providers
#: state requests and tokens per minute.
MINUTE = 60.0
#: A reset further away than this means a per-day limit (OpenAI's RPD on some tiers).
DAY = 86_400.0
# Anthropic's separate token families, read when the total family is absent.
_ANTHROPIC_PARTS = ("input-tokens", "output-tokens")


@dataclass(frozen=True)
class Window:
    """One budget as the provider reported it: ``limit`` units per ``period`` seconds,
    ``remaining`` of them now, fully refilled in ``reset`` seconds."""

    limit: float
    remaining: float
    reset: float

    @property
    def period(self) -> float:
        """The period the limit covers: a minute, or a day when the reset is past one."""
        return DAY if self.reset > MINUTE + 1.0 else MINUTE

    @property
    def per_minute(self) -> float:
        """The limit as units per minute (what :class:`RateLimit` is configured in)."""
        return self.limit * MINUTE / self.period


@dataclass(frozen=True)
class Reading:
    """The budgets one response reported; ``None`` for a kind it did not mention."""

    provider: str  # "openai" or "anthropic": which header family was read
    requests: Window | None
    tokens: Window | None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_duration(text: str | None) -> float | None:
    """Seconds in a Go-style duration (``"1m30s"``, ``"250ms"``) or a bare number."""
    if text is None:
        return None
    plain = _number(text.strip())
    return plain if plain is not None else go_duration(text)


def parse_time(text: str | None, now: float) -> float | None:
    """Seconds from ``now`` (a ``time.time()`` value) until an RFC 3339 time; 0 for a
    time already past (the budget is full again), None when unparsable."""
    if text is None:
        return None
    plain = _number(text)
    if plain is not None:
        return plain  # some proxies send seconds here
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def _window(limit: str | None, remaining: str | None, reset: float | None) -> Window | None:
    lim, rem = _number(limit), _number(remaining)
    if lim is None or lim <= 0 or rem is None:
        return None
    return Window(lim, min(rem, lim), 0.0 if reset is None else reset)


def _openai(headers: Mapping[str, str], kind: str) -> Window | None:
    return _window(
        headers.get(f"x-ratelimit-limit-{kind}"),
        headers.get(f"x-ratelimit-remaining-{kind}"),
        parse_duration(headers.get(f"x-ratelimit-reset-{kind}")),
    )


def _anthropic(headers: Mapping[str, str], kind: str, now: float) -> Window | None:
    base = f"anthropic-ratelimit-{kind}"
    return _window(
        headers.get(f"{base}-limit"),
        headers.get(f"{base}-remaining"),
        parse_time(headers.get(f"{base}-reset"), now),
    )


def _tightest(windows: list[Window]) -> Window | None:
    # The one that runs out first at its own refill rate: least remaining per unit of rate.
    return min(windows, key=lambda w: (w.per_minute, w.remaining), default=None)


def read_headers(headers: Mapping[str, str], now: float) -> Reading | None:
    """The budgets in ``headers`` (case-insensitive mapping), or None when it carries no
    rate-limit family.

    Args:
        headers: the response headers.
        now: the current ``time.time()``, for Anthropic's absolute reset times.

    For Anthropic the total ``tokens`` family is used when present (the provider's most
    restrictive token limit); otherwise the tighter of ``input-tokens`` and
    ``output-tokens``, which charges every token against it: conservative, never over.
    """
    requests = _openai(headers, "requests")
    tokens = _openai(headers, "tokens")
    if requests is not None or tokens is not None:
        return Reading("openai", requests, tokens)
    requests = _anthropic(headers, "requests", now)
    tokens = _anthropic(headers, "tokens", now)
    if tokens is None:
        parts = (_anthropic(headers, kind, now) for kind in _ANTHROPIC_PARTS)
        tokens = _tightest([w for w in parts if w is not None])
    if requests is None and tokens is None:
        return None
    return Reading("anthropic", requests, tokens)
