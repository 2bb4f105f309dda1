"""PDF to Markdown with pypdfium2 (PDFium, Chromium's PDF engine).

The layout is rebuilt from the boxes of a page's text runs: runs on one baseline form a
line, a line whose runs stand apart is a row of cells, rows whose cells line up are a
table, a line set larger than the body text is a heading, and lines close together are
a paragraph, in content order (the reading order for almost every producer). PDFium is
not thread-safe, even across documents: every call into it holds one process-wide lock,
taken per page with the deadline as the wait limit, so Pool threads take turns.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import EncryptedDocumentError, NoTextLayerError
from . import _render
from ._limits import Limits, truncation_note

__all__ = ["convert_pdf"]

_LOCK = threading.Lock()
_ERR_PASSWORD, _ERR_SECURITY = 4, 5  # FPDF_ERR_PASSWORD, FPDF_ERR_SECURITY
_CELL_GAP = 1.0  # a gap wider than this many line heights separates two cells
_PARA_GAP = 0.6  # a vertical gap wider than this many line heights starts a paragraph
_HEADING = 1.3  # a line this many times taller than the body text is a heading
_TITLE = 1.6  # ... and this many times, a top-level one


@dataclass
class _Run:
    left: float
    bottom: float
    right: float
    top: float
    text: str

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 0.1)


class _Line:
    def __init__(self, cells: list[_Run]) -> None:
        self.cells = cells
        self.height = max(c.height for c in cells)
        self.bottom = min(c.bottom for c in cells)
        self.top = max(c.top for c in cells)
        self.text = " ".join(c.text for c in cells)


@contextmanager
def _pdfium(limits: Limits, where: str) -> Iterator[None]:
    while not _LOCK.acquire(timeout=max(limits.deadline - time.monotonic(), 0.0) + 0.01):
        limits.check("pdf", where)  # raises once the deadline has passed
    try:
        limits.check("pdf", where)
        yield
    finally:
        _LOCK.release()


def _open(pdfium: Any, data: bytes, source: str) -> Any:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) in (_ERR_PASSWORD, _ERR_SECURITY):
            raise EncryptedDocumentError(
                f"{source} is a password-protected PDF; decrypt it first",
                format="pdf", source=source) from None
        raise  # convert_document types it


def _runs(doc: Any, index: int) -> list[_Run]:
    with closing(doc[index]) as page, closing(page.get_textpage()) as textpage:
        runs = []
        for k in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(k)
            text = " ".join(textpage.get_text_bounded(left, bottom, right, top).split())
            if text:
                runs.append(_Run(left, bottom, right, top, text))
        return runs


def _same_line(a: _Run, b: _Run) -> bool:
    overlap = min(a.top, b.top) - max(a.bottom, b.bottom)
    return overlap > 0.5 * min(a.height, b.height)


def _lines(runs: list[_Run]) -> list[_Line]:
    """Runs on one baseline, in content order, merged into cells by their gaps."""
    groups: list[list[_Run]] = []
    for run in runs:
        if groups and _same_line(groups[-1][-1], run):
            groups[-1].append(run)
        else:
            groups.append([run])
    lines = []
    for group in groups:
        group.sort(key=lambda r: r.left)
        cells = [group[0]]
        for run in group[1:]:
            last = cells[-1]
            if run.left - last.right < _CELL_GAP * max(last.height, run.height):
                cells[-1] = _Run(last.left, min(last.bottom, run.bottom),
                                 max(last.right, run.right), max(last.top, run.top),
                                 f"{last.text} {run.text}")
            else:
                cells.append(run)
        lines.append(_Line(cells))
    return lines


def _columns_match(columns: list[list[float]], line: _Line) -> bool:
    for cell in line.cells:
        hit = next((c for c in columns if cell.left <= c[1] and cell.right >= c[0]), None)
        if hit is None:
            return False
        hit[0], hit[1] = min(hit[0], cell.left), max(hit[1], cell.right)
    return True


def _table_end(lines: list[_Line], start: int) -> int:
    """Index after the last row of a table starting at ``start`` (``start`` if none)."""
    if len(lines[start].cells) < 2:
        return start
    columns = [[c.left, c.right] for c in lines[start].cells]
    end = start + 1
    while end < len(lines) and len(lines[end].cells) >= 2 and _columns_match(columns, lines[end]):
        end += 1
    return end if end - start >= 2 else start


def _table(rows: list[_Line]) -> str:
    columns = sorted({round(c.left) for c in rows[0].cells})
    out = []
    for line in rows:
        cells = [""] * len(columns)
        for cell in line.cells:
            col = max(bisect.bisect_right(columns, cell.right) - 1, 0)  # the last left <= right
            cells[col] = f"{cells[col]} {cell.text}".strip()
        out.append(cells)
    return _render.table(out)


def _body_height(lines: list[_Line]) -> float:
    weighted = sorted((line.height, len(line.text)) for line in lines)
    half, seen = sum(n for _, n in weighted) / 2, 0
    for height, n in weighted:
        seen += n
        if seen >= half:
            return height
    return 1.0


def _blocks(lines: list[_Line]) -> Iterator[str]:
    body = _body_height(lines)
    paragraph: list[_Line] = []
    i = 0
    while i < len(lines):
        end = _table_end(lines, i)
        line = lines[i]
        ratio = line.height / body
        starts_block = end > i or ratio >= _HEADING
        if paragraph and (starts_block or paragraph[-1].bottom - line.top > _PARA_GAP * body):
            yield _render.paragraph(" ".join(p.text for p in paragraph))
            paragraph = []
        if end > i:
            yield _table(lines[i:end])
            i = end
            continue
        if ratio >= _HEADING and len(line.text) <= 200:
            yield _render.heading(1 if ratio >= _TITLE else 2, line.text)
        else:
            paragraph.append(line)
        i += 1
    yield _render.paragraph(" ".join(p.text for p in paragraph))  # "" when there is none


def convert_pdf(pdfium: Any, data: bytes, limits: Limits) -> str:
    with _pdfium(limits, "opening"):
        doc = _open(pdfium, data, limits.source)
    try:
        with _pdfium(limits, "counting pages"):
            total = len(doc)
        count = min(total, limits.max_pages)
        parts, chars = [], 0
        for index in range(count):
            with _pdfium(limits, f"page {index + 1} of {total}"):
                runs = _runs(doc, index)
            chars += sum(len(r.text) for r in runs)
            page = _render.markdown(_blocks(_lines(runs)))
            note = "" if runs else " (no text layer: an image or a blank page)"
            marker = _render.marker(f"page {index + 1}{note}") if total > 1 else ""
            parts.append(_render.join([marker, page]))
    finally:
        with _LOCK:
            doc.close()
    if total and not chars:
        raise NoTextLayerError(
            f"{limits.source} has no text layer ({count} page(s) of images only: a scan?); "
            f"convertToMD does no OCR, so run OCR on it first",
            format="pdf", source=limits.source)
    if total > count:
        parts.append(truncation_note(f"converted the first {count} of {total} pages",
                                     "max_pages"))
    return _render.join(parts)
