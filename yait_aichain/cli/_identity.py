"""What a ``run`` produced its answers with, recorded in the output file itself.

Every result line carries ``"run": "<fingerprint>"``; the first line each invocation
writes also carries ``"run_identity"``, the readable settings behind the fingerprint
(runner, model, provider, prompt, system, generation options, output format). Both survive
appending, and nothing else has to travel with the file. ``--resume`` compares the
fingerprint of every DONE line with this invocation's: a DONE line from other settings is
never silently reused, the run refuses and says what changed, and ``--force`` runs those
items again.

Not in the identity: the base URL and the key (where a request goes, not what it asks),
concurrency, timeouts and rate limits (how, not what). Never a variable value or a key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

FINGERPRINT_CHARS = 16
_SHOWN_CHARS = 60


def run_identity(skill: Any) -> dict[str, Any]:
    """The readable settings of one ``run`` invocation's Skill."""
    messages = {m["role"]: "".join(p.get("text", "") for p in m["parts"])
                for m in skill.messages}
    output = skill.output
    return {
        "runner": type(skill).__name__,
        "model": skill.model.name,
        "provider": skill.model.provider,
        "prompt": messages.get("user"),
        "system": messages.get("system"),
        "options": {**dict(skill.model.options), **dict(skill.options)},
        "output": {"type": output.type, "schema": output.schema},
    }


def fingerprint(identity: Mapping[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return repr(text) if isinstance(value, str) else text


def describe_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """``prompt 'Summarise: {text}' -> 'Translate: {text}'; model ...``."""
    if old is None:
        return "the settings changed (the earlier run's details are not in the file)"
    changes = []
    for key in new:
        if old.get(key) != new.get(key):
            changes.append(f"{key} {_shown(old.get(key))} -> {_shown(new.get(key))}")
    return "; ".join(changes) or "the settings changed"
