"""Document content as HTML fragments, turned into Markdown by the web-page converter.

Every format writes the same few elements (headings, paragraphs, tables), escaped here,
and the one HTML-to-Markdown path renders them, so a table from a spreadsheet and a
table from a web page come out alike and text from a document cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from .._markdown import html_to_markdown

__all__ = ["heading", "join", "markdown", "marker", "paragraph", "table"]


def _cell(text: str) -> str:
    # A cell is one line in a Markdown table: inner newlines become spaces.
    return escape(" ".join(text.split()))


def heading(level: int, text: str) -> str:
    level = min(max(level, 1), 6)
    return f"<h{level}>{_cell(text)}</h{level}>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>" if text.strip() else ""


def table(rows: Sequence[Sequence[str]]) -> str:
    """A table whose first row is the header; short rows are padded."""
    kept = [list(r) for r in rows if any(c.strip() for c in r)]
    if not kept:
        return ""
    width = max(len(r) for r in kept)
    out = ["<table>"]
    for i, row in enumerate(kept):
        tag = "th" if i == 0 else "td"
        cells = "".join(f"<{tag}>{_cell(c)}</{tag}>" for c in row + [""] * (width - len(row)))
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def markdown(fragment: str) -> str:
    """Markdown for an HTML fragment (the whole fragment is the main content)."""
    if not fragment:
        return ""
    return html_to_markdown(f"<html><body><main>{fragment}</main></body></html>")


def marker(text: str) -> str:
    """A page or part marker line: an HTML comment, invisible when rendered."""
    return f"<!-- {' '.join(text.split()).replace('--', '- -')} -->"


def join(parts: Iterable[str]) -> str:
    return "\n\n".join(p for p in parts if p)
