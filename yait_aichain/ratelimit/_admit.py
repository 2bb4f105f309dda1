"""Admission: how one request waits for every rate limit that applies, and what its
response teaches them.

Before each HTTP attempt a Model call reserves a turn in its account's 429 pause, its own
``rate_limit`` and those of the Pools around it (the scope's), sleeps until the latest,
sends, and corrects the token charge from the usage. The same :class:`Permit` hears how it
went (no second channel): headers teach the limits, a 429's ``Retry-After`` pauses them,
and the round trip goes to the scope's observers (auto Pools' flow controllers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .. import _context
from .._runner import call_runner, reserve_connections
from ..errors import APIError, APITimeoutError, NetworkError, RateLimitError
from ._headers import read_headers, tighter
from ._limiter import DEFAULT_MAX_PAUSE, RateLimit, pace_of

__all__ = ["LimitedRunner", "Permit", "admit", "limits_for", "with_rate_limits"]

logger = logging.getLogger("yait_aichain.ratelimit")

Grants = list[tuple[RateLimit, object, int]]  # (limit, reservation handle, tokens charged)


def limits_for(own: tuple[RateLimit | None, ...], scope: _context.Scope) -> tuple[RateLimit, ...]:
    """A call's own limits (its account's pause, its Model's limit) plus the surrounding
    Pools' limits, each once."""
    outer = scope.rate_limits
    return tuple(limit for limit in own if limit is not None and limit not in outer) + outer


@dataclass(slots=True, eq=False)
class Permit:
    """One admitted request, as a context manager around it: on success set :attr:`used`
    to the reported total tokens and the charge is corrected; on failure a 429 pauses the
    limits and a rejected request (4xx) gets its tokens back."""

    _grants: Grants
    waited: float
    _learners: tuple[RateLimit, ...] = ()
    _observers: tuple[Any, ...] = ()
    _prompt: int = 0
    _sent: float = field(default_factory=time.monotonic, init=False)
    _status: int = field(default=0, init=False)
    _headers: Any = field(default=None, init=False)
    used: int | None = field(default=None, init=False)

    def response(self, status: int, headers: Any) -> None:
        """The HTTP answer, before it is parsed: its headers teach the limits."""
        self._status, self._headers = status, headers

    def __enter__(self) -> Permit:  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc is None:
                self._settle()
            else:
                self._failed(exc)
            if self._learners or self._observers:
                self._report(self._status or getattr(exc, "status", 0) or 0)
        except NetworkError as err:
            # Bookkeeping after the request must not turn a good answer into a failure,
            # nor hide the request's own error.
            logger.warning("could not update a rate limit after a request: %s", err)

    def _settle(self) -> None:
        used = self.used
        if not used or used <= 0:
            return  # no usage reported: the estimate stands
        for limit, _, charged in self._grants:  # a bucket without tokens ignores it
            limit.backend.adjust(used - charged)
        for limit in self._learners:
            limit._saw_output(used - self._prompt)

    def _failed(self, exc: BaseException) -> None:
        status = getattr(exc, "status", 0) or 0
        retry_after = getattr(exc, "retry_after", None)
        for limit, _, charged in self._grants:
            if status == 429 and retry_after and 0 < retry_after <= DEFAULT_MAX_PAUSE:
                limit.pause(retry_after)
            if 400 <= status < 500 and charged:
                limit.backend.adjust(-charged)  # a rejected request generated nothing

    def _report(self, status: int) -> None:
        # Never raises for what the server sent: a response that was fine stays fine.
        reading = read_headers(self._headers, time.time()) if self._headers else None
        if reading is not None:
            for limit in self._learners:
                limit.learn(reading)
        if self._observers:
            believed = (tighter(*(lim.believed_requests_per_minute for lim in self._learners)),
                        tighter(*(lim.believed_tokens_per_minute for lim in self._learners)))
            for observer in self._observers:
                observer.observe(time.monotonic() - self._sent, status=status,
                                 waited=self.waited, believed=believed)


def _charge(limit: RateLimit, prompt: int, max_tokens: int | None, exact: int | None) -> int:
    if limit.believed_tokens_per_minute is None:
        return 0
    if exact is not None:
        return exact
    return prompt + (limit.output_tokens if max_tokens is None else max_tokens)


def _release(grants: Grants) -> None:
    for limit, handle, _ in grants:
        try:
            limit.backend.cancel(handle)
        except NetworkError as err:
            logger.warning("could not give a rate-limit reservation back: %s", err)


def admit(limits: Sequence[RateLimit], *, prompt: int = 0, max_tokens: int | None = None,
          exact: int | None = None, account: RateLimit | None = None) -> Permit:
    """Wait until one request may go under every limit in ``limits``, within the scope's
    time budget; the :class:`Permit` says how long it ``waited``.

    ``prompt`` is the estimated input, to which each limit adds ``max_tokens`` (or its
    ``output_tokens``); ``exact`` charges that many tokens instead. ``account`` is the
    Model's 429 pause; in a ``max_flows="auto"`` Pool (the scope has observers) the request
    also waits for the account's learned pace.

    Raises:
        ConfigurationError: one request needs more tokens than a limit's whole minute.
        APITimeoutError: the wait does not fit in the time left: nothing is reserved and
            it is not retried (sleeping into a timeout would only waste the slot).
        RateLimitError: an account's 429 pause does not fit in the time left.
        CancelledError: the run was cancelled while waiting.
        NetworkError: a Redis-backed limit could not be reached (retried by the Model).
    """
    scope = _context.current()
    observers = scope.observers
    pace = pace_of(account) if account is not None and observers else None
    if pace is not None and pace not in limits:
        limits = (*limits, pace)  # an auto Pool paces by what the account's headers said
    # Every budget learns from the headers, but not the account's pause itself: it would
    # then pace calls outside any auto Pool by what it learned. With neither a budget nor
    # an observer, nothing reads the headers at all (the common call stays as cheap).
    learners = tuple(limit for limit in limits if limit is not account)
    if all(limit.pause_only for limit in limits):
        # The common case, only accounts' 429 pauses (or no limit): nothing to reserve or
        # give back, so no lock is taken; the permit still passes a 429 on to them.
        wait = max((limit.backend.paused_for() for limit in limits), default=0.0)
        if wait > 0:
            left = scope.remaining()
            if left is not None and wait > left:
                raise _too_long(limits[0], wait, max(0.0, left))
            _sleep(limits, scope, wait)
        return Permit([(limit, None, 0) for limit in limits], wait, learners, observers, prompt)
    charges = [_charge(limit, prompt, max_tokens, exact) for limit in limits]
    for limit, tokens in zip(limits, charges, strict=True):
        limit.check_fits(tokens)
    grants: Grants = []
    wait = 0.0
    try:
        for limit, tokens in zip(limits, charges, strict=True):
            left = scope.remaining()
            left = None if left is None else max(0.0, left)
            seconds, handle = limit.backend.reserve(1, tokens, left)
            if handle is None:
                raise _too_long(limit, seconds, left)
            grants.append((limit, handle, tokens))
            wait = max(wait, seconds)
        _sleep(limits, scope, wait)
    except BaseException:
        _release(grants)
        raise
    return Permit(grants, wait, learners, observers, prompt)


def _sleep(limits: Sequence[RateLimit], scope: _context.Scope, wait: float) -> None:
    if wait > 0:
        sleep = next((lim.sleep for lim in limits if lim.sleep is not None), scope.sleep)
        with scope.waiting():
            sleep(wait)


def _too_long(limit: RateLimit, wait: float, left: float | None) -> APIError:
    # Not retried: the next try would have to wait just as long.
    if limit.pause_only:
        return RateLimitError(
            f"the provider asked every caller of this account to wait {wait:.1f} s, longer "
            f"than the {left or 0.0:.1f} s left of this call's time budget",
            status=429, retry_after=wait, retryable=False,
        )
    return APITimeoutError(
        f"waiting {wait:.1f} s for {limit!r} would exceed the {left or 0.0:.1f} s left of "
        f"this call's time budget; raise the timeout or the limit, or run fewer items at once",
        retry_after=wait, retryable=False,
    )


@dataclass(eq=False)
class LimitedRunner:
    """A Pool's runner whose items run in a scope with the Pool's rate limits (every Model
    call inside waits for them) and observers (an auto Pool's flow controller)."""

    runner: Any
    limits: tuple[RateLimit, ...]
    observers: tuple[Any, ...] = ()

    def run(self, variables: dict[str, Any]) -> Any:
        with _context.scope(rate_limits=self.limits, observers=self.observers):
            return call_runner(self.runner, variables)

    def _reserve_connections(self, n: int) -> None:
        reserve_connections(self.runner, n)


def with_rate_limits(runner: Any, limit: RateLimit | None, observers: tuple[Any, ...] = ()) -> Any:
    """``runner`` wrapped so its items see ``limit``, ``observers`` and those of any Pool
    item this Pool runs inside (a nested Pool's threads start without the outer scope);
    the runner itself when there is none."""
    inner = _context.current().child(rate_limits=() if limit is None else (limit,),
                                     observers=observers)
    if inner.rate_limits or inner.observers:
        return LimitedRunner(runner, inner.rate_limits, inner.observers)
    return runner
