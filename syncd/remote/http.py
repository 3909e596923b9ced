"""HTTP plumbing shared by every backend: one place for retries, errors and redaction.

* The API key travels only in a header set here; it is never part of a URL,
  a log line, an exception message or ``repr()``.
* Retries: exponential backoff with full jitter, ``Retry-After`` honoured.
  A request is repeated only when that is safe:
    - 429 and 503 (the doc: rate limited / queue publish rolled back): always;
    - connection never established: always;
    - 500/502/504, timeouts, dropped connections: only for idempotent requests.
  Other 4xx are never retried.
* Per-backend hooks, not forks: ``auth_headers`` says how the key is sent (Mikshi:
  ``X-API-Key``; memories.ai: ``Authorization: <key>`` without ``Bearer``), ``decode_error``
  turns an answer into an error or None (the default looks at the HTTP status only; a
  backend with business codes in JSON bodies at HTTP 200 passes its own), and a
  ``RateLimiter`` paces each request of a named ``limit`` group before it leaves, retries
  included. A rate-limited answer (``RateLimitedError``, whatever its HTTP status) is
  always retried, waiting at least one pacing interval when no ``Retry-After`` came.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from syncd.errors import (ForbiddenError, HTTPStatusError, LinkExpiredError, RateLimitedError,
                          RemoteError, TransportError, error_for_status)
from syncd.remote.ratelimit import RateLimiter

log = logging.getLogger("syncd.remote")

ALWAYS_RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT_RETRY_STATUSES = frozenset({500, 502, 504})
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        return rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None) -> float | None:
    """Delta-seconds (fractions tolerated) or an HTTP-date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """(message, short code) from a JSON body's ``message`` or ``detail``, or S3 XML."""
    text = response.text[:2000]
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        raw = body.get("message") or body.get("detail")
        if isinstance(raw, list):  # FastAPI validation errors
            parts = []
            for item in raw:
                if isinstance(item, dict):
                    loc = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                    parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
                else:
                    parts.append(str(item))
            message = "; ".join(parts) or "validation error"
        elif raw is not None:
            message = str(raw)
        else:
            message = text or response.reason_phrase
        code = message if re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", message) else None
        return message, code
    s3_code = re.search(r"<Code>([^<]*)</Code>", text)
    s3_message = re.search(r"<Message>([^<]*)</Message>", text)
    if s3_code:
        detail = s3_code.group(1) + (f": {s3_message.group(1)}" if s3_message else "")
        return detail, s3_code.group(1)
    return (text.strip() or response.reason_phrase or "error").splitlines()[0][:300], None


class ErrorDecoder(Protocol):
    """Turns an answer into the error it means, or None when it is a success."""

    def __call__(self, response: httpx.Response, endpoint: str,
                 redact: Callable[[str], str]) -> RemoteError | None: ...


def x_api_key(api_key: str) -> dict[str, str]:
    """Mikshi's way of sending the key."""
    return {"X-API-Key": api_key}


def status_error(response: httpx.Response, endpoint: str,
                 redact: Callable[[str], str]) -> HTTPStatusError:
    """The error for a non-2xx answer, from its status and its message/detail."""
    message, code = error_message(response)
    return error_for_status(
        response.status_code,
        redact(message),
        endpoint=endpoint,
        code=None if code is None else redact(code),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def http_status_errors(response: httpx.Response, endpoint: str,
                       redact: Callable[[str], str]) -> RemoteError | None:
    """The default decoder: an error exactly when the HTTP status is 400 or more."""
    return status_error(response, endpoint, redact) if response.status_code >= 400 else None


class HttpClient:
    """An ``httpx.Client`` plus the retry/error rules above.

    ``transport`` exists so a caller can hand in its own ``httpx`` transport
    (e.g. to bind a source address); tests use the real emulator instead.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "syncd",
        auth_headers: Callable[[str], Mapping[str, str]] = x_api_key,
        decode_error: ErrorDecoder = http_status_errors,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._decode_error = decode_error
        self.limiter = limiter
        # A server may echo the key in an error ("invalid API key 'sk_…'"): every message
        # built from an answer has it replaced, in the forms it could come back in.
        self._secrets = sorted({api_key, quote(api_key, safe=""), json.dumps(api_key)[1:-1]} - {""},
                               key=len, reverse=True)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        timeouts = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._api = httpx.Client(
            base_url=self.base_url,
            headers={**auth_headers(api_key), "User-Agent": user_agent,
                     "Accept": "application/json"},
            timeout=timeouts,
            transport=transport,
        )
        # Pre-signed object-store URLs must not carry the API key: separate client.
        self._plain = httpx.Client(
            timeout=timeouts, transport=transport, headers={"User-Agent": user_agent}
        )

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def close(self) -> None:
        self._api.close()
        self._plain.close()

    # ------------------------------------------------------------------ API calls
    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool,
        transient: frozenset[int] = frozenset(),
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        limit: str | None = None,
    ) -> Any:
        """One API request with retries; returns the decoded JSON body (or None).
        ``transient``: statuses the endpoint documents as safe to repeat even though the
        request is not idempotent (e.g. 502 before a credit was taken).
        ``files`` may be a callable returning the files mapping, called once per attempt
        (so a retried upload starts its file from the beginning again).
        ``limit``: the rate-limit group this request is paced in."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}

        def send() -> httpx.Response:
            return self._api.request(
                method, path, json=json_body, params=clean,
                files=files() if callable(files) else files, data=data, content=content,
                headers=headers,
            )

        response = self._with_retries(method, path, send, idempotent=idempotent,
                                      transient=transient, limit=limit)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RemoteError(f"{method} {path}: answer is not JSON") from exc

    def call_text(self, method: str, path: str, *, params: Mapping[str, Any] | None = None) -> str:
        """A read-only API request whose answer is text (e.g. an HLS playlist)."""
        response = self._with_retries(
            method, path, lambda: self._api.request(method, path, params=params), idempotent=True
        )
        return response.text

    def call_bytes(self, method: str, path: str, *, params: Mapping[str, Any] | None = None) -> tuple[bytes, str]:
        """A read-only API request whose answer is bytes: (body, content type)."""
        response = self._with_retries(
            method, path, lambda: self._api.request(method, path, params=params), idempotent=True
        )
        return response.content, response.headers.get("Content-Type", "application/octet-stream")

    def get_object_bytes(self, url: str) -> bytes:
        """A small pre-signed GET (a thumbnail) into memory."""
        parts: list[bytes] = []
        self.get_object(url, parts.append)
        return b"".join(parts)

    @contextmanager
    def stream(
        self, method: str, path: str, *, json_body: Any = None, idempotent: bool,
        transient: frozenset[int] = frozenset(), params: Mapping[str, Any] | None = None,
        limit: str | None = None,
    ) -> Iterator[httpx.Response]:
        """A streaming API request (SSE, a download). Retries apply until the headers arrive.
        A JSON answer (or any answer of 400 or more) is read and given to the decoder, so an
        error a backend sends as JSON instead of the expected stream is raised as one."""
        attempt = 0
        while True:
            attempt += 1
            try:
                if limit is not None and self.limiter is not None:
                    self.limiter.acquire(limit)
                with self._api.stream(method, path, json=json_body, params=params) as response:
                    error = self._stream_error(response, path)
                    if error is not None:
                        if self._should_retry(error, attempt, idempotent, transient):
                            self._backoff(method, path, attempt, error, limit)
                            continue
                        raise error
                    yield response
                    return
            except httpx.TransportError as exc:
                lost = self._transport_error(method, path, exc)
                if self._should_retry(lost, attempt, idempotent):
                    self._backoff(method, path, attempt, lost)
                    continue
                raise lost from None

    # ------------------------------------------------------------ object store
    def put_object_part(self, url: str, body: Callable[[], Iterable[bytes]], length: int) -> str:
        """PUT bytes to a pre-signed URL with an explicit Content-Length; return the ETag.

        ``body`` is a factory so a retry streams the bytes again from disk.
        """
        def send() -> httpx.Response:
            return self._plain.put(
                url,
                content=body(),
                headers={"Content-Length": str(length), "Content-Type": "application/octet-stream"},
            )

        try:
            response = self._with_retries("PUT", "<part url>", send, idempotent=True)
        except ForbiddenError as exc:
            raise _link_expired(exc) from None
        etag = response.headers.get("ETag")
        if not etag:
            raise RemoteError("object store answered a part PUT without an ETag")
        return etag

    def get_object(self, url: str, sink: Callable[[bytes], object]) -> int:
        """Stream a pre-signed GET into ``sink``; return the byte count."""
        total = 0
        with self._plain.stream("GET", url) as response:
            if response.status_code >= 400:
                response.read()
                error = self._status_error(response, "<download url>")
                raise _link_expired(error) if isinstance(error, ForbiddenError) else error
            for chunk in response.iter_bytes(1 << 20):
                sink(chunk)
                total += len(chunk)
        return total

    def _stream_error(self, response: httpx.Response, path: str) -> RemoteError | None:
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code < 400 and ctype != "application/json":
            return None
        response.read()
        return self._decode_error(response, path, self.redact)

    def object_etag(self, url: str) -> tuple[str | None, int | None]:
        """(ETag without quotes, whole object's size) of a pre-signed GET URL, for one byte.

        A ranged GET, not HEAD: a pre-signed URL is signed for its method. S3 answers a
        range with the whole object's ETag and ``Content-Range: bytes 0-0/<size>``; a
        server that ignores the range answers 200, whose body is left unread.
        """
        def send() -> httpx.Response:
            request = self._plain.build_request("GET", url, headers={"Range": "bytes=0-0"})
            response = self._plain.send(request, stream=True)
            if response.status_code != 200:  # an error's text, or the one byte asked for
                response.read()
            response.close()
            return response

        response = self._with_retries("GET", "<download url>", send, idempotent=True)
        etag = response.headers.get("ETag")
        size: int | None = None
        total = re.fullmatch(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", "").strip())
        if response.status_code == 206 and total:
            size = int(total.group(1))
        elif response.status_code == 200 and response.headers.get("Content-Length", "").isdigit():
            size = int(response.headers["Content-Length"])
        return (etag.strip().strip('"') if etag else None), size

    # ------------------------------------------------------------------ retries
    def _with_retries(
        self, method: str, path: str, send: Callable[[], httpx.Response], *, idempotent: bool,
        transient: frozenset[int] = frozenset(), limit: str | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            if limit is not None and self.limiter is not None:
                self.limiter.acquire(limit)
            try:
                response = send()
            except httpx.TransportError as exc:
                error: RemoteError = self._transport_error(method, path, exc)
            else:
                decoded = self._decode_error(response, path, self.redact)
                if decoded is None:
                    return response
                error = decoded
            if not self._should_retry(error, attempt, idempotent, transient):
                raise error
            self._backoff(method, path, attempt, error, limit)

    def _should_retry(self, error: RemoteError, attempt: int, idempotent: bool,
                      transient: frozenset[int] = frozenset()) -> bool:
        if attempt > self.retry.max_retries:
            return False
        if isinstance(error, TransportError):
            return idempotent or not error.sent
        if isinstance(error, RateLimitedError):  # refused, so not acted on: safe to repeat
            return True
        if isinstance(error, HTTPStatusError):
            if error.status in ALWAYS_RETRY_STATUSES or error.status in transient:
                return True
            return idempotent and error.status in IDEMPOTENT_RETRY_STATUSES
        return False

    def _backoff(self, method: str, path: str, attempt: int, error: RemoteError,
                 limit: str | None = None) -> None:
        retry_after = error.retry_after if isinstance(error, HTTPStatusError) else None
        delay = self.retry.delay(attempt, retry_after, self._rng)
        if (isinstance(error, RateLimitedError) and retry_after is None
                and limit is not None and self.limiter is not None):
            # No Retry-After (memories.ai documents none): hold the whole group back and
            # wait at least one pacing interval before trying again.
            self.limiter.penalise(limit)
            delay = max(delay, self.limiter.interval(limit))
        # Debug only: a caller reports what finally failed, once (`sync`, the daemon).
        log.debug("retrying %s %s in %.2fs after: %s", method, path, delay, error)
        self._sleep(delay)

    def redact(self, text: str) -> str:
        """``text`` with the API key (as sent, URL- or JSON-escaped) replaced."""
        for secret in self._secrets:
            text = text.replace(secret, "[API key]")
        return text

    def _status_error(self, response: httpx.Response, path: str) -> HTTPStatusError:
        return status_error(response, path, self.redact)

    def _transport_error(self, method: str, path: str, exc: httpx.TransportError) -> TransportError:
        # ConnectError / ConnectTimeout: the request never reached the server.
        sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
        kind = type(exc).__name__
        return TransportError(self.redact(f"{method} {path}: {kind}: {exc}"), sent=sent)


def _link_expired(exc: ForbiddenError) -> LinkExpiredError:
    """A 403 from the object store is about the pre-signed URL, not the key."""
    if isinstance(exc, LinkExpiredError):
        return exc
    return LinkExpiredError(exc.message, status=exc.status, endpoint=exc.endpoint, code=exc.code)
