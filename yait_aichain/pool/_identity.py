"""What makes a runner's answer what it is: the identity a checkpoint key is built from.

Two runs may share a stored result only when the runner would send the same requests:
the same provider, model, base URL and options, the same prompt template and output spec,
the same steps in the same order. One function computes it for every kind of runner, so
Skill, Chain and Model need no extra method; any other object can define
``_identity()`` returning JSON-able data that changes whenever its results would.

Never in an identity: API keys (only hashes of identities are ever written anyway),
connection state, timeouts or retry settings (they change how, not what).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

from .._runner import is_tool

__all__ = ["canonical_json", "runner_identity"]

# Deeper than any sensible Chain of Chains; guards against a runner that contains itself.
_MAX_DEPTH = 20


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def canonical_json(value: Any, on_unstable: Callable[[str], None] | None = None) -> str:
    """Sorted-key, whitespace-free JSON; values JSON cannot hold become a tagged repr. A
    repr that holds a memory address changes every run, so such items never match a
    stale result (they run again); ``on_unstable(type_name)`` is told when that happens."""

    def fallback(obj: Any) -> Any:
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=lambda v: canonical_json(v, on_unstable))
        if isinstance(obj, (bytes, bytearray)):
            return {"__bytes__": hashlib.sha256(obj).hexdigest()}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {"__type__": _qualname(type(obj)), "fields": dataclasses.asdict(obj)}
        text = repr(obj)
        if on_unstable is not None and _ADDRESS.search(text):
            on_unstable(type(obj).__qualname__)
        return {"__type__": _qualname(type(obj)), "repr": text}

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=fallback)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def runner_identity(runner: Any, _depth: int = 0) -> Any:
    """JSON-able data that changes whenever ``runner`` would answer differently."""
    if _depth > _MAX_DEPTH:
        return {"deep": _qualname(type(runner))}
    d = _depth + 1
    hook = getattr(runner, "_identity", None)
    if callable(hook) and not isinstance(runner, type):
        return {"custom": _qualname(type(runner)), "identity": hook()}

    from ..chain import Chain
    from ..models import Model
    from ..ratelimit._admit import LimitedRunner
    from ..skills import Skill
    from ._pool import Pool

    if isinstance(runner, LimitedRunner):  # a rate limit changes when, not what
        return runner_identity(runner.runner, d)
    if isinstance(runner, Model):
        return {"model": {"provider": runner.provider, "name": runner.name,
                          "base_url": runner.base_url, "options": runner.options}}
    if isinstance(runner, Skill):
        return {"skill": {"model": runner_identity(runner.model, d), "messages": runner.messages,
                          "output": dataclasses.asdict(runner.output), "options": runner.options,
                          "variables": runner.variables}}
    if isinstance(runner, Chain):
        steps = [
            {"runner": runner_identity(step.runner, d), "output_key": step.output_key,
             "input_map": dict(step.input_map)}
            for step in runner._steps
        ]
        return {"chain": {"steps": steps, "variables": runner.variables,
                          "on_step_error": runner.on_step_error}}
    if isinstance(runner, Pool):
        return {"pool": runner_identity(runner.runner, d)}
    if is_tool(runner):
        return {"tool": _qualname(type(runner)), "name": getattr(runner, "name", None),
                "parameters": runner.parameters, "code": _code_of(type(runner).run)}
    if isinstance(runner, (types.BuiltinFunctionType, type)):
        return {"callable": _qualname(runner)}
    if isinstance(runner, functools.partial):
        return {"partial": runner_identity(runner.func, d), "args": list(runner.args),
                "keywords": dict(runner.keywords)}
    if inspect.ismethod(runner):
        return {"method": _qualname(runner.__func__), "code": _code_of(runner.__func__),
                "self": runner_identity(runner.__self__, d)}
    if isinstance(runner, types.FunctionType):
        return {"function": _qualname(runner), "code": _code_of(runner),
                "defaults": [runner.__defaults__, runner.__kwdefaults__],
                "uses": _referenced_runners(runner, d)}
    if hasattr(runner, "generate") and hasattr(runner, "name"):  # a model stand-in
        return {"object": _qualname(type(runner)), "attributes": _plain_attributes(runner)}
    method = getattr(type(runner), "run", None) or type(runner).__call__
    return {"object": _qualname(type(runner)), "code": _code_of(method),
            "attributes": _plain_attributes(runner)}


def _plain_attributes(obj: Any) -> dict[str, Any]:
    """Public attributes holding plain values (names, numbers, flags) and nested runners."""
    found: dict[str, Any] = {}
    for name, value in sorted(getattr(obj, "__dict__", {}).items()):
        if name.startswith("_"):
            continue
        if value is None or isinstance(value, (str, int, float, bool)):
            found[name] = value
    return found


def _code_of(fn: Any) -> str | None:
    """A fingerprint of a function's code, so an edited function is a new runner."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    digest = hashlib.sha256()
    _feed(digest, code)
    return digest.hexdigest()[:16]


def _feed(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed(digest, const)  # a nested function or lambda; its repr holds an address
        else:
            digest.update(_const_repr(const).encode())


def _const_repr(const: Any) -> str:
    # frozenset order follows string hashing, which changes between interpreter runs.
    if isinstance(const, frozenset):
        return "frozenset(" + ",".join(sorted(map(_const_repr, const))) + ")"
    if isinstance(const, tuple):
        return "(" + ",".join(map(_const_repr, const)) + ")"
    return repr(const)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _referenced_runners(fn: types.FunctionType, depth: int) -> dict[str, Any]:
    """Runners a plain function reaches through globals or its closure: ``lambda v:
    skill.run(v)`` must change identity when ``skill``'s prompt does."""
    from ..chain import Chain
    from ..models import Model
    from ..skills import Skill
    from ._pool import Pool

    kinds = (Chain, Model, Pool, Skill)
    scope: dict[str, Any] = {}
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                scope[name] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
    found = {}
    globals_: Mapping[str, Any] = fn.__globals__
    for name in sorted(_names(fn.__code__)):
        value = scope[name] if name in scope else globals_.get(name)
        if isinstance(value, kinds):
            found[name] = runner_identity(value, depth + 1)
    return found
