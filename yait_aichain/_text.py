"""Text that any str Python can hold survives the bytes it is written as.

A str may hold lone surrogates (half an emoji from a cut model answer, the
``surrogateescape``'d bytes of a file name), which UTF-8 cannot encode: one used to abort
a checkpointed run, the report and the CLI. JSON written as bytes stays exact (the
``\\udXXX`` escape reads back as the same str); text for people, and request bodies for
the providers (which refuse the escape), show U+FFFD instead.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_bytes", "json_loads", "printable", "wire_bytes"]


def json_bytes(obj: Any, **kwargs: Any) -> bytes:
    """``json.dumps(obj, **kwargs)`` as UTF-8; a value with a lone surrogate goes ASCII-escaped."""
    text = json.dumps(obj, ensure_ascii=False, **kwargs)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, **kwargs).encode("ascii")


def wire_bytes(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON for a provider, each lone surrogate as U+FFFD.

    The providers refuse a lone surrogate's escape with a 400 ("The request body is not
    valid JSON: no low surrogate in string"), so sending it exactly would fail the call
    after paying for the round trip; half an emoji shown as U+FFFD is what a reader sees.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # only inside strings, so the JSON stays valid
        return printable(text).encode("utf-8")


def json_loads(data: str | bytes | bytearray) -> Any:
    """``json.loads``; deeply nested input (``[[[[...``) raises ValueError, not RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


def printable(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD (a split surrogate pair joined back)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
