"""Helpers the provider adapters share: message checks, image sources, counts, failures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ..._messages import normalise_messages
from ..._usage import Usage
from ...errors import ConfigurationError, InvalidResponseError
from ._json import parse_json

if TYPE_CHECKING:
    from ._base import OutputSpec

# Added when JSON output is requested but no message says so. OpenAI rejects json_object
# mode outright without the word "json" in the messages, and other models follow the
# format far more reliably when told.
JSON_HINT = "Reply with one valid JSON value and nothing else."

# Leading base64 characters of common image formats, for when no mime_type was given.
_MAGIC = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"),
          ("UklGR", "image/webp"))
_TOOL_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.+)$", re.S)


@dataclass(frozen=True)
class Image:
    """A checked image part: ``kind`` is "url" (``url`` set) or "base64" (``data`` and
    ``mime_type`` set)."""

    kind: str
    url: str = ""
    data: str = ""
    mime_type: str = ""


class CacheMark(str):
    """Text that ends the prompt's static prefix: adapters mark the cache there
    (Anthropic ``cache_control``) or derive a cache key from the text up to it (OpenAI)."""

    __slots__ = ()


Turns: TypeAlias = "list[tuple[str, list[str | Image]]]"


def normalise(messages: Any) -> Turns:
    """Messages as ``(role, parts)`` pairs; a text part becomes a str (a :class:`CacheMark`
    when it ends the cached prefix) and an image part an :class:`Image`. Checked by the one
    message validator (``_messages``), which passes already-normalised messages through.

    Raises:
        ConfigurationError: a message, role or part this library cannot send.
    """
    return [
        (msg["role"], [_part(p, i) for p in msg["parts"]])
        for i, msg in enumerate(normalise_messages(messages))
    ]


def _part(part: dict[str, Any], index: int) -> str | Image:
    if part["type"] == "text":
        return CacheMark(part["text"]) if part.get("cache") is True else part["text"]
    return _image(part["source"], index)


def _image(source: dict[str, Any], index: int) -> Image:
    # _messages has checked that the source is a dict of kind "url" or "base64".
    if source["kind"] == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"message {index}: an image url source needs a 'url'")
        inline = _DATA_URL.match(url)
        if inline:
            # Providers that fetch URLs cannot fetch data: URLs; send the bytes instead.
            return Image("base64", data=inline.group(2), mime_type=inline.group(1))
        return Image("url", url=url, mime_type=source.get("mime_type") or "")
    data = source.get("data")
    if not isinstance(data, str) or not data:
        raise ConfigurationError(f"message {index}: a base64 image source needs 'data'")
    mime = source.get("mime_type") or next(
        (mime for prefix, mime in _MAGIC if data.startswith(prefix)), "")
    if not mime:
        raise ConfigurationError(
            f"message {index}: cannot tell the image format; set source['mime_type']")
    return Image("base64", data=data, mime_type=mime)


def cache_prefix(turns: Turns) -> str | None:
    """The text of every part up to and including the CacheMark, or None without one."""
    seen: list[str] = []
    for _, parts in turns:
        for part in parts:
            if isinstance(part, str):
                seen.append(part)
                if isinstance(part, CacheMark):
                    return "\x00".join(seen)
    return None


def system_text(parts: list[str | Image], provider: str) -> str:
    """The text of a system message; providers take no images there."""
    if any(isinstance(p, Image) for p in parts):
        raise ConfigurationError(f"{provider} accepts only text in system messages")
    return "\n\n".join(p for p in parts if isinstance(p, str))


def split_system(turns: Turns, provider: str) -> tuple[str, Turns]:
    """Lift every system message out: the joined system text and the other turns."""
    system = [system_text(parts, provider) for role, parts in turns if role == "system"]
    rest = [(role, parts) for role, parts in turns if role != "system"]
    return "\n\n".join(s for s in system if s), rest


def mentions_json(turns: Turns) -> bool:
    """Whether any text part already asks for JSON (case-insensitive)."""
    return any("json" in p.lower() for _, parts in turns for p in parts if isinstance(p, str))


def tool_name(name: str) -> str:
    """``name`` made valid for tool and schema names (``[A-Za-z0-9_-]{1,64}``)."""
    cleaned = _TOOL_NAME_BAD.sub("_", name or "")[:64]
    return cleaned or "response"


@dataclass(frozen=True)
class Tokens:
    """Where a response reports usage (``at``) and which keys each count sums (``"a.b"``
    is key ``b`` inside ``a``); ``read``/``write`` count the prompt tokens read from or
    written to the cache. The total defaults to input plus output."""

    at: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    total: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    def usage(self, data: dict[str, Any]) -> Usage:
        """The usage a response body reports (untrusted: a bad count reads as 0)."""
        raw = data.get(self.at)
        if not isinstance(raw, dict):
            return Usage()
        inp, out = _sum(raw, self.input), _sum(raw, self.output)
        return Usage(inp, out, _sum(raw, self.total) or inp + out,
                     cache_read_tokens=min(_sum(raw, self.read), inp),
                     cache_write_tokens=_sum(raw, self.write))


def _sum(raw: dict[str, Any], keys: tuple[str, ...]) -> int:
    total = 0
    for key in keys:
        value: Any = raw
        for step in key.split("."):
            value = value.get(step) if isinstance(value, dict) else None
        # Untrusted data: only a finite, non-negative number counts (NaN fails the test).
        if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                0 <= value < float("inf"):
            total += int(value)
    return total


def text_of(value: Any) -> str:
    """A text field that may be a str or a list of ``{"text": ...}`` parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def fail(provider: str, message: str, reason: str) -> InvalidResponseError:
    """An error for a 2xx body we cannot use (the caller raises it)."""
    return InvalidResponseError(message, reason=reason, status=200, provider=provider)


def finish_text(provider: str, text: str, output: OutputSpec, cut_off: bool) -> Any:
    """Turn the reply text into the output, or raise why it cannot be used.

    ``cut_off`` says the provider stopped at the token limit: an empty reply or JSON that
    does not parse is then reported as ``truncated``, since only a higher limit helps.
    For plain text a cut-off reply is still returned; ``Parsed.finish_reason`` tells.
    """
    if not text.strip():
        if cut_off:
            raise fail(provider, "the token limit was reached before any text; "
                       "raise max_tokens", "truncated")
        raise fail(provider, "the reply holds no text", "empty")
    if output.type == "text":
        return text
    try:
        return parse_json(text)
    except ValueError:
        if cut_off:
            raise fail(provider, "the JSON reply was cut off by the token limit; "
                       "raise max_tokens", "truncated") from None
        raise fail(provider, f"the reply is not valid JSON: {text[:200]!r}",
                   "invalid_json") from None
