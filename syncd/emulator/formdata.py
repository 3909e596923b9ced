"""A small streaming ``multipart/form-data`` parser (``cgi`` is deprecated).

File fields stream to a temporary file with a size cap; plain fields are kept in memory
(capped too). Part headers are parsed with the stdlib ``email`` parser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import HTTP
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024


class Readable(Protocol):
    def read(self, n: int) -> bytes: ...


class FormError(Exception):
    """The body is not valid multipart/form-data."""


class FormTooLarge(Exception):
    """A file field exceeded its cap."""


@dataclass
class FormFile:
    filename: str
    content_type: str
    path: Path
    size: int
    sha256: str


@dataclass
class FormData:
    fields: dict[str, str] = field(default_factory=dict)  # a repeated field: the last value
    files: dict[str, FormFile] = field(default_factory=dict)
    #: Every value of every plain field in order (a repeated ``tags`` field has several).
    all_fields: list[tuple[str, str]] = field(default_factory=list)
    #: File parts in order, with their field names (to spot a repeated or misnamed file).
    file_names: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        for f in self.files.values():
            f.path.unlink(missing_ok=True)


def boundary_of(content_type: str | None) -> bytes | None:
    """The boundary parameter of a multipart/form-data Content-Type, if any."""
    if not content_type:
        return None
    msg = BytesHeaderParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n")
    if msg.get_content_type() != "multipart/form-data":
        return None
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        return None
    return boundary.encode("latin-1")


class _Sink:
    def __init__(self, path: Path | None, cap: int) -> None:
        self.path = path
        self.cap = cap
        self.size = 0
        self.hash = hashlib.sha256()
        self.fh: BinaryIO | None = path.open("wb") if path else None
        self.memory = bytearray()

    def write(self, data: bytes | bytearray) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.cap:
            raise FormTooLarge()
        if self.fh is not None:
            self.fh.write(data)
            self.hash.update(data)
        else:
            self.memory += data

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def parse(stream: Readable, boundary: bytes, new_path: Callable[[], Path],
          max_file_bytes: int) -> FormData:
    """Parse the whole body. Temporary files are removed again on any error."""
    form = FormData()
    sinks: list[_Sink] = []
    try:
        _parse(stream, boundary, new_path, max_file_bytes, form, sinks)
    except BaseException:
        for s in sinks:
            s.close()
            if s.path is not None:
                s.path.unlink(missing_ok=True)
        raise
    return form


def _parse(stream: Readable, boundary: bytes, new_path: Callable[[], Path],
           max_file_bytes: int, form: FormData, sinks: list[_Sink]) -> None:
    sep = b"\r\n--" + boundary
    keep = len(sep) - 1
    # A leading CRLF lets the first delimiter match the same pattern as the others.
    buf = bytearray(b"\r\n")
    eof = False

    def fill() -> None:
        nonlocal eof
        chunk = stream.read(CHUNK)
        if chunk:
            buf.extend(chunk)
        else:
            eof = True

    # Preamble.
    while True:
        i = buf.find(sep)
        if i >= 0:
            del buf[:i + len(sep)]
            break
        if eof:
            raise FormError("boundary not found")
        if len(buf) > keep:
            del buf[:len(buf) - keep]
        fill()

    while True:
        while len(buf) < 2 and not eof:
            fill()
        if buf[:2] == b"--":
            while not eof:  # epilogue: read and ignore
                buf.clear()
                fill()
            return
        # Tolerate transport padding (spaces/tabs) before the CRLF, as RFC 2046 allows.
        while True:
            j = buf.find(b"\r\n")
            if j >= 0 or eof:
                break
            fill()
        if j < 0 or buf[:j].strip(b" \t"):
            raise FormError("malformed boundary line")
        del buf[:j + 2]

        while (j := buf.find(b"\r\n\r\n")) < 0:
            if eof or len(buf) > MAX_HEADER_BYTES:
                raise FormError("part headers not terminated")
            fill()
        headers = BytesHeaderParser(policy=HTTP).parsebytes(bytes(buf[:j]) + b"\r\n\r\n")
        del buf[:j + 4]
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            raise FormError("part without a name")
        is_file = isinstance(filename, str)
        sink = _Sink(new_path() if is_file else None,
                     max_file_bytes if is_file else MAX_FIELD_BYTES)
        sinks.append(sink)

        while True:
            i = buf.find(sep)
            if i >= 0:
                sink.write(buf[:i])
                del buf[:i + len(sep)]
                break
            if eof:
                raise FormError("part not terminated")
            if len(buf) > keep:
                sink.write(buf[:len(buf) - keep])
                del buf[:len(buf) - keep]
            fill()
        sink.close()
        if is_file:
            assert sink.path is not None
            if name in form.files:  # a repeated file field: the last one wins
                form.files[name].path.unlink(missing_ok=True)
            form.files[name] = FormFile(str(filename), headers.get_content_type(), sink.path,
                                        sink.size, sink.hash.hexdigest())
            form.file_names.append(name)
        else:
            value = sink.memory.decode("utf-8", "replace")
            form.fields[name] = value
            form.all_fields.append((name, value))
