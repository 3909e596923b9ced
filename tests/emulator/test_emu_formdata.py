"""The streaming multipart/form-data parser, fed in awkward slices."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from syncd.emulator import formdata


class Trickle:
    """Returns at most ``step`` bytes per read, so delimiters straddle reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self._buf = io.BytesIO(data)
        self._step = step

    def read(self, n: int) -> bytes:
        return self._buf.read(min(n, self._step))


def _body(boundary: str, payload: bytes) -> bytes:
    b = boundary.encode()
    return (b"preamble\r\n--" + b + b"\r\n"
            b'Content-Disposition: form-data; name="name"\r\n\r\nMy clip\r\n--' + b + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="a b.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n" + payload + b"\r\n--" + b + b"--\r\nepilogue")


@pytest.mark.parametrize("step", [1, 7, 64 * 1024])
def test_parse_in_slices(tmp_path: Path, step: int) -> None:
    boundary = "----xyz"
    # Near-miss delimiters inside the file must survive untouched.
    payload = os.urandom(3000) + b"\r\n------xy" + b"\r\n--" + os.urandom(100)
    counter = iter(range(100))
    form = formdata.parse(Trickle(_body(boundary, payload), step), boundary.encode(),
                          lambda: tmp_path / f"f{next(counter)}", 10_000)
    assert form.fields == {"name": "My clip"}
    f = form.files["file"]
    assert (f.filename, f.content_type, f.size) == ("a b.mp4", "video/mp4", len(payload))
    assert f.path.read_bytes() == payload


def test_too_large_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(formdata.FormTooLarge):
        formdata.parse(Trickle(_body("b", b"x" * 200), 50), b"b", lambda: tmp_path / "t", 100)
    assert not (tmp_path / "t").exists()
    with pytest.raises(formdata.FormError):
        formdata.parse(Trickle(b"no boundary here", 5), b"b", lambda: tmp_path / "u", 100)
    assert formdata.boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert formdata.boundary_of("application/json") is None
