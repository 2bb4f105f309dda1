"""The progress line: fits the terminal, stays plain off a terminal, tells the truth after
Ctrl-C, and drives a tqdm bar when given one."""

from __future__ import annotations

import io
import threading
import time

import pytest
import tqdm

from yait_aichain import CANCELLED, DONE, Pool
from yait_aichain.pool import _progress
from yait_aichain.pool._progress import ProgressLine, format_line
from yait_aichain._usage import Usage


class Terminal(io.StringIO):
    def isatty(self):
        return True


def slow(v):
    time.sleep(0.02)
    return v["i"]


def test_on_a_terminal_every_redraw_fits_the_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    out = Terminal()
    Pool(slow, [{"i": i} for i in range(30)], max_flows=2, progress=out,
         name="a-rather-long-label").run()
    segments = out.getvalue().replace("\n", "").split("\r")[1:]
    assert len(segments) >= 3
    assert all(len(seg) <= 39 for seg in segments), max(map(len, segments))


def test_off_a_terminal_plain_lines_at_a_low_rate_and_no_carriage_returns():
    out = io.StringIO()
    Pool(slow, [{"i": i} for i in range(30)], max_flows=2, progress=out, name="log").run()
    text = out.getvalue()
    assert "\r" not in text
    assert text.count("\n") == 1 and text.startswith("log: 30/30")  # the run took < 10 s


def test_off_a_terminal_one_whole_line_per_interval():
    now = [0.0]
    out = io.StringIO()
    line = ProgressLine(out, "job", clock=lambda: now[0])
    counts = {0: 5, 1: 1, DONE: 4, 3: 0, CANCELLED: 0}
    for step in range(1, 40):
        now[0] = step
        line.update(counts, 10, Usage())
    line.close(counts, 10, Usage())
    lines = out.getvalue().splitlines()
    assert len(lines) == 39 // int(_progress.PLAIN_INTERVAL) + 1
    assert all(entry.startswith("job: 4/10") for entry in lines)


def test_after_ctrl_c_the_final_line_says_stopped_with_honest_counts():
    counts = {0: 0, 1: 0, DONE: 20, 3: 0, CANCELLED: 80}
    line = format_line("run", counts, 100, 4.0, Usage(), final=True)
    assert line.startswith("run: stopped: 20 done, 80 cancelled")
    assert "100/100" not in line and "5.0 items/s" in line


def test_an_interrupted_pool_draws_stopped(monkeypatch):
    out = io.StringIO()
    started = threading.Event()

    def work(v):
        started.set()
        time.sleep(0.05)
        return v

    pool = Pool(work, [{"i": i} for i in range(100)], max_flows=2, progress=out, name="run")

    def interrupt(rec):
        if pool.status[DONE] >= 4:
            raise KeyboardInterrupt

    pool.on_item_done = interrupt
    with pytest.raises(KeyboardInterrupt):
        pool.run()
    final = out.getvalue().splitlines()[-1]
    done, cancelled = pool.status[DONE], pool.status[CANCELLED]
    assert final.startswith(f"run: stopped: {done} done, {cancelled} cancelled"), final
    assert cancelled >= 90


def test_a_tqdm_class_gets_a_bar_per_run():
    out = io.StringIO()

    class Bar(tqdm.tqdm):
        def __init__(self, **kw):
            super().__init__(file=out, mininterval=0, **kw)

    pool = Pool(slow, [{"i": i} for i in range(12)], max_flows=3, progress=Bar, name="bar")
    pool.run()
    text = out.getvalue()
    assert "bar:" in text and "12/12" in text


def test_a_tqdm_instance_is_advanced_and_left_open():
    out = io.StringIO()
    bar = tqdm.tqdm(file=out, mininterval=0)
    Pool(slow, [{"i": i} for i in range(7)], max_flows=3, progress=bar).run()
    assert bar.n == 7 and bar.total == 7
    bar.close()
