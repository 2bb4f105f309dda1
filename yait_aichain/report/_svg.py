"""The timeline picture: where each bar goes (:func:`layout`) and its SVG (:func:`render_svg`).

Layout and drawing are separate so tests can compare what a browser painted with what
was meant to be painted. Every text that reaches the SVG goes through ``html.escape``:
errors and outputs come from models and web pages.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ._summary import RunSummary, duration_of, seconds

STATUS_COLOURS = {
    "DONE": "#2e9e4f",
    "FAILED": "#d93636",
    "CANCELLED": "#9aa0a6",
    "RUNNING": "#e0a10b",
    "PENDING": "#c9ced6",
}
WIDTH = 1200
LEFT = 64  # room for the row labels
RIGHT = 16
PLOT_WIDTH = WIDTH - LEFT - RIGHT
LOAD_HEIGHT = 64  # the "in flight" strip above the bars
BARS_TOP = LOAD_HEIGHT + 40
MIN_BAR = 2.0  # an instant failure must still be visible
TITLE_CHARS = 400
ROW_LABEL_CHARS = 9  # what fits left of the plot
_INK = "#1f2328"


@dataclass(frozen=True)
class Bar:
    """One item's bar: its box, the hatched retry waits and the retry ticks (x only)."""

    index: int
    status: str
    x: float
    y: float
    width: float
    height: float
    waits: tuple[tuple[float, float], ...]
    ticks: tuple[float, ...]
    title: str
    label: str = ""  # the item's id, when the caller gave labels: the row is named by it


@dataclass(frozen=True)
class Layout:
    """Every position of one timeline, in SVG pixels."""

    height: int
    span: float  # seconds shown across the plot
    scale: float  # pixels per second
    pitch: float  # pixels from one row to the next
    bars: tuple[Bar, ...]
    load: tuple[tuple[float, int], ...]  # (seconds, items in flight from then on)
    # (seconds, the flow limit from then on) when it changed during the run (auto)
    limits: tuple[tuple[float, int], ...] = ()


def clip(text: str, limit: int = TITLE_CHARS, squash: bool = True) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis last; ``squash`` puts it on one line."""
    text = " ".join(text.split()) if squash else text
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _title(rec: Any, label: Any, duration: float | None) -> str:
    head = f"#{rec.index}" + (f" (id {label})" if label is not None else "") + f" {rec.status_name}"
    facts = ["from the checkpoint, not run" if rec.from_checkpoint
             else "never started" if duration is None else seconds(duration)]
    if rec.attempts:
        facts.append(f"{rec.attempts} attempt{'s' if rec.attempts != 1 else ''}")
    if rec.wait_seconds:
        facts.append(f"waited {seconds(rec.wait_seconds)}")
    if rec.usage.total_tokens:
        facts.append(f"{rec.usage.total_tokens:,} tokens")
    text = f"{head}, {', '.join(facts)}"
    if rec.error is not None:
        text += f"\n{rec.error_type}: {clip(rec.error_message)}"
    elif rec.output is not None:
        text += f"\n{clip(str(rec.output), 200)}"
    return text


def _retries(x: float, width: float, duration: float, attempts: int, wait: float,
             scale: float) -> tuple[tuple[tuple[float, float], ...], tuple[float, ...]]:
    """Hatched waits and attempt ticks inside a bar. Records keep only totals, so with
    one attempt the wait (a rate limit's turn) is drawn first, and with several it is
    spread evenly between the attempts (backoff): a sketch, not a trace."""
    if duration <= 0 or width < 4:
        return (), ()
    wait = min(max(wait, 0.0), duration)
    extra = max(0, attempts - 1)
    if extra == 0:
        return (((x, wait * scale),) if wait > 0 else ()), ()
    work = (duration - wait) / attempts
    gap = wait / extra
    begins = [k * work + (k - 1) * gap for k in range(1, extra + 1)]  # after each attempt
    waits = tuple((x + begin * scale, gap * scale) for begin in begins) if gap > 0 else ()
    return waits, tuple(x + (begin + gap) * scale for begin in begins)


def layout(records: Sequence[Any], summary: RunSummary,
           labels: Sequence[Any] | None = None) -> Layout:
    """Place one bar per record, in input order, on a shared time axis."""
    t0 = summary.t0  # seconds from it to each item's start, or None: not run in this run
    begins = [None if rec.start is None or t0 is None or rec.from_checkpoint else rec.start - t0
              for rec in records]
    span = max((b + (duration_of(rec) or 0.0) for b, rec in zip(begins, records, strict=True)
                if b is not None), default=0.0) or 1.0
    scale = PLOT_WIDTH / span
    # Aim at ~1400 px of bars; thin rows for big runs, but never thinner than 2 px.
    height = float(max(2, min(14, 1400 // max(len(records), 1))))
    pitch = height + (1 if height <= 5 else 2)
    bars, events = [], []
    for row, (rec, begin) in enumerate(zip(records, begins, strict=True)):
        label = labels[row] if labels is not None and row < len(labels) else None
        name = "" if label is None else clip(str(label), ROW_LABEL_CHARS)
        d = duration_of(rec)
        y = BARS_TOP + row * pitch
        if begin is None:
            # Never started (cancelled first, or reused from a checkpoint): a stub at the
            # right edge, where the run stopped.
            bars.append(Bar(rec.index, rec.status_name, LEFT + PLOT_WIDTH - 3, y, 3.0, height,
                            (), (), _title(rec, label, None), name))
            continue
        x = LEFT + begin * scale
        width = min(max(MIN_BAR, (d or 0.0) * scale), LEFT + PLOT_WIDTH - x) or MIN_BAR
        waits, ticks = _retries(x, width, d or 0.0, rec.attempts, rec.wait_seconds, scale)
        bars.append(Bar(rec.index, rec.status_name, x, y, width, height, waits, ticks,
                        _title(rec, label, d), name))
        events += [(begin, 1), (begin + (d or 0.0), -1)]
    events.sort()
    levels = itertools.accumulate(change for _, change in events)
    load = tuple((when, level) for (when, _), level in zip(events, levels, strict=True))
    # Where max_flows="auto" changed its limit: each record's flows is the limit when it
    # started; none when the limit never changed.
    starts = sorted((b, rec.flows) for b, rec in zip(begins, records, strict=True)
                    if b is not None and rec.flows)
    limits = tuple(next(same) for _, same in itertools.groupby(starts, key=lambda s: s[1]))
    total = BARS_TOP + len(records) * pitch + 28
    return Layout(math.ceil(total), span, scale, pitch, tuple(bars), load,
                  limits if len(limits) > 1 else ())


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    return float(next(f * power for f in (1, 2, 5, 10) if raw <= f * power))


def _f(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _axis(lay: Layout) -> list[str]:
    step = _nice_step(lay.span)
    out = []
    bottom = lay.height - 24
    for k in range(math.floor(lay.span / step + 1e-9) + 1):
        t = k * step
        x = LEFT + t * lay.scale
        out.append(f'<line x1="{_f(x)}" y1="{BARS_TOP - 4}" x2="{_f(x)}" y2="{_f(bottom)}" '
                   f'stroke="#d0d7de" stroke-width="1"/>')
        out += [f'<text x="{_f(x)}" y="{_f(ty)}" text-anchor="middle">{_f(t)} s</text>'
                for ty in (BARS_TOP - 10, bottom + 16)]  # a number: nothing to escape
    return out


def _steps(lay: Layout, y: Callable[[int], float], steps: Sequence[tuple[float, int]],
           level: int) -> list[str]:
    """Polyline points of a level that changes at ``steps`` (seconds, new level)."""
    points = []
    for when, new in steps:
        x = LEFT + when * lay.scale
        points += [f"{_f(x)},{_f(y(level))}", f"{_f(x)},{_f(y(new))}"]
        level = new
    return [*points, f"{LEFT + PLOT_WIDTH},{_f(y(level))}"]


def _load_strip(lay: Layout, max_flows: int) -> list[str]:
    """Items in flight over time, under the flow limit (dashed): ``max_flows``, or the
    limit of a ``max_flows="auto"`` run as it changed."""
    peak = max((level for _, level in lay.load), default=0)
    top = max(peak, max_flows, 1)

    def y(level: int) -> float:
        return 18 + (LOAD_HEIGHT - 18) * (1 - level / top)

    load = [f"{LEFT},{_f(y(0))}", *_steps(lay, y, lay.load, 0), f"{LEFT + PLOT_WIDTH},{_f(y(0))}"]
    limits = lay.limits or ((0.0, max_flows),)
    low, high = min(f for _, f in limits), max(f for _, f in limits)
    what = (f'the flow limit max_flows="auto" set, {low} to {high}' if lay.limits
            else f"max_flows = {max_flows}")
    return [
        (f'<polygon class="load" points="{" ".join(load)}" fill="#cfe3ff" stroke="#4a90d9" '
         'stroke-width="1"/>'),
        (f'<polyline class="limit" points="{" ".join(_steps(lay, y, limits, limits[0][1]))}" '
         f'fill="none" stroke="{_INK}" stroke-dasharray="4 3" stroke-width="1"/>'),
        f'<text x="{LEFT - 6}" y="{_f(y(high) + 4)}" text-anchor="end">{high}</text>',
        f'<text x="{LEFT}" y="11">in flight (peak {peak}; dashed: {what})</text>',
    ]


def _row_labels(lay: Layout) -> list[str]:
    steps = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
    every = next((step for step in steps if step * lay.pitch >= 12), 10000)
    return [
        f'<text class="row" x="{LEFT - 6}" y="{_f(bar.y + bar.height)}" text-anchor="end">'
        f"{escape(bar.label) if bar.label else bar.index}</text>"
        for row, bar in enumerate(lay.bars) if row % every == 0
    ]


def render_svg(lay: Layout, max_flows: int) -> str:
    """The inline ``<svg>`` element of a layout (no namespace needed inside HTML)."""
    parts = [
        (f'<svg class="timeline" width="{WIDTH}" height="{lay.height}" '
         f'viewBox="0 0 {WIDTH} {lay.height}" role="img" '
         f'aria-label="timeline of {len(lay.bars)} items">'),
        ('<defs><pattern id="wait" width="6" height="6" patternUnits="userSpaceOnUse" '
         'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff" '
         f'fill-opacity="0.45"/><rect width="2" height="6" fill="{_INK}" fill-opacity="0.6"/>'
         "</pattern></defs>"),
        *_load_strip(lay, max_flows),
        *_axis(lay),
        *_row_labels(lay),
        '<g class="bars" shape-rendering="crispEdges">',
    ]
    for bar in lay.bars:
        parts.append(
            f'<rect class="bar" data-status="{escape(bar.status)}" data-index="{bar.index}" '
            f'x="{_f(bar.x)}" y="{_f(bar.y)}" width="{_f(bar.width)}" height="{_f(bar.height)}" '
            f'fill="{STATUS_COLOURS[bar.status]}"><title>{escape(bar.title)}</title></rect>'
        )
        for x, w in bar.waits:
            parts.append(f'<rect class="wait" x="{_f(x)}" y="{_f(bar.y)}" width="{_f(w)}" '
                         f'height="{_f(bar.height)}" fill="url(#wait)" pointer-events="none"/>')
        for x in bar.ticks:
            parts.append(f'<rect class="retry" x="{_f(x)}" y="{_f(bar.y)}" width="1.5" '
                         f'height="{_f(bar.height)}" fill="{_INK}" pointer-events="none"/>')
    parts.append("</g></svg>")
    return "\n".join(parts)
