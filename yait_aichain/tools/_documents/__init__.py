"""PDF, DOCX, XLSX and PPTX to Markdown, for convertToMD.

A document is recognised by its bytes (the signature, and for Office files the parts of
the zip package), never by a file extension or a Content-Type alone; a declared type
that the bytes contradict is an error. PDF (pypdfium2, :mod:`._pdf`) and the Office
formats (mammoth, openpyxl, python-pptx, :mod:`._office`) need the ``[documents]``
extra, imported only when a document arrives, and render through the HTML-to-Markdown
path of web pages, so escaping, headings and tables come out the same for every source.
"""

from __future__ import annotations

import io
import zipfile

from ...errors import EncryptedDocumentError, UnsupportedContentTypeError
from . import _office, _pdf
from ._limits import Limits

__all__ = ["DOCUMENT_KINDS", "Limits", "convert_document", "describe", "sniff"]

DOCUMENT_KINDS = ("pdf", "docx", "xlsx", "pptx")
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .doc/.xls/.ppt, and encrypted OOXML
_MAIN_PARTS = {"word/document.xml": "docx", "xl/workbook.xml": "xlsx",
               "ppt/presentation.xml": "pptx"}
_CONVERTERS = {"pdf": _pdf.convert_pdf, "docx": _office.convert_docx,
               "xlsx": _office.convert_xlsx, "pptx": _office.convert_pptx}
_NAMES = {"pdf": "a PDF", "docx": "a Word (DOCX)", "xlsx": "an Excel (XLSX)",
          "pptx": "a PowerPoint (PPTX)"}


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = set(package.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return "zip"  # a damaged package: the format's reader says what is wrong
    return next((kind for part, kind in _MAIN_PARTS.items() if part in names), "zip")


def sniff(data: bytes) -> str:
    """The document kind the bytes are: "pdf", "docx", "xlsx", "pptx", "zip" (another
    zip), "ole" (a legacy or encrypted Office file), or "" (not a document)."""
    head = data[:1024].lstrip(b"\x00\t\n\r\f \xef\xbb\xbf")
    if head.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    if data.startswith(_OLE):
        return "ole"
    return ""


def convert_document(data: bytes, kind: str, limits: Limits) -> str:
    """Markdown for a document that :func:`sniff` recognised as ``kind``."""
    if kind == "ole":
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedDocumentError(
                f"{limits.source} is a password-protected Office document; save it "
                f"without a password first", source=limits.source)
        raise UnsupportedContentTypeError(
            f"{limits.source} is a legacy binary Office file (.doc, .xls or .ppt); save it "
            f"as .docx, .xlsx or .pptx")
    if kind not in DOCUMENT_KINDS:
        raise UnsupportedContentTypeError(
            f"{limits.source} is a zip archive but not a DOCX, XLSX or PPTX document")
    return _CONVERTERS[kind](data, limits)


def describe(kind: str) -> str:
    """"a PDF", "a Word (DOCX)", ... for messages."""
    return _NAMES.get(kind, kind)
