"""The exception tree of yait_aichain.

``except AichainError`` catches every error the library raises on purpose. Errors from
``requests`` and ``tenacity`` are translated at one boundary each (the original is kept in
``__cause__``). A class also inherits a built-in exception where the error truly is one
(a bad argument is also a ``ValueError``, a timeout also a ``TimeoutError``).

    AichainError
    ├── ConfigurationError (ValueError) ......... bad argument or setting; fix the call
    │   ├── MissingAPIKeyError ................... no key given nor in the environment
    │   └── UnsupportedSchemaError ............... the provider cannot express this output schema
    ├── TemplateError (ValueError) .............. a {variable} the prompt needs is missing
    ├── OutputValidationError (ValueError) ...... the answer never matched the output schema
    ├── APIError ................................ a provider call failed (status, provider, ...)
    │   ├── AuthenticationError .................. 401/403: the key is wrong or lacks access
    │   ├── InsufficientCreditsError ............. 402 or a billing body: top up, never retried
    │   ├── InvalidRequestError .................. 400/422: the request itself is wrong
    │   │   └── RequestTooLargeError ............. 413: shorten the input
    │   ├── NotFoundError ........................ 404: unknown model or endpoint
    │   ├── RateLimitError ....................... 429: slow down (see retry_after)
    │   ├── ServerError .......................... 5xx/529: the provider failed; safe to retry
    │   ├── InvalidResponseError ................. a 2xx we cannot use (empty, refusal, bad JSON)
    │   ├── ResponseTooLargeError (also FetchError) the decoded body is over the cap
    │   ├── BatchError ........................... a provider batch failed or gave no result
    │   │   └── BatchExpiredError ................ the batch window closed before the request ran
    │   └── NetworkError ......................... no usable HTTP response (DNS, refused, reset)
    │       └── APITimeoutError (TimeoutError) ... the call's time budget ran out
    ├── ItemTimeoutError (TimeoutError) ......... a Pool item's time budget ran out
    ├── CancelledError .......................... work stopped before it finished (Ctrl-C, ...)
    │   └── BatchCancelledError .................. the provider batch was cancelled
    ├── ChainStepError .......................... a Chain step failed (step index and name)
    ├── RemoteError ............................. an item failed on another process (Pool executor)
    └── ToolError ............................... a Tool could not do its job
        ├── ToolInputError (ValueError) .......... missing or bad tool arguments
        ├── UnsafeURLError (ValueError) .......... the URL points somewhere not allowed
        ├── UnsafePathError (PermissionError) .... a local file not allowed (no root= or outside it)
        ├── FetchError ........................... the page could not be fetched
        │   ├── FetchTimeoutError (TimeoutError) . the fetch ran out of time
        │   ├── ResponseTooLargeError ............ the body is over the size cap (see above)
        │   └── UnsupportedContentTypeError ...... not HTML, text or a known document
        ├── ConversionError ...................... the page could not be turned into Markdown
        │   └── DocumentError .................... a PDF/DOCX/XLSX/PPTX that cannot be read
        │       ├── EncryptedDocumentError ....... password-protected
        │       ├── NoTextLayerError ............. a scanned PDF: images, no text (no OCR)
        │       ├── DocumentTooLargeError ........ over a cap before parsing (zip bomb, ...)
        │       └── DocumentTimeoutError (TimeoutError)  the conversion ran out of time
        └── MissingDependencyError (ImportError)  an optional extra is not installed

No exception message, ``repr`` or attribute ever holds an API key.
"""

from __future__ import annotations

import builtins
import inspect
from typing import Any, ClassVar


class AichainError(Exception):
    """Root of every error yait_aichain raises on purpose. A subclass declares its facts
    as annotated class attributes (a default makes one optional): the constructor takes
    them as keywords, refuses unknown ones and sets each on the instance."""

    _facts: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._facts = tuple(dict.fromkeys(  # every annotated fact of the class and its bases
            n for base in reversed(cls.__mro__) for n, kind in
            inspect.get_annotations(base).items() if "ClassVar" not in kind))

    def __init__(self, *args: Any, **facts: Any):
        super().__init__(*args)
        cls = type(self)
        unknown = facts.keys() - set(cls._facts)
        if unknown:
            raise TypeError(f"{cls.__name__}() got unexpected keywords {sorted(unknown)}")
        for name in cls._facts:
            if name not in facts and not hasattr(cls, name):
                raise TypeError(f"{cls.__name__}() needs the keyword argument {name!r}")
            value = facts.get(name, getattr(cls, name, None))
            setattr(self, name, list(value) if isinstance(value, list) else value)  # own copy

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickling calls cls(*args), which keyword-only facts refuse; errors
        # travel between processes in Pool records, so rebuild from the state.
        return (_rebuild, (type(self), self.args, dict(vars(self))))


def _rebuild(cls: type[AichainError], args: tuple[Any, ...], state: dict[str, Any]) -> AichainError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class ConfigurationError(AichainError, ValueError):
    """A bad argument or setting. Nothing was sent; fix the call and try again."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was given and ``env_var``, the ``provider``'s environment variable, is not
    set: pass ``api_key=`` or set the variable."""
    provider: str | None = None
    env_var: str | None = None


class UnsupportedSchemaError(ConfigurationError):
    """The provider's structured-output mode cannot express something in the output schema;
    nothing was sent. ``provider`` names the dialect, ``path`` where in the schema
    (``$.items[].tags``), ``feature`` what was found."""
    provider: str
    path: str
    feature: str


class OutputValidationError(AichainError, ValueError):
    """The answer did not match the output schema, re-asks included. ``raw`` is the last
    answer as parsed from the reply (before validation), ``errors`` its validation errors
    (one str each, ``"path: message"``), ``attempts`` how many answers were asked for
    (1 + re-asks) and ``schema_name`` the model class or schema name."""
    raw: Any = None
    errors: list[str] = []
    attempts: int = 1
    schema_name: str | None = None


class TemplateError(AichainError, ValueError):
    """A prompt needs variables that were not given (``missing``, sorted); nothing was sent."""
    missing: list[str] = []


class APIError(AichainError):
    """A provider call failed. The facts: ``status`` (0 when no HTTP response arrived),
    ``provider``, ``model``, ``request_id``, ``retry_after`` (seconds the server asked us to
    wait), ``body`` (a short, sanitised excerpt of the response body), ``attempts`` (how
    many requests were sent) and ``retryable`` (whether another attempt may succeed).
    ``str()`` gives ``"[HTTP 429] message"``, as users of yait_aichain expect."""

    #: Whether errors of this class are worth another attempt; None: decided by the status
    #: (408, 409, 429 and 5xx are). ``retryable=`` overrides it for one error, except where
    #: ``never_retried``: the same request cannot succeed, whatever the server says.
    retry_by_default: ClassVar[bool | None] = None
    never_retried: ClassVar[bool] = False
    status: int = 0
    provider: str | None = None
    model: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    body: str | None = None
    attempts: int = 1

    def __init__(self, message: str, *, retryable: bool | None = None, **facts: Any):
        super().__init__(message, **facts)
        self.message = message
        self._retryable = retryable  # the server's word (x-should-retry) or the transport's

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed (see :attr:`retry_by_default`)."""
        if self.never_retried:
            return False
        if self._retryable is not None:
            return self._retryable
        if self.retry_by_default is not None:
            return self.retry_by_default
        return self.status in (408, 409, 429) or self.status >= 500

    def __str__(self) -> str:
        where = f" ({self.provider} {self.model})" if self.provider and self.model else ""
        rid = f" [request id {self.request_id}]" if self.request_id else ""
        return f"[HTTP {self.status}] {self.message}{where}{rid}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class AuthenticationError(APIError):
    """401/403: the key is wrong, revoked, or lacks access. Never retried."""
    retry_by_default = False


class InsufficientCreditsError(APIError):
    """402, or a body that says the account is out of credit/quota. Never retried."""
    never_retried = True  # not even when the server says so: a human must pay


class InvalidRequestError(APIError):
    """400/422: the provider rejected the request as malformed. Never retried."""
    retry_by_default = False


class RequestTooLargeError(InvalidRequestError):
    """413: the request is too large for the provider. Shorten the input."""


class NotFoundError(APIError):
    """404: the model or endpoint does not exist (check the model name and base URL)."""
    retry_by_default = False


class RateLimitError(APIError):
    """429: too many requests. Retried with backoff; raised when retries run out or the
    server asks for a longer wait than the cap (see ``retry_after``)."""
    retry_by_default = True


class ServerError(APIError):
    """5xx or 529: the provider failed or is overloaded. Safe to retry."""
    retry_by_default = True


class InvalidResponseError(APIError):
    """A 2xx response that cannot be used (``reason`` says why): not JSON, no choices or
    candidates, empty content, a refusal, a safety block, JSON cut off by the token limit."""
    reason: str = "invalid"

    @property
    def retryable(self) -> bool:  # a body that was not JSON may come out whole next time
        return self._retryable if self._retryable is not None else self.reason == "malformed"


class BatchError(APIError):
    """A provider batch failed as a whole (``status`` 0, ``custom_id`` None) or gave no
    result for the request ``custom_id`` of batch ``batch_id``; a request answered with an
    error gets that error's own class instead (e.g. :class:`InvalidRequestError`)."""
    batch_id: str | None = None
    custom_id: str | None = None


class BatchExpiredError(BatchError):
    """The batch window (24 hours) closed before this request ran; nothing was billed.
    Re-submit it (``pool.retry_failed()``)."""


class NetworkError(APIError):
    """No usable HTTP response: DNS failure, refused or reset connection, TLS or proxy
    error. Retried, except a TLS or proxy error (``retryable`` is False). ``refused``:
    nothing listens at ``base_url`` (redacted)."""
    retry_by_default = True
    refused: bool = False
    base_url: str | None = None


class APITimeoutError(NetworkError, builtins.TimeoutError):
    """A model call ran out of time: the connect or read timeout, or the whole budget
    (``Model(timeout=...)`` or the Pool item's remaining time)."""


class ItemTimeoutError(AichainError, builtins.TimeoutError):
    """A Pool item did not finish within its ``timeout``. ``index`` names the item."""
    index: int | None = None
    timeout: float | None = None


class CancelledError(AichainError):
    """Work was stopped before it finished; ``reason`` says why: "interrupt" (Ctrl-C),
    "stop"/"raise" (``on_error``), "deadline", "budget", "systemic" (the circuit breaker;
    ``cause`` is the error every item met) or "cancelled"."""
    reason: str = "cancelled"
    cause: BaseException | None = None

    def __init__(self, message: str = "cancelled", **facts: Any):
        super().__init__(message, **facts)


class BatchCancelledError(CancelledError):
    """The provider batch holding this request was cancelled before the request ran;
    ``batch_id`` names it (``reason`` is "batch_cancelled")."""
    reason: str = "batch_cancelled"
    batch_id: str | None = None


class ChainStepError(AichainError):
    """A Chain step (index ``step``, named ``name``) failed; its error is in ``__cause__``."""
    step: int
    name: str


class RemoteError(AichainError):
    """An item failed on another process with an exception that would not pickle back;
    ``type_name``, ``message`` and ``remote_traceback`` describe the original."""
    type_name: str
    message: str
    remote_traceback: str | None = None

    def __init__(self, type_name: str, message: str, remote_traceback: str | None = None):
        super().__init__(f"{type_name}: {message}", type_name=type_name, message=message,
                         remote_traceback=remote_traceback)


class ToolError(AichainError):
    """A Tool could not do its job."""


class ToolInputError(ToolError, ValueError):
    """A Tool was called with missing or invalid arguments."""


class UnsafeURLError(ToolError, ValueError):
    """The URL points to an address that is not allowed (loopback, private, link-local,
    metadata, ...) or uses a scheme other than http(s). Allow private addresses with
    ``allow_private=True`` or ``AICHAIN_ALLOW_PRIVATE_URLS=1`` on trusted networks only."""


class UnsafePathError(ToolError, PermissionError):
    """A local file was refused: ``path`` resolves outside the ``root`` directory the tool
    was built with (None when no root was given: then no local file is read at all)."""
    path: str | None = None
    root: str | None = None


class FetchError(ToolError):
    """A page could not be fetched (HTTP error, timeout, too many redirects) from ``url``;
    ``status`` is None when no response arrived."""
    url: str | None = None
    status: int | None = None


class FetchTimeoutError(FetchError, builtins.TimeoutError):
    """The fetch did not finish within its ``timeout`` (or the Pool item's budget)."""


class ResponseTooLargeError(APIError, FetchError):
    """A decompressed body is over its cap (``limit``, bytes): ``Model(max_response_bytes=)``
    (32 MiB by default) or convertToMD's ``max_bytes``, held while decoding (a compression
    bomb never inflates). Never retried: the same request gets the same body. ``status`` is
    None when no HTTP response was read (a local file)."""
    status: int | None = None  # type: ignore[assignment]
    limit: int | None = None
    never_retried = True  # whatever the status: same request, same body

    def __str__(self) -> str:
        # A page fetch has no provider: its message stands alone, as for other FetchErrors.
        return APIError.__str__(self) if self.provider else self.message


class UnsupportedContentTypeError(FetchError):
    """The response or file is not HTML, XHTML, plain text, Markdown or a PDF, DOCX, XLSX
    or PPTX document (documents are recognised by their bytes)."""


class ConversionError(ToolError):
    """The content could not be converted to Markdown."""


class DocumentError(ConversionError):
    """A document (PDF, DOCX, XLSX, PPTX) is malformed or cannot be read. ``format`` is
    "pdf", "docx", "xlsx" or "pptx"; ``source`` the URL or path it came from."""
    format: str | None = None
    source: str | None = None


class EncryptedDocumentError(DocumentError):
    """The document is password-protected; decrypt it first (no password is tried)."""


class NoTextLayerError(DocumentError):
    """A scanned PDF (images, no text): it needs OCR, which convertToMD does not do."""


class DocumentTooLargeError(DocumentError):
    """The document is over a cap checked before parsing (unpacked size or number of
    parts of a DOCX/XLSX/PPTX: a zip bomb). ``limit`` names the cap."""
    limit: str | None = None


class DocumentTimeoutError(DocumentError, builtins.TimeoutError):
    """Converting the document took longer than the tool's ``timeout`` (or the item's budget)."""


class MissingDependencyError(ToolError, ImportError):
    """An optional dependency is missing. ``extra`` is the extra that installs it, as in
    ``pip install "yait-aichain[documents]"``; ``package`` the missing distribution."""
    extra: str
    package: str

# Every class here is public: the list is derived from them, so it cannot drift.
__all__ = sorted(name for name, obj in list(globals().items())
                 if isinstance(obj, type) and issubclass(obj, AichainError))
