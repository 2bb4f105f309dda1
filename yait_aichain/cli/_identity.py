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
import os
from collections.abc import Mapping
from typing import Any

FINGERPRINT_CHARS = 16
_SHOWN_CHARS = 60


def message_text(message: dict[str, Any]) -> str:
    """The text parts of one normalised message, joined."""
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


def run_identity(skill: Any) -> dict[str, Any]:
    """The readable settings of one ``run`` invocation's Skill."""
    messages = {m["role"]: message_text(m) for m in skill.messages}
    return {
        "runner": type(skill).__name__,
        "model": skill.model.name,
        "provider": skill.model.provider,
        "prompt": messages.get("user"),
        "system": messages.get("system"),
        "options": {**dict(skill.model.options), **dict(skill.options)},
        "output": {"type": skill.output.type, "schema": skill.output.schema},
    }


def fingerprint(identity: Mapping[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:FINGERPRINT_CHARS]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _shown(text: str, start: int, quote: bool) -> str:
    """A window of ``text`` from a little before ``start``, so two long values show where
    they differ rather than their common beginning."""
    begin = max(0, start - 10)
    part = text[begin:begin + _SHOWN_CHARS]
    part = ("..." if begin else "") + part + ("..." if begin + _SHOWN_CHARS < len(text) else "")
    return repr(part) if quote else part


def _change(old: Any, new: Any) -> str:
    if old is None or new is None:
        return f"{'none' if old is None else repr(old)} -> {'none' if new is None else repr(new)}"
    a, b = _text(old), _text(new)
    start = len(os.path.commonprefix([a, b]))  # where they first differ
    quote = isinstance(old, str) or isinstance(new, str)
    return f"{_shown(a, start, quote)} -> {_shown(b, start, quote)}"


def describe_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """``prompt 'Summarise: {text}' -> 'Translate: {text}'; model ...``."""
    if old is None:
        return "the settings changed (the earlier run's details are not in the file)"
    changes = [f"{key} {_change(old.get(key), new[key])}" for key in new
               if old.get(key) != new[key]]
    return "; ".join(changes) or "the settings changed"
