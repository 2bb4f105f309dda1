"""Rate limits: requests and tokens per minute, shared across Models, Pools and processes.

    from yait_aichain import Model, Pool, RateLimit

    limit = RateLimit(requests_per_minute=500, tokens_per_minute=200_000)
    model = Model("gpt-4o-mini", rate_limit=limit)         # every call of this model
    Pool(skill, items, max_flows=50, rate_limit=limit)     # every call inside the pool

    # one budget for every process and host:
    RateLimit(requests_per_minute=500, redis_url="redis://127.0.0.1:6379/0", key="openai")

Calls wait their turn (never refused); the wait is interruptible and bounded by the call's
time budget, and shows up in each Pool record's ``wait_seconds``.
"""

from ._admit import DEFAULT_MEDIA_TOKENS
from ._limiter import (
    DEFAULT_MAX_PAUSE,
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_TOKEN_BURST_SECONDS,
    RateLimit,
)

__all__ = [
    "DEFAULT_MAX_PAUSE",
    "DEFAULT_MEDIA_TOKENS",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_TOKEN_BURST_SECONDS",
    "RateLimit",
]
