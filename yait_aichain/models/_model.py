"""Model: one provider model behind one thread-safe ``generate()`` call."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .. import _context
from .._budget import reserve_call, settle_all
from .._messages import normalise_messages
from .._text import json_bytes
from .._usage import Usage
from ..errors import (
    APIError,
    APITimeoutError,
    ConfigurationError,
    InvalidResponseError,
    MissingAPIKeyError,
)
from ..ratelimit._admit import admit, limits_for, prompt_tokens
from ..ratelimit._limiter import RateLimit, account_limit, check_rate_limit
from . import registry
from ._retry import RetryPolicy, call_with_retries, retry_wait_seconds
from ._status import decode_body, error_for_response, request_id, sanitise
from ._transport import RawResponse, Transport
from ._prices import Price, coerce_price
from ._values import DEFAULT_TOTAL_TIMEOUT, Generation, Timeout, _Secret, mask_headers, output_spec
from .providers import ADAPTERS
from .providers._base import OPTION_NAMES, OutputSpec, WireRequest

__all__ = ["Model"]

T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# What reading an unexpected JSON shape can raise inside an adapter.
_SHAPE_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError, LookupError,
                 RecursionError)
_CLIENT_OPTION_NAMES = frozenset({"url", "base_url", "timeout", "verify", "headers"})


class Model:
    """A model at a provider, called with :meth:`generate`.

    Args:
        name: the model name, e.g. ``"claude-sonnet-4-6"``, ``"gpt-4o-mini"``,
            ``"gemini-2.5-flash"``, or ``"provider/name"`` to force the provider.
        options: generation settings as a dict (``temperature``, ``max_tokens``,
            ``top_p``, ``top_k``, ``stop``, ``seed``); also accepted as keywords.
        client_options: ``url`` (base URL), ``timeout``, ``verify``, ``headers``.
        api_key: the key; else the provider's environment variable is read. A given key
            travels inside a pickled Model; one read from the environment does not (the
            copy reads the environment of the process that unpickles it).
        provider: ``"anthropic"``, ``"openai"``, ``"gemini"`` or ``"openai-compatible"``
            (aliases ``ollama``, ``vllm``, ``llamacpp``, ``lmstudio``, ``local``).
        base_url: overrides ``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL`` /
            ``GEMINI_BASE_URL`` (or google-genai's ``GOOGLE_GEMINI_BASE_URL``) and the
            provider default.
        timeout: seconds for a whole call, retries included, or a :class:`Timeout`. It
            holds in every phase of a request: DNS, connect, TLS, status line, headers
            and body, however slowly the server drips them.
        max_response_bytes: cap on a response's decoded body (default 32 MiB), enforced
            while decoding; a larger one is a :class:`ResponseTooLargeError`, not retried.
        max_retries: retries on 429/5xx/network errors (default 5); or pass ``retry=``.
        price: overrides the published price: ``(input, output)`` or ``(input, output,
            cache_read, cache_write)`` USD per million tokens, or a :class:`Price`. Batch
            requests cost half of a given price unless it carries its own ``batch``.
        rate_limit: a :class:`~yait_aichain.RateLimit` every request of this model waits
            for; pass one object to several models or pools to share its budget.

    Raises:
        ConfigurationError: unknown provider, option or bad value.
        MissingAPIKeyError: no key given and none in the environment.

    A Model is immutable and can be shared between threads; no call sends anything
    until :meth:`generate`.
    """

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        client_options: Mapping[str, Any] | None = None,
        api_key: str | None = None,
        *,
        provider: str | None = None,
        base_url: str | None = None,
        timeout: Any = DEFAULT_TOTAL_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        price: tuple[float, ...] | Price | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        rate_limit: RateLimit | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        **generation_options: Any,
    ):
        # Wrapped before anything else, so that no frame (this one included) holds the key
        # as a plain str while the checks below may raise.
        given_key, api_key = _Secret(api_key), None
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("Model needs a model name, e.g. Model('claude-sonnet-4-6')")
        client = dict(client_options or {})
        unknown = set(client) - _CLIENT_OPTION_NAMES
        if unknown:
            raise ConfigurationError(
                f"unknown client_options {sorted(unknown)}; use {sorted(_CLIENT_OPTION_NAMES)}"
            )
        base_url = base_url or client.get("base_url") or client.get("url")
        if "timeout" in client:
            timeout = client["timeout"]
        if "verify" in client:
            verify = client["verify"]
        headers = {**dict(client.get("headers") or {}), **dict(headers or {})}

        alias, wire_name = self._resolve_provider(name.strip(), provider)
        self._provider = registry.normalise_provider(alias)
        self.name = wire_name
        registry.warn_near_miss(wire_name)
        self._adapter = ADAPTERS[self._provider]
        self.options = self.check_options({**dict(options or {}), **generation_options})
        self.base_url = self._resolve_base_url(alias, base_url)
        self._key = self._resolve_key(given_key)
        # A key read from the environment is not pickled: a copy on another process or
        # host (Pool(executor=...)) reads that machine's own environment instead.
        self._key_from_env = given_key.get() is None
        self._auth = mask_headers(self._adapter.auth_headers(self._key.get()))
        self.timeout = Timeout.coerce(timeout)
        if retry is None:
            retry = RetryPolicy() if max_retries is None else RetryPolicy(max_retries=max_retries)
        elif max_retries is not None:
            raise ConfigurationError("pass either max_retries= or retry=, not both")
        self.retry = retry
        given = coerce_price(price)
        self.price = given if given is not None else registry.price_for(self.name, self._provider)
        self.rate_limit = check_rate_limit(rate_limit)
        if (isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int)
                or max_response_bytes <= 0):
            raise ConfigurationError(
                f"max_response_bytes must be an int > 0, got {max_response_bytes!r}"
            )
        self.max_response_bytes = max_response_bytes
        self._extra_headers = {str(k): str(v) for k, v in headers.items()}
        self._verify = verify
        self._transport = Transport(self.base_url, verify=verify)
        self._account = account_limit(self._provider, self.base_url, self._key.get())

    # -- construction helpers -------------------------------------------------------------

    @staticmethod
    def _resolve_provider(name: str, provider: str | None) -> tuple[str, str]:
        prefix, bare = registry.split_name(name)
        if provider is not None:
            norm = registry.normalise_provider
            same = prefix is not None and norm(prefix) == norm(provider)
            return provider, bare if same else name
        if prefix is not None:
            return prefix, bare
        inferred = registry.infer_provider(name)
        if inferred is None:
            raise ConfigurationError(
                f"cannot tell which provider serves {name!r}; pass provider= (anthropic, openai, "
                f"gemini, or openai-compatible/ollama/vllm/llamacpp/lmstudio with base_url=) or "
                f"write it as 'provider/{name}'"
            )
        return inferred, name

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` checked and normalised (``stop`` as a list, None values dropped).

        Raises:
            ConfigurationError: an unknown option or a value of the wrong type.
        """
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise ConfigurationError(
                f"unknown generation option(s) {sorted(unknown)}; supported: {sorted(OPTION_NAMES)}"
            )
        for key in ("temperature", "top_p"):
            value = options.get(key)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                raise ConfigurationError(f"{key} must be a number, got {value!r}")
        for key in ("max_tokens", "top_k", "seed"):
            value = options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise ConfigurationError(f"{key} must be a non-negative int, got {value!r}")
        stop = options.get("stop")
        if isinstance(stop, str):
            options["stop"] = [stop]
        return {k: v for k, v in options.items() if v is not None}

    def _resolve_base_url(self, alias: str, base_url: str | None) -> str:
        adapter = self._adapter
        url = base_url
        if not url:
            url = registry.LOCAL_BASE_URLS.get(alias.strip().lower())
        if not url:
            url = adapter.base_url_from_env(os.environ)
        url = url or adapter.default_base_url
        if not url:
            raise ConfigurationError(
                f"provider {self._provider!r} needs base_url=, e.g. 'http://localhost:11434/v1' "
                f"for Ollama or 'http://localhost:8000/v1' for vLLM"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}")
        return url.rstrip("/")

    def _resolve_key(self, given: _Secret) -> _Secret:
        given._normalise("the api_key argument")
        if given.get():
            return given
        for var in self._adapter.key_env:
            secret = _Secret(os.environ.get(var))
            secret._normalise(f"the environment variable {var}")
            if secret.get():
                return secret
        if not self._adapter.key_required:
            return _Secret(None)
        names = " or ".join(self._adapter.key_env) or "the provider's key variable"
        raise MissingAPIKeyError(
            f"no API key for {self._provider} model {self.name!r}: pass api_key=... or set {names}",
            provider=self._provider,
            env_var=self._adapter.key_env[0] if self._adapter.key_env else None,
        )

    # -- public API -----------------------------------------------------------------------

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def temperature(self) -> float | None:
        return self.options.get("temperature")

    @property
    def max_tokens(self) -> int | None:
        return self.options.get("max_tokens")

    def identity(self) -> dict[str, Any]:
        """What this model's answers depend on, for checkpoint keys (never the key, the
        timeout or the retry settings: they change how, not what)."""
        return {"provider": self._provider, "name": self.name, "base_url": self.base_url,
                "options": self.options}

    def __repr__(self) -> str:
        return f"Model({self.name!r}, provider={self._provider!r}, base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Locks, sockets and sessions stay behind; the worker builds its own.
        state = self.__dict__.copy()
        del state["_transport"], state["_account"], state["_auth"]
        if state.get("_key_from_env"):
            state["_key"] = _Secret(None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if state.get("_key_from_env"):
            # As if the Model were built here: a missing required key is MissingAPIKeyError.
            self._key = self._resolve_key(_Secret(None))
        self._auth = mask_headers(self._adapter.auth_headers(self._key.get()))
        self._transport = Transport(self.base_url, verify=self._verify)
        self._account = account_limit(self._provider, self.base_url, self._key.get())

    def _reserve_connections(self, n: int) -> None:
        self._transport.reserve(n)

    def generate(self, messages: Any, output: Any = None, **options: Any) -> Generation:
        """Send one generation request (retrying transient failures) and parse it.

        Args:
            messages: a str, or a list of ``{"role", "parts"}`` messages.
            output: ``"text"`` (default), ``"json"``, ``{"type": "json_schema",
                "schema": {...}}`` or an :class:`OutputSpec`.
            **options: per-call generation settings that override the model's.

        Returns:
            A :class:`Generation` with the text (or parsed JSON) and the usage.

        Raises:
            APIError: the subclass says what failed; ``attempts`` says how many requests.
            CancelledError: the surrounding Pool run was cancelled.
        """
        messages, spec = normalise_messages(messages), output_spec(output)
        wire, merged = self._wire_request(messages, spec, options)
        body = json_bytes(wire.body, separators=(",", ":"))  # any str, lone surrogates too
        max_tokens = merged.get("max_tokens")
        # The call's budget, set once: Model(timeout=) within what the Pool item has left.
        with _context.scope(timeout=self.timeout.total) as scope:
            # Rate limits: the account's 429 pause, this model's and the enclosing Pools'.
            limits = limits_for((self._account, self.rate_limit), scope)
            # (inside a max_flows="auto" Pool the account's learned limit may count tokens)
            tpm = scope.observers or any(lim.believed_tokens_per_minute for lim in limits)
            # The Pools' budgets: reserve this call's worst case first (nothing is sent if
            # it does not fit), then settle with what the provider reports.
            holds = reserve_call(scope, self.price, messages, max_tokens, self.name)
            try:
                gen, attempts, waited = self._exchange(
                    scope, limits, "POST", self.base_url + wire.path,
                    self._headers(wire.headers), body, lambda raw: self._parse(raw, spec),
                    prompt=prompt_tokens(messages) if tpm else 0, max_tokens=max_tokens,
                    max_bytes=self.max_response_bytes)
            except BaseException:
                settle_all(holds, None)
                raise
            settle_all(holds, gen.usage)
            scope.record(gen.usage, attempts, waited)
        return gen if attempts == 1 else dataclasses.replace(gen, attempts=attempts)

    def build_request(self, messages: Any, output: Any = None, **options: Any) -> WireRequest:
        """The request :meth:`generate` would send, built without sending anything.

        Args:
            messages: a str, or a list of ``{"role", "parts"}`` messages.
            output: as for :meth:`generate`.
            **options: per-call generation settings that override the model's.

        Returns:
            The :class:`WireRequest`: ``path`` (joined to :attr:`base_url`), JSON ``body``
            and the provider's extra ``headers`` (never the key).

        Raises:
            ConfigurationError: an unknown option, a bad value or message, or a schema the
                provider cannot express.
        """
        return self._wire_request(normalise_messages(messages), output_spec(output), options)[0]

    def parse_response(self, body: Any, output: Any = None, *, batch: bool = False) -> Generation:
        """A provider's 2xx response body read as :meth:`generate` reads it, and priced.

        Args:
            body: the body as bytes, or already decoded from JSON (a Batch API result).
            output: as for :meth:`generate`.
            batch: price the usage at the model's batch rate.

        Returns:
            A :class:`Generation` (``attempts`` is 1, ``request_id`` None).

        Raises:
            InvalidResponseError: the body is not JSON or not of the provider's shape.
        """
        content = body if isinstance(body, bytes) else json_bytes(body)
        return self._parse(RawResponse(200, {}, content), output_spec(output), batch)

    def send(self, method: str, path: str, body: bytes = b"", *,
             headers: Mapping[str, str] | None = None, url: str | None = None) -> bytes:
        """One authenticated request to the provider's API (the Batch APIs use it),
        waiting for the account's 429 pause and retried as :meth:`generate` retries.

        Args:
            method: the HTTP method.
            path: joined to :attr:`base_url`, unless a whole ``url`` is given.
            body: the request body.
            headers: headers over the defaults (``Content-Type``, ...); never the key's.

        Returns:
            The body of the 2xx response, with the key cut out of it.

        Raises:
            APIError: the subclass for the status or failure; a redirect is an
                ``InvalidResponseError``.
        """
        return self._exchange(_context.current(), (self._account,), method,
                              url or self.base_url + path, self._headers(headers or {}), body,
                              self._checked)[0]

    # -- the one request path -------------------------------------------------------------

    def _exchange(self, scope: _context.Scope, limits: tuple[RateLimit, ...], method: str,
                  url: str, headers: dict[str, str], body: bytes,
                  read: Callable[[RawResponse], T], *, prompt: int = 0,
                  max_tokens: int | None = None, max_bytes: int | None = None
                  ) -> tuple[T, int, float]:
        """Every API request: wait for ``limits``, send, turn the response into a result
        with ``read`` (which raises the typed error), retry what the error says may be
        retried, and cut the key out of every error. Returns (result, attempts, seconds
        waited for limits and between attempts); a failure is recorded in ``scope``."""
        waited = 0.0

        def attempt() -> T:
            nonlocal waited
            scope.check()
            with admit(limits, prompt=prompt, max_tokens=max_tokens,
                       account=self._account) as permit:
                waited += permit.waited
                connect, read_timeout = self._attempt_timeouts(scope)
                try:
                    raw = self._transport.post(url, headers, body, connect_timeout=connect,
                                               read_timeout=read_timeout, method=method,
                                               deadline=scope.deadline, max_bytes=max_bytes)
                    permit.response(raw.status, raw.headers)
                    result = read(raw)
                except APIError as exc:
                    self._key.scrub_error(exc)
                    raise
                if isinstance(result, Generation):
                    permit.used = result.usage.total_tokens
            return result

        try:
            result, attempts, slept = call_with_retries(attempt, self.retry)
        except APIError as exc:
            exc.provider = exc.provider or self._provider
            exc.model = exc.model or self.name
            scope.record(Usage(), exc.attempts, waited + retry_wait_seconds(self.retry))
            raise
        return result, attempts, waited + slept

    def _wire_request(
        self, messages: list[dict[str, Any]], spec: OutputSpec, options: Mapping[str, Any]
    ) -> tuple[WireRequest, dict[str, Any]]:
        merged = {**self.options, **self.check_options(dict(options))} if options else self.options
        return self._adapter.build_request(self.name, messages, spec, merged), merged

    def _headers(self, wire_headers: Mapping[str, str]) -> dict[str, str]:
        """Every header of an API request: ours, the caller's, the adapter's, the key."""
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
            **self._extra_headers,
            **wire_headers,
            **self._auth,
        }

    def _attempt_timeouts(self, scope: _context.Scope) -> tuple[float, float]:
        connect = self.timeout.connect
        read = self.timeout.read if self.timeout.read is not None else (self.timeout.total or 600.0)
        left = scope.remaining()
        if left is not None:
            if left <= 0:
                raise APITimeoutError(
                    "the call's time budget ran out before the request could be sent",
                    provider=self._provider, model=self.name,
                )
            connect, read = min(connect, left), min(read, left)
        return connect, read

    def _checked(self, raw: RawResponse) -> bytes:
        """The body of a 2xx response, else its typed error. A server may echo the key (in
        an error body, or even in an answer): it is cut out before anything reads it."""
        content = self._key.scrub(raw.content)
        if 200 <= raw.status < 300:
            return content
        if 300 <= raw.status < 400:
            # API calls never follow redirects: the key would travel to another host.
            where = raw.headers.get("location", "?")
            raise InvalidResponseError(
                f"unexpected redirect to {sanitise(where, 200)}; check base_url",
                reason="redirect", status=raw.status, provider=self._provider, model=self.name,
                request_id=request_id(raw.headers),
            )
        raise error_for_response(raw.status, raw.headers, content, provider=self._provider,
                                 model=self.name)

    def _parse(self, raw: RawResponse, spec: OutputSpec, batch: bool = False) -> Generation:
        content = self._checked(raw)
        rid = request_id(raw.headers)
        data, text = decode_body(content)
        if data is None:
            raise InvalidResponseError(
                f"the {raw.status} response is not JSON: {sanitise(text, 120)!r}",
                reason="malformed", status=raw.status, provider=self._provider, model=self.name,
                request_id=rid, body=sanitise(text),
            )
        try:
            parsed = self._adapter.parse_response(data, spec)
        except InvalidResponseError as exc:
            exc.status, exc.provider, exc.model = raw.status, self._provider, self.name
            exc.request_id = rid
            raise
        except _SHAPE_ERRORS as exc:
            # A body of a shape no adapter expects (a list where a dict belongs, ...): a
            # typed, non-retried error, never a bare TypeError that retries as a network blip.
            raise InvalidResponseError(
                f"the {raw.status} response has an unexpected shape "
                f"({type(exc).__name__}: {sanitise(str(exc), 120)})",
                reason="invalid", status=raw.status, provider=self._provider, model=self.name,
                request_id=rid, body=sanitise(text),
            ) from None
        return Generation(parsed.output, self._priced(parsed.usage, batch), 1, rid,
                          parsed.finish_reason)

    def _priced(self, usage: Usage, batch: bool = False) -> Usage:
        """The usage with its cost at this model's live (or batch) price, if one is known."""
        if self.price is None:
            return usage
        price = self.price.for_batch() if batch else self.price
        return dataclasses.replace(usage, cost=price.cost(usage))


def _user_agent() -> str:
    from .. import __version__

    return f"yait-aichain/{__version__}"


_USER_AGENT = _user_agent()
