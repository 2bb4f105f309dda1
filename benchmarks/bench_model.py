"""Model.generate() against a bare ``requests.Session().post()``: calls/s and CPU per call.

    python benchmarks/bench_model.py [--rounds 5] [--calls 2000] [--threads 32] [--quick]

The simulator answers at zero latency from a child process, so the CPU time measured
here (``time.process_time()`` of this process, all threads) is the client's alone. Both
contenders send the same JSON body with the same headers to the same URL and parse the
JSON reply; they run side by side, interleaved (A B, then B A, ...), after one warm-up
round that is not counted. Each table cell is the median over the rounds; the ratio
column is the median of the per-round ratios (paired, so a noisy round moves both).

Contenders:

- ``Model.generate``: ``Model("gpt-4o-mini", base_url=..., api_key="x")``;
- ``Session (default)``: ``requests.Session().post(url, data=body, headers=...)``,
  then ``.json()``; with 32 threads its pool of 10 connections overflows, as it does
  for users who never size it;
- ``Session (pool 32)``: the same Session with an ``HTTPAdapter(pool_maxsize=32)``
  mounted (threaded runs only), the fair baseline for the connection churn;
- with ``--baseline-transport FILE``: ``Model.generate`` on a Transport loaded from FILE
  (another version of ``yait_aichain/models/_transport.py``), to measure a transport
  change side by side, e.g.
  ``git show HEAD:yait_aichain/models/_transport.py > /tmp/old.py`` then
  ``python benchmarks/bench_model.py --baseline-transport /tmp/old.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import requests
import requests.adapters
from _simproc import SimProcess, machine_facts, median

from yait_aichain.models import Model

PROMPT = "Summarise in two sentences: the quarterly report shows steady growth in all regions."
MODEL = "gpt-4o-mini"

Call = Callable[[], str]


def model_contender(base: str) -> Call:
    model = Model(MODEL, base_url=base, api_key="x")

    def call() -> str:
        return model.generate(PROMPT).output

    return call


def baseline_contender(base: str, path: str) -> Call:
    """Model.generate over the Transport class of another _transport.py."""
    import importlib.util

    name = "yait_aichain.models._transport_baseline"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    model = Model(MODEL, base_url=base, api_key="x")
    model._transport = module.Transport(model.base_url)

    def call() -> str:
        return model.generate(PROMPT).output

    return call


def wire(base: str) -> tuple[str, bytes, dict[str, str]]:
    """The URL, body and headers that Model sends (checked against the simulator's log)."""
    from yait_aichain import __version__

    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"yait-aichain/{__version__}",
        "Authorization": "Bearer x",
    }
    return base + "/chat/completions", data, headers


def session_contender(base: str, pool: int | None = None) -> Call:
    url, data, headers = wire(base)
    session = requests.Session()
    if pool is not None:
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool))

    def call() -> str:
        r = session.post(url, data=data, headers=headers)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    return call


def check_same_request(sim: SimProcess, contenders: dict[str, Call]) -> None:
    """One call each; the simulator must have seen identical bodies and headers."""
    sim.reset()
    for call in contenders.values():
        call()
    log = sim.log()[-len(contenders):]
    bodies = {json.dumps(body, sort_keys=True) for _, body in log}
    if len(bodies) != 1:
        raise SystemExit(f"contenders send different bodies: {bodies}")
    names = ("content-type", "accept", "user-agent", "authorization")
    seen = {tuple(h.get(n) for n in names) for h, _ in log}
    if len(seen) != 1:
        raise SystemExit(f"contenders send different headers: {seen}")


def measure(call: Call, calls: int, threads: int) -> tuple[float, float]:
    """(calls per second, CPU ms per call) for ``calls`` calls over ``threads`` threads."""
    if threads == 1:
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            call()
        c1, t1 = time.process_time(), time.perf_counter()
        return calls / (t1 - t0), (c1 - c0) * 1000 / calls
    per = calls // threads
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            for _ in range(per):
                call()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    c0, t0 = time.process_time(), time.perf_counter()
    start.wait()
    for w in workers:
        w.join()
    c1, t1 = time.process_time(), time.perf_counter()
    if errors:
        raise errors[0]
    n = per * threads
    return n / (t1 - t0), (c1 - c0) * 1000 / n


def run_mode(
    sim: SimProcess, contenders: dict[str, Call], rounds: int, calls: int, threads: int
) -> dict[str, dict[str, list[float]]]:
    names = list(contenders)
    results = {n: {"rate": [], "cpu": [], "conns": []} for n in names}
    for r in range(rounds + 1):  # round 0 warms up and is dropped
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            sim.reset()
            rate, cpu = measure(contenders[name], calls if r else max(calls // 4, threads), threads)
            if r:
                results[name]["rate"].append(rate)
                results[name]["cpu"].append(cpu)
                results[name]["conns"].append(sim.stats()["connections"])
    return results


def table(title: str, results: dict[str, dict[str, list[float]]], ref: str) -> str:
    lines = [f"\n{title}",
             ("| client | calls/s | CPU ms/call | CPU vs Model | new TCP conns/round | "
              "CPU ms/call per round |"),
             "|---|---:|---:|---:|---:|---|"]
    base = results[ref]["cpu"]
    for name, r in results.items():
        ratios = [c / b for c, b in zip(r["cpu"], base)]
        rounds = " ".join(f"{c:.3f}" for c in r["cpu"])
        lines.append(f"| {name} | {median(r['rate']):.0f} | {median(r['cpu']):.3f} | "
                     f"{median(ratios):.2f}x | {median(r['conns']):.0f} | {rounds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="calls per contender per round")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--baseline-transport", metavar="FILE",
                        help="also run Model over the Transport of this _transport.py")
    parser.add_argument("--quick", action="store_true", help="a smoke run (< 30 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls = 2, 300
    # A default Session shared by 32 threads logs "Connection pool is full" per call.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

    print(f"bench_model: {machine_facts()}")
    print(f"rounds={args.rounds} (+1 warm-up), calls={args.calls}, threads={args.threads}, "
          f"simulator latency 0 in a child process; CPU = this process only")
    with SimProcess(latency=0.0, log=8) as sim:
        seq = {
            "Model.generate": model_contender(sim.openai_base_url),
            "Session (default)": session_contender(sim.openai_base_url),
        }
        if args.baseline_transport:
            seq["Model, baseline transport"] = baseline_contender(
                sim.openai_base_url, args.baseline_transport)
        check_same_request(sim, seq)
        res = run_mode(sim, seq, args.rounds, args.calls, 1)
        print(table("Sequential (1 thread)", res, "Model.generate"))
        thr = {
            "Model.generate": model_contender(sim.openai_base_url),
            "Session (default)": session_contender(sim.openai_base_url),
            f"Session (pool {args.threads})": session_contender(sim.openai_base_url, args.threads),
        }
        if args.baseline_transport:
            thr["Model, baseline transport"] = baseline_contender(
                sim.openai_base_url, args.baseline_transport)
        res = run_mode(sim, thr, args.rounds, args.calls, args.threads)
        print(table(f"{args.threads} threads", res, "Model.generate"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
