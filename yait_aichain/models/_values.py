"""The small immutable values a Model works with: time limits, what a call returns, the
wrapped key, and the output spec a caller may write in several ways."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from urllib.parse import quote
from dataclasses import dataclass
from typing import Any

from .._checks import NUMBER, checked
from .._usage import Usage
from ..errors import APIError, ConfigurationError, MissingAPIKeyError
from .providers._base import TEXT, OutputSpec

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_TOTAL_TIMEOUT", "Generation", "Timeout",
           "is_model_class", "output_spec"]

DEFAULT_TOTAL_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Timeout:
    """Time limits of one ``generate()`` call, in seconds.

    ``total`` bounds the whole call, retries and backoff included; ``connect`` each TCP
    connect; ``read`` each wait for bytes (None: whatever is left of ``total``). Inside a
    Pool item with ``timeout=``, the item's remaining time bounds all three.
    """

    total: float | None = DEFAULT_TOTAL_TIMEOUT
    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read"):
            checked(getattr(self, name), f"timeout {name}", NUMBER, above=True,
                    none=name != "connect")

    @classmethod
    def coerce(cls, value: Any) -> Timeout:
        if isinstance(value, Timeout):
            return value
        total = checked(value, "timeout", NUMBER, above=True, none=True)
        return cls(total=total, connect=min(DEFAULT_CONNECT_TIMEOUT, total or math.inf))


@dataclass(frozen=True)
class Generation:
    """What one ``generate()`` call produced."""

    output: Any
    usage: Usage
    attempts: int
    request_id: str | None = None
    finish_reason: str | None = None


# Anything below 0x20, DEL and the C1 controls; also what cannot travel in an HTTP header
# (non-Latin-1). A key with one of these inside is a paste error, never a real key.
_KEY_BAD_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]|[^\x00-\xff]")
# Shorter "keys" (test placeholders such as "k") are not scrubbed: cutting every "k" out
# of every answer would destroy the output and protect nothing.
_MIN_SCRUB_LEN = 8


class _Secret:
    """Holds an API key; its repr never shows it (tracebacks with locals, debuggers)."""

    __slots__ = ("_value", "_forms")

    def __init__(self, value: str | None):
        self._value = value
        self._forms: tuple[bytes, ...] = ()

    def _normalise(self, source: str) -> None:
        # Surrounding whitespace is stripped (a key read from a file or a CRLF .env); any
        # other control character is refused. ``source`` says where the key came from.
        if self._value is None:
            return
        if not isinstance(self._value, str):
            raise ConfigurationError(
                f"the API key from {source} must be a str, got {type(self._value).__name__}")
        self._value = self._value.strip() or None
        if self._value is not None and _KEY_BAD_CHAR.search(self._value):
            self._value = None  # never kept, not even in this object
            raise ConfigurationError(
                f"the API key from {source} contains a control or non-Latin-1 character "
                f"inside it (a paste or encoding error?); copy the key again")

    def get(self) -> str | None:
        return self._value

    def resolve(self, adapter: Any, provider: str, model: str) -> _Secret:
        """This key (the api_key argument) if given, else the first of the provider's
        environment variables that is set; MissingAPIKeyError when the provider needs one."""
        self._normalise("the api_key argument")
        if self._value:
            return self
        for var in adapter.key_env:
            secret = _Secret(os.environ.get(var))  # wrapped at once: no frame holds it plain
            secret._normalise(f"the environment variable {var}")
            if secret.get():
                return secret
        if not adapter.key_required:
            return _Secret(None)
        names = " or ".join(adapter.key_env) or "the provider's key variable"
        raise MissingAPIKeyError(
            f"no API key for {provider} model {model!r}: pass api_key=... or set {names}",
            provider=provider, env_var=adapter.key_env[0] if adapter.key_env else None)

    def scrub(self, data: bytes) -> bytes:
        """``data`` with the key (raw, JSON-escaped or percent-encoded) replaced by ``***``:
        a server that echoes it cannot put it into an error, a record or a log."""
        if not self._value or len(self._value) < _MIN_SCRUB_LEN:
            return data
        if not self._forms:
            value = self._value
            forms = {value.encode("latin-1"), json.dumps(value)[1:-1].encode("ascii"),
                     quote(value, safe="").encode("ascii")}
            self._forms = tuple(sorted(forms, key=len, reverse=True))
        for form in self._forms:
            if form in data:
                data = data.replace(form, b"***")
        return data

    def scrub_error(self, exc: APIError) -> None:
        """Cut the key out of ``exc``'s message, body and args."""
        key = self._value
        if not key or len(key) < _MIN_SCRUB_LEN:
            return
        exc.message = exc.message.replace(key, "***")
        exc.body = exc.body and exc.body.replace(key, "***")
        exc.args = tuple(a.replace(key, "***") if isinstance(a, str) else a for a in exc.args)

    def __repr__(self) -> str:
        return "<secret>" if self._value else "<none>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Secret, (self._value,))


def is_model_class(output: Any) -> bool:
    """Whether ``output`` is a pydantic v2 model class (duck-typed: pydantic is never
    imported for the other forms of ``output=``)."""
    return isinstance(output, type) and callable(getattr(output, "model_json_schema", None)) \
        and callable(getattr(output, "model_validate", None))


def output_spec(output: Any) -> OutputSpec:
    """Accept ``None``/``"text"``/``"json"``, an OutputSpec, a ``{"type": ...}`` dict, the
    Skill-style ``{"format": {"type": ...}}`` or a pydantic model class (its JSON schema,
    named after the class)."""
    if output is None:
        return TEXT
    if isinstance(output, OutputSpec):
        return output
    if is_model_class(output):
        return OutputSpec(type="json_schema", schema=_class_schema(output),
                          name=output.__name__)
    if isinstance(output, type) and hasattr(output, "schema") and hasattr(output, "parse_obj"):
        raise ConfigurationError(
            f"output={output.__name__} is a pydantic v1 model; typed answers need pydantic v2 "
            "(pip install 'pydantic>=2')")
    fmt = output.get("format", output) if isinstance(output, Mapping) else output
    if isinstance(fmt, str):
        return OutputSpec(type=fmt)
    if isinstance(fmt, Mapping):
        return OutputSpec(type=fmt.get("type", "text"), schema=fmt.get("schema"),
                          name=fmt.get("name", "response"), strict=fmt.get("strict", True))
    raise ConfigurationError(
        f"cannot read output={output!r}; use 'text', 'json', a json_schema dict or a "
        "pydantic model class")


def _class_schema(cls: type) -> Any:
    try:  # OutputSpec refuses a schema that is not a dict
        return cls.model_json_schema()  # type: ignore[attr-defined]
    except Exception as exc:  # pydantic raises several kinds for types it cannot describe
        raise ConfigurationError(
            f"output={cls.__name__}: pydantic cannot describe it as JSON Schema ({exc})") from exc
