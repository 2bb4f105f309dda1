"""Safe ``{name}`` substitution for prompt templates.

Only a bare ``{identifier}`` is a placeholder, replaced by the variable's value (a str as
is, anything else as JSON); ``{{`` and ``}}`` are literal braces. Everything else
(``{x.y}``, ``{x[0]}``, ``{x!r}``, ``{"a": 1}``, a lone brace) stays as written: we never
call ``str.format``, whose attribute walking lets a template read secrets. One pass: a
substituted value is never scanned again, so an answer holding ``{api_key}`` stays as is.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import TemplateError

# One alternation, scanned left to right: an escaped brace pair wins over a placeholder,
# so "{{x}}" renders as the literal "{x}".
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(template: str) -> set[str]:
    return {m.group(1) for m in _TOKEN.finditer(template) if m.group(1)}


def json_data(value: Any) -> Any:
    """``value`` as data JSON can hold: a pydantic instance (a typed Skill's answer) is
    dumped, enums as values and dates as ISO text; anything else is returned as it is."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    return value


def _default(value: Any) -> Any:
    data = json_data(value)
    return str(value) if data is value else data


def first_placeholder(template: str) -> int | None:
    """Where the template's first placeholder starts, or None when it has none."""
    return next((m.start() for m in _TOKEN.finditer(template) if m.group(1)), None)


def render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        raise TemplateError("a template variable holds bytes; decode it to str first "
                            "(e.g. value.decode('utf-8'))")
    try:
        return json.dumps(value, ensure_ascii=False, default=_default)
    except RecursionError:
        raise TemplateError("a template variable is nested too deeply to render; "
                            "flatten it first") from None
    except (TypeError, ValueError):  # e.g. circular structures
        return str(value)


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Substitute ``variables`` into ``template`` (TemplateError, listing every missing
    name, when a placeholder has no variable)."""
    missing = placeholders(template) - variables.keys()
    if missing:
        raise missing_error(missing, variables.keys())

    def replace(match: re.Match[str]) -> str:  # "{{" -> "{", "}}" -> "}"
        name = match.group(1)
        return match.group(0)[0] if name is None else render_value(variables[name])

    return _TOKEN.sub(replace, template)


def did_you_mean(names: Iterable[str], available: Iterable[str]) -> str:
    """``" (did you mean 'summary' for 'sumary'?)"`` for each near miss, or ``""``."""
    have = sorted(set(available))
    hints = [f"did you mean {close[0]!r} for {n!r}?" for n in sorted(names)
             if (close := difflib.get_close_matches(n, have, n=1))]
    return f" ({'; '.join(hints)})" if hints else ""


def missing_error(missing: Iterable[str], available: Iterable[str] = ()) -> TemplateError:
    """The error for placeholders without a value, with "did you mean" for a near miss
    among ``available`` (the names that do have one)."""
    names = sorted(missing)
    one = len(names) == 1
    return TemplateError(
        f"missing template {'variable' if one else 'variables'} "
        f"{', '.join(repr(n) for n in names)}{did_you_mean(names, available)}: pass "
        f"{'it' if one else 'them'} in run(variables), the item, or the Skill's variables=",
        missing=names,
    )
