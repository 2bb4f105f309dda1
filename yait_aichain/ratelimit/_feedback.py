"""What each response teaches: the account's rate limits and the Pool's flow controller.

One call per HTTP attempt, from the admission :class:`~._admit.Permit` that wrapped it, so
there is no second channel: the same object that made the request wait hears how it went.

- Every response's rate-limit headers go to each :class:`RateLimit` that admitted it and
  to the account's learned pace (one per provider, base URL and key, kept on the
  account's 429 pause and so shared by every Model and Pool of the process), which
  ``max_flows="auto"`` paces by.
- Its time at the server, status and wait go to the flow controllers of the enclosing
  ``max_flows="auto"`` Pools (the scope's ``observers``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._headers import read_headers
from ._limiter import RateLimit

__all__ = ["pace_of", "report"]

logger = logging.getLogger("yait_aichain.ratelimit")

_pace_lock = threading.Lock()


def pace_of(account: RateLimit) -> RateLimit:
    """The learned pace of a provider account, kept on the account's 429 pause (the
    Model's ``account_limit``), so it lives exactly as long as Models of that account do
    and is shared by all of them."""
    pace = account.__dict__.get("_pace")
    if pace is None:
        with _pace_lock:
            pace = account.__dict__.get("_pace")
            if pace is None:
                pace = account.__dict__["_pace"] = RateLimit._learning()
    return pace


def report(
    learners: Sequence[RateLimit],
    observers: Iterable[Any],
    status: int,
    headers: Mapping[str, str] | None,
    seconds: float,
    waited: float,
) -> None:
    """Tell ``learners`` what the headers said and ``observers`` how the attempt went.

    Never raises for what the server sent: a response that was fine stays fine."""
    reading = read_headers(headers, time.time()) if headers else None
    if reading is not None:
        for limit in learners:
            limit.learn(reading)
    if observers:
        believed = (_tightest(lim.believed_requests_per_minute for lim in learners),
                    _tightest(lim.believed_tokens_per_minute for lim in learners))
        for observer in observers:
            observer.observe(seconds, status=status, waited=waited, believed=believed)


def _tightest(rates: Iterable[float | None]) -> float | None:
    return min((rate for rate in rates if rate is not None), default=None)
