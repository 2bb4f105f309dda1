"""Rate limits the simulator enforces per key, and the headers that report them.

Each (provider, key) has a fixed window of ``window`` seconds from its first request that
holds ``rpm`` requests and ``tpm`` tokens. A request is charged its input tokens plus the
``max_tokens`` it asks for (as OpenAI and Anthropic estimate before generating), corrected
to the tokens used once answered. Every response carries the provider's headers (nominal
limits when none are configured): OpenAI ``x-ratelimit-*`` with Go-style durations such
as ``"6m0s"``, Anthropic ``anthropic-ratelimit-*`` with RFC 3339 instants; Gemini none.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

__all__ = ["Decision", "Limiter", "Limits", "headers", "openai_duration", "seconds_text"]

#: What the headers report when no limit is configured.
NOMINAL_RPM = 10_000
NOMINAL_TPM = 30_000_000


@dataclass(frozen=True)
class Limits:
    """Limits per key: ``rpm`` requests and ``tpm`` tokens per ``window`` seconds (None:
    not enforced)."""

    rpm: int | None = None
    tpm: int | None = None
    window: float = 60.0


@dataclass(frozen=True)
class Decision:
    """The outcome of admitting one request, and the state the headers report."""

    exceeded: str | None  # "requests" or "tokens" when refused, None when admitted
    retry_after: float  # seconds until the window resets
    rpm: int
    tpm: int
    requests_left: int
    tokens_left: int
    input_left: int
    output_left: int


class _Window:
    __slots__ = ("start", "requests", "input", "output")

    def __init__(self, start: float) -> None:
        self.start, self.requests, self.input, self.output = start, 0, 0, 0


class Limiter:
    """Fixed windows per (provider, key), shared by every handler thread."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def _window(self, key: tuple[str, str], now: float) -> _Window:
        win = self._windows.get(key)
        if win is None or now - win.start >= self.limits.window:
            win = self._windows[key] = _Window(now)
        return win

    def admit(self, provider: str, key: str, input_tokens: int, max_output: int) -> Decision:
        """Count one request if it fits; else refuse it, counting nothing."""
        limits = self.limits
        with self._lock:
            now = time.monotonic()
            win = self._window((provider, key), now)
            exceeded = None
            charge = input_tokens + max_output
            if limits.rpm is not None and win.requests + 1 > limits.rpm:
                exceeded = "requests"
            elif limits.tpm is not None and win.input + win.output + charge > limits.tpm \
                    and win.requests > 0:
                # A single request larger than the whole budget still goes through when
                # the window is empty, or it could never be served.
                exceeded = "tokens"
            if exceeded is None:
                win.requests += 1
                win.input += input_tokens
                win.output += max_output
            return self._decision(win, now, exceeded)

    def settle(self, provider: str, key: str, estimated_output: int, actual_output: int) -> None:
        """Replace a request's estimated output tokens by what it used."""
        with self._lock:
            win = self._windows.get((provider, key))
            if win is not None:
                win.output = max(0, win.output - estimated_output + actual_output)

    def state(self, provider: str, key: str) -> Decision:
        """The current state, for the headers of a reply that was not admitted."""
        with self._lock:
            now = time.monotonic()
            return self._decision(self._window((provider, key), now), now, None)

    def _decision(self, win: _Window, now: float, exceeded: str | None) -> Decision:
        rpm = self.limits.rpm if self.limits.rpm is not None else NOMINAL_RPM
        tpm = self.limits.tpm if self.limits.tpm is not None else NOMINAL_TPM
        used = win.input + win.output
        return Decision(exceeded=exceeded, rpm=rpm, tpm=tpm,
                        retry_after=max(0.0, win.start + self.limits.window - now),
                        requests_left=max(0, rpm - win.requests), tokens_left=max(0, tpm - used),
                        input_left=max(0, tpm - win.input), output_left=max(0, tpm - win.output))


def seconds_text(seconds: float) -> str:
    """``seconds`` to the millisecond, without trailing zeros: ``"2"``, ``"0.5"``."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def openai_duration(seconds: float) -> str:
    """OpenAI's reset format: ``"20ms"`` under a second, else ``"1s"``, ``"6m0s"``,
    ``"1h2m3.5s"``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{seconds_text(secs)}s"
    if minutes or hours:
        out = f"{int(minutes)}m{out}"
    if hours:
        out = f"{int(hours)}h{out}"
    return out


def headers(provider: str, d: Decision) -> tuple[tuple[str, str], ...]:
    """The provider's rate-limit headers for this state (Gemini sends none)."""
    families = [("requests", d.rpm, d.requests_left), ("tokens", d.tpm, d.tokens_left)]
    if provider == "openai":
        name, reset = "x-ratelimit-{1}-{0}", openai_duration(d.retry_after)
    elif provider == "anthropic":
        name = "anthropic-ratelimit-{0}-{1}"
        families += [("input-tokens", d.tpm, d.input_left), ("output-tokens", d.tpm, d.output_left)]
        # Rounded up to the second: a reset must never read earlier than it is.
        when = math.ceil(time.time() + d.retry_after)
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    else:
        return ()
    return tuple((name.format(family, part), value) for family, limit, left in families
                 for part, value in (("limit", str(limit)), ("remaining", str(left)),
                                     ("reset", reset)))
