"""A live one-line progress display (or your tqdm bar), drawn by the calling thread only.

On a terminal the line redraws in place at most ~10 times a second, cut to its width so it
never scrolls; elsewhere (a log, CI) a whole line every ``PLAIN_INTERVAL`` seconds, since
``\\r`` there only glues lines together. The final line tells the truth about an
interrupted run: "stopped: 20 done, 80 cancelled", never "100/100".
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from .._usage import Usage
from ..errors import ConfigurationError
from ._status import CANCELLED, DONE, FAILED, FINAL, RUNNING

Counts = dict[Any, int]  # items per status
MIN_INTERVAL = 0.1  # on a terminal
PLAIN_INTERVAL = 10.0  # anywhere else: a log line per 10 s is plenty


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _finished(counts: Counts) -> int:
    return sum(counts[status] for status in FINAL)


def _facts(counts: Counts, waiting: int, flows: str | None, running: bool = False) -> list[str]:
    """Failures, then (when ``running``) the items in flight, the rate-limited and ``flows``."""
    facts = [f"{counts[status]} {status.name.lower()}" for status in (FAILED, CANCELLED)
             if counts[status]]
    if running:
        facts.append(f"{counts[RUNNING]} running")
    if waiting:
        facts.append(f"{waiting} rate-limited")
    return facts + [flows] if flows else facts


def _money(usage: Usage) -> list[str]:
    tokens = [f"{usage.total_tokens:,} tokens"] if usage.total_tokens else []
    return tokens + ([] if usage.cost is None else [f"${usage.cost:.4f}"])


def format_line(label: str, counts: Counts, total: int | None, elapsed: float,
                usage: Usage, final: bool = False, already: int = 0, waiting: int = 0,
                flows: str | None = None) -> str:
    """The progress text: done/total, failures, in flight, rate, ETA, tokens and cost.

    ``already``: items ended before this run (a retry), left out of the rate; ``waiting``:
    running items waiting for a rate limit; ``flows``: what ``max_flows="auto"`` decided.
    """
    finished = _finished(counts)
    rate = max(0, finished - counts[CANCELLED] - already) / elapsed if elapsed > 0 else 0.0
    if final and counts[CANCELLED]:
        ended = [f"{counts[status]:,} {status.name.lower()}"
                 for status in (DONE, FAILED, CANCELLED) if counts[status] or status != FAILED]
        parts = [f"{label}: stopped: {', '.join(ended)}"]
    else:
        parts = [f"{label}: {finished}/{total if total is not None else '?'}",
                 *_facts(counts, 0 if final else waiting, flows, running=not final)]
    parts.append(f"{rate:.1f} items/s")
    if final:
        parts.append(f"in {_clock(elapsed)}")
    elif total is not None and rate > 0:
        parts.append(f"ETA {_clock((total - finished) / rate)}")
    return " | ".join(parts + _money(usage))


def is_tqdm(value: Any) -> bool:
    """A tqdm class or instance (or anything shaped like one)."""
    return callable(getattr(value, "update", None)) and hasattr(value, "set_postfix_str")


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(callable(isatty) and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


def resolve_progress(value: Any) -> Any:
    """The stream (or tqdm) to draw progress on, or None for no progress line.

    None means "only when stderr is a terminal", so logs and CI output stay clean.
    """
    if value is None:
        value = _is_terminal(sys.stderr)
    if isinstance(value, bool):
        return sys.stderr if value else None
    if is_tqdm(value) or callable(getattr(value, "write", None)):
        return value
    raise ConfigurationError(
        "progress must be True, False, None, a file-like object or a tqdm class or "
        f"instance; got {type(value).__name__}")


def _width(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, TypeError):
        return shutil.get_terminal_size().columns  # $COLUMNS, else 80


def progress_line(stream: Any, label: str, counts: Counts,
                  flows: Callable[[], str] | None) -> ProgressLine | TqdmBar:
    """What draws the progress of a run on ``stream``, starting from ``counts`` (a retry's
    earlier items): a ProgressLine, or the tqdm bar. ``flows`` says what "auto" decided."""
    kind = TqdmBar if is_tqdm(stream) else ProgressLine
    return kind(stream, label, _finished(counts), flows=flows)


def write(stream: Any, text: str) -> Any:
    """Write ``text`` to ``stream`` and flush it; return the stream, or None once it is
    closed or broken (that must not fail the run: the drawing stops instead)."""
    try:
        stream.write(text)
        flush = getattr(stream, "flush", None)
        if callable(flush):
            flush()
    except (OSError, ValueError):
        return None
    return stream


class ProgressLine:
    """Writes :func:`format_line` to ``stream``, throttled."""

    def __init__(self, stream: Any, label: str, already: int = 0,
                 flows: Callable[[], str] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._tty = _is_terminal(stream)
        self._interval = MIN_INTERVAL if self._tty else PLAIN_INTERVAL
        self._label, self._clock, self._already, self._flows = label, clock, already, flows
        self._started = clock()
        self._last = self._started if not self._tty else float("-inf")
        self._width = 0

    def update(self, counts: Counts, total: int | None, usage: Usage, waiting: int = 0) -> None:
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._draw(counts, total, usage, now, waiting)

    def close(self, counts: Counts, total: int | None, usage: Usage) -> None:
        self._draw(counts, total, usage, self._clock(), final=True)

    def _draw(self, counts: Counts, total: int | None, usage: Usage, now: float,
              waiting: int = 0, final: bool = False) -> None:
        if self._stream is None:
            return
        line = format_line(self._label, counts, total, now - self._started, usage, final=final,
                           already=self._already, waiting=waiting,
                           flows=None if self._flows is None else self._flows())
        end = "\n" if final or not self._tty else ""
        if self._tty:
            # Cut to the width (a wrapped line scrolls on every redraw) and pad with spaces
            # to wipe what a longer previous line left behind.
            line = line[: max(10, _width(self._stream) - 1)]
            text = "\r" + line.ljust(self._width) + end
            self._width = 0 if end else len(line)
        else:
            text = line + end
        self._stream = write(self._stream, text)


class TqdmBar:
    """Advances a user's tqdm bar: ``n`` is the items ended, the postfix the rest."""

    def __init__(self, bar: Any, label: str, already: int,
                 flows: Callable[[], str] | None = None):
        self._own, self._flows = isinstance(bar, type), flows
        self._bar = bar(desc=label, unit="item") if self._own else bar
        self._seen = already
        self._bar.update(max(0, already - getattr(self._bar, "n", 0)))

    def update(self, counts: Counts, total: int | None, usage: Usage, waiting: int = 0) -> None:
        if total is not None and getattr(self._bar, "total", None) != total:
            self._bar.total = total
        finished = _finished(counts)
        if finished > self._seen:
            self._bar.update(finished - self._seen)
            self._seen = finished
        facts = _facts(counts, waiting, None if self._flows is None else self._flows())
        self._bar.set_postfix_str(", ".join(facts + _money(usage)), refresh=False)

    def close(self, counts: Counts, total: int | None, usage: Usage) -> None:
        self.update(counts, total, usage)
        if self._own:
            self._bar.close()
        else:
            self._bar.refresh()
