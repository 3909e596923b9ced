"""What the service's transcoder would learn about an object, read with PyAV.

Bytes PyAV cannot decode (test fixtures are often random bytes) get defaults: 1920x1080 and
a duration derived from the size at an assumed 2 Mbit/s (at least 1 s).
"""

from __future__ import annotations

import hashlib
import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ASSUMED_BYTES_PER_SECOND = 250_000  # 2 Mbit/s
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1920, 1080


@dataclass(frozen=True)
class MediaInfo:
    duration_seconds: float
    width: int
    height: int
    probed: bool  # True when PyAV read the values from a real video


def fallback(size: int) -> MediaInfo:
    return MediaInfo(max(1.0, round(size / ASSUMED_BYTES_PER_SECOND, 3)), DEFAULT_WIDTH,
                     DEFAULT_HEIGHT, False)


def probe(path: Path, size: int) -> MediaInfo:
    """Duration and resolution of the first video stream, else ``fallback(size)``."""
    try:
        import av  # imported lazily: only needed once an object is processed
    except ImportError:  # pragma: no cover - av is a declared dependency
        return fallback(size)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is None:
                return fallback(size)
            duration: float | None = None
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            width = int(stream.width or 0)
            height = int(stream.height or 0)
            if not duration or duration <= 0 or not width or not height:
                base = fallback(size)
                return MediaInfo(duration or base.duration_seconds, width or base.width,
                                 height or base.height, True)
            return MediaInfo(round(float(duration), 3), width, height, True)
    except Exception as exc:  # noqa: BLE001 - any decode failure means "not a video"
        log.debug("probe: not a decodable video (%s)", type(exc).__name__)
        return fallback(size)


def thumbnail_png(video_id: str, width: int = 64, height: int = 36) -> bytes:
    """A small solid-colour PNG whose colour is derived from the video id."""
    r, g, b = hashlib.sha256(video_id.encode()).digest()[:3]
    row = b"\x00" + bytes((r, g, b)) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
