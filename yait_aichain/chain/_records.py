"""What one Chain run leaves behind: a record per step and the run as a whole.

Both are frozen so a result handed to another thread (a Pool record, a log sink) cannot be
changed under it; the mappings inside are read-only views over private copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from .._usage import Usage

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen_copy(variables: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only shallow copy: later merges into the run's variables never show here."""
    return MappingProxyType(dict(variables))


@dataclass(frozen=True)
class StepRecord:
    """One executed (or refused) step of a Chain run.

    ``input`` is a shallow snapshot of the variables just before the step; ``output`` is
    what the step returned (None when it failed); ``error`` is ``"Type: message"`` and
    ``exception`` the exception itself when it failed. ``usage`` and ``requests`` count
    only the model calls made inside this step, ``reasks`` the times a typed Skill asked
    again after an answer failed its schema (those requests are in ``requests``).

    ``record["output"]`` works as well as ``record.output``, since the public project
    exposes history entries as dicts.
    """

    step: int
    name: str
    kind: str
    output_key: str
    input: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    output: Any = field(default=None, repr=False)
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    duration: float = 0.0
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    reasks: int = 0

    @property
    def ok(self) -> bool:
        """True when the step ran and returned."""
        return self.error is None

    def __getitem__(self, key: str) -> Any:
        if key in _FIELD_NAMES:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access with a default, as for the public project's history dicts."""
        return getattr(self, key) if key in _FIELD_NAMES else default

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (``input`` as a dict, ``usage`` as a dict), without the exception."""
        out = {name: getattr(self, name) for name in _FIELD_NAMES if name != "exception"}
        out["input"] = dict(self.input)
        out["usage"] = self.usage.as_dict()
        return out


_FIELD_NAMES = tuple(f.name for f in fields(StepRecord))


@dataclass(frozen=True)
class ChainRun:
    """The full result of one Chain run, independent of any thread-local state.

    ``output`` is what ``Chain.run`` returns; ``variables`` the final accumulated variables
    (read-only); ``history`` one :class:`StepRecord` per step reached; ``usage`` and
    ``requests`` the sum over the steps; ``duration`` in seconds.
    """

    output: Any
    variables: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    history: tuple[StepRecord, ...] = ()
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    duration: float = 0.0

    @property
    def failed_steps(self) -> tuple[StepRecord, ...]:
        """The records of steps that failed or were refused (skipped or stopped at)."""
        return tuple(r for r in self.history if r.error is not None)

    @property
    def ok(self) -> bool:
        """True when every step reached ran without error."""
        return not self.failed_steps
