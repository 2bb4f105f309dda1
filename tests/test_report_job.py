"""Reports of the whole job: timings only over what ran, rows named by item ids, and a
resumed CLI run's report covering every item of the output file."""

from __future__ import annotations

import json
import re

import pytest

from yait_aichain import CANCELLED, DONE, ItemRecord, Pool
from yait_aichain.cli import main
from yait_aichain.errors import CancelledError
from yait_aichain.report import render_report, summarise

BAR = re.compile(r'<rect class="bar" data-status="([A-Z]+)" data-index="(\d+)"')
ROW = re.compile(r'<text class="row" x="58" y="[0-9.]+" text-anchor="end">([^<]*)</text>')


def _rec(index, status=DONE, start=0.0, duration=1.0, **kw):
    return ItemRecord(index, {}, status=status, start=start, end=start + duration,
                      duration=duration, **kw)


def test_an_interrupted_run_claims_no_speed_up_for_unfinished_work():
    t0 = 1_700_000_000.0
    # Two items finished; ten were running when Ctrl-C came and ended CANCELLED.
    records = [_rec(0, start=t0, duration=1.0), _rec(1, start=t0 + 1, duration=1.0)]
    records += [_rec(i, CANCELLED, start=t0, duration=10.0,
                     error=CancelledError("interrupted", reason="interrupt"))
                for i in range(2, 12)]
    s = summarise(records, max_flows=12)
    assert s.loop == pytest.approx(2.0) and s.wall == pytest.approx(2.0)
    assert s.speedup == pytest.approx(1.0)  # not (2 + 100) / 10 = 10.2x
    assert s.stopped == 10
    assert "stopped while running" in render_report(records, max_flows=12)


def test_pool_report_rows_are_labelled_by_item_id(tmp_path):
    items = [{"id": f"doc-{i}", "text": "t"} for i in range(3)]
    pool = Pool(lambda v: v["text"], items, progress=False)
    pool.run()
    html = pool.report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert ROW.findall(html) == ["doc-0", "doc-1", "doc-2"]
    assert "#0 (id doc-0) DONE" in html


def test_a_resumed_cli_run_reports_every_item_of_the_file(sim_env, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(10)),
                     encoding="utf-8")
    out, report = tmp_path / "out.jsonl", tmp_path / "r.html"
    base = ["run", "-m", "gpt-4o-mini", "-p", "S: {text}", "-i", str(items), "-o", str(out)]
    assert main([*base, "--limit", "6"]) == 0
    assert main([*base, "--resume", "--report", str(report)]) == 0
    html = report.read_text(encoding="utf-8")
    bars = BAR.findall(html)
    assert len(bars) == 10 and {status for status, _ in bars} == {"DONE"}
    assert html.count("from the checkpoint, not run") == 6  # the reused ones, marked
    assert "reused from an earlier run" in html
    assert ROW.findall(html)[:3] == ["1", "2", "3"]  # ids: the line numbers
