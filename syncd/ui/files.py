"""Which local files a request may read, and thumbnails.

Every file the UI serves is found through the catalog (a tracked video in a watched
folder) or is one the UI itself wrote in the state directory; a path from a request is
only a key into those. ``LocalFiles.resolve`` still checks the real path stays inside
its watched folder, so ``..`` segments and symlinks pointing out of a folder answer 404.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from syncd.config import Config

log = logging.getLogger("syncd.ui")

THUMBS_DIR = "ui/thumbnails"  # under the state directory
THUMB_WIDTH = 320
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LocalFiles:
    """The watched folders, by their index in the config (URLs carry the index, not the path)."""

    folders: tuple[Path, ...]

    @classmethod
    def from_config(cls, config: Config) -> LocalFiles:
        return cls(tuple(f.path for f in config.folders))

    def locate(self, path: str | Path) -> tuple[int, str] | None:
        """(folder index, relative path) of an absolute path inside a watched folder."""
        target = Path(os.path.normpath(path))
        for n, folder in enumerate(self.folders):
            if target.is_relative_to(folder) and target != folder:
                return n, target.relative_to(folder).as_posix()
        return None

    def key(self, n: int, rel_path: str) -> tuple[Path, str] | None:
        """The folder and a clean relative path, or None if they name nothing inside it."""
        if not 0 <= n < len(self.folders) or not rel_path:
            return None
        parts = rel_path.split("/")
        if any(part in ("", ".", "..") for part in parts) or "\x00" in rel_path:
            return None
        return self.folders[n], rel_path

    def resolve(self, folder: Path, rel_path: str) -> Path | None:
        """The regular file at ``folder/rel_path`` if its real path is inside the folder's."""
        candidate = folder / rel_path
        real, root = Path(os.path.realpath(candidate)), Path(os.path.realpath(folder))
        if not real.is_relative_to(root) or not real.is_file():
            return None
        return real


def frame_jpeg(path: Path, width: int = THUMB_WIDTH) -> bytes:
    """One frame (a second in, or 10% of a shorter clip) as a JPEG ``width`` pixels wide."""
    import av  # lazily: only when a thumbnail is made

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        at = min(1.0, duration * 0.1) if duration else 0.0
        frame = None
        for frame in container.decode(stream):
            if frame.time is None or frame.time >= at:
                break
        if frame is None:
            raise ValueError(f"{path}: no video frame")
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuvj420p"
        encoder.time_base = Fraction(1, 25)
        scaled = frame.reformat(width=width, height=height, format="yuvj420p")
        packets = [*encoder.encode(scaled), *encoder.encode(None)]
    return b"".join(bytes(p) for p in packets)


def image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


class ThumbnailCache:
    """``<state_dir>/ui/thumbnails/<sha256>``: the first image found for a content stays."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / THUMBS_DIR

    def get(self, sha256: str) -> bytes | None:
        try:
            return (self.directory / sha256).read_bytes()
        except OSError:
            return None

    def put(self, sha256: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self.directory / f".{sha256}.{os.getpid()}.tmp"
        temp.write_bytes(data)
        os.replace(temp, self.directory / sha256)  # whole or absent: two requests may race
