"""A live one-line progress display, without dependencies.

Drawn by the calling thread only, at most ~10 times a second, with a carriage return so
the line rewrites itself on a terminal; a final line ends with a newline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._usage import Usage
from ._status import CANCELLED, DONE, FAILED, RUNNING

MIN_INTERVAL = 0.1


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _finished(counts: dict[int, int]) -> int:
    return counts[DONE] + counts[FAILED] + counts[CANCELLED]


def format_line(
    label: str, counts: dict[int, int], total: int | None, elapsed: float, usage: Usage,
    final: bool = False, already: int = 0, waiting: int = 0,
) -> str:
    """The progress text: done/total, failures, in flight, rate, ETA, tokens and cost.

    ``already`` is how many items had ended before this run (a retry), left out of the rate;
    ``waiting`` how many running items wait for a rate limit now.
    """
    finished = _finished(counts)
    parts = [f"{label}: {finished}/{total if total is not None else '?'}"]
    if counts[FAILED]:
        parts.append(f"{counts[FAILED]} failed")
    if counts[CANCELLED]:
        parts.append(f"{counts[CANCELLED]} cancelled")
    if not final:
        parts.append(f"{counts[RUNNING]} running")
        if waiting:
            parts.append(f"{waiting} rate-limited")
    rate = max(0, finished - already) / elapsed if elapsed > 0 else 0.0
    parts.append(f"{rate:.1f} items/s")
    if final:
        parts.append(f"in {_clock(elapsed)}")
    elif total is not None and rate > 0:
        parts.append(f"ETA {_clock((total - finished) / rate)}")
    if usage.total_tokens:
        parts.append(f"{usage.total_tokens:,} tokens")
    if usage.cost is not None:
        parts.append(f"${usage.cost:.4f}")
    return " | ".join(parts)


class ProgressLine:
    """Writes :func:`format_line` to ``stream``, throttled."""

    def __init__(
        self, stream: Any, label: str, already: int = 0, clock: Callable[[], float] = time.monotonic
    ):
        self._stream = stream
        self._label = label
        self._clock = clock
        self._started = clock()
        self._last = float("-inf")
        self._width = 0
        self._already = already

    def update(
        self, counts: dict[int, int], total: int | None, usage: Usage, force: bool = False,
        waiting: int = 0,
    ) -> None:
        now = self._clock()
        if not force and now - self._last < MIN_INTERVAL:
            return
        self._last = now
        elapsed = now - self._started
        line = format_line(
            self._label, counts, total, elapsed, usage, already=self._already, waiting=waiting
        )
        self._write(line, end="")

    def close(self, counts: dict[int, int], total: int | None, usage: Usage) -> None:
        elapsed = self._clock() - self._started
        line = format_line(
            self._label, counts, total, elapsed, usage, final=True, already=self._already
        )
        self._write(line, end="\n")

    def _write(self, line: str, end: str) -> None:
        if self._stream is None:
            return
        # Pad with spaces to wipe what a longer previous line left behind.
        text = "\r" + line.ljust(self._width) + end
        self._width = 0 if end else len(line)
        try:
            self._stream.write(text)
            flush = getattr(self._stream, "flush", None)
            if callable(flush):
                flush()
        except (OSError, ValueError):
            # A closed or broken stream must not fail the run; stop drawing instead.
            self._stream = None
