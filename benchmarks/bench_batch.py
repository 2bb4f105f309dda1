"""The same job live, live with prompt caching, and through the Batch API, side by side.

    python benchmarks/bench_batch.py [--items 1000] [--rounds 3] [--latency 0.2]
                                     [--batch-delay 2.0] [--model claude-sonnet-4-6]

Every item shares one long instruction (a system prompt of 3,000 simulator tokens) and
adds its own short document. Contenders, side by side in one run against one simulator:

- ``live``: ``Pool(Skill(..., cache=False), items, max_flows=50).run()``;
- ``live + cache``: the same Skill with ``cache="auto"`` (the default): the prefix is
  marked, one item writes the cache, the other items read it;
- ``batch``: ``Pool(Skill(..., cache=False), items, mode="batch", poll_interval=0.25)``:
  one provider batch at half price. The simulator finishes a batch ``--batch-delay``
  seconds after it was created; real providers take minutes to hours (within 24 h), so its
  wall time here only shows the polling overhead, not what to expect;
- ``batch + cache``: the same with the cached prefix (cache reads at the batch rate too).

Cost is what the records say (usage at the published prices, cache and batch rates from
genai-prices); each cell is the median over rounds; ratios are to ``live``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from yait_aichain import Model, Pool, Skill  # noqa: E402
from yait_aichain.testing import Simulator  # noqa: E402

INSTRUCTION = " ".join(f"rule{i}: keep the summary factual and short." for i in range(500))


def one(mode: str, sim: Simulator, args: argparse.Namespace) -> tuple[float, float]:
    model = Model(args.model, api_key="bench", base_url=sim.anthropic_base_url)
    skill = Skill(model, system=INSTRUCTION, prompt="Summarise: {text}",
                  cache="auto" if mode.endswith("cache") else False)
    items = [{"text": f"document {i} about revenue in region {i % 7}"} for i in range(args.items)]
    sim.prompt_cache.clear()
    if mode.startswith("batch"):
        pool = Pool(skill, items, mode="batch", poll_interval=0.25)
    else:
        pool = Pool(skill, items, max_flows=50)
    started = time.perf_counter()
    pool.run()
    wall = time.perf_counter() - started
    assert pool.status[2] == args.items, pool.status
    return wall, pool.usage.cost or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--batch-delay", type=float, default=2.0)
    parser.add_argument("--model", default="claude-sonnet-4-6")
    args = parser.parse_args()
    modes = ("live", "live + cache", "batch", "batch + cache")
    walls: dict[str, list[float]] = {m: [] for m in modes}
    costs: dict[str, list[float]] = {m: [] for m in modes}
    with Simulator(latency=args.latency, record=False) as sim:
        sim.batches.delay = args.batch_delay
        for r in range(args.rounds):
            for mode in modes[r % 4:] + modes[:r % 4]:  # rotate the order every round
                wall, cost = one(mode, sim, args)
                walls[mode].append(wall)
                costs[mode].append(cost)
    base_wall = statistics.median(walls["live"])
    base_cost = statistics.median(costs["live"])
    print(f"{args.items} items, {args.model}, simulator latency {args.latency} s, "
          f"batch ready after {args.batch_delay} s, median of {args.rounds} rounds\n")
    print("| mode | wall s | x live | cost USD | x live |")
    print("|---|---:|---:|---:|---:|")
    for mode in modes:
        wall, cost = statistics.median(walls[mode]), statistics.median(costs[mode])
        print(f"| {mode} | {wall:.2f} | {wall / base_wall:.2f} | {cost:.4f} | "
              f"{cost / base_cost:.2f} |")


if __name__ == "__main__":
    main()
