"""Document content as Markdown: headings and paragraphs as HTML fragments for the
web-page converter (so they are escaped as a page's are), tables written directly.

A spreadsheet can hold half a million cells, which that converter would take a minute
over in one call with no clock; a table written here takes microseconds per cell, in the
converter's own layout, each cell escaped like plain text and its pipes escaped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from html import escape

from .._markdown import escape_text, html_to_markdown

__all__ = ["Markdown", "heading", "join", "markdown", "marker", "paragraph", "table"]


class Markdown(str):
    """A part that is Markdown already (a table), not an HTML fragment."""


def _cell(text: str) -> str:
    # A cell is one line in a Markdown table: inner newlines become spaces.
    return escape_text(" ".join(text.split())).replace("|", "\\|")


def heading(level: int, text: str) -> str:
    return f"<h{level}>{escape(' '.join(text.split()))}</h{level}>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>" if text.strip() else ""


def table(rows: Sequence[Sequence[str]]) -> Markdown:
    """A Markdown table whose first row is the header; short rows are padded."""
    kept = [list(r) for r in rows if any(c.strip() for c in r)]
    if not kept:
        return Markdown("")
    width = max(len(r) for r in kept)
    lines = ["| " + " | ".join(_cell(c) for c in row + [""] * (width - len(row))) + " |"
             for row in kept]
    lines.insert(1, "| " + " | ".join(["---"] * width) + " |")
    return Markdown("\n".join(lines))


def markdown(parts: Iterable[str]) -> str:
    """Markdown for a sequence of HTML fragments and ready Markdown parts, in order; each
    run of fragments is converted in one go."""
    out: list[str] = []
    kept = (p for p in parts if p or isinstance(p, Markdown))
    for ready, run in itertools.groupby(kept, key=lambda p: isinstance(p, Markdown)):
        if ready:
            out += run
        else:
            out.append(html_to_markdown(f"<html><body><main>{''.join(run)}</main></body></html>"))
    return join(out)


def marker(text: str) -> str:
    """A page or part marker line: an HTML comment, invisible when rendered."""
    return f"<!-- {' '.join(text.split()).replace('--', '- -')} -->"


def join(parts: Iterable[str]) -> str:
    return "\n\n".join(p for p in parts if p)
