"""Chain steps: normalising the user's forms, knowing what a step needs, calling it.

Mistakes in a step are reported when the Chain is built, with the step's index (50 flows
do not start only to fail the same way 50 times); before a run :func:`check_steps` walks
the steps (see ``Chain.check_variables``), so a misspelt ``{sumary}`` in step 2 is no
longer found only after every item has paid for step 1.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._runner import call_runner, check_runner, is_tool, runner_name
from .._template import did_you_mean
from ..errors import ChainStepError, ConfigurationError, TemplateError

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
        raise ConfigurationError(f"on_step_error must be one of "
                                 f"{', '.join(map(repr, ON_STEP_ERROR))}; got {value!r}")
    return str(value)


def normalize_steps(steps: Any, is_chain: Callable[[Any], bool]) -> tuple[Step, ...]:
    """Turn the user's step list into :class:`Step` objects, or raise ConfigurationError."""
    if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
        raise ConfigurationError("steps must be a list of runners or (runner, output_key"
                                 f"[, input_map]) tuples; got {type(steps).__name__}")
    if not steps:
        raise ConfigurationError("a Chain needs at least one step")
    return tuple(_normalize_one(i, raw, is_chain) for i, raw in enumerate(steps))


def _normalize_one(index: int, raw: Any, is_chain: Callable[[Any], bool]) -> Step:
    where = f"step {index}"
    if isinstance(raw, list):
        # A list looks like a step tuple but the public project silently treats it as a bare
        # runner that fails later; say so now.
        raise ConfigurationError(f"{where} is a list; write it as a tuple "
                                 "(runner, output_key[, input_map])")
    runner, output_key, input_map = raw, DEFAULT_OUTPUT_KEY, {}
    if isinstance(raw, tuple):
        if len(raw) not in (2, 3):
            raise ConfigurationError(f"{where} has {len(raw)} elements; expected (runner, "
                                     "output_key) or (runner, output_key, input_map)")
        runner, output_key, input_map = raw if len(raw) == 3 else (*raw, {})
    if isinstance(runner, type) and hasattr(runner, "run"):
        raise ConfigurationError(f"{where} is the class {runner.__name__}; pass an instance, "
                                 f"e.g. {runner.__name__}()")
    check_runner(runner, where)
    if not isinstance(output_key, str) or not output_key:
        raise ConfigurationError(f"{where}: output_key must be a non-empty str; "
                                 f"got {type(output_key).__name__}")
    input_map = _check_input_map(where, runner, input_map)
    # The first kind that fits; "skill" is a Skill, Pool or any user object with run(variables).
    kinds = (("tool", is_tool), ("chain", is_chain),
             ("skill", lambda r: callable(getattr(r, "run", None))))
    kind = next((name for name, fits in kinds if fits(runner)), "callable")
    return Step(index, runner, output_key, input_map, kind,
                runner_name(runner, default=f"step_{index}"))


def _check_input_map(where: str, runner: Any, input_map: Any) -> dict[str, str]:
    if not isinstance(input_map, Mapping):
        raise ConfigurationError(f"{where}: input_map must be a dict {{parameter: variable}}; "
                                 f"got {type(input_map).__name__}")
    for param, source in input_map.items():
        if not isinstance(param, str) or not isinstance(source, str):
            raise ConfigurationError(f"{where}: input_map keys and values must be str names; "
                                     f"got {param!r}: {source!r}")
        if "{" in source or "}" in source:
            raise ConfigurationError(f"{where}: input_map values are variable names, not "
                                     f"templates; write {param!r}: {source.strip('{}')!r}")
    if is_tool(runner):
        declared = list(runner.parameters["properties"])
        unknown = [p for p in input_map if p not in declared]
        if unknown:
            # The public project's docs map {"source": "url"} for a tool whose parameter is
            # "input": the key is dropped and the tool fails later with a TypeError.
            raise ConfigurationError(f"{where}: input_map is {{parameter: variable}}, but "
                                     f"{runner_name(runner)} has no parameter {_names(unknown)} "
                                     f"(its parameters: {_names(declared) or 'none'})")
    return dict(input_map)


def _declared(runner: Any, attribute: str) -> frozenset[str] | None:
    names = getattr(runner, attribute, None)
    # Only trust a real collection of names; a Mock or a property of another meaning would
    # otherwise make every run fail.
    if isinstance(names, (set, frozenset, list, tuple)) and all(isinstance(n, str) for n in names):
        return frozenset(names)
    return None


def missing_variables(step: Step, variables: Collection[str]) -> dict[str, str | None]:
    """The variables ``step`` needs that ``variables`` lacks, each with what it is for: a
    tool's required parameters, another runner's ``required_variables`` (after aliasing)
    and every ``input_map`` source."""
    missing: dict[str, str | None] = {source: f"parameter {param!r}" for param, source
                                      in step.input_map.items() if source not in variables}
    if step.kind == "tool":
        for param in step.runner.parameters.get("required") or ():
            source = step.input_map.get(param, param)
            if source not in variables and source not in missing:
                missing[source] = f"parameter {param!r}" if source != param else None
    else:
        for name in sorted(_declared(step.runner, "required_variables") or ()):
            if name not in variables and name not in step.input_map:
                missing[name] = None
    return missing


def refusal(missing: Mapping[str, str | None], variables: Collection[str]) -> TemplateError:
    """Why a step is not run: ``"missing variable 'source' (for parameter 'input');
    available: 'url'"``, with the ``missing`` names."""
    parts = [f"{n!r} (for {why})" if why else repr(n) for n, why in sorted(missing.items())]
    noun = "variable" if len(parts) == 1 else "variables"
    available = _names(sorted(variables)) or "none"
    return TemplateError(f"missing {noun} {', '.join(parts)}; available: {available}",
                         missing=sorted(missing))


def aliased(step: Step, variables: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict of ``variables`` plus each ``input_map`` parameter (when its source is
    there) as an alias of its source."""
    return {**variables, **{param: variables[source] for param, source
                            in step.input_map.items() if source in variables}}


def call_step(step: Step, variables: Mapping[str, Any]) -> Any:
    """Run ``step`` on ``variables`` and return its output."""
    # Its own dict, which it may mutate; a Tool's parameters come from the aliases (every
    # input_map source is there: missing_variables refused the step otherwise).
    return call_runner(step.runner, aliased(step, variables))


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_NAMES_SHOWN])
    extra = len(names) - _MAX_NAMES_SHOWN
    return f"{shown} and {extra} more" if extra > 0 else shown


# Return annotations that mean "stored under output_key", never merged as a dict.
_SCALARS = (str, int, float, bool, bytes, list, tuple, type(None))


def check_steps(
    steps: tuple[Step, ...], known: Iterable[str], label: str = ""
) -> frozenset[str] | None:
    """Raise ChainStepError at the first step that needs a variable nothing provides;
    return the variables known after the last step (None once an output was unknown)."""
    have = set(known)
    for step in steps:
        if step.kind == "chain":  # walk it inside; it returns its last step's output
            inner = step.runner.normalized_steps
            after = check_steps(inner, have | set(step.input_map) | set(step.runner.variables),
                                f"{label}{step.label} > ")
            returned = None if after is None else _returns(inner[-1].runner)  # a Chain: None
        else:
            missing = missing_variables(step, have)
            if missing:
                raise _error(step, missing, have, label)
            returned = _returns(step.runner)
        # A scalar is stored under the output_key, a dict's keys are merged.
        if returned == "scalar":
            have.add(step.output_key)
        elif isinstance(returned, frozenset):
            have |= returned
        else:
            return None
    return frozenset(have)


def _returns(runner: Any) -> Any:
    """``"scalar"``, a frozenset of dict keys, or None (unknown)."""
    declared = _declared(runner, "output_keys")
    if declared is not None:
        return declared
    spec = getattr(runner, "output", None)
    is_skill = callable(getattr(runner, "render", None))
    if is_skill and hasattr(spec, "type") and hasattr(spec, "schema"):
        return _from_output_spec(spec)
    has_run = callable(getattr(runner, "run", None))
    target = getattr(type(runner), "run", None) if has_run else runner
    return "scalar" if _annotated_scalar(target) else None


def _from_output_spec(spec: Any) -> Any:
    if spec.type == "text":
        return "scalar"
    schema = spec.schema if isinstance(spec.schema, Mapping) else None
    if spec.type != "json_schema" or schema is None:
        return None  # free JSON: a dict of unknown keys, or a list
    kind = schema.get("type")
    if kind in ("array", "string", "number", "integer", "boolean"):
        return "scalar"
    props = schema.get("properties")
    closed = kind == "object" and schema.get("additionalProperties") is False
    return frozenset(props) if closed and isinstance(props, Mapping) else None


def _annotated_scalar(fn: Any) -> bool:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations: unknown, so trusted
        return False
    hint = hints.get("return")  # None when not annotated: not a type
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and issubclass(origin, _SCALARS)


def _error(step: Step, missing: dict[str, str | None], have: set[str],
           label: str) -> ChainStepError:
    cause = refusal(missing, have)
    err = ChainStepError(
        f"{label}{step.label} would not run: {cause}{did_you_mean(missing, have)}. Checked "
        "before the first step, so nothing was sent", step=step.index, name=step.name)
    err.__cause__ = cause
    return err
