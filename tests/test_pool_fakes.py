"""Fake runners for the Pool tests (imported by the other test_pool_* modules), and a
few checks that the fakes themselves behave as the tests assume."""

from __future__ import annotations

import threading
import time
from typing import Any

from yait_aichain import _context
from yait_aichain._usage import Usage


class FakeRunner:
    """A scriptable runner with ``run(variables)``, shared by every flow.

    Args:
        delay: seconds each call takes, or a callable ``(variables) -> seconds``. The
            wait goes through the item's scope, as a real Model's retry sleep does, so
            the pool's cancel event and deadline cut it short.
        fail: ``{i: exception}``; the item whose ``variables["i"] == i`` raises it.
        usage: a Usage recorded (with ``requests``) for every call, as a Model would.
        result: ``(variables) -> output``; by default ``variables["i"] * 10``.
    """

    def __init__(
        self,
        *,
        delay: Any = 0.0,
        fail: dict[int, BaseException] | None = None,
        usage: Usage | None = None,
        requests: int = 1,
        result: Any = None,
    ):
        self.delay = delay
        self.fail = dict(fail or {})
        self.usage = usage
        self.requests = requests
        self.result = result or (lambda v: v["i"] * 10)
        self.lock = threading.Lock()
        self.calls: list[int] = []
        self.ended: list[int] = []
        self.threads: set[int] = set()
        self.active = 0
        self.peak = 0

    def run(self, variables: dict[str, Any]) -> Any:
        with self.lock:
            self.calls.append(variables.get("i"))
            self.threads.add(threading.get_ident())
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            scope = _context.current()
            seconds = self.delay(variables) if callable(self.delay) else self.delay
            if seconds:
                scope.sleep(seconds)
            if self.usage is not None:
                scope.record(self.usage, requests=self.requests)
            error = self.fail.get(variables.get("i"))
            if error is not None:
                raise error
            return self.result(variables)
        finally:
            with self.lock:
                self.active -= 1
                self.ended.append(variables.get("i"))


class Hang:
    """A wait that ignores the pool's cancel event and deadline (a runner that never
    looks at its scope). Release it when the test ends so no thread outlives it."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, seconds: float = 10.0) -> None:
        self.event.wait(seconds)

    def release(self) -> None:
        self.event.set()


def items(n: int) -> list[dict[str, int]]:
    return [{"i": i} for i in range(n)]


# -- checks of the fakes themselves ------------------------------------------------------


def test_fake_runner_outside_a_scope_runs_plainly():
    fake = FakeRunner(delay=0.01, usage=Usage(1, 1, 2))
    assert fake.run({"i": 3}) == 30
    assert fake.calls == [3] and fake.peak == 1


def test_fake_runner_sleep_is_cut_by_the_cancel_event():
    cancel = threading.Event()
    fake = FakeRunner(delay=5.0)
    threading.Timer(0.05, cancel.set).start()
    start = time.monotonic()
    with _context.scope(cancel=cancel):
        try:
            fake.run({"i": 0})
        except Exception as exc:  # the scope raises CancelledError when woken
            assert type(exc).__name__ == "CancelledError"
    assert time.monotonic() - start < 1.0
