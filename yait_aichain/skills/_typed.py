"""Typed answers for a Skill: read ``output=``, validate each answer, re-ask on failure.

A pydantic class is validated by pydantic (the result is an instance), a JSON-schema dict
by ``jsonschema`` (the result is the dict). A failed answer goes back to the model with its
errors in a follow-up message, up to ``max_reasks`` times; then OutputValidationError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _context
from ..errors import ConfigurationError, InvalidResponseError, OutputValidationError
from ..models._values import Generation, is_model_class, output_spec
from ..models.providers import OutputSpec

__all__ = ["DEFAULT_MAX_REASKS", "TypedOutput", "run_typed"]

#: Re-asks after an invalid answer, unless ``Skill(max_reasks=...)`` says otherwise: one
#: second chance fixes most slips, and each re-ask costs a whole request.
DEFAULT_MAX_REASKS = 1
# The model gets the first few errors; a long list adds tokens, not help.
_ERRORS_SHOWN = 10
_ERRORS_KEPT = 50
# Replies that came back but hold no usable JSON: the model slipped, so asking again can
# fix it (a cut-off reply cannot be fixed by asking again: it is not in this list).
_REASKABLE = frozenset({"invalid_json", "no_tool_output"})
_NO_ANSWER = object()


@dataclass(frozen=True)
class TypedOutput:
    """The output spec a Skill sends, and how its answers are checked."""

    spec: OutputSpec
    model_class: Any = None
    validator: Any = None

    @classmethod
    def read(cls, output: Any) -> TypedOutput:
        """From anything ``output=`` accepts (ConfigurationError when it is not usable)."""
        spec = output_spec(output)
        if is_model_class(output):
            return cls(spec, model_class=output)
        return cls(spec, validator=_schema_validator(spec.schema or {})
                   if spec.type == "json_schema" else None)

    def __reduce__(self) -> tuple[Any, ...]:
        # Validators hold compiled state; a copy on another process builds its own.
        return (TypedOutput.read, (self.model_class or self.spec,))

    @property
    def validates(self) -> bool:
        return self.model_class is not None or self.validator is not None

    @property
    def name(self) -> str:
        return self.model_class.__name__ if self.model_class is not None else self.spec.name

    def check(self, value: Any) -> tuple[Any, list[str]]:
        """``(result, [])`` for a valid answer, ``(None, errors)`` otherwise."""
        if self.model_class is not None:
            return _pydantic_check(self.model_class, value)
        if self.validator is None:
            return value, []
        errors = sorted(self.validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        found = [f"{_where(e.absolute_path)}: {e.message}" for e in errors[:_ERRORS_KEPT]]
        return (None, found) if found else (value, [])


def _schema_validator(schema: dict[str, Any]) -> Any:
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigurationError("a JSON-schema output is validated with jsonschema, which is "
                                 "not installed; pip install jsonschema (or pass a pydantic "
                                 "model class)") from None
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"the output schema is not a valid JSON Schema: "
                                 f"{exc.message}") from None
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def _pydantic_check(model_class: Any, value: Any) -> tuple[Any, list[str]]:
    import pydantic  # present: the class came from it

    try:
        return model_class.model_validate(value), []
    except pydantic.ValidationError as exc:
        return None, [f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                      for e in exc.errors()[:_ERRORS_KEPT]]


def _where(path: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def run_typed(call: Callable[[list[dict[str, Any]]], Generation], messages: list[dict[str, Any]],
              typed: TypedOutput, max_reasks: int, history: list[Any]) -> Any:
    """Call, validate, and re-ask up to ``max_reasks`` times (never for output without a
    schema; a reply without JSON is re-asked too, with no answer to quote); each answer
    goes to ``history`` (None for a reply without JSON). Raises OutputValidationError, or
    the last reply's InvalidResponseError."""
    max_reasks = max_reasks if typed.validates else 0
    for attempt in range(max_reasks + 1):  # at least once: raw and errors are always set
        if attempt:
            _context.current().record_reask()
        answer = _ask(call, messages, history, last=attempt == max_reasks)
        if answer is _NO_ANSWER:
            raw, errors = None, ["$: the reply was not valid JSON"]
        else:
            raw = answer
            value, errors = typed.check(raw)
            if not errors:
                return value
        messages = messages + _follow_up(answer, errors)
    raise OutputValidationError(
        f"the answer does not match {typed.name} after {max_reasks} re-ask"
        f"{'' if max_reasks == 1 else 's'}: " + "; ".join(errors[:3])
        + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""),
        raw=raw, errors=errors, attempts=max_reasks + 1, schema_name=typed.name,
    )


def _ask(call: Callable[[list[dict[str, Any]]], Generation], messages: list[dict[str, Any]],
         history: list[Any], last: bool) -> Any:
    """One call: its parsed output, or _NO_ANSWER for a reply without usable JSON (raised
    as it is on the last attempt, where there is no re-ask left to fix it)."""
    try:
        output = call(messages).output
    except InvalidResponseError as exc:
        if last or exc.reason not in _REASKABLE:
            raise
        output = _NO_ANSWER
    history.append(None if output is _NO_ANSWER else output)
    return output


def _follow_up(raw: Any, errors: list[str]) -> list[dict[str, Any]]:
    """The model's own answer (when there was one to show), then what is wrong with it."""
    shown = "\n".join(f"- {e}" for e in errors[:_ERRORS_SHOWN])
    if len(errors) > _ERRORS_SHOWN:
        shown += f"\n- ... and {len(errors) - _ERRORS_SHOWN} more"
    ask = {"role": "user", "parts": [{"type": "text", "text": (
        "That answer does not match the required schema:\n" + shown
        + "\nReply again with the whole corrected answer as JSON, and nothing else."
    )}]}
    if raw is _NO_ANSWER:
        return [ask]
    said = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    return [{"role": "assistant", "parts": [{"type": "text", "text": said}]}, ask]
