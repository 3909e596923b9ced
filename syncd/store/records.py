"""Records of the catalog's import and stream tables (``syncd import``, ``streams:``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
