"""The run report: numbers, escaping, self-containment, and what a real browser paints."""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from yait_aichain import CANCELLED, DONE, FAILED, ItemRecord, Model, Pool, Skill, Usage
from yait_aichain.errors import CancelledError
from yait_aichain.report import render_report, write_report
from yait_aichain.report._summary import summarise
from yait_aichain.report._svg import STATUS_COLOURS, layout
from yait_aichain.testing import Fault

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install -y chromium); CI installs it",
)
BAR = re.compile(r'<rect class="bar" data-status="([A-Z]+)" data-index="(\d+)"')


def _rec(index, status=DONE, start=0.0, duration=1.0, **kw):
    end = None if start is None else start + duration
    return ItemRecord(index, {}, status=status, start=start, end=end,
                      duration=None if start is None else duration, **kw)


# -- numbers ----------------------------------------------------------------------------


def test_summary_numbers_follow_their_definitions():
    t0 = 1_700_000_000.0
    records = [
        _rec(0, start=t0, duration=2.0, attempts=1, usage=Usage(10, 5, 15, 0.01)),
        _rec(1, start=t0, duration=3.0, attempts=3, wait_seconds=1.0, usage=Usage(10, 5, 15, 0.02)),
        _rec(2, FAILED, start=t0 + 2.0, duration=1.0, attempts=1, error=ValueError("x")),
        _rec(3, CANCELLED, start=None, error=CancelledError("stopped", reason="stop")),
    ]
    s = summarise(records, max_flows=2)
    assert s.items == 4
    assert s.counts == {"PENDING": 0, "RUNNING": 0, "DONE": 2, "FAILED": 1, "CANCELLED": 1}
    assert s.wall == pytest.approx(3.0)  # first start to last end
    assert s.loop == pytest.approx(6.0)  # what the for-loop would have taken
    assert s.median == pytest.approx(2.0)
    assert s.ideal == pytest.approx(math.ceil(3 / 2) * 2.0)
    assert s.efficiency == pytest.approx(4.0 / 3.0)
    assert s.speedup == pytest.approx(2.0)
    assert (s.attempts, s.retries, s.wait) == (5, 2, 1.0)
    assert s.usage.total_tokens == 30 and s.usage.cost == pytest.approx(0.03)


def test_an_empty_run_still_renders():
    html = render_report([], max_flows=3)
    assert "<svg" in html and not BAR.search(html)


def test_records_from_a_checkpoint_are_counted_but_not_timed():
    records = [_rec(0, start=5.0, duration=2.0),
               _rec(1, start=9.0, duration=0.0, from_checkpoint=True)]
    s = summarise(records, max_flows=1)
    assert (s.items, s.reused, s.loop, s.wall, s.median) == (2, 1, 2.0, 2.0, 2.0)
    html = render_report(records, max_flows=1)
    assert "from the checkpoint, not run" in html and len(BAR.findall(html)) == 2


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="max_flows"):
        render_report([_rec(0)], max_flows=0)
    with pytest.raises(ValueError, match="labels"):
        render_report([_rec(0)], max_flows=1, labels=["a", "b"])


def test_an_auto_run_is_drawn_with_the_most_flows_its_controller_allowed():
    records = [_rec(0, flows=4), _rec(1, start=1.0, flows=12), _rec(2, start=2.0, flows=8)]
    assert "max_flows = 12;" in render_report(records, max_flows="auto")
    from yait_aichain import AutoFlows
    # Records that never started under the controller fall back to its bound.
    assert "max_flows = 7;" in render_report([_rec(0)], max_flows=AutoFlows(max=7))
    with pytest.raises(ValueError, match="auto"):
        render_report([_rec(0)], max_flows="lots")


# -- the page ---------------------------------------------------------------------------


def test_every_text_is_escaped_and_nothing_is_fetched():
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'
    records = [
        _rec(0, FAILED, start=10.0, error=RuntimeError(hostile)),
        _rec(1, DONE, start=10.0, output=hostile),
    ]
    html = render_report(records, max_flows=2, title=hostile, labels=[hostile, "b"])
    assert "<script" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert not re.search(r"<[^>]*\b(src|href|action|xmlns)\s*=", html)  # no tag loads anything
    for needle in ("<link", "<script", "<iframe", "@import", "url(http", "http://", "https://"):
        assert needle not in html, needle


def test_one_bar_per_item_with_its_status_and_hover_title():
    records = [
        _rec(0, DONE, start=0.0, duration=2.0, attempts=3, wait_seconds=0.5),
        _rec(1, FAILED, start=0.5, duration=1.0, attempts=1, error=KeyError("boom")),
        _rec(2, CANCELLED, start=None, error=CancelledError("ctrl-c", reason="interrupt")),
    ]
    html = render_report(records, max_flows=2, labels=["a", "b", "c"])
    assert [m.groups() for m in BAR.finditer(html)] == [("DONE", "0"), ("FAILED", "1"),
                                                         ("CANCELLED", "2")]
    for status in ("DONE", "FAILED", "CANCELLED"):
        assert f'data-status="{status}"' in html and STATUS_COLOURS[status] in html
    assert html.count('class="retry"') == 2  # a tick per extra attempt
    assert html.count('class="wait"') == 2  # the wait, spread between the attempts
    assert "#1 (id b) FAILED" in html and "KeyError: &#x27;boom&#x27;" in html
    assert "#2 (id c) CANCELLED, never started" in html
    assert "Failures (1)" in html


def test_pool_report_writes_the_file(sim_env, tmp_path):
    pool = Pool(Skill(model=Model("gpt-4o-mini"), prompt="{text}"),
                items=[{"text": f"Doc {i}"} for i in range(6)], max_flows=3, name="mine")
    pool.run()
    path = pool.report(tmp_path / "run.html")
    html = path.read_text(encoding="utf-8")
    assert path == tmp_path / "run.html"
    assert len(BAR.findall(html)) == 6 and "mine: run report" in html
    assert "ceil(n/3)" in html


# -- in a real browser --------------------------------------------------------------------


def _png_pixels(path: Path) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the raw pixel rows of an 8-bit RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], None
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + size])
        elif kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + size])
        pos += 12 + size
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    # Sub and Up are most rows; done on whole rows as big ints (bytewise adds without
    # carries), which keeps a 1400x2400 screenshot to a second or two in pure Python.
    hi = int.from_bytes(b"\x80" * stride, "big")
    lo = int.from_bytes(b"\x7f" * stride, "big")

    def add(a, b):
        return ((a & lo) + (b & lo)) ^ ((a ^ b) & hi)

    prev, out = bytes(stride), bytearray()
    for row in range(height):
        kind = raw[row * (stride + 1)]
        line = raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)]
        if kind == 0:
            cur = bytes(line)
        elif kind == 2:
            up = add(int.from_bytes(line, "big"), int.from_bytes(prev, "big"))
            cur = up.to_bytes(stride, "big")
        elif kind == 1:
            x, shift = int.from_bytes(line, "big"), 8 * bpp
            while shift < 8 * stride:
                x = add(x, x >> shift)
                shift *= 2
            cur = x.to_bytes(stride, "big")
        else:
            buf = bytearray(line)
            for i in range(stride):
                a = buf[i - bpp] if i >= bpp else 0
                b = prev[i]
                if kind == 3:
                    buf[i] = (buf[i] + ((a + b) >> 1)) & 255
                    continue
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                buf[i] = (buf[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = bytes(buf)
        out += cur
        prev = cur
    return width, height, bpp, bytes(out)


def _count_colour(pixels: bytes, bpp: int, hex_colour: str, tolerance: int = 3) -> int:
    """How many pixels are within ``tolerance`` of the colour on every channel."""
    target = bytes.fromhex(hex_colour.lstrip("#"))
    mask = None
    for channel, value in enumerate(target):
        table = bytes(1 if abs(v - value) <= tolerance else 0 for v in range(256))
        plane = int.from_bytes(pixels[channel::bpp].translate(table), "big")
        mask = plane if mask is None else mask & plane
    return mask.bit_count()


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
           *args]
    proc = subprocess.run(cmd, check=False, capture_output=True, timeout=90,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc


@needs_chromium
def test_a_200_item_run_with_failures_renders_in_chromium(sim, tmp_path):
    sim.latency, sim.jitter = 0.03, 0.02
    sim.fail_next(Fault.rate_limit(retry_after=0.05), times=4)  # a few retries: ticks
    skill = Skill(model=Model("claude-sonnet-4-6", api_key="k", base_url=sim.url),
                  prompt="Summarise: {text}")

    def runner(variables):
        output = skill.run(variables)
        if variables["i"] % 10 == 3:  # injected: fails after a full-length call
            raise ValueError(f"<b>item {variables['i']}</b> rejected & logged")
        return output

    pool = Pool(runner, items=[{"i": i, "text": f"Doc {i}"} for i in range(200)], max_flows=20)
    pool.run()
    records = pool.records
    assert pool.status[FAILED] == 20 and pool.status[DONE] == 180
    page = write_report(tmp_path / "run.html", records, max_flows=20, usage=pool.usage)
    url = page.resolve().as_uri()

    dom = _chromium(tmp_path, "--dump-dom", url).stdout.decode()
    bars = BAR.findall(dom)
    assert len(bars) == 200
    assert {int(i): s for s, i in bars} == {r.index: r.status_name for r in records}
    assert "<b>item" not in dom and "&lt;b&gt;item 3&lt;/b&gt;" in dom

    shot = tmp_path / "run.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", url)
    width, height, bpp, pixels = _png_pixels(shot)
    assert (width, height) == (1400, 2400)
    lay = layout(records, summarise(records, 20))
    assert lay.height + 260 < height  # the whole timeline is on the screenshot

    def painted(status):  # solid area the layout gave that status (waits are hatched)
        return sum(round(b.width) * b.height - sum(w for _, w in b.waits) * b.height
                   for b in lay.bars if b.status == status)

    red = _count_colour(pixels, bpp, STATUS_COLOURS["FAILED"])
    green = _count_colour(pixels, bpp, STATUS_COLOURS["DONE"])
    assert red > 0 and green > 0
    assert red == pytest.approx(painted("FAILED"), rel=0.2)
    assert green == pytest.approx(painted("DONE"), rel=0.2)
    assert red / green == pytest.approx(painted("FAILED") / painted("DONE"), rel=0.25)
