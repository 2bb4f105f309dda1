"""What makes a runner's answer what it is: the identity a checkpoint key is built from.

Runners describe themselves: Model, Skill, Chain, Tool and Pool have an ``identity()``
returning JSON-able data that changes whenever their answers would (and any object may
define one). A plain callable cannot tell when its code changed meaning, so checkpointing
one needs ``checkpoint_key=``; nothing is guessed from bytecode. Never in an identity: API
keys, connection state, timeouts or retry settings (they change how, not what).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from .._runner import PLAIN, describe, qualname
from ..errors import ConfigurationError

__all__ = ["canonical_json", "runner_identity"]

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
            return {"__type__": qualname(type(obj)), "fields": dataclasses.asdict(obj)}
        text = repr(obj)
        if on_unstable is not None and _ADDRESS.search(text):
            on_unstable(type(obj).__qualname__)
        return {"__type__": qualname(type(obj)), "repr": text}

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=fallback)


def runner_identity(runner: Any, key: str | None = None) -> Any:
    """The identity a checkpoint is keyed by: ``runner`` described, plus ``key``.

    Raises:
        ConfigurationError: a part of the runner is a plain callable (or an object
            without ``identity()``) and no ``key`` was given.
    """
    described = describe(runner)
    if key is not None:
        return {"runner": described, "checkpoint_key": key}
    plain = sorted(_unversioned(described))
    if plain:
        raise ConfigurationError(
            f"checkpoint= cannot tell when stored results of {', '.join(plain)} are stale: "
            f"a plain callable does not describe itself. Pass checkpoint_key='v1' to the Pool "
            f"(and change it whenever the function's answers would change), or give the "
            f"runner an identity() method returning what its answers depend on")
    return described


def _unversioned(data: Any) -> set[str]:
    if isinstance(data, dict):
        if data.get("versioned") is False and PLAIN in data:
            return {data[PLAIN]}
        return set().union(*map(_unversioned, data.values())) if data else set()
    if isinstance(data, list):
        return set().union(*map(_unversioned, data)) if data else set()
    return set()
