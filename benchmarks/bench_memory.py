"""Pool over a lazy generator of many items: time to first request, peak RSS, total time.

    python benchmarks/bench_memory.py [--items 100000] [--flows 200] [--quick]

Two runs, each in a fresh process, with items produced by a generator (never a list):

- ``trivial runner``: ``Pool(lambda v: v["i"] * 2, items, max_flows)``, no I/O: what
  the Pool itself costs per item, in time and memory;
- ``Skill -> simulator``: a Skill over a Model against the simulator at zero latency,
  running in a child process (so its memory and CPU are not counted).

Reported: when the first item was pulled from the generator, when the runner was first
called (the first request) and first returned, all from the start of ``run()``; peak
RSS of the process during the run (kernel high-water mark, reset just before) and its
growth over the RSS before the run, also per item; total wall time and items/s. The
Pool keeps one record per item (that is what ``retry_failed()`` and ``history`` use),
so memory grows with N by design; the items themselves are not read ahead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _measure import run_worker, timed
from _simproc import SimProcess, machine_facts

TEMPLATE = "Summarise in two sentences: {text}"


class _Stamps:
    """Times (perf_counter) of the first pull, call and return, shared by one run."""

    def __init__(self) -> None:
        self.pulled: float | None = None
        self.called: float | None = None
        self.returned: float | None = None


def _items(n: int, stamps: _Stamps) -> Iterator[dict[str, Any]]:
    for i in range(n):
        if stamps.pulled is None:
            stamps.pulled = time.perf_counter()
        yield {"i": i, "text": f"Document {i}: revenue rose in region {i % 7}."}


class _Timed:
    """Forwards to the real runner and stamps its first call and first return."""

    def __init__(self, runner: Any, stamps: _Stamps):
        self._runner, self._stamps = runner, stamps
        self.name = "timed"

    def run(self, variables: dict[str, Any]) -> Any:
        stamps = self._stamps
        if stamps.called is None:
            stamps.called = time.perf_counter()
        out = self._runner(variables) if callable(self._runner) else self._runner.run(variables)
        if stamps.returned is None:
            stamps.returned = time.perf_counter()
        return out

    def _reserve_connections(self, n: int) -> None:
        hook = getattr(self._runner, "_reserve_connections", None)
        if callable(hook):
            hook(n)


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    from yait_aichain.pool import DONE, Pool

    n, flows = spec["n"], spec["flows"]
    if spec["runner"] == "trivial":
        def inner(v: dict[str, Any]) -> int:
            return v["i"] * 2

        def ok(i: int, out: Any) -> bool:
            return out == i * 2
    else:
        from yait_aichain.models import Model
        from yait_aichain.skills import Skill

        inner = Skill(Model("gpt-4o-mini", base_url=spec["base"], api_key="x"), prompt=TEMPLATE)

        def ok(i: int, out: Any) -> bool:
            return isinstance(out, str) and out.startswith(f"Summary: Summarise in two "
                                                           f"sentences: Document {i}:")
    stamps = _Stamps()
    runner = _Timed(inner, stamps)
    pool = Pool(runner, _items(n, stamps), max_flows=flows, progress=False)
    started: list[float] = []

    def work() -> list[Any]:
        started.append(time.perf_counter())
        return pool.run()

    results, m = timed(work)
    t0 = started[0]

    def ms(t: float | None) -> float:
        return (t - t0) * 1000 if t is not None else float("nan")

    m.update(
        n=n, first_pull_ms=ms(stamps.pulled), first_call_ms=ms(stamps.called),
        first_result_ms=ms(stamps.returned), done=pool.status[DONE],
        ok=sum(1 for i, out in enumerate(results) if ok(i, out)),
    )
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--skill-items", type=int, default=None,
                        help="items for the Skill run (default: --items)")
    parser.add_argument("--quick", action="store_true", help="a smoke run (< 30 s)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    if args.quick:
        args.items, args.skill_items = 10_000, 2_000
    skill_items = args.skill_items or args.items

    print(f"bench_memory: {machine_facts()}")
    print(f"items from a generator, max_flows={args.flows}, simulator latency 0 in a child "
          f"process, each run in a fresh process")
    rows = []
    with SimProcess() as sim:
        for runner, n in (("trivial", args.items), ("skill", skill_items)):
            sim.reset()
            spec = {"runner": runner, "n": n, "flows": args.flows, "base": sim.openai_base_url}
            m = run_worker(__file__, spec)
            m["connections"] = sim.stats()["connections"] if runner == "skill" else 0
            rows.append((runner, m))
            print(f"  {runner}: {m['wall']:.1f} s, peak {m['peak']:.0f} MB", flush=True)
    print("\n| runner | items | first pull ms | first request ms | first result ms | "
          "total s | items/s | CPU ms/item | RSS before MB | peak RSS MB | growth MB | "
          "bytes/item | TCP conns | ok |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for runner, m in rows:
        label = "trivial runner" if runner == "trivial" else "Skill -> simulator"
        growth = m["peak"] - m["rss_before"]
        print(f"| {label} | {m['n']:,} | {m['first_pull_ms']:.1f} | {m['first_call_ms']:.1f} | "
              f"{m['first_result_ms']:.1f} | {m['wall']:.1f} | {m['n'] / m['wall']:,.0f} | "
              f"{m['cpu'] * 1000 / m['n']:.2f} | "
              f"{m['rss_before']:.0f} | {m['peak']:.0f} | {growth:.0f} | "
              f"{growth * 1024 * 1024 / m['n']:,.0f} | {m['connections']} | {m['ok']:,}/{m['n']:,} |")
    print("\nIssue targets (100,000 items):")
    for runner, m in rows:
        if m["n"] < 100_000:
            print(f"- {runner}: ran {m['n']:,} items only; targets are stated for 100,000")
            continue
        print(f"- {runner}: first request {m['first_call_ms']:.1f} ms <= 1000 ms: "
              f"{'MET' if m['first_call_ms'] <= 1000 else 'NOT MET'}; peak RSS "
              f"{m['peak']:.0f} MB < 300 MB: {'MET' if m['peak'] < 300 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
