"""PPTX to Markdown with python-pptx: each slide a ``## Slide N: title`` heading, then
its text boxes and tables top to bottom, left to right, then the speaker notes.

Pictures, charts, media, OLE objects and macros are never read or run; group shapes
are entered to a bounded depth. The clock is checked between slides.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

from ...errors import DocumentError
from . import _render
from ._limits import Limits, check_package, require, truncation_note

__all__ = ["convert"]

_MAX_GROUP_DEPTH = 20


def _open(pptx: Any, data: bytes, limits: Limits) -> Any:
    try:
        return pptx.Presentation(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError,
            SyntaxError, AttributeError, IndexError) as exc:  # lxml's errors are SyntaxErrors
        raise DocumentError(
            f"{limits.source} is not a readable PPTX ({type(exc).__name__}: {exc})"[:300],
            format="pptx", source=limits.source) from None


def _position(shape: Any) -> tuple[int, int]:
    return (shape.top or 0, shape.left or 0)


def _shapes(shapes: Any, depth: int = 0) -> Iterator[Any]:
    for shape in sorted(shapes, key=_position):
        if getattr(shape, "shape_type", None) == 6 and depth < _MAX_GROUP_DEPTH:  # GROUP
            yield from _shapes(shape.shapes, depth + 1)
        else:
            yield shape


def _paragraphs(frame: Any) -> str:
    return "".join(_render.paragraph(p.text) for p in frame.paragraphs)


def _shape_html(shape: Any, title_id: int | None) -> str:
    if shape.shape_id == title_id:  # already the heading
        return ""
    if getattr(shape, "has_table", False):
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        return _render.table(rows)
    if getattr(shape, "has_text_frame", False):
        return _paragraphs(shape.text_frame)
    return ""  # pictures, charts, media, OLE objects: nothing to read


def _slide(slide: Any, number: int) -> str:
    title = slide.shapes.title
    heading = f"Slide {number}"
    if title is not None and title.has_text_frame and title.text_frame.text.strip():
        heading += ": " + title.text_frame.text
    html = [_render.heading(2, heading)]
    title_id = title.shape_id if title is not None else None
    html += [_shape_html(s, title_id) for s in _shapes(slide.shapes)]
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = _paragraphs(slide.notes_slide.notes_text_frame)
        if notes:
            html.append(f"<blockquote><p>Notes:</p>{notes}</blockquote>")
    return _render.markdown(html)


def convert(data: bytes, limits: Limits) -> str:
    pptx = require("pptx", "python-pptx", "pptx")
    check_package(data, limits, "pptx")
    limits.check("pptx", "opening")
    deck = _open(pptx, data, limits)
    slides = list(deck.slides)
    count = min(len(slides), limits.max_pages)
    parts = []
    for number, slide in enumerate(slides[:count], 1):
        limits.check("pptx", f"slide {number} of {len(slides)}")
        try:
            parts.append(_slide(slide, number))
        except (KeyError, ValueError, TypeError, SyntaxError, AttributeError) as exc:
            raise DocumentError(
                f"{limits.source}: slide {number} is not readable ({exc})"[:300],
                format="pptx", source=limits.source) from None
    if len(slides) > count:
        parts.append(truncation_note("slides", count, len(slides), "max_pages"))
    return _render.join(parts)
