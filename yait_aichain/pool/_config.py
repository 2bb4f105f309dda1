"""Pool settings: defaults, limits and the checks that run at construction."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ._progress import is_tqdm

DEFAULT_MAX_FLOWS = 10
# Each flow is an OS thread. Above this, "can't start new thread" and file-descriptor
# exhaustion become likelier than any speed-up; providers rate-limit long before it.
MAX_FLOWS_LIMIT = 1024
ON_ERROR_MODES = ("collect", "skip", "stop", "raise")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know besides the items, checked once."""

    runner: Any
    label: str
    max_flows: int
    on_error: str
    timeout: float | None
    deadline: float | None
    progress: Any  # None (off), a writable stream, or a tqdm class or instance
    on_item_done: Callable[[Any], Any] | None
    max_cost: float | None
    max_tokens: int | None
    executor: Any = None  # a caller-owned concurrent.futures.Executor, or None (threads)
    worker_context: Callable[[], Any] | None = None  # entered around each item
    rate_limit: Any = None  # a RateLimit for every model call inside the items, or None
    checkpoint: Any = None  # a pool._checkpoint.Checkpoint, or None


def check_max_flows(value: Any) -> int:
    # bool is an int subclass, and Pool(..., True) is almost surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FLOWS_LIMIT:
        raise ConfigurationError(
            f"max_flows must be an int from 1 to {MAX_FLOWS_LIMIT}; got {value!r}"
        )
    return value


def check_on_error(value: Any) -> str:
    if value not in ON_ERROR_MODES:
        raise ConfigurationError(
            f"on_error must be one of {', '.join(map(repr, ON_ERROR_MODES))}; got {value!r}"
        )
    return value


def check_positive(name: str, value: Any, *, integer: bool = False) -> Any:
    """None, or a finite number > 0 (an int when ``integer``)."""
    if value is None:
        return None
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not math.isfinite(value)
        or value <= 0
    ):
        what = "a positive int" if integer else "a positive number of seconds"
        if name == "max_cost":
            what = "a positive amount in USD"
        raise ConfigurationError(f"{name} must be {what} or None; got {value!r}")
    return value


def resolve_progress(value: Any) -> Any:
    """The stream to draw progress on, or None for no progress line.

    None means "only when stderr is a terminal", so logs and CI output stay clean.
    """
    if value is False:
        return None
    if value is None:
        stream = sys.stderr
        isatty = getattr(stream, "isatty", None)
        try:
            return stream if callable(isatty) and isatty() else None
        except (OSError, ValueError):  # a closed or detached stderr
            return None
    if value is True:
        return sys.stderr
    if is_tqdm(value) or callable(getattr(value, "write", None)):
        return value
    raise ConfigurationError(
        "progress must be True, False, None, a file-like object or a tqdm class or "
        f"instance; got {type(value).__name__}"
    )


def check_callback(value: Any) -> Callable[[Any], Any] | None:
    if value is None or callable(value):
        return value
    raise ConfigurationError(
        f"on_item_done must be a callable taking a record, or None; got {type(value).__name__}"
    )


def check_name(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigurationError(f"name must be a str or None; got {type(value).__name__}")
