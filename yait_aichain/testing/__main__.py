"""``python -m yait_aichain.testing --port 8080``: print the base URLs and the ``export``
lines that point the provider SDKs (and yait_aichain) at a simulator, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Sequence

from ._faults import Fault
from ._simulator import DEFAULT_HOST, Simulator

# Clients refuse to start without some key; any value works unless --require-key is set.
_PLACEHOLDER_KEY = "sim-key"


_OPTIONS = (  # flag, type, default, metavar, help
    ("--host", str, DEFAULT_HOST, None, "interface (default: %(default)s)"),
    ("--port", int, 8080, None, "TCP port, 0 for any free one (default: %(default)s)"),
    ("--latency", float, 0.0, None, "seconds per reply"),
    ("--jitter", float, 0.0, None, "extra uniform random seconds per reply"),
    ("--seed", int, 0, None, "seed for jitter and --fail-rate"),
    ("--require-key", str, None, "KEY", "answer 401 to any other key"),
    ("--fail-rate", float, 0.0, "SHARE", "share of requests (0..1) answered with a 429"),
    ("--retry-after", float, None, "SECONDS", "Retry-After sent with those 429s"),
    ("--rpm", int, None, None, "requests per key per minute before the provider's real 429"),
    ("--tpm", int, None, None, "tokens per key per minute before the provider's real 429"),
    ("--rate-window", float, 60.0, "SECONDS", "length of the simulated minute (default: "
     "%(default)s)"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m yait_aichain.testing",
        description="Local LLM API simulator (Anthropic, OpenAI and Gemini wire formats).")
    for flag, kind, default, metavar, text in _OPTIONS:
        parser.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)
    parser.add_argument("--strict", action="store_true",
                        help="reject requests a real provider would reject (400)")
    return parser


def _banner(sim: Simulator, key: str) -> None:
    print(f"LLM simulator listening on {sim.url}  (Ctrl-C to stop)")
    print(f"  Anthropic: {sim.anthropic_base_url}/v1/messages")
    print(f"  OpenAI:    {sim.openai_base_url}/chat/completions")
    print(f"  Gemini:    {sim.gemini_base_url}/v1/models/MODEL:generateContent (and /v1beta)")
    print("\nPoint clients at it:")
    for name, value in sim.env(api_key=key).items():
        print(f"export {name}={shlex.quote(value)}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until interrupted, print a summary; returns the exit code."""
    options = vars(_parser().parse_args(argv))
    fail_rate, retry_after = options.pop("fail_rate"), options.pop("retry_after")
    try:
        sim = Simulator(record=False, **options)
        if fail_rate:
            sim.fail_rate(fail_rate, Fault.rate_limit(retry_after=retry_after))
        sim.start()
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # A service manager stops us with SIGTERM; close as cleanly as on Ctrl-C. (Not from
    # a thread other than the main one: main() called from a test.)
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    with sim, contextlib.suppress(KeyboardInterrupt):
        # Inside the with: a Ctrl-C right after the banner must still close cleanly.
        _banner(sim, options["require_key"] or _PLACEHOLDER_KEY)
        threading.Event().wait()
    stats = sim.stats
    print(f"\nstopped: {stats.requests} requests, {stats.connections} connections, "
          f"peak concurrency {stats.peak_concurrency}, by status {dict(stats.by_status)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
