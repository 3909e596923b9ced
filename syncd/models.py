"""Records shared by scan, catalog, planner and executor. No I/O here.

Vocabulary:
* a *file* is a path in a watched folder; a *content* is a sha256. Several
  files may hold one content; one content is at most one remote video.
* content states: ``new`` (hashed, not uploaded) → ``uploading`` (a multipart
  session is open) → ``uploaded`` (the remote has the video; steps track
  processing and pipelines) → ``deleted`` (the last local copy went: we deleted
  the remote video, or unlinked it when it was not ours alone to delete). ``failed`` is an upload that failed for good;
  ``remote_deleted`` is a tombstone: the remote lost it and we never upload
  it again unless the user runs ``syncd restore``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal, NamedTuple

ContentState = Literal["new", "uploading", "uploaded", "failed", "remote_deleted", "deleted"]
StepState = Literal["pending", "running", "done", "failed"]

TRASH_DIR = ".syncd-trash"
MARKER_FILE = ".syncd-folder"
SIDECAR_SUFFIXES = (".syncd.json", ".syncd.emb")  # a video's metadata and embeddings (syncd.mirror)


@dataclass(frozen=True)
class LocalFile:
    """One file seen by a scan (stat only)."""

    folder: Path
    rel_path: str  # POSIX, relative to the folder
    size: int
    mtime_ns: int
    inode: int
    settled: bool = True
    changed: float = 0.0  # the settle clock: max(mtime, ctime), in seconds
    settle: float = 0.0  # how long this path must hold still to count as settled

    @property
    def path(self) -> Path:
        return self.folder / self.rel_path

    @property
    def subfolder(self) -> str | None:
        parts = PurePosixPath(self.rel_path).parts
        return parts[0] if len(parts) > 1 else None


@dataclass(frozen=True)
class UnknownFile:
    """A file a scan saw whose content this pass does not know: still settling (it may
    yet grow), or settled but not hashed. It could hold any content that vanished."""

    folder: Path
    rel_path: str
    size: int
    inode: int
    settling: bool

    @property
    def path(self) -> Path:
        return self.folder / self.rel_path


@dataclass(frozen=True)
class Superseded:
    """A content a path held until the path was rewritten with other bytes."""

    folder: Path
    rel_path: str
    sha256: str
    since: float


class RecordedFile(NamedTuple):
    """What the catalog records of a file, as a rescan compares it (a tuple: cheap by the 10,000)."""

    size: int
    mtime_ns: int
    inode: int
    sha256: str | None
    present: int


# A catalog row as the scan merges it: (rel_path, size, mtime_ns, inode, sha256, present).
RecordedRow = tuple[str, int, int, int, str | None, int]


@dataclass(frozen=True)
class FolderScan:
    folder: Path
    ok: bool
    files: tuple[LocalFile, ...] = ()
    error: str | None = None
    skipped: tuple[str, ...] = ()  # one line per entry left out (a name that is not UTF-8)
    # Subdirectories (relative, POSIX) that could not be listed: the files found elsewhere
    # still count, but nothing in the folder may be taken for deleted.
    unreadable: tuple[str, ...] = ()
    unknown: tuple[UnknownFile, ...] = ()  # files whose content this pass does not know (set by the engine)
    # With the catalog's rows (``scan_changes``): how many files were found exactly as
    # recorded (only counted: ``files`` holds the others), the rows of the files in
    # ``files`` that have one, and the present rows the walk did not meet. All three grow
    # with the change, not with the folder.
    as_recorded: int = 0
    recorded: Mapping[str, RecordedFile] = field(default_factory=dict)
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileRecord:
    folder: Path
    rel_path: str
    size: int
    mtime_ns: int
    inode: int
    sha256: str | None
    present: bool
    first_seen: float
    last_seen: float
    missing_since: float | None = None

    @property
    def path(self) -> Path:
        return self.folder / self.rel_path

    @property
    def subfolder(self) -> str | None:
        parts = PurePosixPath(self.rel_path).parts
        return parts[0] if len(parts) > 1 else None


@dataclass(frozen=True)
class StepRecord:
    name: str
    state: StepState
    percentage: float | None = None
    error: str | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0


@dataclass(frozen=True)
class ContentRecord:
    sha256: str
    size: int
    state: ContentState
    video_id: str | None = None
    name: str | None = None
    error: str | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    orphaned_since: float | None = None
    steps: dict[str, StepRecord] = field(default_factory=dict)
    owned: bool = True  # this instance uploaded the video (or proved it its own): it may delete it
    marked: bool = False  # this instance's marker is on the remote video

    def step(self, name: str) -> StepRecord:
        return self.steps.get(name) or StepRecord(name, "pending")

    def processed(self, steps: tuple[str, ...]) -> bool:
        """Upload-side processing finished: every one of the backend's ``steps`` is done."""
        return self.state == "uploaded" and all(self.step(s).state == "done" for s in steps)

    def processing_failed(self, steps: tuple[str, ...]) -> str | None:
        """The first of the backend's processing ``steps`` that failed, as a line."""
        for name in steps:
            step = self.step(name)
            if step.state == "failed":
                return f"{name}: {step.error or 'failed'}"
        return None


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    sha256: str
    token: str  # the backend's resume token (UploadSession.token), opaque here
    part_size: int
    completed: bool
    parts: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionRecord:
    name: str
    collection_id: str


@dataclass(frozen=True)
class JournalEntry:
    id: int
    time: float
    action: str
    target: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class Capture:
    """When, with what and where a video was shot, as far as its file says (``media.probe``);
    a backend that takes capture metadata at upload sends it."""

    taken_at: float | None = None  # Unix time: the container's creation_time, else the file's mtime
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None


# --------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Action:
    """Something that changes the remote, the local folders or the catalog."""

    @property
    def kind(self) -> str:
        return type(self).__name__

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Upload(Action):
    sha256: str
    path: Path
    name: str
    size: int
    replaces_video: str | None = None  # a failed remote video to delete first
    mtime_ns: int | None = None  # the hashed version: a file changed since is not uploaded
    tag: str | None = None  # the subfolder, sent as a tag by a backend grouping by tag

    def describe(self) -> str:
        again = " again (processing failed)" if self.replaces_video else ""
        return f"upload {self.path} as {self.name!r}{again}"


@dataclass(frozen=True)
class AbortUpload(Action):
    upload_id: str
    sha256: str
    reason: str

    def describe(self) -> str:
        return f"abort multipart upload {self.upload_id} ({self.reason})"


@dataclass(frozen=True)
class LinkVideo(Action):
    """Catalog recovery: the remote already has this content, proved byte for byte.
    ``owned`` False: another syncd instance's video, held but never deleted by us."""

    sha256: str
    video_id: str
    path: Path
    owned: bool = True
    proof: str = ""  # how the bytes were shown to be the same

    def describe(self) -> str:
        whose = "" if self.owned else " of another syncd instance"
        return f"link {self.path} to existing remote video {self.video_id}{whose} (no upload)"


@dataclass(frozen=True)
class MarkVideo(Action):
    """Put this instance's ownership marker on its remote video."""

    sha256: str
    video_id: str
    path: Path

    def describe(self) -> str:
        return f"mark remote video {self.video_id} as held by this syncd instance ({self.path})"


@dataclass(frozen=True)
class UnlinkVideo(Action):
    """The last local copy is gone, but the remote video is not ours alone to delete:
    forget it locally and take our marker off; the video stays."""

    sha256: str
    video_id: str
    folder: Path
    paths: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        return f"keep remote video {self.video_id} ({self.reason}); forget local {', '.join(self.paths)}"


@dataclass(frozen=True)
class StartPipeline(Action):
    sha256: str
    video_id: str
    pipeline: str
    path: Path
    retry: bool = False

    def describe(self) -> str:
        return f"{'retry' if self.retry else 'start'} {self.pipeline} for {self.path}"


@dataclass(frozen=True)
class CreateCollection(Action):
    name: str

    def describe(self) -> str:
        return f"create collection {self.name!r}"


@dataclass(frozen=True)
class RenameCollection(Action):
    old: str
    new: str
    collection_id: str

    def describe(self) -> str:
        return f"rename collection {self.old!r} to {self.new!r}"


@dataclass(frozen=True)
class DeleteCollection(Action):
    name: str
    collection_id: str

    def describe(self) -> str:
        return f"delete empty collection {self.name!r}"


@dataclass(frozen=True)
class AddToCollection(Action):
    collection: str
    sha256: str
    video_id: str
    path: Path

    def describe(self) -> str:
        return f"add {self.path} to collection {self.collection!r}"


@dataclass(frozen=True)
class RemoveFromCollection(Action):
    collection: str
    sha256: str
    video_id: str

    def describe(self) -> str:
        return f"remove video {self.video_id} from collection {self.collection!r}"


@dataclass(frozen=True)
class DeleteRemote(Action):
    """The last local copy is gone: delete the remote video."""

    sha256: str
    video_id: str
    folder: Path
    paths: tuple[str, ...]
    reason: str = "deleted"  # or "rewritten": the path now holds other bytes

    def describe(self) -> str:
        return f"delete remote video {self.video_id} (local {', '.join(self.paths)} {self.reason})"


@dataclass(frozen=True)
class RemoteDeleted(Action):
    """The remote no longer has the video: tombstone it and apply the folder policy."""

    sha256: str
    video_id: str
    folder: Path
    rel_paths: tuple[str, ...]
    policy: Literal["trash", "delete", "keep"]

    def describe(self) -> str:
        verb = {"trash": "move to trash", "delete": "delete", "keep": "keep"}[self.policy]
        files = ", ".join(str(self.folder / p) for p in self.rel_paths) or "(no local file)"
        return f"remote video {self.video_id} was deleted: {verb} {files}"


@dataclass(frozen=True)
class ForgetFile(Action):
    """A vanished path whose content lives on elsewhere (a move) or is not deleted remotely."""

    folder: Path
    rel_path: str
    reason: str
    sha256: str | None = None  # set: forget only this content's record there (a rewritten path)

    def describe(self) -> str:
        return f"forget {self.folder / self.rel_path} ({self.reason})"


@dataclass(frozen=True)
class DeferredDeletion:
    """A deletion held back: files not yet settled or hashed could still hold the content."""

    sha256: str
    video_id: str | None
    paths: tuple[Path, ...]  # the vanished (or rewritten) paths
    waiting_for: tuple[Path, ...]  # the unknown files that could hold it

    def describe(self) -> str:
        n = len(self.waiting_for)
        return (f"deletion of {', '.join(map(str, self.paths))} waits for {n} unsettled "
                f"file{'' if n == 1 else 's'}: {', '.join(map(str, self.waiting_for))}")


@dataclass(frozen=True)
class Listing:
    """A complete, successful remote listing, kept in the catalog (``Catalog.listing_writer``):
    its handle. ``generation`` changes whenever a read changed an entry, so equal handles
    mean the same listing (a quiet remote)."""

    generation: int
    videos: int = field(compare=False)  # how many it lists


@dataclass(frozen=True)
class RemoteView:
    """The remote as the planner sees it: of the videos its snapshot holds, those a
    complete, successful listing (read this pass) lists. Also the few new videos read
    at the listing's newest end, for pulls."""

    video_ids: frozenset[str]


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # guards that held deletions back
    notes: list[str] = field(default_factory=list)  # things the user should know
    deferred: list[DeferredDeletion] = field(default_factory=list)  # deletions waiting for unknown files
    settling: list[Path] = field(default_factory=list)  # files a later pass may upload once settled
    # The earliest time at which the same inputs would plan differently (a retry or a
    # delete grace falling due); None: only a change in the inputs can.
    revisit_at: float | None = None
    # Actions of the pass's later slices (a first pass over many new files plans them a
    # slice at a time), by kind: counted here, not kept in ``actions``.
    unlisted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Every action of the pass, listed or not."""
        return len(self.actions) + sum(self.unlisted.values())

    def revisit(self, at: float) -> None:
        self.revisit_at = at if self.revisit_at is None else min(self.revisit_at, at)

    def of(self, kind: type[Action]) -> list[Action]:
        return [a for a in self.actions if isinstance(a, kind)]

    def waiting_summary(self) -> str | None:
        """The line "1 deletion waits for 2 unsettled files", or None when nothing waits."""
        return waiting_summary(self.deferred)


def waiting_summary(deferred: list[DeferredDeletion]) -> str | None:
    if not deferred:
        return None
    files = {p for d in deferred for p in d.waiting_for}
    n, m = len(deferred), len(files)
    return f"{n} deletion{'' if n == 1 else 's'} wait{'s' if n == 1 else ''} for {m} unsettled file{'' if m == 1 else 's'}"
