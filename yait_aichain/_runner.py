"""How Pool and Chain call a runner, whatever kind it is: a Tool (a JSON-schema
``parameters`` dict with ``"properties"`` and ``run(**kwargs)``; it receives only the
parameters it declares), anything with ``run(variables)`` (Skill, Chain, user classes), or
a plain callable taking the variables dict.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError


def is_tool(runner: Any) -> bool:
    params = getattr(runner, "parameters", None)
    return (isinstance(params, Mapping) and isinstance(params.get("properties"), Mapping)
            and callable(getattr(runner, "run", None)))


def check_runner(runner: Any, what: str = "runner") -> None:
    """Fail early, before anything runs, when ``runner`` cannot be called."""
    if not (callable(getattr(runner, "run", None)) or callable(runner)):
        raise ConfigurationError(f"{what} must be a Skill, Chain, Tool, an object with "
                                 "run(variables) or a callable taking the variables dict; "
                                 f"got {type(runner).__name__}")


def variables_dict(variables: Any, what: str) -> dict[str, Any]:
    """A copy of ``variables`` (None: empty), or ConfigurationError when it is not a dict."""
    if variables is not None and not isinstance(variables, Mapping):
        raise ConfigurationError(f"{what} must be a dict; got {type(variables).__name__}")
    return dict(variables or {})


def runner_name(runner: Any, default: str = "runner") -> str:
    name = getattr(runner, "name", None)
    if isinstance(name, str) and name:
        return name
    if is_tool(runner):
        return type(runner).__name__
    fn_name = getattr(runner, "__name__", None)
    if isinstance(fn_name, str) and fn_name and fn_name != "<lambda>":
        return fn_name
    return default


def describe_runner(runner: Any) -> str:
    """A short label a user recognises (never a value that could hold a secret): the
    runner's name, else what it is (``Skill(claude-sonnet-4-6)``, ``Chain(3 steps)``)."""
    name = runner_name(runner, default="")
    if name:
        return name
    model_name = getattr(getattr(runner, "model", None), "name", None)
    if isinstance(model_name, str) and model_name:
        return f"{type(runner).__name__}({model_name})"
    steps = getattr(runner, "steps", None)
    if isinstance(steps, (tuple, list)):
        return f"{type(runner).__name__}({len(steps)} step{'s' if len(steps) != 1 else ''})"
    return "lambda" if getattr(runner, "__name__", None) == "<lambda>" else type(runner).__name__


def tool_arguments(runner: Any, variables: Mapping[str, Any]) -> dict[str, Any]:
    """A Tool's keyword arguments: the variables named like its declared parameters."""
    return {p: variables[p] for p in runner.parameters["properties"] if p in variables}


def call_runner(runner: Any, variables: dict[str, Any]) -> Any:
    """Run ``runner`` on ``variables`` (already merged) and return its output."""
    if is_tool(runner):
        return runner.run(**tool_arguments(runner, variables))
    run = getattr(runner, "run", None)
    return run(variables) if callable(run) else runner(variables)


PLAIN = "callable"  # the identity tag of a runner that does not describe itself


def qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def describe(runner: Any) -> Any:
    """A runner's identity, for checkpoint keys (see ``pool._identity``): its ``identity()``
    tagged with its type; for a plain callable only its name, marked as not versioned
    (built-ins excepted: they change only with Python)."""
    hook = getattr(runner, "identity", None)
    if callable(hook) and not isinstance(runner, type):
        return {"type": qualname(type(runner)), "identity": hook()}
    stable = isinstance(runner, types.BuiltinFunctionType)
    return {PLAIN: qualname(runner if callable(runner) else type(runner)), "versioned": stable}


def plain_attributes(obj: Any) -> dict[str, Any]:
    """Public attributes holding plain values: the settings an object's identity includes."""
    return {name: value for name, value in sorted(getattr(obj, "__dict__", {}).items())
            if not name.startswith("_") and (value is None or isinstance(value, (str, int, float)))}


def user_stacklevel() -> int:
    """The warnings stacklevel that points at the first frame outside this package."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("yait_aichain"):
        frame, level = frame.f_back, level + 1
    return level


def reserve_connections(runner: Any, n: int) -> None:
    """Ask a runner with the hook (and the models under it) to keep ``n`` connections
    ready, so that ``max_flows`` threads never overflow a connection pool."""
    hook = getattr(runner, "_reserve_connections", None)
    if callable(hook):
        hook(n)


class ThreadLocalViews:
    """For runners whose views of "the calling thread's latest run" live in ``self._local``
    (a ``threading.local``): a pickled copy starts without them, as they belong to the
    threads that ran them."""

    _local: threading.local

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
