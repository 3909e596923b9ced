"""Request / response records and the request-body reader (Content-Length or chunked)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, BinaryIO, Protocol

from syncd.emulator.errors import ApiError, ClientGone, detail
from syncd.emulator.validation import Fields, parse_json_object

MAX_JSON_BYTES = 1024 * 1024
_CHUNK_LINE_MAX = 1024


class _Stream(Protocol):
    def read(self, n: int = ..., /) -> bytes: ...
    def readline(self, limit: int = ..., /) -> bytes: ...


class BodyReader:
    """Reads exactly one request body from the connection, never past it.

    ``length`` None and ``chunked`` False means no body (HTTP/1.1 without either header).
    A peer that closes early raises ``ClientGone``.
    """

    def __init__(self, rfile: _Stream, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self.length = length
        self.chunked = chunked
        self.bytes_read = 0
        self._chunk_left = 0
        self.complete = not chunked and not length

    def _raw(self, n: int) -> bytes:
        data = self._rfile.read(n)
        if len(data) < n:
            raise ClientGone("connection closed mid-body")
        return data

    def _line(self) -> bytes:
        line = self._rfile.readline(_CHUNK_LINE_MAX)
        if not line.endswith(b"\n"):
            raise ClientGone("bad chunk framing")
        return line

    def read(self, n: int = 64 * 1024) -> bytes:
        """Up to ``n`` bytes of body; ``b""`` once the body is complete."""
        if self.complete or n <= 0:
            return b""
        if not self.chunked:
            assert self.length is not None
            want = min(n, self.length - self.bytes_read)
            data = self._rfile.read(want)
            if not data:
                raise ClientGone("connection closed mid-body")
            self.bytes_read += len(data)
            if self.bytes_read >= self.length:
                self.complete = True
            return data
        if self._chunk_left == 0:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ClientGone("bad chunk size") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n"):  # trailers
                    pass
                self.complete = True
                return b""
            self._chunk_left = size
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise ClientGone("connection closed mid-chunk")
        self._chunk_left -= len(data)
        self.bytes_read += len(data)
        if self._chunk_left == 0:
            self._raw(2)  # CRLF after the chunk data
        return data

    def read_all(self, limit: int) -> bytes:
        if self.length is not None and self.length > limit:
            raise detail(413, "Request body too large")
        parts: list[bytes] = []
        size = 0
        while chunk := self.read():
            size += len(chunk)
            if size > limit:
                raise detail(413, "Request body too large")
            parts.append(chunk)
        return b"".join(parts)

    def remaining(self) -> int | None:
        """Bytes still unread, or None when unknown (chunked)."""
        if self.complete:
            return 0
        if self.chunked:
            return None
        assert self.length is not None
        return self.length - self.bytes_read

    def drain(self) -> None:
        while self.read(1024 * 1024):
            pass


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: dict[str, list[str]]
    headers: Message
    body: BodyReader
    base_url: str
    user_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def query_fields(self) -> Fields:
        return Fields("query", self.query)

    def json_body(self) -> dict[str, Any]:
        return parse_json_object(self.body.read_all(MAX_JSON_BYTES), self.header("Content-Type"))

    def body_fields(self) -> Fields:
        return Fields("body", self.json_body())

    def url(self, path_and_query: str) -> str:
        return self.base_url + path_and_query


class FileStream:
    """Iterates ``length`` bytes of an open file from ``start``; closes it when done or closed.

    A class rather than a generator so an unstarted stream (HEAD) still closes its file.
    """

    def __init__(self, fh: BinaryIO, start: int, length: int, chunk: int = 1024 * 1024) -> None:
        self._fh = fh
        self._start = start
        self._left = length
        self._chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        try:
            self._fh.seek(self._start)
            while self._left > 0:
                data = self._fh.read(min(self._chunk, self._left))
                if not data:
                    break
                self._left -= len(data)
                yield data
        finally:
            self.close()

    def close(self) -> None:
        self._fh.close()


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Streamed body; with ``length`` it gets a Content-Length, without it chunked encoding.
    stream: Iterable[bytes] | None = None
    length: int | None = None
    #: A business code carried in the body (memories.ai), kept for the request log.
    code: str | None = None


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def api_error_response(err: ApiError) -> Response:
    resp = json_response(err.status, err.body, err.headers)
    code = err.body.get("code")  # a business code (memories.ai) goes to the request log
    if isinstance(code, (str, int)) and not isinstance(code, bool):
        resp.code = str(code)
    return resp
