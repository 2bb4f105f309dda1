"""The one check behind every "must be a number in this range" setting, so each such
setting rejects bools, NaN and infinities and words its error the same way."""

from __future__ import annotations

import math
from typing import Any

from .errors import ConfigurationError

__all__ = ["NUMBER", "checked"]

NUMBER = (int, float)


def _span(low: float, high: float, above: bool) -> str:
    if high < math.inf:
        return f" from {low:g} to {high:g}"
    return "" if low == -math.inf else f" {'>' if above else '>='} {low:g}"


def checked(value: Any, name: str, kind: Any = int, low: float = 0, high: float = math.inf,
            *, none: bool = False, above: bool = False) -> Any:
    """``value`` when it is a ``kind`` (int, or NUMBER: then returned as a float) from
    ``low`` (excluded when ``above``) to ``high``, or None when ``none`` allows it.

    Raises:
        ConfigurationError: anything else, bools included (``True`` is an int to Python,
            and ``Pool(..., max_flows=True)`` is almost surely a mistake).
    """
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) \
            or not (value > low if above else value >= low) or value > high:
        what = "an int" if kind is int else "a finite number"
        raise ConfigurationError(f"{name} must be {'None or ' if none else ''}{what}"
                                 f"{_span(low, high, above)}, got {value!r}")
    return value if kind is int else float(value)
