"""Batch API calls for one Model: its base URL, key, headers, transport and retry policy.

Every call goes through the Model's own transport (the only HTTP client) and its retry
policy, so a 429 or 5xx while creating or polling a batch is retried exactly like a live
call, and the key only ever travels in the adapter's auth header.
"""

from __future__ import annotations

from typing import Any

from .. import _context
from .._text import json_bytes
from ..errors import InvalidResponseError
from ..models._model import Model
from ..models._retry import call_with_retries
from ..models._status import decode_body, error_for_response, sanitise
from ..ratelimit._admit import admit

__all__ = ["BatchHttp"]

class BatchHttp:
    """Sends the Batch API requests of one model."""

    def __init__(self, model: Model, wire_headers: dict[str, str] | None = None):
        self.model = model
        self._wire_headers = dict(wire_headers or {})

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             content_type: str = "application/json", url: str | None = None) -> bytes:
        """One call (``path`` joined to the base URL, or a whole ``url``); returns the
        body of its 2xx response, retrying transient failures as live calls do.

        Raises:
            APIError: the subclass for the status; ``InvalidResponseError`` for a redirect.
        """
        model = self.model
        payload = raw if raw is not None else (
            b"" if body is None else json_bytes(body, separators=(",", ":")))
        headers = model._headers(self._wire_headers)
        headers["Content-Type"] = content_type
        target = url or model.base_url + path

        def attempt() -> bytes:
            # The account's 429 pause holds batch calls too, and their 429s pause it.
            with admit((model._account,)):
                connect, read = model._attempt_timeouts(_context.current())
                response = model._transport.post(
                    target, headers, payload, connect_timeout=connect, read_timeout=read,
                    deadline=None, method=method)
                # As on the live path: a server that echoes the key cannot put it into an
                # error, a record or a log.
                content = model._key.scrub(response.content)
                if 200 <= response.status < 300:
                    return content
                if 300 <= response.status < 400:
                    raise InvalidResponseError(
                        f"unexpected redirect from the batch endpoint {path!r}; check base_url",
                        reason="redirect", status=response.status, provider=model.provider,
                        model=model.name)
                raise error_for_response(
                    response.status, response.headers, content, provider=model.provider,
                    model=model.name, error_details=model._adapter.error_details)

        return call_with_retries(attempt, model.retry)[0]

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """As :meth:`call`, decoding a JSON body."""
        content = self.call(method, path, body, **kwargs)
        data, text = decode_body(content)
        if data is None:
            raise InvalidResponseError(
                f"the batch endpoint {path!r} answered with something that is not JSON: "
                f"{sanitise(text, 120)!r}", reason="malformed", status=200,
                provider=self.model.provider, model=self.model.name)
        return data

