"""The ``yait-aichain`` command line (also ``python -m yait_aichain``).

    yait-aichain demo                      # the article's 50 documents, offline
    yait-aichain run --model gpt-4o-mini --prompt "Summarise: {text}" \\
        --input items.jsonl --output results.jsonl --max-flows 10 --resume

Exit codes: 0 success, 1 some items failed, 2 usage or configuration error (one line
that says how to fix it, no traceback), 130 interrupted by Ctrl-C. Uses argparse only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._common import EXIT_INTERRUPTED, EXIT_USAGE, CliError

__all__ = ["main"]

PROG = "yait-aichain"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (commands ``demo`` and ``run``)."""
    from .. import __version__
    from . import _batch, _demo

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Turn a for-loop of LLM calls into an ordered parallel map.",
        epilog="Start with: yait-aichain demo. Details: yait-aichain COMMAND --help.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _demo.add_parser(sub)
    _batch.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"\n{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`); nothing useful is left to say.
        return 1
