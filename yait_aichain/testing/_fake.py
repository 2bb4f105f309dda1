"""A scriptable stand-in for Model, for testing Skills, Chains and Pools without HTTP."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import _context
from .._messages import normalise_messages, text_parts
from .._runner import qualname
from .._usage import Usage
from ..models._values import Generation


class FakeModel:
    """Answers ``generate()`` from a script: queued replies (:meth:`enqueue`) first, in
    order (an exception queued is raised), then ``reply(last_user_text)`` (default:
    ``"echo: " + text``). Every call is kept in :attr:`calls` as ``(messages, output,
    options)``. Thread-safe.

    Args:
        reply: computes the answer from the last user message's text.
        latency: seconds each call takes (an interruptible sleep, like a real call).
        usage: the Usage each call reports (default: words in, words out).
    """

    name = "fake-model"
    provider = "fake"

    def __init__(self, reply: Callable[[str], Any] | None = None, *, latency: float = 0.0,
                 usage: Usage | None = None):
        self._reply = reply or (lambda text: f"echo: {text}")
        self.latency = latency
        self._usage = usage
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self.calls: list[tuple[list[dict[str, Any]], Any, dict[str, Any]]] = []

    def enqueue(self, *replies: Any) -> FakeModel:
        """Queue answers (or exceptions to raise) for the next calls."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def identity(self) -> dict[str, Any]:
        """What its answers depend on: the reply function and the usage it reports."""
        return {"name": self.name, "reply": qualname(self._reply), "usage": self._usage}

    def generate(self, messages: Any, output: Any = None, **options: Any) -> Generation:
        """The next scripted answer, as :meth:`Model.generate` returns one."""
        messages = normalise_messages(messages)
        scope = _context.current()
        with self._lock:
            self.calls.append((messages, output, options))
            queued = self._queue.popleft() if self._queue else _NOTHING
        scope.sleep(self.latency)  # with no latency: only the cancellation check
        if isinstance(queued, BaseException):
            scope.record(Usage(), 1)
            raise queued
        users = [m for m in messages if m["role"] == "user"]
        text = "\n".join(p["text"] for p in text_parts(users[-1:]))
        answer = self._reply(text) if queued is _NOTHING else queued
        words_in = sum(len(p["text"].split()) for p in text_parts(messages))
        words_out = len(str(answer).split())
        usage = self._usage or Usage(words_in, words_out, words_in + words_out)
        scope.record(usage, 1)
        return Generation(answer, usage, 1)


_NOTHING = object()  # no reply queued
