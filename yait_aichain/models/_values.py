"""The small immutable values a Model works with: time limits, what a call returns, the
wrapped key, and the output spec a caller may write in several ways."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._usage import Usage
from ..errors import ConfigurationError
from .providers._base import OutputSpec

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "Generation",
    "Timeout",
    "is_model_class",
    "output_spec",
]

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
            value = getattr(self, name)
            if value is None and name != "connect":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(f"timeout {name} must be a positive number, got {value!r}")

    @classmethod
    def coerce(cls, value: Any) -> Timeout:
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value <= 0:
                raise ConfigurationError(f"timeout must be a positive number of seconds, got {value!r}")
            return cls(total=float(value), connect=min(DEFAULT_CONNECT_TIMEOUT, float(value)))
        raise ConfigurationError(f"timeout must be seconds, a Timeout(...) or None, got {value!r}")


@dataclass(frozen=True)
class Generation:
    """What one ``generate()`` call produced."""

    output: Any
    usage: Usage
    attempts: int
    request_id: str | None = None
    finish_reason: str | None = None


class _Secret:
    """Holds an API key; its repr never shows it (tracebacks with locals, debuggers)."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "<secret>" if self._value else "<none>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Secret, (self._value,))


def is_model_class(output: Any) -> bool:
    """Whether ``output`` is a pydantic model class (v2, or any class with its methods).

    Duck-typed, so pydantic is never imported for the other forms of ``output=``."""
    return isinstance(output, type) and callable(getattr(output, "model_json_schema", None)) \
        and callable(getattr(output, "model_validate", None))


def output_spec(output: Any) -> OutputSpec:
    """Accept ``None``/``"text"``/``"json"``, an OutputSpec, a ``{"type": ...}`` dict, the
    Skill-style ``{"format": {"type": ...}}`` or a pydantic model class (its JSON schema,
    named after the class)."""
    if output is None:
        return OutputSpec()
    if isinstance(output, OutputSpec):
        return output
    if is_model_class(output):
        return OutputSpec(type="json_schema", schema=_class_schema(output),
                          name=output.__name__)
    if isinstance(output, type) and hasattr(output, "schema") and hasattr(output, "parse_obj"):
        raise ConfigurationError(
            f"output={output.__name__} is a pydantic v1 model; typed answers need pydantic v2 "
            "(pip install 'yait-aichain[pydantic]')"
        )
    if isinstance(output, str):
        return OutputSpec(type=output)
    if isinstance(output, Mapping):
        fmt = output.get("format", output)
        if isinstance(fmt, str):
            return OutputSpec(type=fmt)
        if isinstance(fmt, Mapping):
            return OutputSpec(
                type=fmt.get("type", "text"),
                schema=fmt.get("schema"),
                name=fmt.get("name", "response"),
                strict=fmt.get("strict", True),
            )
    raise ConfigurationError(
        f"cannot read output={output!r}; use 'text', 'json', a json_schema dict or a "
        "pydantic model class"
    )


def _class_schema(cls: type) -> dict[str, Any]:
    try:
        schema = cls.model_json_schema()  # type: ignore[attr-defined]
    except Exception as exc:  # pydantic raises several kinds for types it cannot describe
        raise ConfigurationError(
            f"output={cls.__name__}: pydantic cannot describe it as JSON Schema ({exc})"
        ) from exc
    if not isinstance(schema, dict):
        raise ConfigurationError(f"output={cls.__name__}: model_json_schema() gave no dict")
    return schema
