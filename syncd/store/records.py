"""Records of the mirror and the search index, as the catalog returns them (the store owns
them; the mirror and the UI read them). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MirrorVideo:
    """What the mirror knows about one remote video."""

    video_id: str
    sha256: str
    details: str  # canonical JSON of the remote facts (see sidecars.remote_facts); "" before a pull
    details_at: float | None  # when the stored details were pulled (changed)
    checked_at: float | None  # last successful details pull
    embeddings_at: float | None  # when its segments and vectors were stored
    row_start: int  # first row in the vector files
    row_count: int  # rows (segments) in the vector files; 0 = no vectors
    attempts: int = 0  # consecutive failures
    retry_at: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class MirrorFile:
    """A local file whose sidecars were written."""

    folder: Path
    rel_path: str
    video_id: str
    sha256: str
    collection: str | None
    written_at: float  # 0 = must be rewritten (it moved)

    @property
    def path(self) -> Path:
        return self.folder / self.rel_path


@dataclass(frozen=True)
class SegmentInfo:
    """One stored segment of a video (its vector lives in the vector files)."""

    video_id: str
    index: int
    start: float
    end: float
    option: str
    scope: str


@dataclass(frozen=True)
class IndexSnapshot:
    """A consistent view for one query: which vector files, and which rows are live.

    Video ``video_ids[i]`` owns rows ``starts[i] .. starts[i] + counts[i] - 1``, in
    ascending ``starts`` order (parallel tuples: cheap to build for 10,000s of videos).
    """

    vectors: str | None  # base name of the current vector files, None before the first
    dim: int
    video_ids: tuple[str, ...] = ()
    starts: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()


@dataclass(frozen=True)
class PullRecord:
    """A remote-only video the puller dealt with."""

    video_id: str
    outcome: str  # "placing" (a crash cut it short) | "pulled" | "duplicate" | "failed"
    path: str | None
    sha256: str | None
    detail: str
    attempts: int
    retry_at: float
