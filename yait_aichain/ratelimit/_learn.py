"""From what the headers say to the pace a :class:`RateLimit` keeps: pure arithmetic.

The believed rate of a budget is its stated limit per minute. Only when the remaining
budget would run out before its reset at that rate (someone else shares the key, or the
provider counts in fixed windows and this one is nearly spent) does the pace drop to
"what is left, spread evenly until the reset". A budget at zero pauses until its reset.
Limits the user gave are ceilings: a reading only ever tightens them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._headers import MINUTE, Reading, Window

__all__ = ["Belief", "believe", "tighter"]

#: The remaining budget must last at least this share of the stated rate before the pace
#: follows it down (noise in "remaining" must not shake a steady pace).
SPEND_SLACK = 0.9
#: Never pace below this share of the stated limit on one reading's word.
MIN_SHARE = 0.05


@dataclass(frozen=True)
class Belief:
    """What a reading means for pacing: requests and tokens per minute (None: not
    stated), and seconds nobody should send (a budget at zero until its reset)."""

    requests_per_minute: float | None
    tokens_per_minute: float | None
    pause: float = 0.0


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
    """The pace ``reading`` allows."""
    requests, pause_r = _pace(reading.requests)
    tokens, pause_t = _pace(reading.tokens)
    return Belief(requests, tokens, max(pause_r, pause_t))


def tighter(ceiling: float | None, learned: float | None) -> float | None:
    """The lower of a user's ceiling and a learned rate (None means "no limit")."""
    if ceiling is None:
        return learned
    if learned is None:
        return ceiling
    return min(ceiling, learned)
