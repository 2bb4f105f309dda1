"""yait_aichain: turn a for-loop of LLM calls into an ordered parallel map.

    from yait_aichain import Model, Skill, Pool, DONE, FAILED

    skill = Skill(model=Model("claude-sonnet-4-6"), prompt="Summarise: {text}")
    pool = Pool(skill, items=[{"text": t} for t in texts], max_flows=10)
    results = pool.run()          # in input order; None where an item failed
    pool.status                   # {PENDING: 0, RUNNING: 0, DONE: 48, FAILED: 2, CANCELLED: 0}

Public names live here and in the subpackages (``yait_aichain.models``, ``.skills``,
``.chain``, ``.pool``, ``.tools``, ``.errors``, ``.testing``); modules whose names start
with an underscore are private.
"""

import logging

__version__ = "0.1.0.dev0"

from ._usage import Usage  # noqa: E402
from .chain import Chain  # noqa: E402
from .errors import (  # noqa: E402
    AichainError, APIError, AuthenticationError, InsufficientCreditsError, InvalidRequestError,
    NetworkError, NotFoundError, OutputValidationError, RateLimitError, ServerError,
)
from .models import Model, RetryPolicy, Timeout  # noqa: E402
from .ratelimit import RateLimit  # noqa: E402
from .pool import CANCELLED, DONE, FAILED, PENDING, RUNNING, AutoFlows, ItemRecord, Pool  # noqa: E402
from .skills import Skill  # noqa: E402
from .tools import Tool, convertToMD  # noqa: E402

__all__ = [
    "APIError", "AichainError", "AuthenticationError", "AutoFlows", "CANCELLED", "Chain",
    "DONE", "FAILED", "InsufficientCreditsError", "InvalidRequestError", "ItemRecord",
    "Model", "NetworkError", "NotFoundError", "OutputValidationError", "PENDING", "Pool",
    "RUNNING", "RateLimit", "RateLimitError", "RetryPolicy", "ServerError", "Skill",
    "Timeout", "Tool", "Usage", "__version__", "convertToMD",
]

logging.getLogger("yait_aichain").addHandler(logging.NullHandler())
