"""DOCX to Markdown with mammoth, whose semantic HTML (headings from the paragraph
styles, lists, tables) goes through the web-page converter.

Images are dropped without being read (no base64 blobs in the Markdown), mammoth never
opens linked external files (``external_file_access=False``), and a style map embedded
in the document is ignored (it could map paragraphs to any HTML element). mammoth converts
the whole document in one call that does not look at a clock; what bounds it is the
package check done before (unpacked size, number of parts), and the clock is checked
right after.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from ...errors import DocumentError
from . import _render
from ._limits import Limits, check_package, require

__all__ = ["convert"]


def _no_image(image: Any) -> list[Any]:
    return []


def convert(data: bytes, limits: Limits) -> str:
    mammoth = require("mammoth", "mammoth", "docx")
    check_package(data, limits, "docx")
    limits.check("docx", "opening")
    try:
        result = mammoth.convert_to_html(
            io.BytesIO(data), convert_image=_no_image, external_file_access=False,
            include_embedded_style_map=False,  # the document must not choose our HTML
        )
    except RecursionError:
        raise DocumentError(
            f"{limits.source} nests its tables or lists too deeply to convert",
            format="docx", source=limits.source) from None
    except (zipfile.BadZipFile, KeyError, ValueError, LookupError, AttributeError,
            TypeError, OSError, EOFError) as exc:
        # mammoth reports a damaged part as whatever the parser raised
        raise DocumentError(
            f"{limits.source} is not a readable DOCX ({type(exc).__name__}: {exc})"[:300],
            format="docx", source=limits.source) from None
    limits.check("docx", "after the conversion")
    return _render.markdown([result.value])
