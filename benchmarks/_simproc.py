"""The loopback LLM simulator in a child process, for the benchmarks.

The benchmarks measure the client's CPU time with ``time.process_time()``; a simulator
in the same process would add its own CPU to that. ``python -m yait_aichain.testing``
runs it standalone but offers no way to read or reset its counters while it runs, so
this helper starts :class:`~yait_aichain.testing.Simulator` in a spawned child process
and talks to it over a pipe: stats, reset, latency.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import yait_aichain  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, ROOT)

_START_TIMEOUT = 30.0


def _serve(conn: Any, options: dict[str, Any]) -> None:
    from yait_aichain.testing import Simulator

    with Simulator(**options) as sim:
        conn.send(sim.url)
        while True:
            try:
                command, arg = conn.recv()
            except EOFError:  # the parent died
                return
            if command == "stats":
                s = sim.stats
                conn.send({
                    "requests": s.requests, "connections": s.connections,
                    "open_connections": s.open_connections, "in_flight": s.in_flight,
                    "peak_concurrency": s.peak_concurrency, "by_status": dict(s.by_status),
                })
            elif command == "reset":
                sim.reset()
                conn.send(None)
            elif command == "latency":
                sim.latency = arg
                conn.send(None)
            elif command == "log":
                conn.send([(r.headers, r.body) for r in sim.requests_log])
            elif command == "stop":
                conn.send(None)
                return


class SimProcess:
    """A :class:`Simulator` serving from a child process.

    Args:
        latency: seconds per reply.
        log: keep the last ``log`` requests (0: keep none), read with :meth:`log`.
        **simulator_options: passed on to :class:`Simulator` (``jitter``, ``rpm``, ...).
    """

    def __init__(self, latency: float = 0.0, log: int = 0, **simulator_options: Any):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        options = {"latency": latency, "record": log > 0, "max_log": max(log, 1),
                   **simulator_options}
        self._proc = ctx.Process(target=_serve, args=(child, options), daemon=True,
                                 name="bench-simulator")
        self._proc.start()
        child.close()
        if not self._conn.poll(_START_TIMEOUT):
            self._proc.kill()
            raise RuntimeError("the simulator process did not start")
        self.url: str = self._conn.recv()
        self.openai_base_url = self.url + "/v1"
        self.pid = self._proc.pid

    def _call(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    def stats(self) -> dict[str, Any]:
        """requests, connections, open_connections, in_flight, peak_concurrency, by_status."""
        return self._call("stats")

    def reset(self) -> None:
        self._call("reset")

    def set_latency(self, seconds: float) -> None:
        self._call("latency", seconds)

    def log(self) -> list[tuple[dict[str, str], Any]]:
        """(headers, parsed body) of the logged requests, oldest first."""
        return self._call("log")

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._call("stop")
            except (BrokenPipeError, EOFError, OSError):
                pass
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()

    def __enter__(self) -> SimProcess:  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def machine_facts() -> str:
    import platform

    try:
        load = "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load ?"
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, {load}")
