"""Cleaned HTML to Markdown: safe links, then markdownify.

Links are made absolute against the page URL (or its ``<base href>``). An href whose
scheme is not http(s), mailto, tel or ftp loses its href and keeps its text: this
neutralises ``javascript:``, ``vbscript:`` and ``data:`` however they are spelled
(entities are decoded by the parser, and the control characters browsers ignore are
removed before the scheme is read). Characters that end a Markdown link destination
(spaces, parentheses, angle brackets, quotes) are percent-encoded, so an href cannot
break out of its link.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import lxml.html
from markdownify import MarkdownConverter

from ._html import Document, parse_document, replace_with_text, text_of
from ._netguard import CONTROL, SCHEME

__all__ = ["escape_text", "html_to_markdown", "prepare_text", "safe_link", "tidy"]

_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel", "ftp"})
_HTTP = ("http://", "https://")
_BREAKERS = {c: f"%{ord(c):02X}" for c in " ()<>\"'\\`[]{}|^"}
_LANGUAGE = re.compile(r"(?:^|\s)(?:language|lang)-([\w+#.\-]+)")
# Page text must stay text: characters that would start live Markdown or HTML (raw HTML
# and autolinks "<", entity references "&", links and link definitions "[", and "\\",
# which could cancel one of these escapes) are backslash-escaped outside code, where
# CommonMark renders "\\<" as "<". Inside code spans and blocks they are literal already.
# While markdownify runs they travel as private-use placeholders: that also spares its
# HTML parser one entity callback per "<" or "&" (a page of them took 40x a plain page).
_TEXT_CHARS = {"\\": "\ue000", "<": "\ue001", "&": "\ue002", "[": "\ue003", ">": "\ue004"}
_CODE_CHARS = {"<": "\ue005", "&": "\ue006", ">": "\ue007"}
_PLACEHOLDERS = {chr(c): "\ufffd" for c in range(0xE000, 0xE009)}  # a page's own ones
_TO_TEXT = str.maketrans({**_PLACEHOLDERS, **_TEXT_CHARS})
# An image's alt text sits inside "![...]": a "]" there would end it early.
_TO_ALT = str.maketrans({**_PLACEHOLDERS, **_TEXT_CHARS, "]": "\ue008"})
_TO_CODE = str.maketrans({**_PLACEHOLDERS, **_CODE_CHARS})
_RESTORE = str.maketrans({
    "\ue000": "\\\\", "\ue001": "\\<", "\ue002": "\\&", "\ue003": "\\[", "\ue004": ">",
    "\ue005": "<", "\ue006": "&", "\ue007": ">", "\ue008": "\\]",
})
_PLAIN_ESCAPES = str.maketrans({"\\": "\\\\", "<": "\\<", "&": "\\&", "[": "\\["})
_CODE_TAGS = frozenset({"pre", "code", "kbd", "samp"})  # markdownify's "no format" tags
_BLANK_RUNS = re.compile(r"\n{3,}")
# Deeper nesting is flattened to text: markdownify recurses once per level and
# overflows the stack near 330 levels (markdownify #276).
_MAX_DEPTH = 100
# A run of HTML whitespace; as HTML renders it: one newline if it holds one, else a space.
_WHITESPACE_RUN = re.compile(r"[\t \r\n\f]+")


def safe_link(href: str | None, base: str | None) -> str | None:
    """A Markdown-safe absolute link for ``href`` (entities already decoded), resolved
    against the absolute http(s) URL ``base``, or None to drop it."""
    if not href:
        return None
    link = CONTROL.sub("", href).strip()
    if base and not SCHEME.match(link):
        try:
            link = urljoin(base, link)
        except ValueError:
            return None
    m = SCHEME.match(link)
    if m and m.group(1).lower() not in _LINK_SCHEMES:
        return None
    return "".join(_BREAKERS.get(c, c) for c in link) or None


def _base_url(page_url: str | None, base_href: str | None) -> str | None:
    base = page_url
    if base_href:
        try:
            candidate = urljoin(page_url or "", CONTROL.sub("", base_href).strip())
        except ValueError:
            candidate = ""
        if candidate.lower().startswith(_HTTP):
            base = candidate
    return base if base and base.lower().startswith(_HTTP) else None


def _fix_links(root: Any, base: str | None) -> None:
    for a in root.iter("a"):
        link = safe_link(a.get("href"), base)
        if link is None:
            a.attrib.pop("href", None)
        else:
            a.set("href", link)
    for img in list(root.iter("img")):
        link = safe_link(img.get("src"), base)  # None for data: and javascript: too
        if link is None:
            replace_with_text(img, img.get("alt") or "")
        else:
            img.set("src", link)


class _Converter(MarkdownConverter):
    """markdownify with link-text escaping and fences that survive backticks."""

    def escape(self, text: str, parent_tags: Any) -> str:
        # Text such as "[x](javascript:...)" must not become a link in the output.
        # escape() is a method of the class but missing from markdownify's stubs.
        escaped: str = super().escape(text, parent_tags)  # type: ignore[misc]
        return escaped.replace("](", "]\\(")

    def convert_pre(self, el: Any, text: str, parent_tags: Any) -> str:
        if not text.strip():
            return ""
        runs = [len(r) for r in re.findall(r"`+", text)]
        fence = "`" * max(3, max(runs, default=0) + 1)
        classes = list(el.get("class") or [])
        for code in el.find_all("code"):
            classes += code.get("class") or []
        m = _LANGUAGE.search(" ".join(classes))
        language = m.group(1) if m else ""
        return f"\n\n{fence}{language}\n{text.strip(chr(10))}\n{fence}\n\n"


# bs4's "html.parser" rather than its lxml builder: the lxml builder calls back into
# Python for every tag and takes the GIL back each time, which made 20 threads sharing
# a tool ~40% slower per page than html.parser (benchmarks/bench_convert.py).
_OPTIONS: dict[str, Any] = {
    "heading_style": "atx", "bullets": "-", "escape_underscores": False,
    "escape_asterisks": True, "table_infer_header": True, "bs4_options": "html.parser",
}


def tidy(markdown: str) -> str:
    """Unify newlines, drop trailing spaces, collapse blank runs, strip."""
    markdown = markdown.replace("\r\n", "\n").replace("\r", "\n")
    # Line by line: a regex for "spaces before a newline" retries from every space of a
    # long run that ends in something else, which is quadratic in the run.
    markdown = "\n".join(line.rstrip(" \t") for line in markdown.split("\n"))
    return _BLANK_RUNS.sub("\n\n", markdown).strip()


def escape_text(text: str) -> str:
    """Plain text made safe to read as Markdown: nothing in it turns into HTML or a link."""
    return text.translate(_PLAIN_ESCAPES)


def _whitespace(m: re.Match[str]) -> str:
    return "\n" if "\n" in m.group() or "\r" in m.group() else " "


def _prepared(text: str | None, in_pre: bool, in_code: bool) -> str | None:
    if not text:
        return text
    if not in_pre:
        text = _WHITESPACE_RUN.sub(_whitespace, text)
    return text.translate(_TO_CODE if in_code else _TO_TEXT)


def prepare_text(root: Any) -> None:
    """Flatten what is nested deeper than ``_MAX_DEPTH`` to its text, collapse whitespace
    runs outside ``<pre>`` as a browser renders them, and swap the characters that need
    escaping for placeholders (see ``_TEXT_CHARS``).

    markdownify's own whitespace pattern backtracks over every start position of a long
    run of spaces (seconds for 20 KB, quadratic beyond); after this it only ever sees
    runs of one character.
    """
    stack = [(root, 0, False, False)]
    while stack:
        el, depth, in_pre, in_code = stack.pop()
        if depth >= _MAX_DEPTH and len(el):
            el.text = " ".join(t.strip() for t in el.itertext() if t.strip())
            for child in list(el):
                el.remove(child)
        in_pre = in_pre or el.tag == "pre"
        in_code = in_code or el.tag in _CODE_TAGS
        el.text = _prepared(el.text, in_pre, in_code)
        if el.tag == "img" and el.get("alt"):
            el.set("alt", el.get("alt").translate(_TO_ALT))
        for child in el:
            child.tail = _prepared(child.tail, in_pre, in_code)
            stack.append((child, depth + 1, in_pre, in_code))


def _render(doc: Document, page_url: str | None) -> str:
    if doc.content is None:
        return ""
    _fix_links(doc.content, _base_url(page_url, doc.base))
    prepare_text(doc.content)
    fragment = lxml.html.tostring(doc.content, encoding="unicode", method="html", with_tail=False)
    try:
        markdown = _Converter(**_OPTIONS).convert(fragment)
    except RecursionError:
        # Should not happen after prepare_text; a worker must still never die of it.
        markdown = "\n\n".join(t.strip() for t in doc.content.itertext() if t.strip())
    return markdown.translate(_RESTORE)


def html_to_markdown(text: str, *, page_url: str | None = None, xml: bool = False) -> str:
    """Convert an HTML (or XHTML, with ``xml=True``) string to Markdown: the ``<title>`` a
    ``# heading``, then ``<main>``/``<article>`` or the body, links absolute against
    ``page_url`` or ``<base href>``."""
    try:
        doc = parse_document(text, xml=xml)
    except RecursionError:
        return tidy(escape_text(" ".join(text_of(text).split())))
    body = tidy(_render(doc, page_url))
    if doc.title:
        heading = "# " + escape_text(doc.title).replace("*", "\\*")
        if body.split("\n", 1)[0].strip() != heading:
            body = f"{heading}\n\n{body}" if body else heading
    return body  # tidy already: the heading is one line without edge whitespace
