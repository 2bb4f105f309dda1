"""Walking a Chain before it runs: every step's variables must come from somewhere.

A step may read the run's variables (the item's keys and shared variables), the Chain's
defaults, and what earlier steps store: a step whose runner returns a scalar stores it
under its ``output_key``; one that returns a dict merges the dict's keys. What a runner
returns is known statically for a text Skill, a JSON-schema Skill with a closed object
schema, a runner that declares ``output_keys``, and a callable or ``run`` method whose
return annotation is a scalar type. For any other step the output cannot be known, so the
walk trusts it: from there on nothing can be proved missing and nothing is reported.

The point is money: a misspelt ``{sumary}`` in step 2 used to be found only after every
item had paid for step 1.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ChainStepError, TemplateError
from ._steps import Step, describe_missing, missing_variables

# Return annotations that mean "stored under output_key", never merged as a dict.
_SCALARS = (str, int, float, bool, bytes, list, tuple, type(None))


def check_steps(
    steps: tuple[Step, ...], known: Iterable[str], label: str = ""
) -> frozenset[str] | None:
    """Raise ChainStepError at the first step that needs a variable nothing provides.

    Returns the variables known after the last step, or None once a step's output could
    not be known (the rest of the walk trusted it).
    """
    have = set(known)
    for step in steps:
        inner = _nested_steps(step)
        if inner is not None:
            inputs = have | set(step.input_map)
            after = check_steps(inner[0], inputs | inner[1], f"{label}{step.label} > ")
            returned = None if after is None else _last_step_keys(inner[0])
        else:
            missing = missing_variables(step, dict.fromkeys(have))
            if missing:
                raise _error(step, missing, have, label)
            returned = _returns(step.runner)
        added = _stored(step, returned)
        if added is None:
            return None
        have |= added
    return frozenset(have)


def _nested_steps(step: Step) -> tuple[tuple[Step, ...], set[str]] | None:
    if step.kind != "chain":
        return None
    runner = step.runner
    return runner._steps, set(runner.variables)


def _last_step_keys(steps: tuple[Step, ...]) -> Any:
    """What a nested Chain returns: its last step's output."""
    last = steps[-1]
    inner = _nested_steps(last)
    return None if inner is not None else _returns(last.runner)


def _stored(step: Step, returned: Any) -> set[str] | None:
    """The variable names a step adds: its output_key for a scalar, the keys of a dict
    output, None when unknown."""
    if returned == "scalar":
        return {step.output_key}
    if isinstance(returned, frozenset):
        return set(returned)
    return None


def _returns(runner: Any) -> Any:
    """``"scalar"``, a frozenset of dict keys, or None (unknown)."""
    declared = getattr(runner, "output_keys", None)
    if isinstance(declared, (set, frozenset, tuple, list)) and all(
        isinstance(k, str) for k in declared
    ):
        return frozenset(declared)
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
    closed = schema.get("additionalProperties") is False
    if kind == "object" and isinstance(props, Mapping) and closed:
        return frozenset(props)
    return None


def _annotated_scalar(fn: Any) -> bool:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations: unknown, so trusted
        return False
    hint = hints.get("return", inspect.Signature.empty)
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and issubclass(origin, _SCALARS)


def _error(
    step: Step, missing: dict[str, str | None], have: set[str], label: str
) -> ChainStepError:
    text = describe_missing(missing, dict.fromkeys(have))
    hints = []
    for name in sorted(missing):
        close = difflib.get_close_matches(name, sorted(have), n=1)
        if close:
            hints.append(f"did you mean {close[0]!r} for {name!r}?")
    hint = f" ({'; '.join(hints)})" if hints else ""
    cause = TemplateError(text, missing=sorted(missing))
    err = ChainStepError(
        f"{label}{step.label} would not run: {text}{hint}. Checked before the first step, "
        "so nothing was sent",
        step=step.index, name=step.name,
    )
    err.__cause__ = cause
    return err
