"""The numbers at the top of a run report, computed from item records alone."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._usage import Usage
from ..pool._status import DONE, FAILED, STATUS_NAMES


@dataclass(frozen=True)
class RunSummary:
    """What a finished run amounts to.

    Attributes:
        items: how many records.
        counts: items per status name (``{"DONE": 48, "FAILED": 2, ...}``, every name).
        max_flows: the concurrency cap the run had.
        wall: seconds from the first start to the last end of the items that ran to an
            end, DONE or FAILED (0.0 if none did).
        loop: the sum of their durations: what a plain for-loop would have taken.
        median: the median item duration.
        ideal: ``ceil(n / max_flows) x median``: the wall time of perfect waves.
        usage: tokens and cost of the run.
        attempts: requests sent in total; retries: those beyond each item's first.
        wait: seconds spent in retry and rate-limit waits, summed over items.
        reused: items taken from a checkpoint (not run, so left out of the timings).
        stopped: items CANCELLED after they had started (an interrupt, a deadline); like
            the reused ones they are left out of the timings, so an interrupted run never
            claims a speed-up for work it did not finish.
    """

    items: int
    counts: dict[str, int]
    max_flows: int
    wall: float
    loop: float
    median: float
    ideal: float
    usage: Usage
    attempts: int
    retries: int
    wait: float
    reused: int = 0
    stopped: int = 0
    t0: float | None = field(default=None, repr=False)  # epoch time of the first start

    @property
    def speedup(self) -> float | None:
        """``loop / wall``: how much faster than the for-loop (None if unmeasurable)."""
        return self.loop / self.wall if self.wall > 0 and self.loop > 0 else None

    @property
    def efficiency(self) -> float | None:
        """``ideal / wall``: 1.0 means every flow was busy the whole time."""
        return self.ideal / self.wall if self.wall > 0 and self.ideal > 0 else None


def duration_of(rec: Any) -> float | None:
    """An item's duration: the monotonic one when known, else end - start."""
    if rec.duration is not None:
        return max(0.0, float(rec.duration))
    if rec.start is not None and rec.end is not None:
        return max(0.0, float(rec.end - rec.start))
    return None


def summarise(records: Sequence[Any], max_flows: int, usage: Usage | None = None) -> RunSummary:
    """Compute a :class:`RunSummary` from ItemRecords.

    Args:
        records: the run's records, e.g. ``pool.records``.
        max_flows: the run's concurrency cap.
        usage: the run's usage when known (``pool.usage`` also counts discarded
            attempts); by default the records' usages are added up.
    """
    ran = [rec for rec in records if not rec.from_checkpoint]
    # The timings are over the items that ran to an end, DONE or FAILED.
    ended = [rec for rec in ran if rec.status in (DONE, FAILED)]
    durations = [d for d in map(duration_of, ended) if d is not None]
    timed = [rec for rec in ended if rec.start is not None]
    ends = [rec.start + (duration_of(rec) or 0.0) if rec.end is None else rec.end
            for rec in timed]
    median = statistics.median(durations) if durations else 0.0
    flows = max(1, int(max_flows))
    return RunSummary(
        items=len(records),
        counts={name: sum(rec.status_name == name for rec in records)
                for name in STATUS_NAMES.values()},
        max_flows=flows,
        wall=max(ends) - min(rec.start for rec in timed) if timed else 0.0,
        loop=sum(durations),
        median=median,
        ideal=math.ceil(len(durations) / flows) * median,
        usage=sum((rec.usage for rec in records), Usage()) if usage is None else usage,
        attempts=sum(rec.attempts for rec in ran),
        retries=sum(max(0, rec.attempts - 1) for rec in ended),
        wait=sum((rec.wait_seconds for rec in ended), 0.0),
        reused=len(records) - len(ran),
        stopped=sum(rec.start is not None for rec in ran if rec.status not in (DONE, FAILED)),
        t0=min((rec.start for rec in ran if rec.start is not None), default=None),
    )


def seconds(value: float | None) -> str:
    """Seconds for people: ``0.84 s``, ``12.3 s``, ``2 min 05 s``."""
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.2f} s"
    if value < 120:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes} min {secs:02d} s"
