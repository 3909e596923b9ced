"""Every error syncd raises on purpose, in one tree.

    SyncdError                      base; str(e) is a one-line message fit for a user
    ├── ConfigError                 bad config file, key or value (exit status 2)
    ├── FolderError                 a watched folder is missing, unreadable or unmarked
    ├── LockedError                 another syncd already holds the state directory
    └── RemoteError                 anything the remote service answered or failed to answer
        ├── TransientError          (mixin) a later repeat may succeed
        ├── TransportError          no HTTP answer: connection refused/dropped, timeout (transient)
        ├── IncompleteListingError  a listing could not be read to its end
        ├── UnsupportedError        the backend has no such feature (see ``Features``)
        └── HTTPStatusError         a refusal; .status (HTTP), .message, .code, .endpoint
            ├── BadRequestError         400 / business 0001, 0003 (YouTube short codes in .code)
            ├── AuthError               401 / 0401 missing, invalid or revoked API key
            ├── PaymentRequiredError    402 / 0402 out of credits
            ├── ForbiddenError          403 not yours
            │   ├── AccessDeniedError   0403 account disabled, 9009 permission denied,
            │   │                       a feature (live streams) not enabled for the account
            │   └── LinkExpiredError    a pre-signed object-store URL refused (expired or
            │                           tampered): sign again; says nothing of the key
            ├── NotFoundError           404 (memories.ai: "Resource does not exist")
            ├── ConflictError           409 / 0409 duplicate, or pipeline pre-condition not met
            ├── PayloadTooLargeError    413 direct upload over the cap, a file over a size cap
            ├── ValidationError         422
            ├── RateLimitedError        429 / 0429; .retry_after in seconds (or None)
            ├── ServerError             500 and other 5xx not listed below (transient)
            └── UnavailableError        502 / 503 / 504 (transient)

Semantic names for the same classes, for code that should not think in HTTP statuses:
``KeyRejectedError`` = AuthError, ``OutOfCreditsError`` = PaymentRequiredError,
``TooLargeError`` = PayloadTooLargeError. A service that answers with a business code in a
JSON body (memories.ai: ``{"code": "0429", ...}`` at HTTP 200) raises these same classes;
``.status`` then is the HTTP status actually received and ``.code`` the business code.

Retry policy lives with the classes: ``retryable`` says whether repeating the
same request can help. The HTTP layer only repeats requests that are safe to
repeat; everything else surfaces to the engine, which records it.

No message here ever contains the API key: messages are built from the
endpoint path and the server's ``message``/``detail`` field, never from
request headers.
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base of every deliberate syncd error. ``str()`` is one line for the user."""


class ConfigError(SyncdError):
    """The configuration is invalid. Raised before anything is touched."""


class FolderError(SyncdError):
    """A watched folder cannot be trusted this pass (missing, unreadable, no marker)."""


class LockedError(SyncdError):
    """Another syncd process holds the state directory."""


class RemoteError(SyncdError):
    """The remote failed or refused. ``retryable`` tells whether a repeat may help."""

    retryable: bool = False


class TransientError(RemoteError):
    """Something that may go away by itself: a repeat later can succeed."""

    retryable = True


class TransportError(TransientError):
    """No HTTP answer at all. ``sent`` is False when the request provably never left."""

    retryable = True

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class IncompleteListingError(RemoteError):
    """A paginated listing ended early or inconsistently; never treat it as complete."""

    retryable = True


class UnsupportedError(RemoteError):
    """The backend cannot do this at all (its ``Features`` say so); not a failure to retry."""


class HTTPStatusError(RemoteError):
    """A non-2xx answer from the API or the object store."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str = "",
        code: str | None = None,
        retry_after: float | None = None,
        label: str | None = None,
    ) -> None:
        self.status = status if status is not None else type(self).status
        self.message = message
        self.endpoint = endpoint
        self.code = code
        self.retry_after = retry_after
        where = f" ({endpoint})" if endpoint else ""
        # ``label`` replaces "HTTP <status>" when the refusal came as a business code.
        super().__init__(f"{label or f'HTTP {self.status}'}{where}: {message}")


class BadRequestError(HTTPStatusError):
    status = 400


class AuthError(HTTPStatusError):
    status = 401


class PaymentRequiredError(HTTPStatusError):
    status = 402


class ForbiddenError(HTTPStatusError):
    status = 403


class AccessDeniedError(ForbiddenError):
    """The key is valid but the account may not do this: disabled, permission denied, or a
    feature the vendor enables per account (memories.ai live streams)."""


class LinkExpiredError(ForbiddenError):
    """The object store refused a pre-signed URL (403): it expired or was altered. Signing a
    fresh one may succeed; unlike an API 403 it says nothing about the key."""


class NotFoundError(HTTPStatusError):
    status = 404


class ConflictError(HTTPStatusError):
    status = 409


class PayloadTooLargeError(HTTPStatusError):
    status = 413


class ValidationError(HTTPStatusError):
    status = 422


class RateLimitedError(HTTPStatusError):
    status = 429
    retryable = True


class ServerError(HTTPStatusError, TransientError):
    status = 500
    retryable = True


class UnavailableError(HTTPStatusError, TransientError):
    status = 503
    retryable = True


#: Semantic names (what happened, not how it was sent).
KeyRejectedError = AuthError
OutOfCreditsError = PaymentRequiredError
TooLargeError = PayloadTooLargeError


_BY_STATUS: dict[int, type[HTTPStatusError]] = {
    400: BadRequestError,
    401: AuthError,
    402: PaymentRequiredError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    500: ServerError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def error_for_status(
    status: int,
    message: str,
    *,
    endpoint: str = "",
    code: str | None = None,
    retry_after: float | None = None,
) -> HTTPStatusError:
    """The exception class for an HTTP status; unknown 4xx/5xx fall back by range."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else HTTPStatusError
    return cls(message, status=status, endpoint=endpoint, code=code, retry_after=retry_after)
