"""``yait-aichain run``: one prompt template over a JSONL or CSV file, a result line per item."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .._usage import Usage
from ..errors import AichainError, ConfigurationError, UnsupportedSchemaError
from ..pool import CANCELLED, DEFAULT_MAX_FLOWS, DONE, FAILED
from ._common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CliError, add_model_arguments,
                      build_model, flows, non_negative_float, positive_float, positive_int,
                      price_pair, rate_limit, read_text, say, usage_text)
from . import _batchmode as modes
from ._identity import describe_change, fingerprint, run_identity
from ._typed import CsvResults, add_typed_arguments, output_arguments
from ._files import (Items, Previous, ResultWriter, check_columns, check_distinct, id_key, is_csv,
                     job_records, read_items, read_previous, result_line)

DESCRIPTION = """\
Run a prompt template over every item of a JSONL or CSV file, max-flows at a time,
and append one JSON line per finished item to the output file:

  {"id": 1, "status": "DONE", "output": "...", "error": null,
   "usage": {"input_tokens": .., "output_tokens": .., "total_tokens": .., "cost": ..},
   "attempts": 1, "reasks": 0, "duration": 2.01}

Lines come in completion order; match them to the input by "id" (the --id column, else
the item's 1-based line number; for CSV the row number after the header)."""

EPILOG = """\
exit codes: 0 every item DONE; 1 some FAILED or CANCELLED (their lines say why);
2 usage or configuration error (nothing sent); 130 interrupted (Ctrl-C) after writing
what finished: run the same command with --resume to finish.

--resume skips the ids whose latest line in the output is DONE and appends the rest;
an id that FAILED before is run again and its new line supersedes the old one (the
last line for an id wins). Each line records the run's settings ("run", and
"run_identity" on the first line of each invocation): --resume refuses when DONE lines
came from another model, prompt, system text, options or output format, and says what
changed; --resume --force runs those items again with the new settings.

--prompt and --system read \\n as a newline, \\t as a tab and \\\\ as a backslash
(as printf does); @FILE and --system-file read a file exactly as written."""


def add_parser(sub: Any) -> None:
    """Register the ``run`` command."""
    p = sub.add_parser("run", help="run a prompt over a JSONL/CSV file into a JSONL file",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p, required=True)
    p.add_argument("--prompt", "-p", required=True, metavar="TEMPLATE",
                   help="the user message; {column} takes the item's value, {{ and }} are "
                        "literal braces; @FILE reads the template from FILE")
    system = p.add_mutually_exclusive_group()
    system.add_argument("--system", "-s", metavar="TEXT", help="a system message (also a "
                        "template; @FILE reads it from FILE)")
    system.add_argument("--system-file", metavar="FILE", help="read the system message from "
                        "FILE, exactly as written")
    p.add_argument("--input", "-i", required=True, metavar="FILE",
                   help="items: .jsonl (a JSON object per line) or .csv/.tsv with a header "
                        "row; - reads stdin")
    p.add_argument("--output", "-o", required=True, metavar="FILE",
                   help="results, one JSON line per item; - writes to stdout; a .csv (or "
                        ".tsv) name writes one table row per item instead, one column per "
                        "field of the answer, in input order")
    p.add_argument("--format", choices=("jsonl", "csv"), help="input format, when the file "
                   "name does not tell (default: by extension, else jsonl)")
    p.add_argument("--id", dest="id_column", metavar="COLUMN", help="the column (or JSON key) "
                   "that identifies an item; default: its line number")
    p.add_argument("--max-flows", type=flows, default=DEFAULT_MAX_FLOWS, metavar="N|auto",
                   help="items in flight at once, or auto: adapt to the provider's rate-limit "
                        "headers and latency (default: %(default)s)")
    p.add_argument("--timeout", type=positive_float, metavar="S",
                   help="seconds each item may take, retries included; then it FAILS")
    p.add_argument("--temperature", type=non_negative_float, metavar="T",
                   help="sampling temperature (the provider's default when not given)")
    p.add_argument("--max-tokens", type=positive_int, metavar="N",
                   help="the most output tokens each answer may use")
    p.add_argument("--price", type=price_pair, metavar="IN,OUT",
                   help="USD per million input and output tokens, for a model whose price "
                        "is not known (needed by --max-cost)")
    p.add_argument("--on-error", choices=("collect", "stop", "raise"), default="collect",
                   help="collect (default): a failed item gets its line and the run goes on; "
                        "stop: nothing new starts after the first failure; raise: stop at "
                        "once, cancelling what runs")
    p.add_argument("--max-cost", type=positive_float, metavar="USD",
                   help="a budget for this invocation; nothing new starts once it is spent")
    p.add_argument("--max-tokens-total", type=positive_int, metavar="N",
                   help="the same budget counted in tokens (input + output, all items)")
    p.add_argument("--rpm", type=positive_float, metavar="N", help="requests per minute cap")
    p.add_argument("--tpm", type=positive_int, metavar="N", help="tokens per minute cap")
    p.add_argument("--resume", action="store_true",
                   help="skip ids already DONE in --output and append the rest")
    p.add_argument("--force", action="store_true", help="with --resume: run again the items "
                   "DONE under other settings instead of refusing")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --output instead of refusing")
    p.add_argument("--dry-run", action="store_true",
                   help="check the input and render the first prompts; send nothing")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N items")
    p.add_argument("--report", metavar="HTML", help="also write an HTML timeline of the run")
    add_typed_arguments(p)
    modes.add_batch_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a live progress line on stderr (default: when stderr is a terminal)")
    p.set_defaults(handler=run_command)


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def _template(value: str | None, flag: str) -> str | None:
    """--prompt/--system: @FILE as written, else ``\\n`` -> newline, ``\\t`` -> tab,
    ``\\\\`` -> backslash; any other backslash stays as typed (``\\d`` is not mangled)."""
    if value is None:
        return None
    if value.startswith("@") and len(value) > 1:
        return read_text(value[1:], flag)
    return re.sub(r"\\([nt\\])", lambda m: _ESCAPES[m.group(1)], value)


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse combinations of flags that cannot work, before anything is read or sent."""
    for refused, why in (
            (args.force and not args.resume, "--force only applies with --resume (it re-runs "
                                             "items DONE under other settings)"),
            (args.resume and args.overwrite,
             "--resume keeps the output and --overwrite replaces it; pick one"),
            (args.output == "-" and args.resume,
             "--resume needs an output file to read back; use --output FILE"),
            (args.resume and is_csv(args.output), "--resume reads back JSON lines, and a .csv "
             "--output is written whole at the end; use --output FILE.jsonl to resume"),
            (args.no_wait and not args.batch, "--no-wait submits provider batches; add --batch"),
            (args.batch and args.output == "-",
             "--batch keeps the batch ids beside the output file; use --output FILE")):
        if refused:
            raise CliError(why)
    check_distinct({"--input": args.input, "--output": args.output, "--report": args.report})
    exists = args.output != "-" and os.path.exists(args.output)
    if exists and not (args.resume or args.overwrite or args.dry_run):
        raise CliError(f"{args.output} already exists; add --resume to skip the items it has "
                       "DONE and append the rest, or --overwrite to start over")


def _check_identity(args: argparse.Namespace, previous: Previous, identity: dict[str, Any],
                    run: str) -> None:
    """Refuse to reuse DONE lines written under other settings, unless --force."""
    elsewhere = previous.done_elsewhere(run)
    total = sum(elsewhere.values())
    if elsewhere and args.force:
        say(sys.stderr, f"note: --force: {total:,} items DONE under other settings run again")
    if not elsewhere or args.force:
        return
    old_run = max(elsewhere, key=elsewhere.__getitem__)
    change = describe_change(previous.identities.get(old_run), identity)
    raise CliError(
        f"--resume: {total:,} items in {args.output} are DONE under other settings, so their "
        f"answers are not this command's: {change}. Add --force to run them again with these "
        "settings, or write to another --output"
    )


def run_command(args: argparse.Namespace) -> int:
    """Check everything, then run (or dry-run) and report; returns the exit code."""
    _check_paths(args)
    prompt = _template(args.prompt, "--prompt")
    system = (read_text(args.system_file, "--system-file") if args.system_file
              else _template(args.system, "--system"))
    given = {"temperature": args.temperature, "max_tokens": args.max_tokens, "price": args.price}
    model, key_note = build_model(args, placeholder_key="dry-run" if args.dry_run else None,
                                  options={k: v for k, v in given.items() if v is not None})
    from ..skills import Skill

    try:
        skill = Skill(model=model, prompt=prompt, system=system, **output_arguments(args))
    except ConfigurationError as exc:
        schema_problem = isinstance(exc, UnsupportedSchemaError) or "schema" in str(exc)
        flag = "--schema" if args.schema and schema_problem else "--prompt/--system"
        raise CliError(f"{flag}: {exc}") from None
    if args.max_cost is not None and model.price is None and args.max_tokens_total is None:
        raise CliError(f"--max-cost cannot be enforced: the price of {model.name!r} is not "
                       "known; pass --price IN,OUT (USD per million tokens), or budget in "
                       "tokens with --max-tokens-total")
    items = read_items(args.input, args.format, args.id_column, args.limit)
    check_columns(items, skill.required_variables, args.input)
    if not skill.required_variables:
        say(sys.stderr, "warning: the prompt has no {column} placeholder, so every item sends "
                        "the same text")
    identity = run_identity(skill)
    run = fingerprint(identity)
    previous = read_previous(args.output) if args.resume else Previous()
    _check_identity(args, previous, identity, run)
    done = {key for key, was in previous.done_runs.items() if was is None or was == run}
    todo = [i for i, item_id in enumerate(items.ids) if id_key(item_id) not in done]
    if args.dry_run:
        return modes.dry_run(args, skill, items, todo, key_note)
    return _run(args, skill, items, todo, previous, (run, identity))


def _open_output(args: argparse.Namespace, previous: Previous, ids: list[Any],
                 run: tuple[str, dict[str, Any]]) -> Any:
    """Opened only when there is something to write."""
    if previous.torn_at is not None:  # a write cut short: drop it, so appends stay whole
        os.truncate(args.output, previous.torn_at)
        say(sys.stderr, f"note: dropped an incomplete last line from {args.output}")
    if is_csv(args.output):
        return CsvResults(args.output, ids)
    return ResultWriter(args.output, append=args.resume, run=run[0], identity=run[1])


def _run(args: argparse.Namespace, skill: Any, items: Items, todo: list[int],
         previous: Previous, run: tuple[str, dict[str, Any]]) -> int:
    if not todo:
        _summary(args, items, todo, 0, Counter(), Usage(), 0.0, None, EXIT_OK, None)
        return EXIT_OK
    ids = [items.ids[i] for i in todo]

    def write(rec: Any) -> None:
        writer.write(result_line(ids[rec.index], rec))

    from ..pool import Pool

    try:
        pool = Pool(skill, items=[items.rows[i] for i in todo], max_flows=args.max_flows,
                    timeout=args.timeout, progress=args.progress, on_item_done=write,
                    name="run", on_error=args.on_error, max_cost=args.max_cost,
                    max_tokens=args.max_tokens_total, rate_limit=rate_limit(args),
                    **modes.batch_options(args))
    except (ConfigurationError, TypeError) as exc:
        raise CliError(str(exc)) from None
    writer = _open_output(args, previous, ids, run)  # only once the Pool is accepted
    if args.no_wait:
        writer.close()
        return modes.submit_only(pool, args)
    started = time.monotonic()
    interrupted, problem = False, None
    try:
        pool.run()
    except KeyboardInterrupt:
        interrupted = True
    except OSError as exc:  # the output file could not be written (disk full, ...)
        problem = f"cannot write {args.output}: {exc.strerror or exc}"
    except ConfigurationError as exc:  # a setting only checked when the run starts
        raise CliError(str(exc)) from None
    except AichainError as exc:  # --on-error raise
        problem = f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
    wall = time.monotonic() - started
    report = _write_report(args, pool, items, todo, previous)
    counts = pool.status
    problem = problem or _stopped_because(pool)
    failed = problem or counts[FAILED] or counts[CANCELLED]
    code = EXIT_INTERRUPTED if interrupted else EXIT_FAILED if failed else EXIT_OK
    _summary(args, items, todo, writer.count, counts, pool.usage, wall, report, code, problem)
    return code


def _stopped_because(pool: Any) -> str | None:
    """The circuit breaker's or the budget's message, when one stopped the run: said once,
    not once per cancelled line."""
    return next((str(rec.error) for rec in pool.records if rec.status == CANCELLED
                 and getattr(rec.error, "reason", None) in ("systemic", "budget")), None)


def _write_report(args: argparse.Namespace, pool: Any, items: Items, todo: list[int],
                  previous: Previous) -> str | None:
    """The report of the whole job: this invocation's items as they ran, and the items an
    earlier run had already DONE (read from the output file, marked reused, not timed)."""
    if not args.report:
        return None
    from ..report import write_report

    records = job_records(pool.records, items, todo, previous)
    try:
        write_report(args.report, records, max_flows=pool.max_flows, labels=items.ids,
                     title=f"yait-aichain run: {os.path.basename(args.input)}", usage=pool.usage)
    except OSError as exc:
        say(sys.stderr, f"warning: cannot write --report {args.report}: {exc.strerror or exc}")
        return None
    return str(args.report)


def _summary(args: argparse.Namespace, items: Items, todo: list[int], written: int,
             counts: Mapping[Any, int], usage: Any, wall: float, report: str | None, code: int,
             problem: str | None) -> None:
    stream = sys.stderr if args.output == "-" else sys.stdout
    skipped = len(items.rows) - len(todo)
    if args.json:
        say(stream, json.dumps({
            "items": len(items.rows), "skipped": skipped, "to_run": len(todo),
            "written": written, "done": counts[DONE], "failed": counts[FAILED],
            "cancelled": counts[CANCELLED], "interrupted": code == EXIT_INTERRUPTED,
            "wall_seconds": round(wall, 3), "usage": usage.as_dict(), "output": args.output,
            "report": report, "error": problem, "exit_code": code,
        }))
        return
    if not todo:
        what = (f"all {len(items.rows):,} items are already DONE in {args.output}"
                if items.rows else f"{args.input} has no items")
        say(stream, f"nothing to do: {what}")
        return
    if code == EXIT_INTERRUPTED:
        say(sys.stderr, f"interrupted: {written:,} results written to {args.output}; "
                        f"{len(todo) - written:,} items did not finish. Run the same command "
                        "with --resume to finish them.")
        return
    already = f"{skipped:,} already done, " if skipped else ""
    say(stream, f"run: {len(items.rows):,} items, {already}{len(todo):,} sent in {wall:.1f} s "
                f"(max_flows {args.max_flows})")
    say(stream, f"  done {counts[DONE]:,}, failed {counts[FAILED]:,}, cancelled "
                f"{counts[CANCELLED]:,}; {usage_text(usage)}")
    say(stream, f"  results: {args.output} ({written:,} lines written)"
                + (f"; report: {report}" if report else ""))
    if problem:
        say(sys.stderr, f"error: {problem}")
    elif counts[FAILED] or counts[CANCELLED]:
        unfinished = counts[FAILED] + counts[CANCELLED]
        say(stream, f"  {unfinished:,} item{'s' if unfinished != 1 else ''} did not finish: "
                    "their lines have the error; run the same command with --resume to retry "
                    "only those")
