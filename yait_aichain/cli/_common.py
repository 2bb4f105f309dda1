"""What the CLI commands share: the error type, argument types, model building, summaries."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .._text import printable
from .._usage import Usage
from ..errors import ConfigurationError, MissingAPIKeyError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class CliError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def read_text(path: str, flag: str) -> str:
    """The UTF-8 text of the file ``flag`` names; a CliError when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None


def flows(text: str) -> int | str:
    """argparse type for --max-flows: an int >= 1, or "auto"."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)


def _number(kind: type, low: int, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` from ``low`` (excluded when ``above``)."""
    what = "a whole number" if kind is int else "a number"
    bound = "a positive number" if above else f"{low} or more"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value > low if above else value >= low) or value == math.inf:
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


positive_int = _number(int, 1)
non_negative_int = _number(int, 0)
positive_float = _number(float, 0, above=True)
non_negative_float = _number(float, 0)


def price_pair(text: str) -> tuple[float, float]:
    """argparse type: ``IN,OUT`` USD per million tokens, e.g. ``0.15,0.60``."""
    try:
        rate_in, rate_out = map(non_negative_float, text.replace("/", ",").split(","))
    except (argparse.ArgumentTypeError, ValueError):  # not two numbers >= 0
        raise argparse.ArgumentTypeError(
            f"expected IN,OUT USD per million tokens, e.g. 0.15,0.60; got {text!r}") from None
    return rate_in, rate_out


def add_model_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    """--model, --provider, --base-url: the same meaning in every command."""
    parser.add_argument("--model", "-m", required=required, metavar="NAME",
                        help="model name, e.g. claude-sonnet-4-6, gpt-4o-mini, gemini-2.5-flash, "
                             "or llama3.1 with --provider ollama; the key comes from the "
                             "provider's variable (ANTHROPIC_API_KEY, OPENAI_API_KEY, "
                             "GEMINI_API_KEY)")
    parser.add_argument("--provider", metavar="P",
                        help="force the provider: anthropic, openai, gemini, openai-compatible, "
                             "ollama, vllm, llamacpp, lmstudio")
    parser.add_argument("--base-url", metavar="URL",
                        help="API base URL (default: the *_BASE_URL variable, else the provider's)")


def build_model(
    args: argparse.Namespace, *, placeholder_key: str | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Any, str | None]:
    """The Model the arguments describe, and a note when it has no real key.

    Args:
        placeholder_key: used when no key is found (a dry run sends nothing); the note
            then names the variable a real run needs.
        options: more Model keywords (temperature, max_tokens, price).

    Raises:
        CliError: unknown provider or model, a bad base URL, or no key (names the variable).
    """
    from ..models import Model

    settings = {"provider": args.provider, "base_url": args.base_url, **(options or {})}
    try:
        return Model(args.model, **settings), None
    except MissingAPIKeyError as exc:
        if placeholder_key is None:
            offline = "--dry-run" if hasattr(args, "dry_run") else "the demo without --model"
            raise CliError(f"{exc}; or try {offline}, which needs no key") from None
        note = f"no API key found: a real run needs {exc.env_var or 'a key'}"
        return Model(args.model, api_key=placeholder_key, **settings), note
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None


def rate_limit(args: argparse.Namespace) -> Any:
    """The RateLimit of --rpm/--tpm, or None without them (argparse checked the values)."""
    if args.rpm is None and args.tpm is None:
        return None
    from ..ratelimit import RateLimit

    return RateLimit(requests_per_minute=args.rpm, tokens_per_minute=args.tpm)


def usage_text(usage: Usage) -> str:
    """``1,234 tokens (1,000 in / 234 out), $0.0123`` (or ``cost unknown``)."""
    cost = "cost unknown" if usage.cost is None else f"${usage.cost:.4f}"
    return (f"{usage.total_tokens:,} tokens ({usage.input_tokens:,} in / "
            f"{usage.output_tokens:,} out), {cost}")


def say(stream: TextIO, text: str = "") -> None:
    """Print a line and flush, so it shows before a long run starts."""
    print(printable(text), file=stream, flush=True)  # a lone surrogate must not crash the CLI
