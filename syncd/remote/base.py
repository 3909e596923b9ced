"""The backend-neutral remote: the only face of the service the sync engine sees.

A backend implements :class:`Remote`. Multipart upload is a separate small
capability, :class:`ChunkedUploader` (initiate / put part / list parts /
complete / abort / register), driven by the one generic resumable driver in
:mod:`syncd.remote.multipart`, like rclone's ``OpenChunkWriter``.

Records here are plain frozen dataclasses; no backend endpoint name appears
in them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

# Pipeline names as the user writes them in the config.
Pipeline = Literal["analyse", "search-process"]
PIPELINES: tuple[Pipeline, ...] = ("analyse", "search-process")

# Neutral step states. Every backend maps its own vocabulary onto these.
StepState = Literal["pending", "running", "done", "failed"]


@dataclass(frozen=True)
class StepStatus:
    """One processing step (transcoding, analyse, ...) of one video."""

    state: StepState
    percentage: float | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


@dataclass(frozen=True)
class ProcessingStatus:
    """Upload-side processing of a video (thumbnail, transcoding, HLS...)."""

    video_id: str
    steps: dict[str, StepStatus]
    error: str | None = None

    @property
    def state(self) -> StepState:
        """Derived overall state: any failed ⇒ failed, all done ⇒ done."""
        states = [s.state for s in self.steps.values()]
        if "failed" in states:
            return "failed"
        if states and all(s == "done" for s in states):
            return "done"
        if any(s != "pending" for s in states):
            return "running"
        return "pending"

    @property
    def percentage(self) -> float:
        pcts = [s.percentage or (100.0 if s.state == "done" else 0.0) for s in self.steps.values()]
        return sum(pcts) / len(pcts) if pcts else 0.0

    @property
    def failure(self) -> str | None:
        for name, step in self.steps.items():
            if step.state == "failed":
                return f"{name}: {step.error or self.error or 'failed'}"
        return None


@dataclass(frozen=True)
class RemoteVideo:
    """One entry of a remote listing."""

    video_id: str
    name: str
    status: str | None = None
    created_at: str | None = None
    pipelines: dict[str, StepState] = field(default_factory=dict)
    hls_playlist_url: str | None = None
    processing: dict[str, str | None] = field(default_factory=dict)  # step → raw status, e.g. "hls": "completed"


@dataclass(frozen=True)
class VideoDetails:
    video_id: str
    name: str
    duration_seconds: float | None
    width: int | None
    height: int | None
    size_bytes: int | None
    video_url: str | None
    thumbnail_url: str | None
    hls_playlist_url: str | None
    created_at: str | None
    statuses: dict[str, str | None]
    raw: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RemoteCollection:
    collection_id: str
    name: str
    description: str | None = None
    video_count: int = 0
    created_at: str | None = None


@dataclass(frozen=True)
class Segment:
    """One embedded segment of a video; start/end in seconds."""

    start: float
    end: float
    option: str
    scope: str
    vector: tuple[float, ...]


@dataclass(frozen=True)
class SearchHit:
    rank: int
    video_id: str
    start: float
    end: float
    thumbnail_url: str | None = None
    hls_playlist_url: str | None = None
    video_url: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class UploadSession:
    """Everything needed to resume a multipart upload after a crash."""

    upload_id: str
    object_name: str
    video_id: str


@dataclass(frozen=True)
class Capabilities:
    multipart: bool = True
    direct_upload_max_bytes: int = 0  # 0: no single-request upload
    collections: bool = True
    embeddings: bool = True
    chat: bool = True


@dataclass(frozen=True)
class ContentEvidence:
    """What a backend can show about a video's original bytes without sending them all.

    Catalog recovery links a local file to a remote video only on proof that the bytes
    are the same (``syncd.proof``). A backend fills what it has: Mikshi the S3 ETag of
    the original object (read with a one-byte ranged GET) and its size; a backend that
    records a ``sha256:<hex>`` tag at upload time fills ``sha256``. Where neither
    decides, the engine streams the original (``Remote.download_video``) and hashes it.
    """

    size: int | None = None
    sha256: str | None = None
    etag: str | None = None  # S3 ETag, quotes removed: "<md5hex>" or "<md5hex>-<parts>"


@dataclass(frozen=True)
class Marks:
    """Which syncd instances hold which remote videos (see ``InstanceMarks``).

    ``instances``: every instance with a marker on the account, even one holding no
    video yet; ``videos``: video id → the instances whose marker is on it.
    """

    instances: frozenset[str] = frozenset()
    videos: dict[str, frozenset[str]] = field(default_factory=dict)

    def holders(self, video_id: str) -> frozenset[str]:
        return self.videos.get(video_id, frozenset())

    def others(self, instance: str) -> frozenset[str]:
        return self.instances - {instance}


@runtime_checkable
class ContentProof(Protocol):
    """Optional capability: evidence of a video's original bytes (see ``ContentEvidence``)."""

    def content_evidence(self, video_id: str) -> ContentEvidence: ...


@runtime_checkable
class InstanceMarks(Protocol):
    """Optional capability: per-instance ownership markers, visible to every syncd on the
    account. Mikshi: a collection per instance; a backend with tags: a tag
    ``syncd-instance:<name>`` on each video (and the note somewhere per instance)."""

    def read_marks(self) -> Marks: ...

    def add_mark(self, instance: str, video_id: str) -> bool:
        """Put ``instance``'s marker on a video; False if the backend cannot yet (Mikshi: the
        video is not fully processed). Repeating is harmless."""
        ...

    def remove_mark(self, instance: str, video_id: str) -> None: ...

    def write_note(self, instance: str, note: str) -> str | None:
        """Create the instance's marker if needed and set its note (a heartbeat);
        return the note it replaced (None if there was none)."""
        ...

    def read_note(self, instance: str) -> str | None: ...


@runtime_checkable
class ChunkedUploader(Protocol):
    """The multipart capability; see :mod:`syncd.remote.multipart` for the driver."""

    def start_upload(self, filename: str, content_type: str) -> UploadSession: ...

    def put_part(
        self, session: UploadSession, part_number: int, source: BinaryIO, offset: int, length: int
    ) -> str:
        """Send ``length`` bytes of ``source`` from ``offset``; return the ETag verbatim.
        Each call signs a fresh part URL, so calling again after a 403 can succeed."""
        ...

    def list_parts(self, session: UploadSession) -> dict[int, str]: ...

    def complete_upload(self, session: UploadSession, parts: Sequence[tuple[int, str]]) -> None: ...

    def abort_upload(self, session: UploadSession) -> None: ...

    def register_video(self, session: UploadSession, name: str) -> str:
        """Create the video record from the completed object and start processing."""
        ...


@runtime_checkable
class MediaSource(Protocol):
    """The optional capability the web UI uses to show a remote video without its local file:
    its thumbnail, and its HLS playlists and segments fetched with the key (so the browser
    never needs it)."""

    def thumbnail(self, video_id: str) -> bytes | None:
        """The remote's thumbnail image, or None if it has none (yet)."""
        ...

    def hls_part(self, video_id: str, name: str) -> tuple[bytes, str]:
        """One HLS playlist or segment by its name (``master.m3u8`` first): (body, content type).
        Playlists name their parts with ``hls_part_name``-readable URLs."""
        ...


class Remote(ChunkedUploader, Protocol):
    """What the sync engine may ask of a backend."""

    capabilities: Capabilities
    description: str  # for messages, e.g. "mikshi at http://127.0.0.1:8765"

    # --- upload & processing -------------------------------------------------
    def direct_upload(self, path: Path, name: str) -> str: ...

    def processing_status(self, video_id: str) -> ProcessingStatus: ...

    def start_pipeline(self, video_id: str, pipeline: Pipeline) -> None:
        """Start a pipeline. Raises ConflictError while the video is not ready."""
        ...

    def pipeline_status(self, video_id: str, pipeline: Pipeline) -> StepStatus: ...

    # --- videos --------------------------------------------------------------
    def list_videos(self) -> list[RemoteVideo]:
        """The complete listing, or IncompleteListingError/RemoteError. Never partial."""
        ...

    def video_details(self, video_id: str) -> VideoDetails: ...

    def delete_video(self, video_id: str) -> None: ...

    def download_video(self, video_id: str, dest: BinaryIO) -> int: ...

    # --- collections ---------------------------------------------------------
    def list_collections(self) -> list[RemoteCollection]: ...

    def create_collection(self, name: str) -> RemoteCollection:
        """Create; ConflictError if the name exists."""
        ...

    def rename_collection(self, collection_id: str, name: str) -> None: ...

    def delete_collection(self, collection_id: str) -> None: ...

    def collection_video_ids(self, collection_id: str) -> list[str]: ...

    def add_to_collection(self, collection_id: str, video_id: str) -> None: ...

    def remove_from_collection(self, collection_id: str, video_id: str) -> None: ...

    # --- understanding -------------------------------------------------------
    def video_segments(self, video_id: str) -> list[Segment]: ...

    def embed_text(self, text: str) -> list[float]: ...

    def search(
        self, query: str, video_ids: Sequence[str], top_k: int = 5, collection_id: str | None = None
    ) -> list[SearchHit]: ...

    def ask(
        self, video_id: str, question: str, history: Sequence[ChatMessage] = ()
    ) -> str: ...

    def ask_stream(
        self, video_id: str, question: str, history: Sequence[ChatMessage] = ()
    ) -> Iterator[str]:
        """Yield answer tokens as they arrive; raise RemoteError on a stream error event."""
        ...

    def close(self) -> None: ...


def parse_timestamp(value: str | float | int | None) -> float:
    """'HH:MM:SS' (or 'MM:SS', or seconds) → seconds."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    seconds = 0.0
    for part in value.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def format_timestamp(seconds: float) -> str:
    """Seconds → 'HH:MM:SS'."""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@runtime_checkable
class NewestListing(Protocol):
    """A backend that can list from the newest end (an optional capability: without it,
    new remote videos are found by the complete listing, on its slower schedule)."""

    def list_newest(self, known: Collection[str]) -> list[RemoteVideo]:
        """Videos newer than the newest of ``known`` (ids), newest first: pages from the
        newest end until one holds a known video. Not a complete listing."""
        ...
