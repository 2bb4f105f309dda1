"""convertToMD: a URL, a local file or raw HTML in, Markdown out."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Any

from .._checks import checked
from ..errors import ConversionError, ToolInputError, UnsafeURLError, UnsupportedContentTypeError
from ._fetch import (DEFAULT_MAX_BYTES, DEFAULT_MAX_REDIRECTS, DEFAULT_POOL_MAXSIZE,
                     DEFAULT_TIMEOUT, DEFAULT_USER_AGENT, Fetcher)
from ._documents import DOCUMENT_KINDS, Limits, convert_document, sniff
from ._html import decode_body, looks_like_html
from ._localfile import check_root, read_file
from ._markdown import escape_text, html_to_markdown, tidy
from ._netguard import SCHEME, short
from ._tool import Tool

__all__ = ["convertToMD"]

_HTML_MARKERS = ("<html", "<body", "<!doctype", "<head")
_EXTENSIONS = {
    ".html": "html", ".htm": "html", ".xhtml": "xhtml", ".xht": "xhtml", ".xml": "xhtml",
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
    # An extension only declares; the bytes' signature must agree (see _documents).
    ".pdf": "pdf", ".docx": "docx", ".docm": "docx", ".xlsx": "xlsx", ".xlsm": "xlsx",
    ".pptx": "pptx", ".doc": "binary", ".xls": "binary", ".ppt": "binary",
}


class convertToMD(Tool):  # lower-case: the name the seed article's users import
    """A Tool that turns a web page, an HTML string or (when asked) a local file into Markdown.

    ``run(input)`` takes an http(s) URL, raw HTML (text that starts with ``<`` or
    contains ``<html``/``<body``) or, for a tool built with ``root=``, the path of a file
    under that directory (relative to it; symlinks and ``..`` followed; regular files
    only), and returns Markdown: the title as a ``# heading``, then the main content with
    links made absolute, and navigation, scripts, forms and hidden text dropped. PDF,
    DOCX, XLSX and PPTX (the ``[documents]`` extra) are recognised by their bytes.
    Without ``root`` a path is refused before the file system is touched, so an item
    field from an untrusted source cannot read ``~/.aws/credentials``.

    URLs are fetched under an SSRF guard: only http(s); non-public and cloud-metadata
    addresses are refused, on the first request and on every redirect, and the
    connection goes to the address that was checked. One instance can be shared by all
    the threads of a Pool.

    Args:
        allow_private: allow non-public addresses (trusted networks only); so does
            ``AICHAIN_ALLOW_PRIVATE_URLS`` set to 1/true/yes/on. Cloud metadata
            addresses stay refused.
        timeout: total seconds per fetch and conversion, redirects included; a Pool
            item's remaining budget, when smaller, wins.
        max_bytes: cap on the decoded page or file size.
        max_redirects: redirects followed, each one checked again.
        user_agent: the User-Agent header sent; no other identifying header is.
        root: the directory whose files ``run`` may read (``"/"``: any file); None, the
            default, reads no local file.
        pool_maxsize: kept-alive connections per address.
        max_pages: PDF pages and PPTX slides converted; the Markdown says where it cut.
        max_rows: spreadsheet rows kept (non-empty ones, all sheets together).
        max_columns: spreadsheet columns kept per sheet.

    Raises (from ``run``):
        ToolInputError: empty input, a path that does not exist or is not a regular file.
        UnsafePathError: a local path without ``root``, or one outside it.
        UnsafeURLError: a refused scheme, host, address or redirect.
        FetchError: HTTP error, timeout, too many redirects, network failure; its
            subclasses ResponseTooLargeError and UnsupportedContentTypeError.
        ConversionError: the content could not be converted; its subclass
            DocumentError (EncryptedDocumentError, NoTextLayerError for a scanned PDF,
            DocumentTooLargeError, DocumentTimeoutError) for documents.
        MissingDependencyError: a document arrived without the ``[documents]`` extra.
    """

    name = "convertToMD"
    description = ("Convert a web page (http/https URL), a PDF, Word, Excel or PowerPoint "
                   "document, raw HTML or an allowed local file into Markdown: title, main "
                   "content, headings, tables, lists, code and absolute links.")
    parameters = {
        "type": "object",
        "properties": {"input": {
            "type": "string",
            "description": "An http(s) URL, an HTML string, or an allowed file path.",
        }},
        "required": ["input"],
    }

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        user_agent: str = DEFAULT_USER_AGENT,
        root: str | os.PathLike[str] | None = None,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        max_pages: int = 500,
        max_rows: int = 5000,
        max_columns: int = 100,
    ) -> None:
        self._fetcher = Fetcher(
            allow_private=allow_private, timeout=timeout, max_bytes=max_bytes,
            max_redirects=max_redirects, user_agent=user_agent, pool_maxsize=pool_maxsize,
        )
        self.max_bytes = max_bytes
        self.root = check_root(root)
        caps = {"max_pages": max_pages, "max_rows": max_rows, "max_columns": max_columns}
        self._caps = {name: checked(value, name, low=1) for name, value in caps.items()}

    def __repr__(self) -> str:
        return f"<convertToMD tool {self.name!r} allow_private={self._fetcher.allow_private}>"

    def identity(self) -> dict[str, Any]:
        # The document caps decide where a result is cut, so a checkpoint written under
        # other caps must not be reused.
        return {**super().identity(), "caps": dict(self._caps)}

    def close(self) -> None:
        """Close kept-alive connections (they also close when the tool is collected)."""
        self._fetcher.close()

    def _reserve_connections(self, n: int) -> None:
        # Called by Pool before its flows start: never fewer connections than flows.
        old = self._fetcher
        if n > old.pool_maxsize:
            self._fetcher = dataclasses.replace(old, pool_maxsize=n)
            old.close()

    def run(self, input: str) -> str:  # type: ignore[override]  # Tool.run takes **kwargs
        """Convert ``input`` (URL, HTML or an allowed file path) to Markdown."""
        started = time.monotonic()
        text = input.strip()
        if not text:
            raise ToolInputError("convertToMD: input is empty; give an http(s) URL, HTML or a "
                                 "file path")
        m = SCHEME.match(text)  # never for text that starts with "<"
        drive = m is not None and os.name == "nt" and len(m.group(1)) == 1  # C:\ is a path
        # "data:text/html,<html>..." is a URL (refused), "Note: <html>..." is HTML.
        if m and not drive and (m.group(1).lower() in ("http", "https")
                                or not re.search(r"\s", text)):
            page = self._fetcher.fetch(text)  # refuses every scheme but http(s)
            return self._convert(page.body, page.charset, page.kind, page.url, started, page.url)
        if text.startswith("<") or any(marker in text[:4096].lower() for marker in _HTML_MARKERS):
            return self._convert(text, None, "html", "the HTML input", started)
        if text.startswith(("//", "\\\\")):
            raise UnsafeURLError(
                f"scheme-relative URL {short(text)} refused: give the full http(s) URL"
            )
        data, path = read_file(text, self.root, self.max_bytes)
        kind = _EXTENSIONS.get(os.path.splitext(path)[1].lower(), "")
        return self._convert(data, None, kind, text, started)

    def _convert(self, data: bytes | str, charset: str | None, kind: str, where: str,
                 started: float, page_url: str | None = None) -> str:
        where = short(where)
        if isinstance(data, bytes) and (kind in DOCUMENT_KINDS or kind == "binary"
                                        or sniff(data)):
            deadline = min(started + self._fetcher.timeout,
                           time.monotonic() + self._fetcher.budget())
            return convert_document(data, kind, Limits(deadline=deadline, source=where,
                                                       **self._caps))
        text = data if isinstance(data, str) else decode_body(data, charset)
        if "\x00" in text:
            raise UnsupportedContentTypeError(f"{where} holds binary data (NUL bytes)")
        if not kind:
            kind = "html" if looks_like_html(text) else "text"
        try:
            if kind == "markdown":  # already Markdown: the author's, kept as written
                return tidy(text)
            if kind == "text":  # plain text must not turn into HTML or links
                return tidy(escape_text(text))
            return html_to_markdown(text, page_url=page_url, xml=kind == "xhtml")
        except Exception as exc:  # a converter bug must fail one item, not the worker
            raise ConversionError(
                f"could not convert {where} to Markdown: {type(exc).__name__}: "
                f"{short(str(exc), 120)}"
            ) from exc
