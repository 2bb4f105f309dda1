"""Skill: a prompt template plus a model.

The static prefix (everything before the first ``{variable}``) is marked for the prompt
cache once it reaches the model's minimum cacheable length: the text part holding its end
is split there and the first half flagged ``"cache": True``, which the provider adapters
turn into ``cache_control`` (Anthropic) or a ``prompt_cache_key`` (OpenAI); the split
changes no token of the prompt.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from .. import _context
from .._checks import checked
from .._messages import Messages, normalise_messages, text_parts
from .._runner import ThreadLocalViews, describe, reserve_connections, variables_dict
from .._template import first_placeholder, missing_error, placeholders, render
from .._usage import Usage
from ..errors import ConfigurationError
from ..models._caching import CHARS_PER_TOKEN, MARKING_PROVIDERS, min_cacheable_tokens
from ..models._model import Model
from ._typed import DEFAULT_MAX_REASKS, TypedOutput, run_typed

__all__ = ["Skill"]


class Skill(ThreadLocalViews):
    """A prompt template plus a model: ``skill.run(variables)`` fills the template and
    returns the model's answer (a str, a dict/list for JSON output, or an instance of the
    pydantic class given as ``output=``).

    Args:
        model: the :class:`~yait_aichain.models.Model` to call.
        input: ``{"messages": [{"role": ..., "parts": [...]}]}``; parts are strings or
            typed dicts, and text parts may hold ``{name}`` placeholders.
        output: ``{"format": {"type": "text" | "json" | "json_schema", "schema": ...}}``,
            simply ``"json"``, or a pydantic (v2) model class. A schema's answers are
            validated (pydantic for a class, jsonschema for a dict) and re-asked on failure.
        max_reasks: how many times an answer that fails the schema is sent back with its
            errors (default 1); then :class:`~yait_aichain.errors.OutputValidationError`.
        variables: default values for placeholders; run-time variables win.
        options: generation settings for this Skill (override the model's).
        prompt, system: shorthands for a one-user-message (and system) template.
        cache: ``"auto"`` (default) marks the static prefix for the provider's prompt cache
            (see the module docs; a Pool then runs one item first so the others read the
            cache it wrote); ``False`` sends the prompt unmarked.

    Raises:
        ConfigurationError: unusable messages, output or options (UnsupportedSchemaError
            when the model's provider cannot express the schema).

    One Skill may serve many threads at once (a Pool shares it between its flows): a run
    keeps its state local. ``last_usage`` and ``history`` describe the latest run made
    directly *by the calling thread*; a ``pool.run()`` leaves them as they were (its items
    ran on the Pool's threads): a Pool run's usage is on its records, ``pool.usage`` and
    its report.
    """

    def __init__(self, model: Model, input: Any = None, output: Any = None,
                 variables: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None, name: str | None = None,
                 description: str | None = None, *, prompt: str | None = None,
                 system: str | None = None, max_reasks: int = DEFAULT_MAX_REASKS,
                 cache: Any = "auto"):
        if not callable(getattr(model, "generate", None)):
            raise ConfigurationError(f"Skill needs a Model, got {type(model).__name__}")
        if input is not None and (prompt is not None or system is not None):
            raise ConfigurationError("pass either input= or prompt=/system=, not both")
        if input is None:
            if prompt is None:
                raise ConfigurationError("Skill needs input={'messages': [...]} or prompt='...'")
            input = [{"role": "user", "parts": [prompt]}]
            if system is not None:
                input.insert(0, {"role": "system", "parts": [system]})
        self.model = model
        self._messages = normalise_messages(input)
        self._typed = TypedOutput.read(output)
        self.output = self._typed.spec
        self.max_reasks = checked(max_reasks, "max_reasks")
        self.variables = dict(variables or {})
        self.options = dict(options or {})
        check = getattr(model, "check_options", None)
        if self.options and callable(check):
            check(dict(self.options))  # fail now, not on the first item
        self.name = name
        self.description = description
        self._placeholders = frozenset(name for part in text_parts(self._messages)
                                       for name in placeholders(part["text"]))
        self._local = threading.local()
        if cache not in ("auto", False, True, None):
            raise ConfigurationError(f"cache must be 'auto' or False, got {cache!r}")
        self.cache = "auto" if cache in ("auto", True) else False
        self._cache_at = cache_point(self._messages, model) if self.cache else None
        if self.output.type == "json_schema" and isinstance(model, Model):
            # The request this Skill will send, built once without sending it: a schema the
            # provider cannot express fails here, before any item runs.
            model.build_request(self._messages, self.output)

    def _revive_output(self, value: Any) -> Any:
        """A result read back from a checkpoint, as :meth:`run` would have returned it."""
        cls = self._typed.model_class
        return value if cls is None else cls.model_validate(value)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """A copy of the normalised message template."""
        return copy.deepcopy(self._messages)

    @property
    def caches_prefix(self) -> bool:
        """True when runs mark a static prefix for the prompt cache (a Pool warms it first)."""
        return self._cache_at is not None

    @property
    def required_variables(self) -> frozenset[str]:
        """Placeholder names that a run must supply (those without a default)."""
        return self._placeholders - self.variables.keys()

    @property
    def last_usage(self) -> Usage | None:
        """Usage of this thread's latest run, re-asks included (None before the first)."""
        return getattr(self._local, "usage", None)

    @property
    def history(self) -> list[Any] | None:
        """Outputs of this thread's latest run (None before the first)."""
        return getattr(self._local, "history", None)

    def identity(self) -> dict[str, Any]:
        """What this Skill's answers depend on, for checkpoint keys."""
        return {"model": describe(self.model), "messages": self._messages,
                "output": dataclasses.asdict(self.output), "options": self.options,
                "variables": self.variables}

    def __repr__(self) -> str:
        model = getattr(self.model, "name", type(self.model).__name__)
        named = f", name={self.name!r}" if self.name else ""
        return f"Skill(model={model!r}{named}, variables={sorted(self.required_variables)})"

    def _reserve_connections(self, n: int) -> None:
        reserve_connections(self.model, n)

    def render(self, variables: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The messages this Skill would send for ``variables``, without sending them
        (TemplateError, naming every missing variable, when a placeholder has no value)."""
        merged = {**self.variables, **(variables or {})}
        missing = self._placeholders - merged.keys()
        if missing:
            raise missing_error(missing, merged.keys())
        return render_messages(self._messages, merged, self._cache_at)

    def run(self, variables: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
        """Fill the template with ``variables`` (a dict) and call the model; ``overrides``
        are generation settings for this call only. Returns a str, the parsed JSON for JSON
        output, or an instance of the ``output=`` class.

        Raises:
            TemplateError: before any request, when a placeholder has no value.
            APIError: the call failed (see :mod:`yait_aichain.errors`).
            OutputValidationError: no answer matched the schema, re-asks included.
        """
        messages = self.render(variables_dict(variables, "Skill.run variables"))
        options = {**self.options, **overrides}
        # Usage has one channel: each model call adds to the tally of every scope it runs
        # in, so this run's tally and an enclosing Chain step's or Pool item's count it once.
        tally = _context.Tally()
        history: list[Any] = []
        try:
            with _context.scope(tally=tally):
                return run_typed(
                    lambda msgs: self.model.generate(msgs, output=self.output, **options),
                    messages, self._typed, self.max_reasks, history)
        finally:
            self._local.usage, self._local.history = tally.usage, history


#: (message index, part index, characters of that part's template in the prefix)
Point = tuple[int, int, int]


def cache_point(messages: list[dict[str, Any]], model: Any) -> Point | None:
    """Where the static prefix of ``messages`` ends, if it is worth marking for ``model``."""
    provider, name = getattr(model, "provider", None), getattr(model, "name", "")
    if provider not in MARKING_PROVIDERS:
        return None
    texts = [(mi, pi, part["text"]) for mi, message in enumerate(messages)
             for pi, part in enumerate(message["parts"]) if part["type"] == "text"]
    point: Point | None = None
    chars = 0
    for mi, pi, text in texts:
        cut = first_placeholder(text)
        if cut is None or cut > 0:
            size = len(text) if cut is None else cut
            point, chars = (mi, pi, size), chars + size
        if cut is not None:
            break
    if point is None or chars // CHARS_PER_TOKEN < min_cacheable_tokens(provider, name):
        return None
    return point


def render_messages(messages: list[dict[str, Any]], variables: Mapping[str, Any],
                    point: Point | None = None) -> Messages:
    """The messages rendered with ``variables``; the part at ``point`` split and flagged."""
    out = Messages()
    for mi, message in enumerate(messages):
        parts: list[dict[str, Any]] = []
        for pi, part in enumerate(message["parts"]):
            if part["type"] != "text":
                parts.append(copy.deepcopy(part))
            elif point is None or (mi, pi) != point[:2]:
                parts.append({"type": "text", "text": render(part["text"], variables)})
            else:
                head, tail = part["text"][:point[2]], part["text"][point[2]:]
                parts.append({"type": "text", "text": render(head, variables), "cache": True})
                if tail:
                    parts.append({"type": "text", "text": render(tail, variables)})
        out.append({"role": message["role"], "parts": parts})
    return out
