"""Pool: run one runner over many items in parallel, results in input order.

    from yait_aichain.pool import Pool, DONE, FAILED

    pool = Pool(skill, items=[{"text": t} for t in texts], max_flows=20, timeout=120)
    results = pool.run()                 # blocking; None where an item failed
    pool.status                  # {PENDING: 0, RUNNING: 0, DONE: 98, FAILED: 2, CANCELLED: 0}
    pool.failures[0].error               # the exception object itself
    pool.retry_failed()                  # only the failed ones, records updated in place

Status codes are the IntEnum :class:`Status` with the public project's values, so they
compare equal to plain ints (PENDING=0, RUNNING=1, DONE=2, FAILED=3, plus CANCELLED=4)
and print by name. CANCELLED is for items stopped before they ended (Ctrl-C, on_error
"stop" or "raise", a spent deadline or budget). ``max_flows`` is capped at
MAX_FLOWS_LIMIT (1024) threads; ``max_flows="auto"`` (or
``AutoFlows(max=500)``) adapts it, see :class:`AutoFlows`.

Known limit: Python threads cannot be killed. An item past its timeout is recorded as
FAILED and the run goes on, but its thread lives until the runner returns; the Model
bounds each HTTP call by the item's remaining budget so this stays short, while a runner
that ignores it (a bare ``time.sleep``) can delay interpreter exit.

``executor=`` runs the items on an executor you own (processes, Dask) instead of the
Pool's threads; the runner is pickled once per run, and an error that cannot be pickled
back arrives as :class:`RemoteError`. ``worker_context=`` wraps each item where it runs.
"""

from ._breaker import CircuitBreaker
from ._config import DEFAULT_MAX_FLOWS, MAX_FLOWS_LIMIT
from ._pool import Pool
from ._record import ItemRecord
from ..errors import RemoteError
from ..ratelimit._adaptive import DEFAULT_AUTO_MAX_FLOWS, AutoFlows, FlowDecision
from ._status import CANCELLED, DONE, FAILED, PENDING, RUNNING, Status

__all__ = [
    "AutoFlows",
    "CANCELLED",
    "CircuitBreaker",
    "DEFAULT_AUTO_MAX_FLOWS",
    "DEFAULT_MAX_FLOWS",
    "DONE",
    "FAILED",
    "FlowDecision",
    "ItemRecord",
    "MAX_FLOWS_LIMIT",
    "PENDING",
    "Pool",
    "RUNNING",
    "RemoteError",
    "Status",
]
