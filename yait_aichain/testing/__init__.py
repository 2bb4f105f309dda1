"""A local LLM API simulator for tests, demos and benchmarks.

One loopback HTTP server speaks the Anthropic Messages, OpenAI Chat Completions and
Gemini generateContent wire formats, replies deterministically after a configurable
latency, serves scripted faults, and counts requests, connections and peak concurrency::

    from yait_aichain.testing import Simulator, Fault

    with Simulator(latency=0.1) as sim:
        sim.fail_next(Fault.rate_limit(retry_after=1))
        ...  # point a client at sim.openai_base_url (or set os.environ from sim.env())
        assert sim.stats.requests == 2

Run it on its own with ``python -m yait_aichain.testing --port 8080``.
"""

from ._fake import FakeModel
from ._faults import Fault
from ._simulator import DEFAULT_HOST, Simulator
from ._stats import DEFAULT_MAX_LOG, RequestRecord, Stats
from ._wire import ReplyInfo, summary

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_LOG",
    "FakeModel",
    "Fault",
    "ReplyInfo",
    "RequestRecord",
    "Simulator",
    "Stats",
    "summary",
]
