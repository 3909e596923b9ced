"""Capture metadata read from a clip's container tags (PyAV), as sent at upload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.media.clips import make_clip
from syncd.media.probe import parse_creation_time, parse_iso6709, probe_capture


@pytest.mark.parametrize("text, expected", [
    ("+48.8577+002.2950+035.000/", (48.8577, 2.295)),
    ("-33.8688+151.2093/", (-33.8688, 151.2093)),
    ("+91.0+000.0/", (None, None)),  # out of range
    ("somewhere", (None, None)),
    (None, (None, None)),
])
def test_iso6709_locations(text: str | None, expected: tuple[float | None, float | None]) -> None:
    assert parse_iso6709(text) == expected


def test_creation_times() -> None:
    assert parse_creation_time("2024-05-01T10:20:30.000000Z") == 1714558830.0
    assert parse_creation_time("1970-01-01T00:00:00.000000Z") is None  # an encoder's zero date
    assert parse_creation_time("not a date") is None


def test_a_phone_clip_and_a_plain_one(tmp_path: Path) -> None:
    phone = make_clip(tmp_path / "phone.mp4", tags={
        "creation_time": "2024-05-01T10:20:30.000000Z", "location": "+48.8577+002.2950/",
        "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15"})
    capture = probe_capture(phone)
    assert (capture.taken_at, capture.camera_model) == (1714558830.0, "Apple iPhone 15")
    assert (capture.latitude, capture.longitude) == (48.8577, 2.295)
    plain = make_clip(tmp_path / "plain.mp4")
    os.utime(plain, (1_700_000_000, 1_700_000_000))
    assert probe_capture(plain).taken_at == 1_700_000_000  # no creation_time: the file's mtime
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    os.utime(junk, (1_600_000_000, 1_600_000_000))
    assert probe_capture(junk).taken_at == 1_600_000_000 and probe_capture(junk).camera_model is None
