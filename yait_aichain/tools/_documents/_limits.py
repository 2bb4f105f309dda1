"""The caps every document conversion runs under, checked before and during parsing.

The parsing libraries look at no clock, so the time cap holds in two ways: the input is
bounded before a library sees it (a zip package's unpacked size and parts, the pages),
and the clock is checked between pages, slides, sheets and rows.
"""

from __future__ import annotations

import importlib
import io
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ..._context import current
from ...errors import (DocumentTimeoutError, DocumentTooLargeError,
                       EncryptedDocumentError, MissingDependencyError)

__all__ = ["Limits", "check_package", "require", "truncation_note"]

_EXTRA = 'pip install "yait-aichain[documents]"'
_MIB = 1024 * 1024
# Parts a library parses whole, in one call that checks no clock, and the cap on their
# unpacked size that keeps that call to about six seconds on a loaded 2-core machine
# (measured: mammoth parses about 1 MB of document XML per second, openpyxl about
# 4 MB of shared strings per second).
_PARSED_WHOLE: dict[str, tuple[Callable[[str], bool], int]] = {
    "docx": (lambda name: name.startswith("word/") and name.endswith(".xml"), 6 * _MIB),
    "xlsx": (lambda name: name in ("xl/sharedStrings.xml", "xl/styles.xml",
                                   "xl/workbook.xml"), 20 * _MIB),
}


@dataclass(frozen=True)
class Limits:
    """The caps of one conversion: the deadline (a ``time.monotonic()`` value), pages or
    slides converted, spreadsheet rows and columns kept, and the unpacked size and part
    count of a zip package."""

    deadline: float
    source: str
    max_pages: int  # these three: convertToMD's settings (their defaults live there)
    max_rows: int
    max_columns: int
    max_unpacked: int = 100 * 1024 * 1024
    max_parts: int = 5000

    def check(self, format: str, where: str) -> None:
        """Raise DocumentTimeoutError if the deadline has passed, CancelledError if the
        calling Pool run was cancelled."""
        current().check()
        if time.monotonic() >= self.deadline:
            raise DocumentTimeoutError(
                f"converting {self.source} ran out of time ({where}); raise the tool's timeout= "
                f"or the Pool item's timeout for large documents",
                format=format, source=self.source,
            )


def truncation_note(what: str, option: str) -> str:
    """The line that marks a truncated result, so a reader never mistakes it for all."""
    return f"> **Truncated:** {what} (convertToMD({option}=...) raises the cap)."


def require(module: str, package: str, format: str) -> ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"reading {format.upper()} documents needs {package}: {_EXTRA}",
            extra="documents", package=package,
        ) from None


def check_package(data: bytes, limits: Limits, format: str) -> None:
    """Check what unpacking an Office zip package would cost, before a library does it.
    zipfile never inflates a member past its declared size (and fails on a CRC mismatch
    when the header lies), so capping declared sizes caps what any library can unpack."""
    with zipfile.ZipFile(io.BytesIO(data)) as package:  # sniff() has opened it already
        members = package.infolist()
    whole, cap = _PARSED_WHOLE.get(format, (lambda name: False, 0))
    for limit, size, most, what, why in (
        ("max_parts", len(members), limits.max_parts, "has {} parts", ""),
        ("max_unpacked", sum(m.file_size for m in members), limits.max_unpacked,
         "unpacks to {} bytes", " (a zip bomb?)"),
        ("parsed_xml", sum(m.file_size for m in members if whole(m.filename)), cap,
         "has {} bytes of XML that must be parsed in one go",
         " that keeps a conversion within its time limit"),
    ):
        if size > most:
            raise DocumentTooLargeError(
                f"{limits.source} {what.format(size)}, over the cap of {most}{why}",
                limit=limit, format=format, source=limits.source)
    if any(m.flag_bits & 0x1 for m in members):
        raise EncryptedDocumentError(f"{limits.source} has encrypted parts",
                                     format=format, source=limits.source)
