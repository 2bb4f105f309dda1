"""A picture of a run: one self-contained HTML file with an SVG timeline.

    pool.run()
    pool.report("run.html")             # or: write_report("run.html", pool.records, max_flows=10)

One bar per item from its start to its end, coloured by status (DONE green, FAILED red,
CANCELLED grey), waits (rate limits, retry backoff) hatched and a tick per extra
attempt, the error or output on hover; on top: items, wall time, the ideal wall time
``ceil(n / max_flows) x median duration``, efficiency, the for-loop estimate, tokens,
cost and status counts. The file has no script and no external URL; every text in it is escaped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._checks import checked
from .._text import printable
from .._usage import Usage
from ..errors import ConfigurationError
from ..ratelimit._adaptive import AutoFlows, check_auto
from ._html import render_page
from ._summary import summarise

__all__ = ["render_report", "write_report"]


def _flow_cap(records: Sequence[Any], max_flows: Any) -> int:
    """The run's concurrency cap as a number: ``max_flows`` itself, or for an "auto" run
    the most flows its controller allowed (the report draws how the limit moved)."""
    auto = check_auto(max_flows)
    if auto is not None:
        return max((rec.flows or 0 for rec in records), default=0) or auto.max
    return int(checked(max_flows, 'max_flows, when not "auto",', low=1))


def render_report(
    records: Sequence[Any],
    *,
    max_flows: int | str | AutoFlows,
    title: str = "yait-aichain run",
    labels: Sequence[Any] | None = None,
    usage: Usage | None = None,
) -> str:
    """The report of a run as an HTML string.

    Args:
        records: ItemRecords in input order, e.g. ``pool.records``.
        max_flows: the run's concurrency cap (for the ideal time and the load strip), or
            ``"auto"``/``AutoFlows`` for an adaptive run (its records' ``flows`` give the cap).
        title: the page heading.
        labels: one id per record, shown on hover and in the failures table.
        usage: the run's total usage (``pool.usage``); by default the records' sum.

    Raises:
        ConfigurationError: a bad ``max_flows``, or ``labels`` of the wrong length (also
            a ValueError).
    """
    records = list(records)
    if labels is not None and len(labels) != len(records):
        raise ConfigurationError(f"labels has {len(labels)} entries for {len(records)} records")
    summary = summarise(records, _flow_cap(records, max_flows), usage)
    return render_page(records, summary, title=title, labels=labels)


def write_report(
    path: str | os.PathLike[str],
    records: Sequence[Any],
    *,
    max_flows: int | str | AutoFlows,
    title: str = "yait-aichain run",
    labels: Sequence[Any] | None = None,
    usage: Usage | None = None,
) -> Path:
    """Write :func:`render_report` to ``path`` (UTF-8) and return the path.

    Raises:
        ConfigurationError: as :func:`render_report`.
        OSError: the file could not be written.
    """
    text = render_report(records, max_flows=max_flows, title=title, labels=labels, usage=usage)
    target = Path(path)
    target.write_text(printable(text), encoding="utf-8")  # any str the records hold
    return target
