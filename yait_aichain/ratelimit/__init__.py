"""Rate limits: requests and tokens per minute, shared by the Models and Pools given one
(``RateLimit(requests_per_minute=500, tokens_per_minute=200_000)``) and, with
``redis_url=`` and ``key=``, by every process and host. Calls wait their turn, never
refused, within their time budget; the wait shows in each record's ``wait_seconds``.
"""

from .._messages import MEDIA_PART_TOKENS as DEFAULT_MEDIA_TOKENS
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
