"""The contract every provider adapter meets.

An adapter is pure data work: it turns normalised messages (``_messages``: text parts, and
image parts whose ``source`` is ``{"kind": "url", "url"}`` or ``{"kind": "base64", "data",
"mime_type"}``) and options (:data:`OPTION_NAMES`, checked by Model) into one provider's
request body, and that provider's response body back into an output and a :class:`Usage`.
It never touches the network, reads the environment or sleeps, so it is tested without
sockets. The Model owns keys, base URLs, the transport and retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..._usage import Usage
from ...errors import ConfigurationError
from .._families import sampling_options
from ._common import Tokens, Turns, fail, normalise

#: Generation settings every adapter understands; Model rejects anything else.
OPTION_NAMES = frozenset({"temperature", "max_tokens", "top_p", "top_k", "stop", "seed"})


@dataclass(frozen=True)
class OutputSpec:
    """What the caller wants back: plain ``text``, any ``json`` value, or JSON that
    matches ``schema`` (``json_schema``)."""

    type: str = "text"
    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = True

    def __post_init__(self) -> None:
        if self.type not in ("text", "json", "json_schema"):
            raise ConfigurationError(
                f"output type {self.type!r} is not supported; use 'text', 'json' or 'json_schema'"
            )
        if self.type == "json_schema" and not isinstance(self.schema, dict):
            raise ConfigurationError("output type 'json_schema' needs a 'schema' dict")


TEXT = OutputSpec()


@dataclass(frozen=True)
class WireRequest:
    """One HTTP POST: ``path`` is joined to the base URL; ``headers`` hold no secrets."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    """What an adapter read from a successful response. ``usage.cost`` is left None;
    the Model prices it."""

    output: Any
    usage: Usage
    finish_reason: str | None = None


class _Masked(str):
    __slots__ = ()

    def __repr__(self) -> str:
        return repr("<redacted>")


class Adapter:
    """Base class of the provider adapters. A subclass fills in the table of class
    attributes and writes ``_request`` (the body from checked turns) and ``_parse``
    (the output and finish reason from a JSON object); the rest is shared here."""

    #: registry key, e.g. "anthropic"
    name: ClassVar[str] = ""
    #: environment variables holding the key, first match wins
    key_env: ClassVar[tuple[str, ...]] = ()
    #: environment variable holding a base URL override
    base_url_env: ClassVar[str | None] = None
    #: further variables read when ``base_url_env`` is unset (the official SDK's name)
    base_url_env_also: ClassVar[tuple[str, ...]] = ()
    #: default base URL (no trailing slash)
    default_base_url: ClassVar[str] = ""
    #: False for local servers that need no key
    key_required: ClassVar[bool] = True
    #: the header that carries the key, and what goes before the key in it
    key_header: ClassVar[tuple[str, str]] = ("", "")
    #: our option name -> the provider's field, for the settings sent as given
    option_fields: ClassVar[dict[str, str]] = {}
    #: where the response reports its token counts
    tokens: ClassVar[Tokens]

    def base_url_from_env(self, environ: Any) -> str | None:
        """The base URL the environment sets for this provider, or None."""
        for name in (self.base_url_env, *self.base_url_env_also):
            if name and environ.get(name):
                return str(environ[name])
        return None

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """Headers that carry the key (the only place a key goes); none without a key. Each
        value is sent as is but its repr is masked (tracebacks with locals, debuggers)."""
        header, prefix = self.key_header
        return {header: _Masked(f"{prefix}{api_key}")} if api_key else {}

    def build_request(self, model: str, messages: list[dict[str, Any]], output: OutputSpec,
                      options: dict[str, Any]) -> WireRequest:
        """The request for one generation."""
        return self._request(model, normalise(messages), output, options)

    def parse_response(self, data: Any, output: OutputSpec) -> Parsed:
        """Read a 2xx JSON body. Raise :class:`~yait_aichain.errors.InvalidResponseError`
        (with a ``reason``) when it cannot be used: never return ``""`` for a failure."""
        if not isinstance(data, dict):
            raise fail(self.name, f"the body is not a JSON object ({type(data).__name__})",
                       "invalid")
        out, finish = self._parse(data, output)
        return Parsed(out, self.tokens.usage(data), finish if isinstance(finish, str) else None)

    def error_category(self, status: int, data: Any) -> str | None:
        """What a provider's structured error details say the failure is, when they say
        more than the status does: ``"rate_limit"``, ``"billing"`` or ``"auth"``; None
        leaves the decision to the status (and the billing phrases)."""
        return None

    def error_details(self, data: Any) -> tuple[str | None, float | None]:
        """From an error body: the provider's message, and a retry delay in seconds the
        body asks for (Gemini's ``RetryInfo``), each None when absent."""
        err = data.get("error") if isinstance(data, dict) else None
        message = err.get("message") if isinstance(err, dict) else err
        if not isinstance(message, str) and isinstance(data, dict):
            message = data.get("message")
        return (message if isinstance(message, str) else None), None

    def _settings(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        """The settings this model takes (``models/_families.py``), under their wire names."""
        allowed = sampling_options(self.name, model, options)
        return {wire: allowed[ours] for ours, wire in self.option_fields.items()
                if allowed.get(ours) is not None}

    def _request(self, model: str, turns: Turns, output: OutputSpec,
                 options: dict[str, Any]) -> WireRequest:
        raise NotImplementedError

    def _parse(self, data: dict[str, Any], output: OutputSpec) -> tuple[Any, Any]:
        raise NotImplementedError
