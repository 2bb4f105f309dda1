"""Run the LLM simulator on its own: ``python -m yait_aichain.testing --port 8080``.

Serves until Ctrl-C, after printing the base URLs and the ``export`` lines that point
the provider SDKs (and yait_aichain) at it.
"""

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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m yait_aichain.testing",
        description="Local LLM API simulator (Anthropic, OpenAI and Gemini wire formats).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port, 0 for any free one "
                        "(default: %(default)s)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per reply")
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="extra uniform random seconds per reply")
    parser.add_argument("--seed", type=int, default=0, help="seed for jitter and --fail-rate")
    parser.add_argument("--require-key", default=None, metavar="KEY",
                        help="answer 401 to any other key")
    parser.add_argument("--fail-rate", type=float, default=0.0, metavar="SHARE",
                        help="share of requests (0..1) answered with a 429")
    parser.add_argument("--retry-after", type=float, default=None, metavar="SECONDS",
                        help="Retry-After sent with those 429s")
    parser.add_argument("--strict", action="store_true",
                        help="reject requests a real provider would reject (400)")
    parser.add_argument("--rpm", type=int, default=None,
                        help="requests per key per minute before the provider's real 429")
    parser.add_argument("--tpm", type=int, default=None,
                        help="tokens per key per minute before the provider's real 429")
    parser.add_argument("--rate-window", type=float, default=60.0, metavar="SECONDS",
                        help="length of the simulated minute (default: %(default)s)")
    return parser


def _banner(sim: Simulator, key: str) -> None:
    print(f"LLM simulator listening on {sim.url}  (Ctrl-C to stop)")
    print(f"  Anthropic: {sim.anthropic_base_url}/v1/messages")
    print(f"  OpenAI:    {sim.openai_base_url}/chat/completions")
    print(f"  Gemini:    {sim.gemini_base_url}/v1/models/MODEL:generateContent (and /v1beta)")
    print("\nPoint clients at it:")
    for name, value in sim.env(api_key=key).items():
        print(f"export {name}={shlex.quote(value)}")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until interrupted, print a summary; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        sim = Simulator(
            host=args.host, port=args.port, latency=args.latency, jitter=args.jitter,
            seed=args.seed, require_key=args.require_key, strict=args.strict, record=False,
            rpm=args.rpm, tpm=args.tpm, rate_window=args.rate_window,
        )
        if args.fail_rate:
            sim.fail_rate(args.fail_rate, Fault.rate_limit(retry_after=args.retry_after))
        sim.start()
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # A service manager stops us with SIGTERM; close as cleanly as on Ctrl-C. (Not from
    # a thread other than the main one: main() called from a test.)
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        # Inside the try: a Ctrl-C right after the banner must still close cleanly.
        _banner(sim, args.require_key or _PLACEHOLDER_KEY)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    stats = sim.stats
    print(f"\nstopped: {stats.requests} requests, {stats.connections} connections, "
          f"peak concurrency {stats.peak_concurrency}, by status {dict(stats.by_status)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
