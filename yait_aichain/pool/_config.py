"""Pool settings: defaults, limits, and one frozen object checked once when it is built."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .._checks import NUMBER, checked
from .._runner import check_runner
from ..errors import ConfigurationError
from ._progress import resolve_progress
from ..ratelimit._adaptive import AutoFlows, check_auto
from ..ratelimit._limiter import check_rate_limit
from .._budget import check_prices
from ._breaker import check_breaker
from ._checkpoint import check_checkpoint, runner_identity

__all__ = ["DEFAULT_MAX_FLOWS", "MAX_FLOWS_LIMIT", "Setting", "Settings"]

DEFAULT_MAX_FLOWS = 10
# Each flow is an OS thread. Above this, "can't start new thread" and file-descriptor
# exhaustion become likelier than any speed-up; providers rate-limit long before it.
MAX_FLOWS_LIMIT = 1024
ON_ERROR_MODES = ("collect", "skip", "stop", "raise")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a run needs besides the items (defaults: ``Pool``'s). Checked and normalised
    when built, so a bad value fails at ``Pool(...)`` or ``pool.attr = value``, never mid-run."""

    runner: Any
    max_flows: int | str | AutoFlows  # an int, "auto" or AutoFlows(...)
    on_error: str
    timeout: float | None
    deadline: float | None
    progress: Any  # True, False, None (only on a terminal), a stream or a tqdm
    on_item_done: Callable[[Any], Any] | None
    max_cost: float | None
    max_tokens: int | None
    name: str | None
    executor: Any  # a caller-owned concurrent.futures.Executor, or None (threads)
    worker_context: Callable[[], Any] | None  # entered around each item
    rate_limit: Any  # a RateLimit for every model call inside the items, or None
    checkpoint: Any  # a path or a pool._checkpoint.Checkpoint, or None
    checkpoint_key: str | None  # the version of a plain-callable runner
    mode: str  # "live", or "batch": the providers' Batch APIs (pool/_batch.py)
    poll_interval: float  # seconds between two looks at running batches
    breaker: Any  # True, False or a CircuitBreaker; normalised to one or None

    @property
    def auto(self) -> AutoFlows | None:
        """The bounds of adaptive flows when ``max_flows`` asks for them, else None."""
        return check_auto(self.max_flows)

    @property
    def flow_bound(self) -> int:
        """The most items ever in flight: ``max_flows``, or the bound of "auto"."""
        auto = self.auto
        return auto.max if auto is not None else int(self.max_flows)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        check_runner(self.runner)
        if self.auto is None:  # neither "auto" nor AutoFlows(...): an int, then
            checked(self.max_flows, 'max_flows (unless "auto" or AutoFlows(max=...))', low=1,
                    high=MAX_FLOWS_LIMIT)
        for name, choices in (("on_error", ON_ERROR_MODES), ("mode", ("live", "batch"))):
            if getattr(self, name) not in choices:
                raise ConfigurationError(f"{name} must be one of {', '.join(map(repr, choices))}"
                                         f"; got {getattr(self, name)!r}")
        for name in ("timeout", "deadline", "max_cost"):
            checked(getattr(self, name), name, NUMBER, none=True, above=True)
        checked(self.max_tokens, "max_tokens", none=True, above=True)
        object.__setattr__(self, "breaker", check_breaker(self.breaker))
        check_prices(self.runner, self.max_cost, self.max_tokens)  # before any request
        resolve_progress(self.progress)  # reject a bad value now; the stream is resolved per run
        for name, ok, what in (
                ("on_item_done", callable(self.on_item_done), "a callable taking a record"),
                ("name", isinstance(self.name, str), "a str"),
                ("executor", callable(getattr(self.executor, "submit", None)),
                 "a concurrent.futures.Executor (e.g. a ProcessPoolExecutor or "
                 "client.get_executor(pure=False) of Dask)"),
                ("worker_context", callable(self.worker_context), "a callable returning a "
                 "context manager (e.g. yait_aichain.integrations.django.close_db_connections)"),
                ("checkpoint_key", isinstance(self.checkpoint_key, str) and self.checkpoint_key,
                 "a non-empty str (say 'v1')")):
            value = getattr(self, name)
            if value is not None and not ok:
                shown = repr(value) if isinstance(value, str) else type(value).__name__
                raise ConfigurationError(f"{name} must be {what} or None; got {shown}")
        if self.auto is not None and self.executor is not None:
            raise ConfigurationError(
                "max_flows=\"auto\" adapts to what each call in this process reports, so it "
                "needs the Pool's own threads; with executor=, give max_flows an int")
        check_rate_limit(self.rate_limit)
        object.__setattr__(self, "checkpoint", check_checkpoint(self.checkpoint))
        if self.checkpoint is not None:  # a runner that cannot be keyed fails now
            runner_identity(self.runner, self.checkpoint_key)
        from ._batch import check_batch  # batch mode's own checks live with it

        check_batch(self)


class Setting(Generic[T]):
    """A Pool attribute kept in its frozen :class:`Settings`: reading gives the checked
    value, assigning checks the new one (``pool.max_cost = 10.0`` before ``retry_failed()``)."""

    def __set_name__(self, _owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, _owner: type | None = None) -> T:
        return getattr(obj._settings, self.name)  # type: ignore[no-any-return]

    def __set__(self, obj: Any, value: T) -> None:
        obj._settings = dataclasses.replace(obj._settings, **{self.name: value})
