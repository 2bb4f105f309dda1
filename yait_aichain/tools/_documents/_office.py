"""DOCX, XLSX and PPTX (Office zip packages) to Markdown.

Each package is checked before its library opens it (:func:`._limits.check_package`),
and a library's own errors become a DocumentError, in :func:`convert_document`.

- DOCX (mammoth): semantic HTML (headings from paragraph styles, lists, tables) for the
  web-page converter. Images are dropped unread, linked files never opened, and an
  embedded style map ignored (it could map paragraphs to any HTML element). mammoth
  converts in one call that looks at no clock: the package check bounds it.
- XLSX (openpyxl, read-only): a ``## heading`` and a table of cached values per sheet
  (formulas never evaluated, external links and macros never loaded). openpyxl pads
  rows to a sheet's declared size, so columns are capped before reading and rows
  counted as they come, the clock checked every few hundred; what is past a cap is cut
  and the result says so.
- PPTX (python-pptx): a ``## Slide N: title`` heading per slide, then its text boxes
  and tables in reading order and the speaker notes. Pictures, charts, media, OLE
  objects and macros are never read; group shapes are entered to a bounded depth.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from typing import Any

from ...errors import DocumentError
from . import _render
from ._limits import Limits, truncation_note

__all__ = ["convert_docx", "convert_pptx", "convert_xlsx"]

_CLOCK_EVERY = 256  # spreadsheet rows between deadline checks
_SCAN_FACTOR = 20  # rows examined per sheet (empty ones too), per row of max_rows
_MAX_GROUP_DEPTH = 20
_GROUP = 6  # MSO_SHAPE_TYPE.GROUP


def convert_docx(mammoth: Any, data: bytes, limits: Limits) -> str:
    try:
        result = mammoth.convert_to_html(
            io.BytesIO(data), convert_image=lambda image: [], external_file_access=False,
            include_embedded_style_map=False,  # the document must not choose our HTML
        )
    except RecursionError:
        raise DocumentError(f"{limits.source} nests its tables or lists too deeply to convert",
                            format="docx", source=limits.source) from None
    limits.check("docx", "after the conversion")
    return _render.markdown([result.value])


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _rows(ws: Any, limits: Limits, kept: int) -> tuple[list[list[str]], bool, str]:
    """A sheet's non-empty rows, whether columns were cut, and what cut the rows short
    ("" when nothing did)."""
    name, wide = str(ws.title), False
    rows: list[list[str]] = []
    budget = limits.max_rows * _SCAN_FACTOR
    for scanned, values in enumerate(
            ws.iter_rows(max_col=limits.max_columns + 1, values_only=True), 1):
        if scanned % _CLOCK_EVERY == 0:
            limits.check("xlsx", f"sheet {name!r}")
        if kept + len(rows) >= limits.max_rows:
            return rows, wide, f"the first {limits.max_rows} non-empty rows"
        if scanned > budget:
            return rows, wide, f"the first {budget} rows of sheet {name!r} (most of them empty)"
        if any(v is not None and v != "" for v in values):
            cells = [_text(v) for v in values]
            wide = wide or any(cells[limits.max_columns:])
            rows.append(cells[:limits.max_columns])
    return rows, wide, ""


def _trim(rows: list[list[str]]) -> list[list[str]]:
    width = max((i + 1 for r in rows for i, c in enumerate(r) if c), default=0)
    return [r[:width] for r in rows]


def convert_xlsx(openpyxl: Any, data: bytes, limits: Limits) -> str:
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                                      keep_links=False, keep_vba=False)
    parts: list[str] = []
    kept = 0
    try:
        for ws in workbook.worksheets:
            rows, wide, cut = _rows(ws, limits, kept)
            kept += len(rows)
            name = str(ws.title)
            parts.append(_render.markdown([_render.heading(2, name), _render.table(_trim(rows))]))
            if wide:
                parts.append(truncation_note(f"sheet {name!r} has more than "
                                             f"{limits.max_columns} columns; the rest were cut",
                                             "max_columns"))
            if cut:
                parts.append(truncation_note(f"converted {cut}; the rest of the workbook was "
                                             "not read", "max_rows"))
                break
    finally:
        workbook.close()
    return _render.join(parts)


def _shapes(shapes: Any, depth: int = 0) -> Iterator[Any]:
    for shape in sorted(shapes, key=lambda s: (s.top or 0, s.left or 0)):
        if getattr(shape, "shape_type", None) == _GROUP and depth < _MAX_GROUP_DEPTH:
            yield from _shapes(shape.shapes, depth + 1)
        else:
            yield shape


def _paragraphs(frame: Any) -> str:
    return "".join(_render.paragraph(p.text) for p in frame.paragraphs)


def _shape_html(shape: Any) -> str:
    if getattr(shape, "has_table", False):
        return _render.table([[cell.text for cell in row.cells] for row in shape.table.rows])
    if getattr(shape, "has_text_frame", False):
        return _paragraphs(shape.text_frame)
    return ""  # pictures, charts, media, OLE objects: nothing to read


def _slide(slide: Any, number: int) -> str:
    title = slide.shapes.title
    heading = f"Slide {number}"
    if title is not None and title.has_text_frame and title.text_frame.text.strip():
        heading += ": " + title.text_frame.text
    html = [_render.heading(2, heading)]
    title_id = title.shape_id if title is not None else None  # already the heading
    html += [_shape_html(s) for s in _shapes(slide.shapes) if s.shape_id != title_id]
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = _paragraphs(slide.notes_slide.notes_text_frame)
        if notes:
            html.append(f"<blockquote><p>Notes:</p>{notes}</blockquote>")
    return _render.markdown(html)


def convert_pptx(pptx: Any, data: bytes, limits: Limits) -> str:
    slides = list(pptx.Presentation(io.BytesIO(data)).slides)
    count = min(len(slides), limits.max_pages)
    parts = []
    for number, slide in enumerate(slides[:count], 1):
        limits.check("pptx", f"slide {number} of {len(slides)}")
        parts.append(_slide(slide, number))
    if len(slides) > count:
        parts.append(truncation_note(f"converted the first {count} of {len(slides)} slides",
                                     "max_pages"))
    return _render.join(parts)
