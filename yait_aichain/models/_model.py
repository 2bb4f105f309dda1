"""Model: one provider model behind one thread-safe ``generate()`` call."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .. import __version__, _context
from .._budget import reserve_call, settle_all
from .._checks import NUMBER, checked
from .._messages import estimate_input_tokens, normalise_messages
from .._text import json_bytes, wire_bytes
from .._usage import Usage
from ..errors import APIError, APITimeoutError, ConfigurationError, InvalidResponseError
from ..ratelimit._admit import admit, limits_for
from ..ratelimit._limiter import RateLimit, account_limit, check_rate_limit
from . import registry
from ._caching import CHARS_PER_TOKEN
from ._prices import Price, coerce_price
from ._retry import DEFAULT_MAX_RETRIES, RetryPolicy, call_with_retries, retry_wait_seconds
from ._status import decode_body, error_for_response, request_id, sanitise
from ._transport import RawResponse, Transport
from ._values import DEFAULT_TOTAL_TIMEOUT, Generation, Timeout, _Secret, output_spec
from .providers import ADAPTERS
from .providers._base import OPTION_NAMES, OutputSpec, WireRequest

__all__ = ["Model"]

T = TypeVar("T")
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# What reading an unexpected JSON shape can raise inside an adapter.
_SHAPE_ERRORS = (TypeError, ValueError, LookupError, AttributeError, RecursionError)
_CLIENT_OPTION_NAMES = frozenset({"url", "base_url", "timeout", "verify", "headers"})
_USER_AGENT = f"yait-aichain/{__version__}"


class Model:
    """A model at a provider, called with :meth:`generate`.

    Args:
        name: the model name, e.g. ``"claude-sonnet-4-6"``, ``"gpt-4o-mini"``,
            ``"gemini-2.5-flash"``, or ``"provider/name"`` to force the provider.
        options: generation settings as a dict (``temperature``, ``max_tokens``,
            ``top_p``, ``top_k``, ``stop``, ``seed``); also accepted as keywords.
        client_options: ``url`` (base URL), ``timeout``, ``verify``, ``headers``.
        api_key: the key; else the provider's environment variable is read (then a
            pickled copy reads the environment of the process that unpickles it).
        provider: ``"anthropic"``, ``"openai"``, ``"gemini"`` or ``"openai-compatible"``
            (aliases ``ollama``, ``vllm``, ``llamacpp``, ``lmstudio``, ``local``).
        base_url: overrides ``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL`` /
            ``GEMINI_BASE_URL`` (or google-genai's ``GOOGLE_GEMINI_BASE_URL``) and the
            provider default.
        timeout: seconds for a whole call, retries included, or a :class:`Timeout`; it
            holds in every phase (DNS, connect, TLS, headers, body), however slow.
        max_response_bytes: cap on a response's decoded body (default 32 MiB), enforced
            while decoding; a larger one is a :class:`ResponseTooLargeError`, not retried.
        max_retries: retries on 429/5xx/network errors (default 5); or pass ``retry=``.
        price: overrides the published price: ``(input, output)`` or ``(input, output,
            cache_read, cache_write)`` USD per million tokens, or a :class:`Price`. Batch
            requests cost half of a given price unless it carries its own ``batch``.
        rate_limit: a :class:`~yait_aichain.RateLimit` every request waits for (one
            object given to several models or pools shares its budget).

    Raises:
        ConfigurationError: unknown provider, option or bad value.
        MissingAPIKeyError: no key given and none in the environment.

    A Model is immutable and can be shared between threads; nothing is sent until
    :meth:`generate` (or :meth:`send`).
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
                f"unknown client_options {sorted(unknown)}; use {sorted(_CLIENT_OPTION_NAMES)}")
        base_url = base_url or client.get("base_url") or client.get("url")
        timeout, verify = client.get("timeout", timeout), client.get("verify", verify)
        headers = {**dict(client.get("headers") or {}), **dict(headers or {})}
        alias, self.name = registry.resolve(name.strip(), provider)
        self._provider = registry.normalise_provider(alias)
        registry.warn_near_miss(self.name)
        self._adapter = ADAPTERS[self._provider]
        self.options = self.check_options({**dict(options or {}), **generation_options})
        self.base_url = registry.base_url_for(alias, self._provider, base_url)
        self._key = given_key.resolve(self._adapter, self._provider, self.name)
        # A key read from the environment is not pickled: a copy on another process or
        # host (Pool(executor=...)) reads that machine's own environment instead.
        self._key_from_env = given_key.get() is None
        self.timeout = Timeout.coerce(timeout)
        if retry is not None and max_retries is not None:
            raise ConfigurationError("pass either max_retries= or retry=, not both")
        self.retry = retry or RetryPolicy(
            DEFAULT_MAX_RETRIES if max_retries is None else max_retries)
        self.price = coerce_price(price) or registry.price_for(self.name, self._provider)
        self.rate_limit = check_rate_limit(rate_limit)
        self.max_response_bytes = checked(max_response_bytes, "max_response_bytes", above=True)
        self._extra_headers = {str(k): str(v) for k, v in headers.items()}
        self._verify = verify
        self._connect()

    def _connect(self) -> None:  # what each process builds afresh
        self._auth = self._adapter.auth_headers(self._key.get())
        self._transport = Transport(self.base_url, verify=self._verify)
        self._account = account_limit(self._provider, self.base_url, self._key.get())

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` checked and normalised (``stop`` as a list, None values dropped).

        Raises:
            ConfigurationError: an unknown option or a value of the wrong type.
        """
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise ConfigurationError(f"unknown generation option(s) {sorted(unknown)}; "
                                     f"supported: {sorted(OPTION_NAMES)}")
        # Checked, not converted: an int temperature stays an int in the body and the
        # checkpoint identity.
        for key in ("temperature", "top_p"):
            checked(options.get(key), key, NUMBER, -math.inf, none=True)
        for key in ("max_tokens", "top_k", "seed"):
            checked(options.get(key), key, none=True)
        if isinstance(options.get("stop"), str):
            options["stop"] = [options["stop"]]
        return {k: v for k, v in options.items() if v is not None}

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
            self._key = _Secret(None).resolve(self._adapter, self._provider, self.name)
        self._connect()

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
        body = wire_bytes(wire.body)  # any str: a lone surrogate goes as U+FFFD
        max_tokens = merged.get("max_tokens")
        # The call's budget, set once: Model(timeout=) within what the Pool item has left.
        with _context.scope(timeout=self.timeout.total) as scope:
            # The account's 429 pause, this model's limit and the enclosing Pools' (inside a
            # max_flows="auto" Pool the account's learned limit may count tokens).
            limits = limits_for((self._account, self.rate_limit), scope)
            tpm = scope.observers or any(lim.believed_tokens_per_minute for lim in limits)
            # The Pools' budgets: reserve this call's worst case first (nothing is sent if
            # it does not fit), then settle with what the provider reports.
            holds = reserve_call(scope, self.price, messages, max_tokens, self.name)
            try:
                gen, attempts, waited = self._exchange(
                    scope, limits, "POST", self.base_url + wire.path,
                    self._headers(wire.headers), body, lambda raw: self._parse(raw, spec),
                    prompt=estimate_input_tokens(messages, CHARS_PER_TOKEN) if tpm else 0,
                    max_tokens=max_tokens, max_bytes=self.max_response_bytes)
            except BaseException:
                settle_all(holds, None)
                raise
            settle_all(holds, gen.usage)
            scope.record(gen.usage, attempts, waited)
        return gen if attempts == 1 else dataclasses.replace(gen, attempts=attempts)

    def build_request(self, messages: Any, output: Any = None, **options: Any) -> WireRequest:
        """The request :meth:`generate` would send (path, JSON body, headers without the
        key), built and checked without sending anything.

        Args: as for :meth:`generate`.
        Returns: the :class:`WireRequest`.
        Raises:
            ConfigurationError: an unknown option, a bad value or message, or a schema
                the provider cannot express.
        """
        return self._wire_request(normalise_messages(messages), output_spec(output), options)[0]

    def parse_response(self, body: Any, output: Any = None, *, batch: bool = False) -> Generation:
        """A provider's 2xx response body (bytes, or decoded JSON as Batch APIs return
        it) read as :meth:`generate` reads it, and priced (``batch``: at batch rates).

        Returns: a :class:`Generation` (``attempts`` 1, no ``request_id``).
        Raises:
            InvalidResponseError: the body is not JSON or not of the provider's shape.
        """
        content = body if isinstance(body, bytes) else json_bytes(body)
        return self._parse(RawResponse(200, {}, content), output_spec(output), batch)

    def send(self, method: str, path: str, body: bytes = b"", *,
             headers: Mapping[str, str] | None = None) -> bytes:
        """One authenticated request to the provider's API (``path`` joined to
        :attr:`base_url`), as the Batch APIs need: it waits for the
        account's 429 pause and is retried as :meth:`generate` is.

        Args: ``headers`` go over the defaults (``Content-Type``...), never over the key.
        Returns: the body of the 2xx response, the key cut out of it.
        Raises:
            APIError: the subclass for the status or failure (a redirect is an
                ``InvalidResponseError``).
        """
        return self._exchange(_context.current(), (self._account,), method,
                              self.base_url + path, self._headers(headers or {}), body,
                              self._checked)[0]

    def _exchange(self, scope: _context.Scope, limits: tuple[RateLimit, ...], method: str,
                  url: str, headers: dict[str, str], body: bytes,
                  read: Callable[[RawResponse], T], *, prompt: int = 0,
                  max_tokens: int | None = None, max_bytes: int | None = None
                  ) -> tuple[T, int, float]:
        """Every API request: wait for ``limits``, send, turn the response into a result
        with ``read`` (which raises the typed error), retry what the error says may be
        retried, cut the key out of every error. Returns (result, attempts, seconds spent
        waiting); a failure is recorded in ``scope``."""
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
            scope.record(Usage(), exc.attempts, waited + retry_wait_seconds())
            raise
        return result, attempts, waited + slept

    def _wire_request(self, messages: list[dict[str, Any]], spec: OutputSpec,
                      options: Mapping[str, Any]) -> tuple[WireRequest, dict[str, Any]]:
        merged = {**self.options, **self.check_options(dict(options))} if options else self.options
        return self._adapter.build_request(self.name, messages, spec, merged), merged

    def _headers(self, wire_headers: Mapping[str, str]) -> dict[str, str]:
        """Every header of an API request: ours, the caller's, the adapter's, the key."""
        return {"Content-Type": "application/json", "Accept": "application/json",
                "User-Agent": _USER_AGENT, **self._extra_headers, **wire_headers, **self._auth}

    def _attempt_timeouts(self, scope: _context.Scope) -> tuple[float, float]:
        connect = self.timeout.connect
        read = self.timeout.read if self.timeout.read is not None else (self.timeout.total or 600.0)
        left = scope.remaining()
        if left is not None:
            if left <= 0:
                raise APITimeoutError(
                    "the call's time budget ran out before the request could be sent",
                    provider=self._provider, model=self.name)
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
                request_id=request_id(raw.headers))
        raise error_for_response(raw.status, raw.headers, content, provider=self._provider,
                                 model=self.name)

    def _parse(self, raw: RawResponse, spec: OutputSpec, batch: bool = False) -> Generation:
        content = self._checked(raw)
        rid = request_id(raw.headers)
        data, text = decode_body(content)
        facts: dict[str, Any] = {"status": raw.status, "provider": self._provider,
                                 "model": self.name, "request_id": rid}
        if data is None:
            raise InvalidResponseError(
                f"the {raw.status} response is not JSON: {sanitise(text, 120)!r}",
                reason="malformed", body=sanitise(text), **facts)
        try:
            parsed = self._adapter.parse_response(data, spec)
        except InvalidResponseError as exc:
            for name, value in facts.items():
                setattr(exc, name, value)
            raise
        except _SHAPE_ERRORS as exc:
            # A body of a shape no adapter expects (a list where a dict belongs, ...): a
            # typed, non-retried error, never a bare TypeError that retries as a network blip.
            raise InvalidResponseError(
                f"the {raw.status} response has an unexpected shape "
                f"({type(exc).__name__}: {sanitise(str(exc), 120)})",
                reason="invalid", body=sanitise(text), **facts) from None
        return Generation(parsed.output, self._priced(parsed.usage, batch), 1, rid,
                          parsed.finish_reason)

    def _priced(self, usage: Usage, batch: bool = False) -> Usage:
        """The usage with its cost at this model's live (or batch) price, if one is known."""
        if self.price is None:
            return usage
        price = self.price.for_batch() if batch else self.price
        return dataclasses.replace(usage, cost=price.cost(usage))


