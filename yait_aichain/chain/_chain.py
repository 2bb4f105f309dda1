"""Chain: run runners one after another, each step seeing what the earlier ones produced.

Thread contract: a Chain can be shared between threads (one instance serves every flow of a
Pool). A run keeps all of its state in local variables and returns it as a frozen
:class:`ChainRun`; ``history``, ``accumulated`` and ``last_usage`` are thread-local views of
the most recent run *in the calling thread*, so 50 flows never see each other's records
(the public project assigns them on the instance, and the last finisher wins).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .. import _context
from .._runner import ThreadLocalViews, describe, reserve_connections
from .._usage import Usage
from ..errors import CancelledError, ChainStepError, ConfigurationError, TemplateError
from ._check import check_steps
from ._records import ChainRun, StepRecord, frozen_copy
from ._steps import (
    DEFAULT_ON_STEP_ERROR,
    Step,
    call_step,
    check_policy,
    describe_missing,
    missing_variables,
    normalize_steps,
    step_needs,
)

_NO_RUN = ChainRun(output=None)


class Chain(ThreadLocalViews):
    """A pipeline of steps sharing one growing dict of variables.

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

    def __init__(
        self,
        steps: Sequence[Any],
        *,
        variables: Mapping[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
        on_step_error: str = DEFAULT_ON_STEP_ERROR,
    ):
        self.on_step_error = check_policy(on_step_error)
        self.variables = _check_variables(variables, "variables")
        if name is not None and not isinstance(name, str):
            raise ConfigurationError(f"name must be a str; got {type(name).__name__}")
        self.name = name
        self.description = description
        self._steps = normalize_steps(steps, lambda r: isinstance(r, Chain))
        self._local = threading.local()

    # -- running -------------------------------------------------------------------

    def run(
        self, variables: Mapping[str, Any] | None = None, *, on_step_error: str | None = None
    ) -> Any:
        """Run every step and return the last step's output.

        Args:
            variables: merged over the Chain's default ``variables``.
            on_step_error: overrides the Chain's policy for this run.

        Returns:
            The last step's output; under ``"stop"``/``"skip"`` the last successful one, or
            None when no step succeeded.

        Raises:
            ChainStepError: under ``"raise"``, when a step fails or lacks a variable it
                needs (then it is not called); the step's error is in ``__cause__``.
            CancelledError: the enclosing Pool item was cancelled; never swallowed.
        """
        return self._execute(variables, on_step_error).output

    def run_detailed(
        self, variables: Mapping[str, Any] | None = None, *, on_step_error: str | None = None
    ) -> ChainRun:
        """Like :meth:`run`, but return the whole :class:`ChainRun` (output, variables,
        history, usage), which does not depend on thread-local state."""
        return self._execute(variables, on_step_error)

    def _execute(self, variables: Mapping[str, Any] | None, on_step_error: str | None) -> ChainRun:
        policy = self.on_step_error if on_step_error is None else check_policy(on_step_error)
        accumulated = {**self.variables, **_check_variables(variables, "run variables")}
        history: list[StepRecord] = []
        output: Any = None
        started = time.perf_counter()

        def finish() -> ChainRun:
            result = ChainRun(
                output=output,
                variables=frozen_copy(accumulated),
                history=tuple(history),
                usage=sum((r.usage for r in history), Usage()),
                requests=sum(r.requests for r in history),
                duration=time.perf_counter() - started,
            )
            self._local.run = result
            return result

        self._check_first(policy, accumulated, finish)
        for step in self._steps:
            # A cancelled Pool item must not start its next (possibly expensive) step.
            try:
                _context.current().check()
            except CancelledError:
                finish()
                raise
            record, refused = _run_step(step, accumulated)
            history.append(record)
            error = record.exception
            if error is None:
                output = record.output
                if isinstance(output, Mapping):
                    accumulated.update(output)
                else:
                    accumulated[step.output_key] = output
                continue
            if isinstance(error, CancelledError):
                finish()
                raise error
            problem = _describe(step, error, refused)
            if policy == "raise":
                finish()
                raise ChainStepError(problem, step=step.index, name=step.name) from error
            if policy == "stop":
                break
            warnings.warn(f"{self._label()}{problem}; skipped", RuntimeWarning, stacklevel=3)
        return finish()

    def _check_first(
        self, policy: str, accumulated: Mapping[str, Any], finish: Callable[[], ChainRun]
    ) -> None:
        # Under "raise" a step that cannot run fails the run anyway; finding it before
        # the first step saves what the earlier steps would cost. "stop" and "skip" keep
        # their meaning: the steps before it run.
        if policy != "raise":
            return
        try:
            check_steps(self._steps, accumulated)
        except ChainStepError:
            finish()
            raise

    # -- thread-local views of the calling thread's last run -------------------------

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
        """The usage summed over the steps of the last run in this thread."""
        return getattr(self._local, "run", _NO_RUN).usage

    # -- introspection -------------------------------------------------------------

    @property
    def steps(self) -> tuple[tuple[Any, str, dict[str, str]], ...]:
        """The normalised steps as ``(runner, output_key, input_map)`` tuples."""
        return tuple((s.runner, s.output_key, dict(s.input_map)) for s in self._steps)

    def check_variables(self, variables: Iterable[str] | Mapping[str, Any] = ()) -> None:
        """Walk the steps without running any: raise if a step needs a variable that
        neither ``variables`` (names, or a dict whose keys count), the Chain's defaults,
        nor an earlier step's known output provides.

        A step's output is known for a text Skill, a JSON-schema Skill with a closed
        object schema, a runner with an ``output_keys`` attribute, and a callable whose
        return annotation is a scalar type (``-> str``); after any other step the rest is
        trusted. ``run()`` does this before its first step, and a Pool before its first
        item, so a misspelt ``{sumary}`` in step 2 costs nothing.

        Raises:
            ChainStepError: names the step and the variable (``__cause__`` is a
                TemplateError with ``missing``).
        """
        check_steps(self._steps, {*self.variables, *variables})

    @property
    def required_variables(self) -> frozenset[str]:
        """The variables a run must be given, as far as is known before running.

        Best effort: only the first step's needs are certain (a Tool's required
        parameters after ``input_map``, a runner's own ``required_variables``, the
        ``input_map`` sources), minus the Chain's default ``variables``. Later steps are
        left out because any earlier step may return a dict that provides them; each step
        is still checked just before it runs. A plain callable's needs are unknown.
        """
        return step_needs(self._steps[0]) - self.variables.keys()

    def _reserve_connections(self, n: int) -> None:
        for step in self._steps:
            reserve_connections(step.runner, n)

    def _label(self) -> str:
        return f"chain {self.name!r} " if self.name else ""

    def identity(self) -> dict[str, Any]:
        """What this Chain's answers depend on (its steps in order), for checkpoint keys."""
        steps = [{"runner": describe(step.runner), "output_key": step.output_key,
                  "input_map": dict(step.input_map)} for step in self._steps]
        return {"steps": steps, "variables": self.variables, "on_step_error": self.on_step_error}

    def __repr__(self) -> str:
        # Names and keys only: variable values may hold secrets.
        steps = ", ".join(f"{s.name}->{s.output_key}" for s in self._steps)
        name = f"name={self.name!r}, " if self.name else ""
        return f"Chain({name}steps=[{steps}])"


def _run_step(step: Step, accumulated: dict[str, Any]) -> tuple[StepRecord, bool]:
    """Run one step; return its record and whether it was refused for missing variables."""
    snapshot = frozen_copy(accumulated)
    missing = missing_variables(step, accumulated)
    if missing:
        # Like a Skill's TemplateError: the facts, and the certainty that nothing was called.
        err = TemplateError(describe_missing(missing, accumulated), missing=sorted(missing))
        return _record(step, snapshot, error=err), True

    tally = _context.Tally()
    started = time.perf_counter()
    error: Exception | None = None
    output: Any = None
    try:
        with _context.scope(tally=tally):
            output = call_step(step, accumulated)
    except Exception as exc:  # noqa: BLE001 - every step failure goes through on_step_error
        error = exc
    record = _record(
        step,
        snapshot,
        output=output,
        error=error,
        duration=time.perf_counter() - started,
        usage=tally.usage,
        requests=tally.requests,
        reasks=tally.reasks,
    )
    return record, False


def _record(
    step: Step, snapshot: Mapping[str, Any], *, error: BaseException | None = None, **kw: Any
) -> StepRecord:
    return StepRecord(
        step=step.index,
        name=step.name,
        kind=step.kind,
        output_key=step.output_key,
        input=snapshot,
        error=None if error is None else f"{type(error).__name__}: {error}",
        exception=error,
        **kw,
    )


def _describe(step: Step, error: BaseException, refused: bool) -> str:
    if refused:
        return f"{step.label} was not run: {error}"
    return f"{step.label} failed: {type(error).__name__}: {error}"


def _check_variables(variables: Any, what: str) -> dict[str, Any]:
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise ConfigurationError(f"{what} must be a dict; got {type(variables).__name__}")
    return dict(variables)
