"""convertToMD on hostile pages against a plain page of the same size, side by side.

    python benchmarks/bench_hostile.py [--size 1048576] [--repeats 3] [--family NAME ...]

Each hostile family (yait_aichain/testing/_hostile.py) is built to make some text pattern
super-linear: long runs of spaces, unclosed tags and comments, lone ``<``, escaped
markup, nesting past libxml2's depth limit, and so on. For every family the table shows
the median conversion time of the plain page and of the hostile page (measured in the
same run, alternating), and their ratio. A linear pipeline keeps every ratio near or
below 1; a backtracking pattern shows up as a ratio that grows with ``--size``.
Use ``--size 10485760`` for convertToMD's default size cap (10 MiB).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

try:
    from yait_aichain.tools import convertToMD
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from yait_aichain.tools import convertToMD

from yait_aichain.testing._hostile import HOSTILE, plain_page


def _time(tool: convertToMD, page: str) -> float:
    start = time.perf_counter()
    tool.run(page)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024 * 1024, help="page size in characters")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--family", action="append", choices=sorted(HOSTILE),
                        help="only these families (repeatable)")
    args = parser.parse_args(argv)
    tool = convertToMD()
    plain = plain_page(args.size)
    families = args.family or sorted(HOSTILE)
    print(f"convertToMD, pages of {args.size:,} characters, median of {args.repeats}")
    print(f"{'family':28s} {'plain s':>9s} {'hostile s':>10s} {'ratio':>7s}")
    worst = 0.0
    for name in families:
        page = HOSTILE[name](args.size)
        plain_times, hostile_times = [], []
        for _ in range(args.repeats):
            plain_times.append(_time(tool, plain))
            hostile_times.append(_time(tool, page))
        p, h = statistics.median(plain_times), statistics.median(hostile_times)
        worst = max(worst, h / p)
        print(f"{name:28s} {p:9.3f} {h:10.3f} {h / p:7.2f}", flush=True)
    print(f"worst ratio: {worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
