"""Chain steps: normalising the user's forms, knowing what a step needs, calling it.

Mistakes in a step are reported when the Chain is built, with the step's index, so a
pipeline of 50 flows does not start only to fail the same way 50 times.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._runner import call_runner, check_runner, is_tool, runner_name, tool_arguments
from ..errors import ConfigurationError

ON_STEP_ERROR = ("raise", "stop", "skip")
DEFAULT_OUTPUT_KEY = "result"
DEFAULT_ON_STEP_ERROR = "raise"

# How many variable names an error message lists before it says "and N more".
_MAX_NAMES_SHOWN = 12


@dataclass(frozen=True)
class Step:
    """One normalised step: ``input_map`` is ``{parameter: variable}``."""

    index: int
    runner: Any
    output_key: str
    input_map: Mapping[str, str] = field(default_factory=dict)
    kind: str = "callable"
    name: str = ""

    @property
    def label(self) -> str:
        return f"step {self.index} {self.name!r}"


def check_policy(value: Any) -> str:
    """Return ``value`` if it is a valid ``on_step_error``, else raise ConfigurationError."""
    if value not in ON_STEP_ERROR:
        raise ConfigurationError(
            f"on_step_error must be one of {', '.join(map(repr, ON_STEP_ERROR))}; got {value!r}"
        )
    return str(value)


def normalize_steps(steps: Any, is_chain: Callable[[Any], bool]) -> tuple[Step, ...]:
    """Turn the user's step list into :class:`Step` objects, or raise ConfigurationError."""
    if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
        raise ConfigurationError(
            "steps must be a list of runners or (runner, output_key[, input_map]) tuples; "
            f"got {type(steps).__name__}"
        )
    if not steps:
        raise ConfigurationError("a Chain needs at least one step")
    return tuple(_normalize_one(i, raw, is_chain) for i, raw in enumerate(steps))


def _normalize_one(index: int, raw: Any, is_chain: Callable[[Any], bool]) -> Step:
    where = f"step {index}"
    if isinstance(raw, list):
        # A list looks like a step tuple but the public project silently treats it as a bare
        # runner that fails later; say so now.
        raise ConfigurationError(
            f"{where} is a list; write it as a tuple (runner, output_key[, input_map])"
        )
    if isinstance(raw, tuple):
        if len(raw) not in (2, 3):
            raise ConfigurationError(
                f"{where} has {len(raw)} elements; expected (runner, output_key) or "
                "(runner, output_key, input_map)"
            )
        runner, output_key = raw[0], raw[1]
        input_map = raw[2] if len(raw) == 3 else {}
    else:
        runner, output_key, input_map = raw, DEFAULT_OUTPUT_KEY, {}

    if isinstance(runner, type) and hasattr(runner, "run"):
        raise ConfigurationError(
            f"{where} is the class {runner.__name__}; pass an instance, e.g. {runner.__name__}()"
        )
    check_runner(runner, where)
    if not isinstance(output_key, str) or not output_key:
        raise ConfigurationError(
            f"{where}: output_key must be a non-empty str; got {type(output_key).__name__}"
        )
    input_map = _check_input_map(where, runner, input_map)

    if is_tool(runner):
        kind = "tool"
    elif is_chain(runner):
        kind = "chain"
    elif callable(getattr(runner, "run", None)):
        kind = "skill"  # Skill, Pool or any user object with run(variables)
    else:
        kind = "callable"
    name = runner_name(runner, default=f"step_{index}")
    return Step(index, runner, output_key, input_map, kind, name)


def _check_input_map(where: str, runner: Any, input_map: Any) -> dict[str, str]:
    if not isinstance(input_map, Mapping):
        raise ConfigurationError(
            f"{where}: input_map must be a dict {{parameter: variable}}; "
            f"got {type(input_map).__name__}"
        )
    for param, source in input_map.items():
        if not isinstance(param, str) or not isinstance(source, str):
            raise ConfigurationError(
                f"{where}: input_map keys and values must be str names; got {param!r}: {source!r}"
            )
        if "{" in source or "}" in source:
            raise ConfigurationError(
                f"{where}: input_map values are variable names, not templates; "
                f"write {param!r}: {source.strip('{}')!r}"
            )
    if is_tool(runner):
        declared = list(runner.parameters["properties"])
        unknown = [p for p in input_map if p not in declared]
        if unknown:
            # The public project's docs map {"source": "url"} for a tool whose parameter is
            # "input": the key is dropped and the tool fails later with a TypeError.
            raise ConfigurationError(
                f"{where}: input_map is {{parameter: variable}}, but "
                f"{runner_name(runner)} has no parameter {_names(unknown)} "
                f"(its parameters: {_names(declared) or 'none'})"
            )
    return dict(input_map)


def _declared_needs(runner: Any) -> frozenset[str]:
    needs = getattr(runner, "required_variables", None)
    # Only trust a real collection of names; a Mock or a property of another meaning would
    # otherwise make every run fail.
    if isinstance(needs, (set, frozenset, list, tuple)) and all(isinstance(n, str) for n in needs):
        return frozenset(needs)
    return frozenset()


def missing_variables(step: Step, variables: Mapping[str, Any]) -> dict[str, str | None]:
    """The variables ``step`` needs that ``variables`` lacks, each with what it is for.

    A tool needs the variable behind each required parameter; any other runner needs its
    ``required_variables`` (after aliasing); every source named in ``input_map`` must exist.
    """
    missing: dict[str, str | None] = {}
    for param, source in step.input_map.items():
        if source not in variables:
            missing[source] = f"parameter {param!r}"
    if step.kind == "tool":
        required = step.runner.parameters.get("required") or ()
        for param in required:
            source = step.input_map.get(param, param)
            if source not in variables and source not in missing:
                missing[source] = f"parameter {param!r}" if source != param else None
    else:
        for name in sorted(_declared_needs(step.runner)):
            if name not in variables and name not in step.input_map:
                missing[name] = None
    return missing


def describe_missing(missing: Mapping[str, str | None], variables: Mapping[str, Any]) -> str:
    """``"missing variable 'source' (for parameter 'input'); available: 'url'"``."""
    parts = [f"{n!r} (for {why})" if why else repr(n) for n, why in sorted(missing.items())]
    noun = "variable" if len(parts) == 1 else "variables"
    available = _names(sorted(variables)) or "none"
    return f"missing {noun} {', '.join(parts)}; available: {available}"


def step_needs(step: Step) -> frozenset[str]:
    """The variable names ``step`` is known to need (empty when unknown)."""
    return frozenset(missing_variables(step, {}))


def call_step(step: Step, variables: Mapping[str, Any]) -> Any:
    """Run ``step`` on ``variables`` and return its output."""
    if step.kind == "tool":
        return step.runner.run(**tool_arguments(step.runner, variables, step.input_map))
    # The runner gets its own dict: it may mutate it without touching the run's variables.
    inputs = dict(variables)
    for param, source in step.input_map.items():
        inputs[param] = variables[source]
    return call_runner(step.runner, inputs)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_NAMES_SHOWN])
    extra = len(names) - _MAX_NAMES_SHOWN
    return f"{shown} and {extra} more" if extra > 0 else shown
