"""``run``'s other modes: ``--dry-run`` (render, send nothing), and ``--batch``/``--no-wait``
through the providers' Batch APIs, the batch ids kept in ``<output>.checkpoint.batches``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from ..batch._job import DEFAULT_POLL_INTERVAL, describe
from ..models._caching import CHARS_PER_TOKEN
from ._common import EXIT_OK, positive_float, say
from ._files import Items
from ._identity import message_text

__all__ = ["add_batch_arguments", "batch_options", "dry_run", "submit_only"]

DRY_RUN_SHOWN = 3


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


def batch_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Pool keywords of a --batch run (none without it). --overwrite starts over, so
    the batches and results kept for the old output are forgotten."""
    if not args.batch:
        return {}
    path = args.output + ".checkpoint"
    if args.overwrite:
        for stale in (path, path + ".batches"):
            Path(stale).unlink(missing_ok=True)
    return {"mode": "batch", "poll_interval": args.poll_interval, "checkpoint": path}


def submit_only(pool: Any, args: argparse.Namespace) -> int:
    """--no-wait: submit, say what and how to collect it, exit 0."""
    submitted = pool.submit()
    stream = sys.stderr if args.json else sys.stdout
    requests = sum(len(s.keys) for s in submitted)
    say(stream, f"submitted {len(submitted)} batch(es), {requests:,} requests:")
    say(stream, describe(submitted))
    argv = [a for a in sys.argv[1:] if a not in ("--no-wait", "--overwrite")]
    if "--resume" not in argv:
        argv.append("--resume")
    say(stream, "collect the results (they take up to 24 hours) with:\n  "
                + shlex.join(["yait-aichain", *argv]))
    return EXIT_OK


def dry_run(args: argparse.Namespace, skill: Any, items: Items, todo: list[int],
            key_note: str | None) -> int:
    """--dry-run: the first prompts and the size of the job; nothing is sent."""
    rendered = [skill.render(items.rows[i]) for i in todo]
    shown = list(zip(todo[:DRY_RUN_SHOWN], rendered, strict=False))
    chars = sum(len(message_text(m)) for messages in rendered for m in messages)
    skipped = len(items.rows) - len(todo)
    out = sys.stdout
    if args.json:
        say(out, json.dumps({
            "dry_run": True, "items": len(items.rows), "skipped": skipped, "to_run": len(todo),
            "characters": chars, "model": skill.model.name, "provider": skill.model.provider,
            "base_url": skill.model.base_url, "key_note": key_note,
            "prompts": [{"id": items.ids[i], "messages": m} for i, m in shown],
        }, ensure_ascii=False, default=str))
        return EXIT_OK
    say(out, "dry run: nothing is sent")
    say(out, f"model: {skill.model.name} ({skill.model.provider}) at {skill.model.base_url}"
             + (f"; {key_note}" if key_note else ""))
    say(out, f"items: {len(items.rows):,} from {args.input}"
             + (f", {skipped:,} already DONE in {args.output} (skipped)" if skipped else ""))
    for i, messages in shown:
        say(out, f"--- item id {items.ids[i]} ---")
        for message in messages:
            say(out, f"[{message['role']}] {message_text(message)}")
    if len(todo) > DRY_RUN_SHOWN:
        say(out, f"--- ({DRY_RUN_SHOWN} of {len(todo):,} prompts shown) ---")
    say(out, f"prompts: {len(todo):,}, {chars:,} characters "
             f"(about {chars // CHARS_PER_TOKEN:,} input tokens)")
    return EXIT_OK
