"""Test doubles: :class:`FakeModel` for code above the Model, and :class:`Simulator`, a
loopback server speaking the Anthropic, OpenAI and Gemini wire formats with latency,
scripted faults and counters (on its own: ``python -m yait_aichain.testing --port 8080``).
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
