"""The Tool base class: a named function with a JSON-schema ``parameters`` block.

Every ``run`` defined on a subclass is wrapped once, when the class is created
(``__init_subclass__``), so the arguments are checked against ``parameters`` before the
tool does any work, however it is called: by a user, a Chain step or a Pool flow.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .._runner import plain_attributes
from ..errors import ConfigurationError, ToolInputError

__all__ = ["Tool", "check_arguments"]

# JSON-schema type name -> the Python types that satisfy it. bool is an int in Python,
# but not an "integer" or "number" in JSON schema, hence the exclusion in _type_ok.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list, tuple), "object": (Mapping,), "null": (type(None),),
}


def _describe(parameters: Mapping[str, Any]) -> str:
    props = parameters.get("properties") or {}
    required = set(parameters.get("required") or ())
    if not props:
        return "it takes no parameters"
    return "it takes: " + ", ".join(f"{p} (required)" if p in required else p for p in props)


def _type_ok(value: Any, expected: Any) -> bool:
    names = [expected] if isinstance(expected, str) else list(expected or ())
    known = [n for n in names if n in _JSON_TYPES]
    if not known:  # unknown or absent "type": nothing to check
        return True
    if isinstance(value, bool):
        known = [n for n in known if n not in ("integer", "number")]
    return any(isinstance(value, _JSON_TYPES[n]) for n in known)


def check_arguments(tool_name: str, parameters: Mapping[str, Any],
                    arguments: Mapping[str, Any]) -> None:
    """Check the keyword ``arguments`` of one call against a JSON-schema ``parameters``
    block; raise ToolInputError naming an unknown or missing parameter, or a value of the
    wrong JSON type, and listing what the tool takes."""
    props = parameters.get("properties") or {}
    for problem, names in (
        ("unknown", sorted(k for k in arguments if k not in props)),
        ("missing required", [k for k in parameters.get("required") or () if k not in arguments]),
    ):
        if names:
            raise ToolInputError(f"{tool_name}: {problem} parameter(s) "
                                 f"{', '.join(map(repr, names))}; {_describe(parameters)}")
    for key, value in arguments.items():
        spec = props[key]
        if isinstance(spec, Mapping) and not _type_ok(value, spec.get("type")):
            raise ToolInputError(
                f"{tool_name}: parameter {key!r} must be of type {spec.get('type')}, "
                f"got {type(value).__name__}"
            )


def _checked(run: Callable[..., Any]) -> Callable[..., Any]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(inspect.signature(run).parameters.values())[1:]  # skip self
    positional = [p.name for p in params if p.kind in kinds]

    @functools.wraps(run)
    def checked_run(self: Tool, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(positional):
            raise ToolInputError(
                f"{self.name}: too many positional arguments; {_describe(self.parameters)}"
            )
        named = dict(zip(positional, args, strict=False))  # len(args) checked above
        clash = sorted(set(named) & set(kwargs))
        if clash:
            raise ToolInputError(f"{self.name}: parameter(s) {clash} given twice")
        named.update(kwargs)
        check_arguments(self.name, self.parameters, named)
        return run(self, *args, **kwargs)

    checked_run._yait_checked = True  # type: ignore[attr-defined]
    return checked_run


def _check_schema(cls: type) -> None:
    params = getattr(cls, "parameters", None)
    where = f"{cls.__name__}.parameters"
    if not isinstance(params, Mapping) or not isinstance(params.get("properties"), Mapping):
        raise ConfigurationError(
            f'{where} must be a JSON-schema object: {{"type": "object", "properties": {{...}}}}'
        )
    required = params.get("required") or []
    if isinstance(required, str) or not all(isinstance(r, str) for r in required):
        raise ConfigurationError(f"{where}['required'] must be a list of parameter names")
    stray = [r for r in required if r not in params["properties"]]
    if stray:
        raise ConfigurationError(f"{where}: required {stray} not declared in 'properties'")


class Tool:
    """Base class for tools that a Chain or Pool can run.

    Subclasses set ``name`` (default: the class name), ``description`` and
    ``parameters`` (a JSON-schema object) and implement ``run(**kwargs)``. Arguments are
    checked before ``run`` starts: a missing required parameter, an unknown one, or a
    value of the wrong JSON type raises :class:`~yait_aichain.errors.ToolInputError`
    naming it and listing what the tool takes. Chain and Pool pass a tool only the
    parameters it declares.

    A tool instance is shared by every flow of a Pool, so ``run`` must keep per-call
    state in local variables; the base class holds none and can be shared between threads.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}, "required": []}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_schema(cls)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__
        run = cls.__dict__.get("run")
        # Wrap only the run defined on this class; an inherited one is already wrapped.
        if callable(run) and not getattr(run, "_yait_checked", False):
            cls.run = _checked(run)  # type: ignore[method-assign]

    def run(self, **kwargs: Any) -> Any:
        """Do the tool's work. Subclasses implement this."""
        raise NotImplementedError(f"{type(self).__name__}.run() is not implemented")

    def identity(self) -> dict[str, Any]:
        """What the answers depend on, for checkpoint keys: name, parameters, plain settings
        and ``version`` (a class attribute to change when ``run`` changes what it returns)."""
        return {"name": self.name, "parameters": self.parameters,
                "version": getattr(self, "version", None), "settings": plain_attributes(self)}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tool {self.name!r}>"
