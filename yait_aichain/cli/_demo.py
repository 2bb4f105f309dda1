"""``yait-aichain demo``: the article's 50 documents, offline, loop against Pool (what it
does and where the calls go: DESCRIPTION, its --help text)."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from typing import Any

from ..pool import CANCELLED, DONE, FAILED
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    add_model_arguments,
    build_model,
    non_negative_float,
    positive_float,
    positive_int,
    say,
    usage_text,
)

DEMO_MODEL = "claude-sonnet-4-6"
DEMO_PROMPT = "Summarise in two sentences:\n\n{text}"
DEMO_KEY = "demo-key-not-secret"  # the simulator accepts any key

DESCRIPTION = """\
Run the article's example: N documents through one Skill, first (optionally) in a plain
for-loop, then through Pool(max_flows=...), and compare the wall times. Without --model
the calls go to a local simulator (about --latency seconds each, nothing leaves this
machine); with --model and the provider's key in the environment, to the provider."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="see Pool beat a for-loop, offline, in ~15 seconds",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=positive_int, default=50, metavar="N",
                   help="documents to summarise (default: %(default)s)")
    p.add_argument("--latency", type=positive_float, default=2.0, metavar="S",
                   help="simulated seconds per call, on average (default: %(default)s)")
    p.add_argument("--jitter", type=non_negative_float, default=None, metavar="S",
                   help="spread of the simulated latency (default: a tenth of --latency)")
    p.add_argument("--max-flows", type=positive_int, default=10, metavar="N",
                   help="calls in flight at once (default: %(default)s)")
    p.add_argument("--loop", type=positive_int, nargs="?", const=3, default=None, metavar="N",
                   help="first time a real for-loop over N documents (default N: 3)")
    p.add_argument("--report", metavar="HTML", help="write an HTML timeline of the Pool run")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a live progress line on stderr (default: when stderr is a terminal)")
    add_model_arguments(p, required=False)
    p.set_defaults(handler=demo_command)


def _simulator(args: argparse.Namespace) -> Any:
    from ..testing import Simulator

    jitter = min(args.latency / 10 if args.jitter is None else args.jitter, 2 * args.latency)
    # The simulator adds uniform(0, jitter) to its latency; centre it on --latency.
    return Simulator(latency=args.latency - jitter / 2, jitter=jitter, seed=0, record=False)


def demo_command(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when every item is DONE, else 1."""
    from ..models import Model
    from ..pool import Pool
    from ..skills import Skill

    out = sys.stdout
    with ExitStack() as stack:
        if args.model:
            model, _ = build_model(args)
            where = (f"calls go to {model.provider} at {model.base_url}: real requests, real "
                     "(small) cost")
        else:
            sim = stack.enter_context(_simulator(args))
            model = Model(DEMO_MODEL, api_key=DEMO_KEY, base_url=sim.anthropic_base_url)
            where = (f"calls go to a local LLM simulator at {sim.url} (~{args.latency:g} s per "
                     "call); no key, nothing leaves this machine")
        skill = Skill(model, prompt=DEMO_PROMPT)
        documents = [{"text": f"Document {i} content..."} for i in range(args.items)]
        say(out, f"yait-aichain demo: {args.items} documents, Skill({model.name}) -> "
                 f"Pool(max_flows={args.max_flows})")
        say(out, where)
        loop_each = _loop(out, skill, documents, args.loop)
        pool = Pool(skill, items=documents, max_flows=args.max_flows, progress=args.progress,
                    name="pool")
        say(out, f"\nPool: {args.items} documents, at most {args.max_flows} at a time ...")
        started = time.monotonic()
        pool.run()
        wall = time.monotonic() - started
    _print_results(out, pool, wall, loop_each)
    if args.report:
        path = pool.report(args.report)
        say(out, f"report:  {path} (open it in a browser)")
    return EXIT_OK if pool.status[DONE] == args.items else EXIT_FAILED


def _loop(out: Any, skill: Any, documents: list[dict[str, Any]], n: int | None) -> float | None:
    """Time a plain for-loop over the first ``n`` documents; returns seconds per item."""
    if not n:
        return None
    n = min(n, len(documents))
    say(out, f"\nfor-loop: the first {n} documents, one after another ...")
    started = time.monotonic()
    for doc in documents[:n]:
        skill.run(doc)
    took = time.monotonic() - started
    each = took / n
    say(out, f"for-loop: {n} documents in {took:.1f} s ({each:.2f} s each; all "
             f"{len(documents)} would take ~{each * len(documents):.0f} s)")
    return each


def _print_results(out: Any, pool: Any, wall: float, loop_each: float | None) -> None:
    from ..report._summary import summarise

    s = pool.status
    results = pool.results
    summary = summarise(pool.records, pool.max_flows, pool.usage)
    n = len(results)
    first = next((r for r in results if r is not None), None)
    say(out)
    if first is not None:
        say(out, f"results: {n} in input order, e.g. results[0] = {str(first)[:70]!r}")
    say(out, f"status:  done={s[DONE]} failed={s[FAILED]} cancelled={s[CANCELLED]}")
    say(out, f"Pool wall time:        {wall:7.1f} s")
    say(out, f"for-loop would take:   {summary.loop:7.1f} s   (the sum of the {n} per-item "
             "durations)")
    if loop_each is not None:
        say(out, f"measured for-loop:     {loop_each * n:7.1f} s   (estimated from the "
                 "for-loop above)")
    if wall > 0:
        waves = -(-n // pool.max_flows)
        say(out, f"speed-up:              {summary.loop / wall:7.1f}x  (at best {n / waves:.1f}x: "
                 f"{n} items in {waves} waves of {pool.max_flows})")
    say(out, f"usage:   {usage_text(pool.usage)}")
    for rec in pool.failures[:3]:
        say(out, f"failed:  item {rec.index}: {rec.error_type}: {rec.error_message}")
