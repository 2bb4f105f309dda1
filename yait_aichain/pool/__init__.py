"""Pool: run one runner over many items in parallel, results in input order.

    from yait_aichain.pool import Pool, FAILED

    pool = Pool(skill, items=[{"text": t} for t in texts], max_flows=20, timeout=120)
    results = pool.run()                 # blocking; None where an item failed
    if pool.status[FAILED]:
        pool.retry_failed()              # only the failed ones, records updated in place

Statuses are the IntEnum :class:`Status` (PENDING=0 ... CANCELLED=4). See :class:`Pool`.
"""

from ._breaker import CircuitBreaker
from ._config import DEFAULT_MAX_FLOWS, MAX_FLOWS_LIMIT
from ._pool import Pool
from ._record import ItemRecord
from ..errors import RemoteError
from ..ratelimit._adaptive import DEFAULT_AUTO_MAX_FLOWS, AutoFlows, FlowDecision
from ._status import CANCELLED, DONE, FAILED, PENDING, RUNNING, Status

__all__ = ["AutoFlows", "CANCELLED", "CircuitBreaker", "DEFAULT_AUTO_MAX_FLOWS",
           "DEFAULT_MAX_FLOWS", "DONE", "FAILED", "FlowDecision", "ItemRecord", "MAX_FLOWS_LIMIT",
           "PENDING", "Pool", "RUNNING", "RemoteError", "Status"]
