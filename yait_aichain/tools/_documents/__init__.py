"""PDF, DOCX, XLSX and PPTX to Markdown, for convertToMD.

A document is recognised by its bytes (the signature; for Office files the parts of the
zip package), never by an extension or a Content-Type alone; a declared type that the
bytes contradict is an error. The libraries (the ``[documents]`` extra) are imported
only when a document arrives, and every format renders through the HTML-to-Markdown
path of web pages, so escaping, headings and tables come out the same for every source.
"""

from __future__ import annotations

import io
import zipfile

from ...errors import (AichainError, DocumentError, EncryptedDocumentError,
                       UnsupportedContentTypeError)
from .._netguard import short
from . import _office, _pdf
from ._limits import Limits, check_package, require

__all__ = ["DOCUMENT_KINDS", "Limits", "convert_document", "sniff"]

DOCUMENT_KINDS = ("pdf", "docx", "xlsx", "pptx")
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .doc/.xls/.ppt, and encrypted OOXML
_MAIN_PARTS = {"word/document.xml": "docx", "xl/workbook.xml": "xlsx",
               "ppt/presentation.xml": "pptx"}
# kind -> (converter, the library it is given, the package that installs the library)
_CONVERTERS = {"pdf": (_pdf.convert_pdf, "pypdfium2", "pypdfium2"),
               "docx": (_office.convert_docx, "mammoth", "mammoth"),
               "xlsx": (_office.convert_xlsx, "openpyxl", "openpyxl"),
               "pptx": (_office.convert_pptx, "pptx", "python-pptx")}
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


def _refuse(data: bytes, found: str, declared: str, where: str) -> None:
    if not found:
        said = f"declared {_NAMES[declared]} document but " if declared in DOCUMENT_KINDS else ""
        raise UnsupportedContentTypeError(
            f"{where} is {said}binary data, not a PDF, DOCX, XLSX or PPTX document")
    # An encrypted DOCX/XLSX/PPTX is a compound file, not a zip: let it say so.
    office_ole = found == "ole" and declared in ("docx", "xlsx", "pptx")
    if declared in DOCUMENT_KINDS and found != declared and not office_ole:
        raise DocumentError(
            f"{where} is declared {_NAMES[declared]} document, but its bytes are "
            f"{_NAMES.get(found, 'another archive')}",
            format=declared, source=where)
    if found == "ole":
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedDocumentError(
                f"{where} is a password-protected Office document; save it "
                f"without a password first", source=where)
        raise UnsupportedContentTypeError(
            f"{where} is a legacy binary Office file (.doc, .xls or .ppt); save it "
            f"as .docx, .xlsx or .pptx")
    if found not in DOCUMENT_KINDS:
        raise UnsupportedContentTypeError(
            f"{where} is a zip archive but not a DOCX, XLSX or PPTX document")


def convert_document(data: bytes, declared: str, limits: Limits) -> str:
    """Markdown for the document in ``data``, which its source declared ``declared`` (a
    DOCUMENT_KINDS entry, or "binary" or "": then the bytes alone decide)."""
    found = sniff(data)
    _refuse(data, found, declared, limits.source)
    convert, module, package = _CONVERTERS[found]
    try:
        library = require(module, package, found)
        if found != "pdf":
            check_package(data, limits, found)
        limits.check(found, "opening")
        return convert(library, data, limits)
    except AichainError:  # typed already, or a cancelled run
        raise
    except Exception as exc:  # a parser's own error type: one item fails, typed
        raise DocumentError(
            f"could not convert {limits.source}: {type(exc).__name__}: {short(str(exc), 120)}",
            format=found, source=limits.source) from exc
