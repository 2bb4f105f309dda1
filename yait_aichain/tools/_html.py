"""Decode, parse and clean HTML before it is turned into Markdown.

Parsing is hardened: the XML parser (for XHTML) never resolves entities, loads a DTD or
touches the network, and neither parser lifts libxml2's size and depth limits. What a
reader would not see is dropped before conversion: scripts, styles, ``<noscript>``,
``<template>``, frames, form controls, site navigation and chrome, and elements hidden
by the ``hidden`` attribute, ``aria-hidden="true"`` or an inline ``display:none`` /
``visibility:hidden``. Hidden text is a known channel for prompt injection.
"""

from __future__ import annotations

import codecs
import html
import re
import threading
from dataclasses import dataclass
from typing import Any

import lxml.html
from lxml import etree

__all__ = ["Document", "decode_body", "looks_like_html", "parse_document", "replace_with_text",
           "text_of"]

_DROP = frozenset({
    "script", "style", "noscript", "template", "iframe", "frame", "frameset", "object",
    "embed", "applet", "canvas", "svg", "nav", "aside", "link", "meta", "base", "audio",
    "video", "source", "track", "map", "area", "input", "button", "select", "textarea",
    "option", "optgroup", "datalist", "output", "progress", "meter",
})
_CHROME = frozenset({"header", "footer"})
_CHROME_ROLES = frozenset({"banner", "contentinfo"})
_DROP_ROLES = frozenset({"navigation", "complementary", "search"})
_CONTENT_TAGS = frozenset({"article", "main"})
_KEEP_ATTRS = {
    "a": ("href",), "img": ("src", "alt"), "td": ("colspan", "rowspan"),
    "th": ("colspan", "rowspan"), "pre": ("class",), "code": ("class",), "ol": ("start",),
}
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)(?:display:none|visibility:(?:hidden|collapse))(?:!important)?(?:;|$)"
)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
# Every pattern below runs on untrusted text and must stay linear: a repeated part never
# overlaps what follows it, a tag-like pattern stops at the next "<", and a span from an
# opening to its closing also ends at the end of the text (as an unclosed one does in a
# browser), so it never fails and no start position rescans the text after it
# (tests/test_hostile_pages.py times them).
_META_CHARSET = re.compile(rb"""<meta[^<>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:\-]+)""")
_HTML_HINT = re.compile(
    r"<\s*(?:!doctype|html|head|body|title|div|p|main|article|table|span|a)\b", re.IGNORECASE
)
_CONTAINERS = re.compile(
    r"</?(?:div|span|section|font|center|li|ul|ol|blockquote|b|i|em|strong)\b[^<>]*>", re.I)
_TAGS = re.compile(r"<[^<>]*>")
_SCRIPTISH = re.compile(r"<(script|style|noscript|template)\b.*?(?:</\1\s*>|\Z)", re.I | re.S)
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)

_local = threading.local()
_PARSERS = {
    "html": lambda: lxml.html.HTMLParser(
        no_network=True, huge_tree=False, remove_comments=True, remove_pis=True),
    "xml": lambda: etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=True, remove_pis=True),
}


def _parser(kind: str) -> Any:
    # One parser per thread: lxml parsers keep per-parse state (the error log).
    if not hasattr(_local, kind):
        setattr(_local, kind, _PARSERS[kind]())
    return getattr(_local, kind)


def decode_body(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: BOM, else the header charset, else a ``<meta>`` or XML-declaration
    charset in the first 2 KB, else UTF-8; undecodable bytes become U+FFFD."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(name, errors="replace")
    declared = [m.group(1).decode("ascii") for pattern in (_META_CHARSET, _XML_ENCODING)
                if (m := pattern.search(data[:2048]))]
    for name in filter(None, [charset, *declared]):
        try:
            # Only real text encodings: "rot13", "zlib" or "base64" look up fine and then
            # refuse to decode, or decode to something that is not the page.
            if not codecs.lookup(name)._is_text_encoding:
                continue
            return data.decode(name, errors="replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return data.decode("utf-8", errors="replace")


def looks_like_html(text: str) -> bool:
    return text.lstrip().startswith("<") or _HTML_HINT.search(text[:4096]) is not None


def text_of(text: str) -> str:
    """Plain text of an HTML string, without a parser (the last-resort fallback)."""
    return html.unescape(_TAGS.sub(" ", _SCRIPTISH.sub(" ", text)))


@dataclass
class Document:
    """A parsed, cleaned page: its title, the content element and the base URL."""

    title: str
    content: Any  # lxml element, or None for an empty page
    base: str | None  # <base href>, as written


def _parse_xml(text: str) -> Any | None:
    try:
        root = etree.fromstring(_XML_DECL.sub("", text, count=1), _parser("xml"))
    except etree.XMLSyntaxError:
        return None  # not well-formed after all: the HTML parser copes
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.rsplit("}", 1)[1]  # drop the XHTML namespace
    return root


def _parse_html(text: str) -> Any | None:
    """Parse, or None for an empty page; RecursionError when too deep even without its
    layout containers."""
    text = _XML_DECL.sub("", text, count=1)
    parser = _parser("html")
    for attempt in (text, None):
        if attempt is None:
            # libxml2 stops at depth 256 and silently drops the rest of the page; most
            # such pages nest layout containers, so unwrap those and try once more.
            attempt = _CONTAINERS.sub(" ", text)
        try:
            root = lxml.html.document_fromstring(attempt, parser=parser)
        except etree.ParserError:
            return None
        if not any("Excessive depth" in e.message for e in parser.error_log):
            return root
    raise RecursionError("HTML nested too deeply")


def parse_document(text: str, *, xml: bool = False) -> Document:
    """Parse and clean ``text``; ``xml`` tries the hardened XML parser first (XHTML).
    RecursionError: nesting too deep to parse (the caller falls back to text)."""
    root = _parse_xml(text) if xml or text.lstrip().startswith("<?xml") else None
    if root is None:
        root = _parse_html(text)
    if root is None:
        return Document(title="", content=None, base=None)
    title = next((" ".join("".join(e.itertext()).split()) for e in root.iter("title")), "")
    base = next((e.get("href") for e in root.iter("base") if e.get("href")), None)
    body = next(root.iter("body"), root)
    _clean(body)
    return Document(title=title, content=_main_content(body), base=base)


def replace_with_text(el: Any, text: str = "") -> None:
    """Replace ``el`` by ``text``, keeping its tail text, which belongs to the parent."""
    parent = el.getparent()
    if parent is None:
        return
    text += el.tail or ""
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(el)


def _hidden(el: Any) -> bool:
    if el.get("hidden") is not None or (el.get("aria-hidden") or "").strip().lower() == "true":
        return True
    if el.tag == "dialog" and el.get("open") is None:
        return True
    style = el.get("style")  # read without its comments and whitespace
    return bool(style) and _HIDDEN_STYLE.search(
        "".join(_CSS_COMMENT.sub("", style.lower()).split())) is not None


def _in_content(el: Any) -> bool:
    return any(a.tag in _CONTENT_TAGS or a.get("role") == "main" for a in el.iterancestors())


def _clean(root: Any) -> None:
    doomed = []
    for el in root.iter():
        tag = el.tag
        if not isinstance(tag, str):  # entity references left unresolved on purpose
            doomed.append(el)
            continue
        role = (el.get("role") or "").strip().lower()
        chrome = (tag in _CHROME or role in _CHROME_ROLES) and not _in_content(el)
        if tag in _DROP or role in _DROP_ROLES or chrome or _hidden(el):
            doomed.append(el)
        else:
            keep = _KEEP_ATTRS.get(tag, ())
            for name in list(el.attrib):
                if name not in keep and name != "role":
                    del el.attrib[name]
    for el in doomed:
        replace_with_text(el)


def _main_content(body: Any) -> Any:
    mains = [e for e in body.iter() if e.tag == "main" or e.get("role") == "main"]
    if mains:
        return max(mains, key=lambda e: sum(len(t.strip()) for t in e.itertext()))
    articles = list(body.iter("article"))
    return articles[0] if len(articles) == 1 else body
