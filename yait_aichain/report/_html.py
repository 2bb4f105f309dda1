"""The report page: summary numbers, legend, the timeline and a table of failures.

One self-contained file: inline CSS and SVG, no script, no external URL, so it opens
offline, can be mailed or attached to a CI run, and cannot phone home.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from html import escape
from typing import Any

from ..pool._status import FAILED
from ._summary import RunSummary, seconds
from ._svg import STATUS_COLOURS, clip, layout, render_svg

MAX_FAILURE_ROWS = 200
MESSAGE_CHARS = 500

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
margin:24px;background:#ffffff}
h1{font-size:20px;margin:0 0 4px}
.sub{color:#57606a;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 14px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:110px}
.card b{display:block;font-size:18px}
.card span{color:#57606a;font-size:12px}
.legend{display:flex;flex-wrap:wrap;gap:16px;margin:0 0 10px;color:#57606a;font-size:12px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;
border:1px solid #8c959f}
.hatch{background:repeating-linear-gradient(45deg,#1f2328 0 2px,#ffffff 2px 5px)}
.tick{width:2px;background:#1f2328;border:0}
svg.timeline text{font-size:11px;fill:#57606a}
table{border-collapse:collapse;margin-top:16px;max-width:1200px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
td.msg{white-space:pre-wrap;word-break:break-word}
footer{color:#8c959f;font-size:12px;margin-top:18px}
"""


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _cards(s: RunSummary) -> str:
    status = ", ".join(f"{n.lower()} {c}" for n, c in s.counts.items() if c) or "none"
    cost = "n/a" if s.usage.cost is None else f"${s.usage.cost:.4f}"
    speed = "n/a" if s.speedup is None else f"{s.speedup:.1f}x"
    efficiency = "n/a" if s.efficiency is None else f"{s.efficiency * 100:.0f}%"
    cards = [
        _card(f"{s.items:,}", "items"),
        _card(seconds(s.wall), "wall time"),
        _card(seconds(s.ideal), f"ideal: ceil(n/{s.max_flows}) \u00d7 median {seconds(s.median)}"),
        _card(efficiency, "efficiency (ideal / wall)"),
        _card(seconds(s.loop), "for-loop (sum of durations)"),
        _card(speed, "speed-up over the loop"),
        _card(f"{s.usage.total_tokens:,}", "tokens"),
        _card(cost, "cost"),
        _card(f"{s.retries:,}", f"retries ({seconds(s.wait)} waiting)"),
        _card(status, "status"),
    ]
    if s.reused:
        cards.append(_card(f"{s.reused:,}", "reused from an earlier run (not run, not timed)"))
    if s.stopped:
        cards.append(_card(f"{s.stopped:,}", "stopped while running (not timed)"))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _legend() -> str:
    swatches = "".join(
        f'<span><i class="sw" style="background:{STATUS_COLOURS[name]}"></i>{name}</span>'
        for name in ("DONE", "FAILED", "CANCELLED"))
    return ('<div class="legend">' + swatches + '<span><i class="sw hatch"></i>waiting: rate '
            'limit or retry backoff (placed approximately)</span><span><i class="sw tick"></i>'
            "a retry starts</span><span>hover a bar for its details</span></div>")


def _failures(records: Sequence[Any], labels: Sequence[Any] | None) -> str:
    failed = [(row, rec) for row, rec in enumerate(records) if rec.status == FAILED]
    if not failed:
        return ""
    rows = []
    for row, rec in failed[:MAX_FAILURE_ROWS]:
        label = labels[row] if labels is not None and row < len(labels) else ""
        message = clip(rec.error_message or "", MESSAGE_CHARS, squash=False)
        rows.append(
            f"<tr><td>{rec.index}</td><td>{escape(str(label))}</td>"
            f"<td>{escape(rec.error_type or '')}</td>"
            f'<td class="msg">{escape(message)}</td><td>{rec.attempts}</td>'
            f"<td>{escape(seconds(rec.duration))}</td></tr>"
        )
    more = len(failed) - MAX_FAILURE_ROWS
    tail = f"<p>\u2026 and {more:,} more failures.</p>" if more > 0 else ""
    return (
        f"<h2>Failures ({len(failed):,})</h2><table><thead><tr><th>#</th><th>id</th>"
        "<th>error</th><th>message</th><th>attempts</th><th>duration</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>" + tail
    )


def render_page(records: Sequence[Any], summary: RunSummary, *, title: str,
                labels: Sequence[Any] | None = None) -> str:
    from .. import __version__

    started = (
        _dt.datetime.fromtimestamp(summary.t0).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        if summary.t0 is not None else "not started"
    )
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        (f'<p class="sub">started {escape(started)}; {summary.items:,} items, '
         f"max_flows = {summary.max_flows}; one bar per item, in input order, from its start "
         "to its end</p>"),
        _cards(summary),
        _legend(),
        render_svg(layout(records, summary, labels), summary.max_flows),
        _failures(records, labels),
        f"<footer>yait-aichain {escape(__version__)} run report</footer>",
        "</body></html>",
        "",
    ])
