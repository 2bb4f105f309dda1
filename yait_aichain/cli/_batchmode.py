"""``run --batch`` and ``--no-wait``: the same command through the providers' Batch APIs.

``--batch`` runs the items as provider batches (half the price, results within 24 hours)
and keeps the batch ids in ``<output>.checkpoint.batches``, so ``--resume`` after a crash
or Ctrl-C re-attaches instead of paying again. ``--no-wait`` submits and exits, printing
the command that collects the results later.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from ._common import EXIT_OK, CliError, positive_float, say

__all__ = ["add_batch_arguments", "batch_options", "check_batch_arguments", "submit_only"]

DEFAULT_POLL_INTERVAL = 60.0


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", action="store_true",
                   help="send the items through the provider's Batch API: half the price, "
                        "results within 24 hours; the batch ids are kept beside --output, "
                        "so --resume re-attaches instead of paying again")
    p.add_argument("--no-wait", action="store_true",
                   help="with --batch: submit, print the command that collects the results, "
                        "and exit")
    p.add_argument("--poll-interval", type=positive_float, default=DEFAULT_POLL_INTERVAL,
                   metavar="S", help="with --batch: seconds between two looks at the batches "
                                     "(default: %(default)s)")


def check_batch_arguments(args: argparse.Namespace) -> None:
    """Refuse combinations that cannot work, before anything is sent."""
    if args.no_wait and not args.batch:
        raise CliError("--no-wait submits provider batches; add --batch")
    if args.batch and args.output == "-":
        raise CliError("--batch keeps the batch ids beside the output file; use --output FILE")


def checkpoint_path(output: str) -> str:
    return output + ".checkpoint"


def batch_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Pool keywords of a --batch run (none without it). --overwrite starts over, so
    the batches and results kept for the old output are forgotten."""
    if not args.batch:
        return {}
    path = checkpoint_path(args.output)
    if args.overwrite:
        for stale in (path, path + ".batches"):
            if os.path.exists(stale):
                os.unlink(stale)
    return {"mode": "batch", "poll_interval": args.poll_interval, "checkpoint": path}


def submit_only(pool: Any, args: argparse.Namespace) -> int:
    """--no-wait: submit, say what and how to collect it, exit 0."""
    submitted = pool.submit()
    stream = sys.stderr if args.json else sys.stdout
    requests = sum(len(s.keys) for s in submitted)
    say(stream, f"submitted {len(submitted)} batch(es), {requests:,} requests:")
    for sub in submitted:
        say(stream, f"  {sub.provider} batch {sub.batch_id} ({len(sub.keys):,} requests)")
    say(stream, f"collect the results (they take up to 24 hours) with:\n  {_collect_command()}")
    return EXIT_OK


def _collect_command() -> str:
    argv = [a for a in sys.argv[1:] if a not in ("--no-wait", "--overwrite")]
    if "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(["yait-aichain", *argv])
