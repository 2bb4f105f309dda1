"""max_flows="auto" against fixed max_flows and the OpenAI cookbook's processor.

Two kinds of server, each contender against its own simulator process (its own key and
window, so contenders run at the same time without sharing a budget):

1. **Rate-limited, with headers** (OpenAI's and Anthropic's header families): the
   simulator enforces ``--rpm`` requests and ``--tpm`` tokens per key per minute, as the
   providers do (input plus ``max_tokens`` charged on admission, corrected to what was
   used; a real 429 with the time to the window's reset when over). Contenders:
   ``Pool(max_flows="auto")`` with no other setting, fixed ``max_flows`` 5, 20, 100 and
   500, and our own re-implementation of the OpenAI cookbook's
   ``api_request_parallel_processor`` algorithm configured with the true limits.
2. **Header-less, saturating** (a local server such as vLLM or Ollama): ``--capacity``
   requests served at once, as many more queued, 503 beyond that; no rate-limit headers.
   Contenders: "auto" and a sweep of fixed ``max_flows``.

Columns: wall time, share of HTTP responses that were 429 (or 503), achieved requests
and tokens per minute (successful requests and the tokens their usage reported, over the
wall time), items that failed. ``python benchmarks/bench_auto.py --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _simproc import ROOT, SimProcess, machine_facts  # noqa: E402

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
MAX_TOKENS = 100


def make_items(count: int, seed: int = 7) -> list[dict[str, str]]:
    """Texts of 60 to 140 words: about 170 tokens a request with the simulator's echo
    reply, so the token limit binds about as tightly as the request limit."""
    rng = random.Random(seed)
    words = ["alpha", "budget", "cloud", "delta", "engine", "forest", "garden", "harbor"]
    return [{"text": " ".join(rng.choice(words) for _ in range(rng.randint(60, 140)))}
            for _ in range(count)]


# -- contenders (each runs in a child process; prints one JSON line) -----------------------

def run_pool(spec: dict[str, Any]) -> dict[str, Any]:
    from yait_aichain import Model, Pool, Skill

    model = Model(MODELS[spec["provider"]], api_key=spec["key"], base_url=spec["base_url"],
                  provider=spec.get("wire"), max_tokens=MAX_TOKENS)
    skill = Skill(model=model, prompt="Summarise: {text}")
    flows = spec["flows"]
    pool = Pool(skill, make_items(spec["items"]), max_flows=flows, progress=False)
    started = time.monotonic()
    pool.run()
    wall = time.monotonic() - started
    done = [r for r in pool.records if r.status_name == "DONE"]
    tokens = sum(r.usage.total_tokens for r in done)
    flows_seen = [r.flows for r in pool.records if getattr(r, "flows", None)]
    return {"wall": wall, "done": len(done), "failed": len(pool.records) - len(done),
            "tokens": tokens, "peak_flows": max(flows_seen, default=None)}


class CookbookProcessor:
    """The algorithm of the OpenAI cookbook's ``api_request_parallel_processor.py``,
    written here from its description (none of its code): one dispatch loop keeps a
    request and a token capacity that refill at the configured rates (starting full, at
    most one minute's worth); a request goes out when both cover it (1 request; its
    prompt's token estimate plus ``max_tokens``), with no cap on requests in flight; after
    any 429 the loop sends nothing for 15 s; a failed request goes back in a retry queue
    until its attempts are spent. Charges are never corrected by usage."""

    PAUSE_AFTER_429 = 15.0
    MAX_ATTEMPTS = 5

    def __init__(self, post: Any, rpm: float, tpm: float):
        self.post, self.rpm, self.tpm = post, rpm, tpm
        self.lock = threading.Lock()
        self.last_429 = -math.inf
        self.retries: deque[tuple[dict[str, Any], int]] = deque()
        self.done = self.failed = self.tokens = 0

    def _task(self, body: dict[str, Any], attempts: int) -> None:
        status, used = self.post(body)
        with self.lock:
            if status == 200:
                self.done += 1
                self.tokens += used
                return
            if status == 429:
                self.last_429 = time.monotonic()
            if attempts > 1:
                self.retries.append((body, attempts - 1))
            else:
                self.failed += 1

    def run(self, bodies: list[dict[str, Any]], estimate: Any) -> None:
        pending = deque((b, self.MAX_ATTEMPTS) for b in bodies)
        have_requests, have_tokens = self.rpm, self.tpm
        last = time.monotonic()
        nxt = None
        with ThreadPoolExecutor(max_workers=1000) as executor:
            while True:
                with self.lock:
                    if nxt is None and self.retries:
                        nxt = self.retries.popleft()
                    finished = self.done + self.failed
                if nxt is None and pending:
                    nxt = pending.popleft()
                now = time.monotonic()
                have_requests = min(self.rpm, have_requests + self.rpm * (now - last) / 60)
                have_tokens = min(self.tpm, have_tokens + self.tpm * (now - last) / 60)
                last = now
                if nxt is not None:
                    cost = estimate(nxt[0])
                    if have_requests >= 1 and have_tokens >= cost:
                        have_requests -= 1
                        have_tokens -= cost
                        executor.submit(self._task, *nxt)
                        nxt = None
                if finished >= len(bodies):
                    return
                time.sleep(0.001)
                quiet = self.PAUSE_AFTER_429 - (time.monotonic() - self.last_429)
                if quiet > 0:
                    time.sleep(quiet)


def run_cookbook(spec: dict[str, Any]) -> dict[str, Any]:
    import requests

    provider = spec["provider"]
    local = threading.local()
    if provider == "openai":
        url = spec["base_url"] + "/chat/completions"
        headers = {"Authorization": f"Bearer {spec['key']}"}
    else:
        url = spec["base_url"] + "/v1/messages"
        headers = {"x-api-key": spec["key"], "anthropic-version": "2023-06-01"}

    def post(body: dict[str, Any]) -> tuple[int, int]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            resp = session.post(url, json=body, headers=headers, timeout=120)
        except requests.RequestException:
            return 0, 0
        if resp.status_code != 200:
            return resp.status_code, 0
        usage = resp.json().get("usage", {})
        used = usage.get("total_tokens") or (
            usage.get("input_tokens", 0) + usage.get("output_tokens", 0))
        return 200, int(used)

    def body(text: str) -> dict[str, Any]:
        message = {"role": "user", "content": f"Summarise: {text}"}
        return {"model": MODELS[provider], "max_tokens": MAX_TOKENS, "messages": [message]}

    def estimate(b: dict[str, Any]) -> int:  # the same estimate RateLimit uses
        return math.ceil(len(b["messages"][0]["content"]) / 4) + b["max_tokens"]

    processor = CookbookProcessor(post, spec["rpm"], spec["tpm"])
    bodies = [body(item["text"]) for item in make_items(spec["items"])]
    started = time.monotonic()
    processor.run(bodies, estimate)
    wall = time.monotonic() - started
    return {"wall": wall, "done": processor.done, "failed": processor.failed,
            "tokens": processor.tokens, "peak_flows": None}


# -- the parent: servers, contenders side by side, tables ----------------------------------

_STARTING = threading.Lock()  # simulators start one at a time: a loaded machine is slow


def _start(sim_options: dict[str, Any]) -> SimProcess:
    with _STARTING:
        return SimProcess(**sim_options)


def contend(spec: dict[str, Any], sim_options: dict[str, Any]) -> dict[str, Any]:
    """One contender against its own simulator process; returns its row."""
    with _start(sim_options) as sim:
        base = sim.openai_base_url if spec["provider"] == "openai" else sim.url
        child = {**spec, "base_url": base, "key": f"sk-bench-{os.getpid()}-{spec['name']}"}
        env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
        done = subprocess.run([sys.executable, __file__, "--one", json.dumps(child)],
                              capture_output=True, text=True, env=env, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"{spec['name']} failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        stats = sim.stats()
    statuses = {int(k): v for k, v in stats["by_status"].items()}
    answered = sum(statuses.values())
    row.update(name=spec["name"], requests=answered,
               r429=statuses.get(429, 0), r503=statuses.get(503, 0),
               peak_server=stats["peak_concurrency"])
    return row


def table(title: str, rows: list[dict[str, Any]], limits: tuple[float, float] | None) -> str:
    head = ("| contender | wall s | HTTP requests | 429 share | 503 share | req/min | "
            "tokens/min | of tighter limit | failed | peak at server |")
    out = [f"\n### {title}\n", head, "|" + "---|" * 10]
    for r in rows:
        minutes = r["wall"] / 60
        rpm, tpm = r["done"] / minutes, r["tokens"] / minutes
        share = f"{max(rpm / limits[0], tpm / limits[1]):.1%}" if limits else "-"
        out.append(
            f"| {r['name']} | {r['wall']:.1f} | {r['requests']} | "
            f"{r['r429'] / max(1, r['requests']):.1%} | {r['r503'] / max(1, r['requests']):.1%} | "
            f"{rpm:,.0f} | {tpm:,.0f} | {share} | {r['failed']} | {r['peak_server']} |")
    return "\n".join(out)


def _pick(contenders: tuple[Any, ...], wanted: str | None) -> tuple[Any, ...]:
    if not wanted:
        return contenders
    names = set(wanted.split(","))
    return tuple(c for c in contenders if str(c) in names)


def _jobs(args: argparse.Namespace) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    jobs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if args.only in (None, "headers"):
        limited = {"latency": args.latency, "jitter": args.latency / 2, "rpm": args.rpm,
                   "tpm": args.tpm}
        for provider in ("openai", "anthropic"):
            for flows in _pick(("auto", 5, 20, 100, 500, "cookbook"), args.contenders):
                spec = {"name": f"{flows}" if flows != "cookbook" else "cookbook processor",
                        "provider": provider, "flows": flows, "items": args.items,
                        "rpm": args.rpm, "tpm": args.tpm}
                jobs.append((provider, spec, limited))
    if args.only in (None, "local"):
        local = {"latency": args.local_latency, "jitter": args.local_latency / 5,
                 "capacity": args.capacity, "queue": args.capacity, "rate_headers": False}
        for flows in _pick(("auto", 5, 20, 30, 40, 50, 60, 80, 100, 500), args.contenders):
            spec = {"name": str(flows), "provider": "openai", "wire": "vllm",
                    "flows": flows, "items": args.local_items}
            jobs.append(("local", spec, local))
    return jobs


def _run(jobs: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> dict[str, list[Any]]:
    # Rate-limited contenders have their own server and key, so they run side by side:
    # their wall time is set by the limits, not by this machine's CPU. The saturating
    # server's contenders are CPU-bound, so they run one after another (alongside).
    limited = [(g, spec, opts) for g, spec, opts in jobs if g != "local"]
    local_jobs = [(spec, opts) for g, spec, opts in jobs if g == "local"]
    results: dict[str, list[dict[str, Any]]] = {}
    with ThreadPoolExecutor(max_workers=len(limited) + 1) as executor:
        futures = [(group, executor.submit(contend, spec, opts)) for group, spec, opts in limited]
        sequential = executor.submit(lambda: [contend(spec, opts) for spec, opts in local_jobs])
        for group, future in futures:
            results.setdefault(group, []).append(future.result())
        if local_jobs:
            results["local"] = sequential.result()
    return results


def _report(args: argparse.Namespace, results: dict[str, list[Any]]) -> None:
    for provider in ("openai", "anthropic"):
        if provider in results:
            print(table(f"{provider} headers, {args.rpm} req/min and {args.tpm:,} tokens/min, "
                        f"{args.items} items, latency {args.latency} s",
                        results[provider], (args.rpm, args.tpm)))
    rows = results.get("local")
    if not rows:
        return
    print(table(f"header-less server saturating at {args.capacity} concurrent "
                f"(+{args.capacity} queued, then 503), {args.local_items} items, "
                f"{args.local_latency} s per request", rows, None))
    # A contender that lost items to a 503 storm finished early only by giving up on them.
    fixed = [r for r in rows if r["name"] != "auto" and not r["failed"]]
    auto = next((r for r in rows if r["name"] == "auto"), None)
    if fixed and auto is not None:
        best = min(fixed, key=lambda r: r["wall"])
        print(f"\nauto {auto['wall']:.1f} s vs the best fixed that lost no item "
              f"(max_flows={best['name']}) "
              f"{best['wall']:.1f} s: {auto['wall'] / best['wall'] - 1:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--tpm", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--capacity", type=int, default=40)
    parser.add_argument("--local-items", type=int, default=2000)
    parser.add_argument("--local-latency", type=float, default=0.5)
    parser.add_argument("--only", choices=["headers", "local"], default=None)
    parser.add_argument("--contenders", default=None,
                        help="comma-separated subset, e.g. auto,20 (default: all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec = json.loads(args.one)
        runner = run_cookbook if spec["flows"] == "cookbook" else run_pool
        print(json.dumps(runner(spec)))
        return
    print(f"# bench_auto.py: {machine_facts()}")
    _report(args, _run(_jobs(args)))


if __name__ == "__main__":
    main()
