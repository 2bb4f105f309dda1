"""XLSX to Markdown with openpyxl: each sheet a ``## heading`` and a table.

Read-only mode streams each sheet's rows instead of building the workbook in memory;
cached values are shown (formulas are never evaluated, external links are not loaded,
macros are never read). A sheet's declared size is not trusted: openpyxl pads to the
declared dimension, so columns are capped before reading and rows are counted as they
come, with the clock checked every few hundred rows. Empty rows and columns at the
edges are dropped; rows and columns past the caps are cut and the result says so.
"""

from __future__ import annotations

import datetime
import io
import zipfile
from collections.abc import Iterator
from typing import Any

from ...errors import DocumentError
from . import _render
from ._limits import Limits, check_package, require

__all__ = ["convert"]

_CLOCK_EVERY = 256  # rows between deadline checks
_SCAN_FACTOR = 20  # rows examined per sheet (empty ones too), per row of max_rows


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


def _open(openpyxl: Any, data: bytes, limits: Limits) -> Any:
    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                                      keep_links=False, keep_vba=False)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError,
            SyntaxError, AttributeError, IndexError) as exc:  # ParseError is a SyntaxError
        raise DocumentError(
            f"{limits.source} is not a readable XLSX ({type(exc).__name__}: {exc})"[:300],
            format="xlsx", source=limits.source) from None


class _Sheet:
    """The rows kept from one sheet, with what was cut."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: list[list[str]] = []
        self.wide = False

    def add(self, values: tuple[Any, ...], max_columns: int) -> None:
        cells = [_text(v) for v in values]
        if len(cells) > max_columns:
            self.wide = self.wide or any(cells[max_columns:])
            cells = cells[:max_columns]
        self.rows.append(cells)


class _Full(Exception):
    """A cap was reached; the message says which."""


def _scan(ws: Any, sheet: _Sheet, limits: Limits, kept: int) -> Iterator[None]:
    """Fill ``sheet`` row by row; yields once per clock check; raises _Full at a cap."""
    budget = limits.max_rows * _SCAN_FACTOR
    for scanned, values in enumerate(
            ws.iter_rows(max_col=limits.max_columns + 1, values_only=True), 1):
        if scanned % _CLOCK_EVERY == 0:
            yield
        if kept + len(sheet.rows) >= limits.max_rows:
            raise _Full(f"the first {limits.max_rows} non-empty rows")
        if scanned > budget:
            raise _Full(f"the first {budget} rows of sheet {sheet.name!r} (most of them empty)")
        if any(v is not None and v != "" for v in values):
            sheet.add(values, limits.max_columns)


def _trim(rows: list[list[str]]) -> list[list[str]]:
    width = max((i + 1 for r in rows for i, c in enumerate(r) if c), default=0)
    return [r[:width] for r in rows]


def _sheet_markdown(ws: Any, limits: Limits, kept: int) -> tuple[_Sheet, str, str]:
    """The sheet, its Markdown, and what cut it short ("" when nothing did)."""
    sheet = _Sheet(str(ws.title))
    cut = ""
    try:
        for _ in _scan(ws, sheet, limits, kept):
            limits.check("xlsx", f"sheet {sheet.name!r}")
    except _Full as full:
        cut = str(full)
    except (KeyError, ValueError, TypeError, SyntaxError, zipfile.BadZipFile) as exc:
        raise DocumentError(
            f"{limits.source}: sheet {sheet.name!r} is not readable ({exc})"[:300],
            format="xlsx", source=limits.source) from None
    markdown = _render.markdown([_render.heading(2, sheet.name), _render.table(_trim(sheet.rows))])
    if sheet.wide:
        markdown += (f"\n\n> **Truncated:** sheet {sheet.name!r} has more than "
                     f"{limits.max_columns} columns; the rest were cut "
                     f"(convertToMD(max_columns=...) raises the cap).")
    return sheet, markdown, cut


def convert(data: bytes, limits: Limits) -> str:
    openpyxl = require("openpyxl", "openpyxl", "xlsx")
    check_package(data, limits, "xlsx")
    limits.check("xlsx", "opening")
    workbook = _open(openpyxl, data, limits)
    parts: list[str] = []
    kept = 0
    try:
        for ws in workbook.worksheets:
            sheet, markdown, cut = _sheet_markdown(ws, limits, kept)
            kept += len(sheet.rows)
            parts.append(markdown)
            if cut:
                parts.append(f"> **Truncated:** converted {cut}; the rest of the workbook "
                             f"was not read (convertToMD(max_rows=...) raises the cap).")
                break
    finally:
        workbook.close()
    return _render.join(parts)
