"""Pool against the usual alternatives: the same N LLM calls, side by side in one run.

    python benchmarks/bench_pool.py [--rounds 3] [--big] [--quick] [--save FILE]

Each point is (N items, max_flows, simulator latency); the default points are
(200, 50, 0.2 s) and (1000, 100, 0.2 s); ``--big`` adds (2000, 200, 1 s). Contenders:

- ``for-loop``: ``skill.run(item)`` in a plain loop, run on the first ``k`` items only;
  its wall time is extrapolated to N (marked ``*``);
- ``Pool``: ``Pool(skill, items, max_flows).run()``, the Skill over a Model;
- ``threads+Session``: ``ThreadPoolExecutor(max_flows)`` mapping ``session.post`` over
  the items, one ``requests.Session`` with ``HTTPAdapter(pool_maxsize=max_flows)``;
- ``asyncio+httpx``: ``asyncio.gather`` over the items under an
  ``asyncio.Semaphore(max_flows)``, one ``httpx.AsyncClient`` with
  ``Limits(max_connections=max_flows, max_keepalive_connections=max_flows)``;
- ``openai SDK``: ``openai.OpenAI(base_url=..., api_key="x", max_retries=0)`` (its
  default limits), ``chat.completions.create`` mapped by ``ThreadPoolExecutor(max_flows)``;
- ``floor: http.client``: not a real option (no timeouts, retries or errors handled): one
  bare ``http.client.HTTPConnection`` per thread of a ``ThreadPoolExecutor(max_flows)``.
  The cheapest client Python has, so its efficiency is what this machine and simulator
  allow at that point; nothing in pure Python can do much better.

All send the same prompt per item to the simulator's OpenAI endpoint and keep the reply
text. The simulator runs in a child process; every contender run happens in a fresh
subprocess, so CPU time (``time.process_time()``) and peak RSS (kernel high-water mark,
reset just before the run) are the client's alone and nothing carries over between
contenders. Long-lived clients (Model/Skill, Session, AsyncClient, OpenAI) are built
before the clock starts; the per-batch machinery (Pool, executor, gather) is timed.
Rounds are interleaved with a rotating order; each cell is the median over rounds.

Efficiency = ideal / wall, where ideal = ceil(N / max_flows) x latency. TCP connections
and peak concurrency are the simulator's counts for that run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _measure import run_worker, timed
from _simproc import SimProcess, machine_facts, median

MODEL = "gpt-4o-mini"
TEMPLATE = "Summarise in two sentences: {text}"
CONTENDERS = ("for-loop", "Pool", "threads+Session", "asyncio+httpx", "openai SDK",
              "floor: http.client")
DEFAULT_POINTS = [(200, 50, 0.2), (1000, 100, 0.2)]
BIG_POINT = (2000, 200, 1.0)
QUICK_POINTS = [(100, 25, 0.1)]


def make_items(n: int) -> list[dict[str, str]]:
    return [{"text": f"Document {i}: revenue rose in region {i % 7} while costs held."}
            for i in range(n)]


def expected(item: dict[str, str]) -> str:
    return "Summary: " + TEMPLATE.format(**item)


# ---------------------------------------------------------------- worker side


def _run_pool_like(spec: dict[str, Any]) -> dict[str, Any]:
    name, n, flows, base = spec["contender"], spec["n"], spec["flows"], spec["base"]
    items = make_items(spec.get("k") or n)
    url = base + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}

    def body(item: dict[str, str]) -> bytes:
        msg = {"model": MODEL, "messages": [{"role": "user", "content": TEMPLATE.format(**item)}]}
        return json.dumps(msg).encode()

    if name in ("for-loop", "Pool"):
        from yait_aichain.models import Model
        from yait_aichain.pool import Pool
        from yait_aichain.skills import Skill

        skill = Skill(Model(MODEL, base_url=base, api_key="x"), prompt=TEMPLATE)
        if name == "for-loop":
            def work() -> list[Any]:
                return [skill.run(item) for item in items]
        else:
            def work() -> list[Any]:
                return Pool(skill, items, max_flows=flows, progress=False).run()

    elif name == "threads+Session":
        from concurrent.futures import ThreadPoolExecutor

        import requests
        import requests.adapters

        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=flows))

        def one(item: dict[str, str]) -> str:
            r = session.post(url, data=body(item), headers=headers, timeout=60)
            r.raise_for_status()
            return r.json()["choices"][0]["message"]["content"]

        def work() -> list[Any]:
            with ThreadPoolExecutor(flows) as ex:
                return list(ex.map(one, items))

    elif name == "asyncio+httpx":
        import asyncio

        import httpx

        loop = asyncio.new_event_loop()

        async def make() -> httpx.AsyncClient:
            limits = httpx.Limits(max_connections=flows, max_keepalive_connections=flows)
            return httpx.AsyncClient(limits=limits, timeout=60)

        client = loop.run_until_complete(make())

        async def batch() -> list[str]:
            sem = asyncio.Semaphore(flows)

            async def one(item: dict[str, str]) -> str:
                async with sem:
                    r = await client.post(url, content=body(item), headers=headers)
                    r.raise_for_status()
                    return r.json()["choices"][0]["message"]["content"]

            return await asyncio.gather(*(one(item) for item in items))

        def work() -> list[Any]:
            return loop.run_until_complete(batch())

    elif name == "floor: http.client":
        import http.client
        import threading
        from concurrent.futures import ThreadPoolExecutor
        from urllib.parse import urlsplit

        where = urlsplit(url)
        local = threading.local()

        def one(item: dict[str, str]) -> str:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(where.hostname, where.port)
            conn.request("POST", where.path, body(item), headers)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise RuntimeError(f"status {r.status}")
            return json.loads(data)["choices"][0]["message"]["content"]

        def work() -> list[Any]:
            with ThreadPoolExecutor(flows) as ex:
                return list(ex.map(one, items))

    elif name == "openai SDK":
        from concurrent.futures import ThreadPoolExecutor

        import openai

        oa = openai.OpenAI(base_url=base, api_key="x", max_retries=0)

        def one(item: dict[str, str]) -> str:
            res = oa.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": TEMPLATE.format(**item)}]
            )
            return res.choices[0].message.content

        def work() -> list[Any]:
            with ThreadPoolExecutor(flows) as ex:
                return list(ex.map(one, items))
    else:
        raise SystemExit(f"unknown contender {name!r}")

    results, m = timed(work)
    m["ok"] = sum(1 for item, out in zip(items, results) if out == expected(item))
    m["calls"] = len(items)
    return m


# ---------------------------------------------------------------- parent side


def run_point(
    sim: SimProcess, n: int, flows: int, latency: float, rounds: int, loop_k: int
) -> dict[str, dict[str, list[float]]]:
    sim.set_latency(latency)
    rows: dict[str, dict[str, list[float]]] = {c: {} for c in CONTENDERS}
    for r in range(rounds):
        shift = r % len(CONTENDERS)
        order = CONTENDERS[shift:] + CONTENDERS[:shift]
        for name in order:
            spec = {"contender": name, "n": n, "flows": flows, "base": sim.openai_base_url}
            if name == "for-loop":
                spec["k"] = min(loop_k, n)
            sim.reset()
            m = run_worker(__file__, spec)
            stats = sim.stats()
            m["connections"] = stats["connections"]
            m["peak_concurrency"] = stats["peak_concurrency"]
            for key, value in m.items():
                rows[name].setdefault(key, []).append(float(value))
            print(f"  round {r + 1} {name:16s} wall {m['wall']:6.2f} s  cpu {m['cpu']:5.2f} s  "
                  f"conns {stats['connections']:4d}  ok {m['ok']}/{m['calls']}", flush=True)
    return rows


def summarise(n: int, flows: int, latency: float, rows: dict[str, dict[str, list[float]]]
              ) -> dict[str, dict[str, Any]]:
    ideal = math.ceil(n / flows) * latency
    out: dict[str, dict[str, Any]] = {}
    for name, r in rows.items():
        calls = r["calls"][0]
        walls = [w * n / calls for w in r["wall"]]  # extrapolated for the loop
        cpu_ms = [c * 1000 / calls for c in r["cpu"]]
        out[name] = {
            "wall": median(walls), "extrapolated": calls < n,
            "efficiency": median([ideal / w for w in walls]),
            "cpu_ms": median(cpu_ms), "cpu_ms_rounds": cpu_ms,
            "rss_delta": median([p - b for p, b in zip(r["peak"], r["rss_before"])]),
            "connections": median(r["connections"]),
            "peak_concurrency": median(r["peak_concurrency"]),
            "ok": f"{int(min(r['ok']))}/{int(calls)}",
        }
    base = out["threads+Session"]["cpu_ms_rounds"]
    for row in out.values():
        row["cpu_ratio"] = median([c / b for c, b in zip(row["cpu_ms_rounds"], base)])
    return out


def table(n: int, flows: int, latency: float, summary: dict[str, dict[str, Any]]) -> str:
    ideal = math.ceil(n / flows) * latency
    lines = [
        f"\nN={n}, max_flows={flows}, latency={latency:g} s (ideal wall {ideal:.2f} s)",
        ("| client | wall s | efficiency | CPU ms/call | CPU vs threads+Session | "
         "peak RSS delta MB | TCP conns | peak concurrency | ok |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        star = "*" if s["extrapolated"] else ""
        lines.append(
            f"| {name} | {s['wall']:.2f}{star} | {s['efficiency']:.3f}{star} | {s['cpu_ms']:.2f} | "
            f"{s['cpu_ratio']:.2f}x | {s['rss_delta']:.1f} | {s['connections']:.0f} | "
            f"{s['peak_concurrency']:.0f} | {s['ok']} |"
        )
    if any(s["extrapolated"] for s in summary.values()):
        lines.append("\n`*` extrapolated to N from the first items (see the for-loop row's ok).")
    return "\n".join(lines)


def check_targets(points: list[tuple[int, int, float, dict[str, dict[str, Any]]]]) -> str:
    lines = ["\nIssue targets:"]

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    for n, flows, latency, s in points:
        pool, bare = s["Pool"], s["threads+Session"]
        tag = f"({n}, {flows}, {latency:g} s)"
        if (n, flows, latency) == (1000, 100, 0.2):
            lines.append(f"- {tag} Pool wall {pool['wall']:.2f} s <= 2.2 s: "
                         f"{verdict(pool['wall'] <= 2.2)}")
            lines.append(f"- {tag} Pool TCP connections {pool['connections']:.0f} <= ~100: "
                         f"{verdict(pool['connections'] <= 105)}")
        lines.append(f"- {tag} Pool efficiency {pool['efficiency']:.3f} >= 0.93: "
                     f"{verdict(pool['efficiency'] >= 0.93)}")
        gap = bare["efficiency"] - pool["efficiency"]
        lines.append(f"- {tag} Pool efficiency within 0.02 of threads+Session "
                     f"({bare['efficiency']:.3f}; gap {gap:+.3f}): {verdict(gap <= 0.02)}")
        lines.append(f"- {tag} Pool CPU/call {pool['cpu_ratio']:.2f}x threads+Session <= 1.2x: "
                     f"{verdict(pool['cpu_ratio'] <= 1.2)}")
        floor = s.get("floor: http.client")
        if floor is not None:
            lines.append(f"  (context: the floor client reached efficiency {floor['efficiency']:.3f} "
                         f"at this point on this machine)")
    return "\n".join(lines)


def parse_points(text: str) -> list[tuple[int, int, float]]:
    points = []
    for part in text.split(","):
        n, flows, latency = part.split(":")
        points.append((int(n), int(flows), float(latency)))
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="add the (2000, 200, 1 s) point")
    parser.add_argument("--points", type=parse_points, default=None, metavar="N:FLOWS:LAT,...")
    parser.add_argument("--loop-items", type=int, default=10,
                        help="items the for-loop really runs (then extrapolated)")
    parser.add_argument("--quick", action="store_true", help="a smoke run (< 30 s)")
    parser.add_argument("--save", metavar="FILE", help="also write the raw numbers as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_run_pool_like(json.loads(args.worker))))
        return 0
    points = args.points or list(DEFAULT_POINTS)
    if args.big:
        points.append(BIG_POINT)
    if args.quick:
        points, args.rounds, args.loop_items = args.points or QUICK_POINTS, 1, 3

    print(f"bench_pool: {machine_facts()}")
    print(f"rounds={args.rounds}, points={points}; every run in a fresh process, "
          f"simulator in a child process")
    done = []
    with SimProcess() as sim:
        for n, flows, latency in points:
            print(f"\nN={n} max_flows={flows} latency={latency:g}s", flush=True)
            loop_k = args.loop_items if latency < 0.5 else max(3, args.loop_items // 2)
            rows = run_point(sim, n, flows, latency, args.rounds, loop_k)
            done.append((n, flows, latency, summarise(n, flows, latency, rows)))
    for n, flows, latency, s in done:
        print(table(n, flows, latency, s))
    print(check_targets(done))
    if args.save:
        with open(args.save, "w") as f:
            json.dump([{"n": n, "flows": fl, "latency": la, "results": s}
                       for n, fl, la, s in done], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
