"""Chain: run runners one after another, each step seeing what the earlier ones produced.

What a run leaves behind (a :class:`StepRecord` per step, the :class:`ChainRun`) is frozen:
a result handed to another thread cannot change under it (mappings are read-only copies).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from .. import _context
from .._runner import (ThreadLocalViews, describe, reserve_connections, user_stacklevel,
                       variables_dict)
from .._usage import Usage
from ..errors import CancelledError, ChainStepError, ConfigurationError
from ._steps import (DEFAULT_ON_STEP_ERROR, Step, call_step, check_policy, check_steps,
                     missing_variables, normalize_steps, refusal)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class StepRecord:
    """One executed (or refused) step of a Chain run: ``input`` is a shallow snapshot of
    the variables just before it; ``output`` what it returned (None when it failed);
    ``error`` is ``"Type: message"`` and ``exception`` the exception itself when it failed.
    ``usage`` and ``requests`` count only the model calls made inside this step,
    ``reasks`` the times a typed Skill asked again (those requests are in ``requests``).
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
        if key not in _FIELD_NAMES:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access with a default, as for the public project's history dicts."""
        return getattr(self, key) if key in _FIELD_NAMES else default

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (``input`` as a dict, ``usage`` as a dict), without the exception."""
        out = {name: getattr(self, name) for name in _FIELD_NAMES if name != "exception"}
        return {**out, "input": dict(self.input), "usage": self.usage.as_dict()}


_FIELD_NAMES = tuple(f.name for f in fields(StepRecord))


@dataclass(frozen=True)
class ChainRun:
    """The full result of one Chain run, independent of any thread-local state: ``output``
    (what ``Chain.run`` returns), ``variables`` (the final accumulated ones, read-only),
    ``history`` (one :class:`StepRecord` per step reached), ``usage`` and ``requests``
    (summed over the steps) and ``duration`` (seconds)."""

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


_NO_RUN = ChainRun(output=None)


class Chain(ThreadLocalViews):
    """A pipeline of steps sharing one growing dict of variables.

    One Chain may serve every flow of a Pool: a run keeps its state local and returns it
    as a frozen :class:`ChainRun`. ``history``, ``accumulated`` and ``last_usage`` are
    views of the latest run made directly *by the calling thread* (the public project sets
    them on the instance: the last finisher wins); a ``pool.run()`` leaves them as they
    were, its items ran on the Pool's threads: its usage is on its records, ``pool.usage``
    and its report. ``normalized_steps`` holds the steps as ``Step`` objects (batch mode
    runs them one by one).

    Args:
        steps: each a runner (output stored under ``"result"``), ``(runner, output_key)``
            or ``(runner, output_key, input_map)``. A runner is a Skill, Chain, Pool, Tool,
            an object with ``run(variables)`` or a callable taking the variables dict.
            ``input_map`` is ``{parameter: variable}``: a Tool's ``parameter`` is fed from
            ``variable``; any other runner gets ``parameter`` as an alias of ``variable``.
        variables: defaults under every run's variables.
        name, description: labels for records, errors and ``repr``.
        on_step_error: ``"raise"`` (wrap in :class:`ChainStepError`), ``"stop"`` (return
            the last successful output) or ``"skip"`` (warn and go on).

    Raises:
        ConfigurationError: a malformed step (its index is named) or a bad option.
    """

    def __init__(self, steps: Sequence[Any], *, variables: Mapping[str, Any] | None = None,
                 name: str | None = None, description: str | None = None,
                 on_step_error: str = DEFAULT_ON_STEP_ERROR):
        self.on_step_error = check_policy(on_step_error)
        self.variables = variables_dict(variables, "variables")
        if name is not None and not isinstance(name, str):
            raise ConfigurationError(f"name must be a str; got {type(name).__name__}")
        self.name = name
        self.description = description
        self.normalized_steps = normalize_steps(steps, lambda r: isinstance(r, Chain))
        self._local = threading.local()

    def run(self, variables: Mapping[str, Any] | None = None, *,
            on_step_error: str | None = None) -> Any:
        """Run every step on ``variables`` (merged over the Chain's defaults) and return the
        last step's output (under ``"stop"``/``"skip"`` the last successful one, or None);
        ``on_step_error`` overrides the Chain's policy for this run.

        Raises:
            ChainStepError: under ``"raise"``, when a step fails or lacks a variable it
                needs (then it is not called); the step's error is in ``__cause__``.
            CancelledError: the enclosing Pool item was cancelled; never swallowed.
        """
        return self.run_detailed(variables, on_step_error=on_step_error).output

    def run_detailed(self, variables: Mapping[str, Any] | None = None, *,
                     on_step_error: str | None = None) -> ChainRun:
        """Like :meth:`run`, but return the whole :class:`ChainRun` (output, variables,
        history, usage), independent of thread-local state."""
        policy = self.on_step_error if on_step_error is None else check_policy(on_step_error)
        accumulated = {**self.variables, **variables_dict(variables, "run variables")}
        history: list[StepRecord] = []
        output: Any = None
        started = time.perf_counter()
        try:
            if policy == "raise":
                # A step that cannot run fails the run anyway: finding it before the first
                # step saves what the earlier ones cost ("stop"/"skip" run those steps).
                check_steps(self.normalized_steps, accumulated)
            for step in self.normalized_steps:
                _context.current().check()  # a cancelled item must not start its next step
                record, refused = run_step(step, accumulated)
                history.append(record)
                if record.exception is None:
                    output = keep_output(step, accumulated, record.output)
                    continue
                failure = step_failure(self, policy, step, record.exception, refused)
                if failure is not None:
                    raise failure
                if policy == "stop":
                    break
        finally:
            # The step tallies are the run's usage: each model call was counted in one step.
            self._local.run = run = ChainRun(
                output=output, variables=MappingProxyType(dict(accumulated)),
                history=tuple(history), usage=sum((r.usage for r in history), Usage()),
                requests=sum(r.requests for r in history), duration=time.perf_counter() - started)
        return run

    @property
    def history(self) -> list[StepRecord]:
        """The step records of the last run in this thread (a new list each time)."""
        return list(getattr(self._local, "run", _NO_RUN).history)

    @property
    def accumulated(self) -> dict[str, Any]:
        """The final variables of the last run in this thread (a shallow copy)."""
        return dict(getattr(self._local, "run", _NO_RUN).variables)

    @property
    def last_usage(self) -> Usage:
        """The usage of the last run in this thread: the sum of its steps' usage."""
        return getattr(self._local, "run", _NO_RUN).usage

    @property
    def steps(self) -> tuple[tuple[Any, str, dict[str, str]], ...]:
        """The normalised steps as ``(runner, output_key, input_map)`` tuples."""
        return tuple((s.runner, s.output_key, dict(s.input_map)) for s in self.normalized_steps)

    def check_variables(self, variables: Iterable[str] | Mapping[str, Any] = ()) -> None:
        """Walk the steps without running any: raise if a step needs a variable that
        neither ``variables`` (names, or a dict's keys), the Chain's defaults, nor an
        earlier step's known output provides. An output is known for a text Skill, a
        JSON-schema Skill with a closed object schema, a runner with ``output_keys`` and a
        callable annotated ``-> str`` (or another scalar); after any other step the rest
        is trusted. ``run()`` does this before its first step and a Pool before its first
        item, so a misspelt ``{sumary}`` in step 2 costs nothing. The ChainStepError names
        the step and the variable (``__cause__`` is a TemplateError with ``missing``).
        """
        check_steps(self.normalized_steps, {*self.variables, *variables})

    @property
    def required_variables(self) -> frozenset[str]:
        """The variables a run must be given, as far as is known before running: the first
        step's needs (a Tool's required parameters, a runner's ``required_variables``, the
        ``input_map`` sources) minus the Chain's defaults. Later steps are left out (an
        earlier dict output may provide them); a plain callable's needs are unknown."""
        return frozenset(missing_variables(self.normalized_steps[0], {})) - self.variables.keys()

    def _reserve_connections(self, n: int) -> None:
        for step in self.normalized_steps:
            reserve_connections(step.runner, n)

    def identity(self) -> dict[str, Any]:
        """What this Chain's answers depend on (its steps in order), for checkpoint keys."""
        steps = [{"runner": describe(step.runner), "output_key": step.output_key,
                  "input_map": dict(step.input_map)} for step in self.normalized_steps]
        return {"steps": steps, "variables": self.variables, "on_step_error": self.on_step_error}

    def __repr__(self) -> str:
        # Names and keys only: variable values may hold secrets.
        steps = ", ".join(f"{s.name}->{s.output_key}" for s in self.normalized_steps)
        name = f"name={self.name!r}, " if self.name else ""
        return f"Chain({name}steps=[{steps}])"


def keep_output(step: Step, variables: dict[str, Any], output: Any) -> Any:
    """Add ``output`` to ``variables`` (a Mapping merged, else under the output_key); return it."""
    if isinstance(output, Mapping):
        variables.update(output)
    else:
        variables[step.output_key] = output
    return output


def step_failure(chain: Chain, policy: str, step: Step, error: BaseException,
                 refused: bool = False) -> BaseException | None:
    """What a failed (or ``refused``) step does under ``policy``: the exception the run ends
    with (a cancel as it is, a ChainStepError under "raise"), or None ("stop"; "skip" warns)."""
    if isinstance(error, CancelledError):
        return error
    what = "was not run" if refused else f"failed: {type(error).__name__}"
    problem = f"{step.label} {what}: {error}"
    if policy == "raise":
        failure = ChainStepError(problem, step=step.index, name=step.name)
        failure.__cause__ = error
        return failure
    if policy == "skip":
        label = f"chain {chain.name!r} " if chain.name else ""
        warnings.warn(f"{label}{problem}; skipped", RuntimeWarning, stacklevel=user_stacklevel())
    return None


def run_step(step: Step, accumulated: dict[str, Any]) -> tuple[StepRecord, bool]:
    """Run one step; return its record and whether it was refused for missing variables."""
    snapshot = MappingProxyType(dict(accumulated))
    missing = missing_variables(step, accumulated)
    if missing:
        # Like a Skill's TemplateError: the facts, and the certainty that nothing was called.
        return _record(step, snapshot, refusal(missing, accumulated)), True
    tally, started = _context.Tally(), time.perf_counter()
    error: Exception | None = None
    output: Any = None
    try:
        with _context.scope(tally=tally):
            output = call_step(step, accumulated)
    except Exception as exc:  # noqa: BLE001 - every step failure goes through on_step_error
        error = exc
    return _record(step, snapshot, error, output=output, duration=time.perf_counter() - started,
                   usage=tally.usage, requests=tally.requests, reasks=tally.reasks), False


def _record(step: Step, snapshot: Mapping[str, Any], error: BaseException | None,
            **kw: Any) -> StepRecord:
    return StepRecord(step=step.index, name=step.name, kind=step.kind, output_key=step.output_key,
                      input=snapshot, exception=error,
                      error=None if error is None else f"{type(error).__name__}: {error}", **kw)
