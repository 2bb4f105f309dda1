"""Batch API calls for one Model, through :meth:`Model.send`: its base URL, key, headers,
transport and retry policy, so a 429 or 5xx while creating or polling a batch is retried
exactly like a live call, and the key only ever travels in the adapter's auth header.
"""

from __future__ import annotations

from typing import Any

from .._text import json_bytes
from ..errors import InvalidResponseError
from ..models._model import Model
from ..models._status import decode_body, sanitise

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
        payload = raw if raw is not None else (
            b"" if body is None else json_bytes(body, separators=(",", ":")))
        headers = {**self._wire_headers, "Content-Type": content_type}
        return self.model.send(method, path, payload, headers=headers, url=url)

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """As :meth:`call`, decoding a JSON body."""
        data, text = decode_body(self.call(method, path, body, **kwargs))
        if data is None:
            raise InvalidResponseError(
                f"the batch endpoint {path!r} answered with something that is not JSON: "
                f"{sanitise(text, 120)!r}", reason="malformed", status=200,
                provider=self.model.provider, model=self.model.name)
        return data
