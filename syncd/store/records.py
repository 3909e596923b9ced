"""Records the catalog returns beyond the sync core's (those are in ``syncd.models``): the
mirror and the search index (the mirror and the UI read them), and the import and stream
tables (``syncd import``, ``streams:``). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


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
class IndexHead:
    """The vector files and live-row totals, without the per-video ranges."""

    vectors: str | None
    dim: int
    live: int  # live rows, all videos
    end: int  # one past the last live row


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

#: sending: recorded before the request (a crash here leaves a task whose id was never
#: heard); running: the service answered with its task id; done / failed: nothing more
#: will come of it.
ImportState = Literal["sending", "running", "done", "failed"]
#: waiting: known, not yet processed or downloaded; placing: downloaded and being moved
#: into the folder (a crash here is finished on the next start); landed: a file in the
#: folder; failed: the service could not process it; duplicate: its bytes are here already.
ImportVideoState = Literal["waiting", "placing", "landed", "failed", "duplicate"]


@dataclass(frozen=True)
class ImportRecord:
    import_id: str  # ours: known before the service answers
    task_id: str | None  # the service's, once it answered
    urls: tuple[str, ...]
    folder: Path  # a configured folder
    subdir: str  # "" or a path inside it, "/"-separated
    state: ImportState
    detail: str
    started_at: float
    progress_at: float  # when a video last appeared (an empty answer is ambiguous: the timeout runs from here)
    next_poll_at: float
    polls: int  # polls in a row that brought nothing new (the backoff grows with them)
    complete: bool  # the service said the task will produce no more videos

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


@dataclass(frozen=True)
class ImportVideoRecord:
    import_id: str
    video_id: str
    state: ImportVideoState
    name: str
    path: str | None
    sha256: str | None
    detail: str


@dataclass(frozen=True)
class StreamRecord:
    """A live stream syncd started: the catalog is the only list of them (the service
    documents no call that lists running streams)."""

    url: str
    task_id: str | None  # None: the start was sent and its answer never recorded
    options: str  # JSON, as started
    started_at: float
