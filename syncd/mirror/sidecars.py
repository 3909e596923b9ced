"""Sidecar files: where they go, and their two formats (documented field by field in
the README, "Local mirror", so other tools can read them without syncd).

* ``<video>.syncd.json``: the video's metadata (remote id, name, collection, every
  status, duration/size/resolution, local path and sha256, when it was pulled).
* ``<video>.syncd.emb``: the per-segment embeddings: ``SYNCDEMB`` magic, a uint32
  little-endian header length, a JSON header (one entry per segment: start, end,
  option, scope), then the vectors as a row-major little-endian float32 matrix.

``beside`` puts them next to the video; a directory mirrors the absolute path of the
video under it (``<dir>/<path of the video without its leading />``), so read-only
drop folders work, and the trash (``<folder>/.syncd-trash/...``) is mirrored too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncd.config import MirrorConfig
from syncd.mirror.atomic import move_file, remove_file, temp_path, write_atomic
from syncd.store.records import SegmentInfo
from syncd.models import SIDECAR_SUFFIXES
from syncd.remote.base import VideoDetails

if TYPE_CHECKING:  # numpy: imported where embeddings are encoded or read (~0.1 CPU-s at start-up)
    import numpy as np
    import numpy.typing as npt

JSON_SUFFIX, EMB_SUFFIX = SIDECAR_SUFFIXES
FORMAT = "syncd-video"
EMB_FORMAT = "syncd-embeddings"
VERSION = 1
EMB_MAGIC = b"SYNCDEMB"
EMB_ALIGN = 64  # the matrix starts on a 64-byte boundary, so it can be memory-mapped
VOLATILE = ("pulled_at",)  # fields that alone never make a sidecar "changed"

@dataclass(frozen=True)
class SidecarPaths:
    json: Path
    emb: Path

    def all(self) -> tuple[Path, Path]:
        return (self.json, self.emb)


@dataclass(frozen=True)
class SidecarLayout:
    """Where a video's sidecars live."""

    directory: Path | None = None  # None: beside the video

    @classmethod
    def from_config(cls, mirror: MirrorConfig) -> SidecarLayout:
        return cls(mirror.sidecar_dir if mirror.sidecars == "directory" else None)

    def paths(self, video: Path) -> SidecarPaths:
        base = video if self.directory is None else self.directory / video.relative_to(video.anchor)
        return SidecarPaths(base.with_name(base.name + JSON_SUFFIX), base.with_name(base.name + EMB_SUFFIX))

    def move(self, old: Path, new: Path) -> bool:
        """Carry a video's sidecars from its old path to its new one. True if any moved."""
        moved = False
        for src, dst in zip(self.paths(old).all(), self.paths(new).all(), strict=True):
            moved = move_file(src, dst, make_parents=self.directory is not None) or moved
            # A write a crash cut short at the old path: never renamed, and never reused now.
            temp_path(src).unlink(missing_ok=True)
        return moved

    def write(self, path: Path, data: bytes) -> bool:
        """Write one sidecar file atomically (if its bytes changed)."""
        return write_atomic(path, data, make_parents=self.directory is not None)

    def write_metadata(self, path: Path, doc: Mapping[str, Any]) -> bool:
        """Write the JSON sidecar unless only its volatile fields (pulled_at) would change."""
        existing = read_metadata(path)
        if existing is not None and _stable(existing) == _stable(doc):
            return False
        return self.write(path, encode_metadata(doc))

    def remove(self, video: Path) -> bool:
        removed = False
        for path in self.paths(video).all():
            removed = remove_file(path) or removed
            temp_path(path).unlink(missing_ok=True)  # a crash's leftover, if any
        return removed


# ------------------------------------------------------------------ metadata
def remote_facts(details: VideoDetails, pipeline_states: Mapping[str, str], steps: Sequence[str]) -> dict[str, Any]:
    """The remote's facts about a video, as stored in the catalog and copied into sidecars.

    Pre-signed URLs (video_path, thumbnail_path) are left out on purpose: they expire,
    and would make every pull look like a change. ``steps``: the backend's processing steps
    and pipelines, each shown (null until the remote reports it), as the backend reports it.
    """
    statuses: dict[str, str | None] = {name: None for name in steps}
    for name, value in details.statuses.items():
        if value is not None:
            statuses[name] = str(value)
    for name, state in pipeline_states.items():
        if statuses.get(name) is None:
            statuses[name] = state  # details do not carry pipeline states; syncd polls them
    facts: dict[str, Any] = {
        "name": details.name,
        "statuses": statuses,
        "duration_seconds": details.duration_seconds,
        "size_bytes": details.size_bytes,
        "width": details.width,
        "height": details.height,
        "created_at": details.created_at,
        "hls_playlist_url": details.hls_playlist_url,
        "remote": details.reported,
    }
    if details.keywords:  # for the full-text index only (the sidecar has them under ``remote``)
        facts["keywords"] = list(details.keywords)
    return facts


def iso_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def metadata_document(
    *,
    video_id: str,
    facts: Mapping[str, Any],
    collection: str | None,
    folder: Path,
    rel_path: str,
    sha256: str,
    local_size: int,
    embeddings: Mapping[str, Any] | None,
    pulled_at: float,
    steps: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``.syncd.json`` document, in its documented field order (``statuses`` in the
    backend's order of ``steps``)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "video_id": video_id,
        "name": facts.get("name"),
        "collection": collection,
        "statuses": _ordered_statuses(facts.get("statuses") or {}, steps),
        "duration_seconds": facts.get("duration_seconds"),
        "size_bytes": facts.get("size_bytes") if facts.get("size_bytes") is not None else local_size,
        "width": facts.get("width"),
        "height": facts.get("height"),
        "created_at": facts.get("created_at"),
        "hls_playlist_url": facts.get("hls_playlist_url"),
        "remote": facts.get("remote"),
        "local": {
            "path": str(folder / rel_path),
            "folder": str(folder),
            "rel_path": rel_path,
            "sha256": sha256,
            "size_bytes": local_size,
        },
        "embeddings": dict(embeddings) if embeddings is not None else None,
        "pulled_at": iso_time(pulled_at),
    }


def _ordered_statuses(statuses: Mapping[str, Any], steps: Sequence[str]) -> dict[str, Any]:
    """The backend's processing order: its steps, then its pipelines (then any other)."""
    order = list(steps)
    return {k: statuses[k] for k in sorted(statuses, key=lambda k: (order.index(k) if k in order else len(order), k))}


def encode_metadata(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _stable(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def read_metadata(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


# ---------------------------------------------------------------- embeddings
@dataclass(frozen=True)
class EmbeddingsFile:
    video_id: str
    segments: tuple[SegmentInfo, ...]
    vectors: npt.NDArray[np.float32]  # (count, dim)


def encode_embeddings(
    video_id: str, segments: Sequence[SegmentInfo], vectors: npt.NDArray[np.float32]
) -> Iterator[bytes]:
    """The ``.syncd.emb`` bytes, header first, then the matrix in blocks."""
    import numpy as np
    matrix = np.ascontiguousarray(vectors, dtype="<f4")
    if matrix.ndim != 2 or matrix.shape[0] != len(segments):
        raise ValueError(f"{len(segments)} segments but a {matrix.shape} matrix")
    header = json.dumps({
        "format": EMB_FORMAT,
        "version": VERSION,
        "video_id": video_id,
        "dtype": "float32-le",
        "count": int(matrix.shape[0]),
        "dim": int(matrix.shape[1]),
        "segments": [
            {"start": s.start, "end": s.end, "option": s.option, "scope": s.scope} for s in segments
        ],
    }, separators=(",", ":")).encode()
    pad = -(len(EMB_MAGIC) + 4 + len(header)) % EMB_ALIGN
    header += b" " * pad
    yield EMB_MAGIC + len(header).to_bytes(4, "little") + header
    rows_per_block = max(1, (1 << 20) // max(1, matrix.shape[1] * 4))
    for start in range(0, matrix.shape[0], rows_per_block):
        yield matrix[start:start + rows_per_block].tobytes()


def read_embeddings(path: Path) -> EmbeddingsFile:
    """Parse a ``.syncd.emb`` file (the reference reader for the README, "Local mirror")."""
    import numpy as np
    raw = path.read_bytes()
    if raw[:8] != EMB_MAGIC:
        raise ValueError(f"{path}: not a syncd embeddings file")
    length = int.from_bytes(raw[8:12], "little")
    header = json.loads(raw[12:12 + length])
    count, dim = int(header["count"]), int(header["dim"])
    vectors = np.frombuffer(raw, dtype="<f4", count=count * dim, offset=12 + length).reshape(count, dim)
    segments = tuple(
        SegmentInfo(header["video_id"], i, float(s["start"]), float(s["end"]), s["option"], s["scope"])
        for i, s in enumerate(header["segments"])
    )
    return EmbeddingsFile(header["video_id"], segments, vectors)


def embeddings_bytes(video_id: str, segments: Sequence[SegmentInfo], vectors: npt.NDArray[np.float32]) -> bytes:
    return b"".join(encode_embeddings(video_id, segments, vectors))
