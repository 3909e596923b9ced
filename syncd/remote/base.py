"""The backend-neutral remote: the only face of a service the sync engine sees.

Like rclone's ``fs.Fs`` + ``fs.Features``, the contract has two parts:

* :class:`Remote`, small and required of every backend: upload a file (the backend
  picks its own way), list videos (complete or an error, never silently short; into
  a :class:`ListingSink` page by page, so a million videos are never held at once),
  details, delete, download, a neutral reachability/key ``check``, ``close``;
* :class:`Features`, returned by ``Remote.features()``: what the backend can do beyond
  that, each optional ability a small protocol (``ChunkedUploader``, ``Collections``,
  ``Tags``, ``Processing``, ``Embeddings``, ``RemoteSearch``, ``Chat``, ``Visualizer``,
  ``UrlImporter``, ``LiveStreams``, ``MediaSource``, ``ContentProof``, ``InstanceMarks``,
  ``NewestListing``) or ``None``, plus the facts the
  planner needs as data (how folders group videos, which steps a video must finish,
  which pipelines it can start and under which names). Callers consult the record
  before using an ability, so a backend without collections is never asked for one.

Records here are plain frozen dataclasses; no backend's endpoint, header, status key,
step or pipeline name appears in them or in any module outside ``syncd/remote/`` and
``syncd/emulator/``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Generic, Literal, Protocol, TypeVar, runtime_checkable

from syncd.errors import UnsupportedError
from syncd.models import Capture

# A pipeline's name, as its backend declares it (``Features.pipelines``) and the user
# writes it in a folder's ``pipelines``.
Pipeline = str
# How a folder's first-level subfolders are reflected remotely.
Grouping = Literal["collection", "tag", "none"]

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


_T_contra = TypeVar("_T_contra", contravariant=True)
_V = TypeVar("_V")


class ListingSink(Protocol[_T_contra]):
    """Where a complete listing goes, a page at a time (the catalog's staging table:
    a listing of a million videos is never held as objects)."""

    def add(self, videos: Sequence[_T_contra]) -> int:
        """Take one page; how many of its videos were not taken before (a video on two
        pages, the listing having shifted in between, counts once)."""
        ...

    def restart(self) -> None:
        """Forget every page taken: the backend reads the listing again from the start."""
        ...


class ListedVideos(Generic[_V]):
    """A :class:`ListingSink` in memory (``list_videos``: small libraries, tests), keyed
    by each video's id (``key``)."""

    def __init__(self, key: Callable[[_V], str]) -> None:
        self._key = key
        self.videos: dict[str, _V] = {}

    def add(self, videos: Sequence[_V]) -> int:
        before = len(self.videos)
        for video in videos:
            self.videos.setdefault(self._key(video), video)
        return len(self.videos) - before

    def restart(self) -> None:
        self.videos.clear()


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
    statuses: dict[str, str | None]  # step or pipeline name → its status as the backend reports it
    raw: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    #: The backend's own description of the video, as it reports it, without what changes on
    #: every answer (pre-signed URLs): sidecars carry it under ``remote``.
    reported: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    #: Words that describe the video beyond its name (tags, camera, when and where it was
    #: taken...), as the backend knows them: indexed by the local full-text search.
    keywords: tuple[str, ...] = ()


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
    """Everything needed to resume a multipart upload after a crash: the upload's id, and
    ``token``, whatever else the backend needs, opaque to everyone but the backend (the
    catalog stores it as it is)."""

    upload_id: str
    token: str


@dataclass(frozen=True)
class VisualizationPoint:
    segment_id: str
    video_id: str
    x: float
    y: float
    start: float
    end: float


@dataclass(frozen=True)
class Visualization:
    videos: dict[str, dict[str, object]]
    points: list[VisualizationPoint]


@dataclass(frozen=True)
class ImportTask:
    """An import from URLs: the videos it produced so far (``done`` when it will make no more)."""

    task_id: str
    video_ids: tuple[str, ...] = ()
    done: bool = False
    #: URLs the service refused after the task started (one line each: "URL: reason").
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContentEvidence:
    """What a backend can show about a video's original bytes without sending them all.

    Catalog recovery links a local file to a remote video only on proof that the bytes
    are the same (``syncd.sync.proof``). A backend fills what it has: Mikshi the S3 ETag of
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
        """Create the video record from the completed object and start processing; the
        video's id. Registering again (a lost answer) answers the same id."""
        ...

    def upload_video_id(self, session: UploadSession) -> str | None:
        """The id the upload's video will have once registered, if known in advance: a
        listing may show it before the catalog records it (a crash in between)."""
        ...


@runtime_checkable
class MediaSource(Protocol):
    """The optional capability the web UI uses to show a remote video without its local file:
    its thumbnail, and its HLS playlists and segments fetched with the key (so the browser
    never needs it)."""

    def has_thumbnail(self, statuses: Mapping[str, object]) -> bool:
        """Whether a video whose steps stand at ``statuses`` (as the backend reported them,
        stored in its sidecar) has a thumbnail to fetch: asked before any request."""
        ...

    def thumbnail(self, video_id: str) -> bytes | None:
        """The remote's thumbnail image, or None if it has none (yet)."""
        ...

    def hls_part(self, video_id: str, name: str) -> tuple[bytes, str]:
        """One HLS playlist or segment by its name (``master.m3u8`` first): (body, content type).
        Playlists name their parts with ``hls_part_name``-readable URLs."""
        ...


@runtime_checkable
class Collections(Protocol):
    """Named remote groups a video can be added to and removed from (``grouping: collection``)."""

    def list_collections(self) -> list[RemoteCollection]: ...

    def create_collection(self, name: str) -> RemoteCollection:
        """Create; ConflictError if the name exists."""
        ...

    def rename_collection(self, collection_id: str, name: str) -> None: ...

    def delete_collection(self, collection_id: str) -> None: ...

    def collection_video_ids(self, collection_id: str) -> list[str]: ...

    def add_to_collection(self, collection_id: str, video_id: str) -> None:
        """ConflictError: already in. NotFoundError from ``missing_collection`` below: the
        collection is gone (any other NotFoundError: the video is)."""
        ...

    def remove_from_collection(self, collection_id: str, video_id: str) -> None: ...

    def missing_collection(self, exc: Exception) -> bool:
        """Whether a refusal of ``add_to_collection`` means the collection no longer exists."""
        ...


@runtime_checkable
class Tags(Protocol):
    """Labels set at upload and read back (``grouping: tag``); they cannot be changed later."""

    def upload_tagged(self, path: Path, name: str, tags: Sequence[str], capture: Capture | None = None) -> str:
        """``Remote.upload`` with ``tags`` and, where the backend keeps it, ``capture``
        metadata (when, with what and where the video was shot)."""
        ...

    def video_tags(self, video_id: str) -> tuple[str, ...]: ...


@runtime_checkable
class Processing(Protocol):
    """Server-side processing after upload: the steps of ``Features.processing_steps``, and
    the startable pipelines of ``Features.pipelines`` (by the names the backend declares)."""

    def processing_status(self, video_id: str) -> ProcessingStatus: ...

    def start_pipeline(self, video_id: str, pipeline: Pipeline) -> None:
        """Start a pipeline. Raises ConflictError while the video is not ready."""
        ...

    def pipeline_status(self, video_id: str, pipeline: Pipeline) -> StepStatus: ...


@runtime_checkable
class StatusBatch(Protocol):
    """Processing states of many videos in few requests (a listing's pages), instead of one
    ``processing_status`` request per video."""

    def processing_statuses(self, video_ids: Collection[str]) -> dict[str, ProcessingStatus]:
        """The state of each of ``video_ids`` the remote shows; an id it does not list is
        left out (the complete listing, and details, decide whether it is gone)."""
        ...


@runtime_checkable
class BatchDelete(Protocol):
    """Deleting many videos per request."""

    def delete_videos(self, video_ids: Sequence[str]) -> None:
        """Delete every one of ``video_ids``; safe to repeat (ids already gone count as deleted)."""
        ...


@runtime_checkable
class Embeddings(Protocol):
    def video_segments(self, video_id: str) -> list[Segment]: ...

    def embed_text(self, text: str) -> list[float]: ...


@runtime_checkable
class RemoteSearch(Protocol):
    def search(
        self, query: str, video_ids: Sequence[str], top_k: int = 5, collection_id: str | None = None
    ) -> list[SearchHit]: ...


@runtime_checkable
class Chat(Protocol):
    def ask(self, video_id: str, question: str, history: Sequence[ChatMessage] = ()) -> str: ...

    def ask_stream(
        self, video_id: str, question: str, history: Sequence[ChatMessage] = ()
    ) -> Iterator[str]:
        """Yield answer tokens as they arrive; raise RemoteError on a stream error event."""
        ...


@runtime_checkable
class Visualizer(Protocol):
    def visualize(self, video_ids: Sequence[str] = (), collection_id: str | None = None) -> Visualization: ...


@runtime_checkable
class UrlImporter(Protocol):
    """Import videos the service fetches itself from web URLs."""

    def check_urls(self, urls: Sequence[str]) -> str | None:
        """What is wrong with ``urls`` for this service (too many, a URL it cannot fetch,
        platforms mixed in one task), in one line; None if they may be sent. No request."""
        ...

    def import_urls(self, urls: Sequence[str]) -> ImportTask: ...

    def import_status(self, task: ImportTask) -> ImportTask: ...


@runtime_checkable
class LiveStreams(Protocol):
    def start_stream(self, url: str, options: dict[str, object]) -> str:
        """Start watching a live stream; the task id to stop it with."""
        ...

    def stop_stream(self, task_id: str) -> None:
        """Safe to repeat."""
        ...


@dataclass(frozen=True)
class Features:
    """What a backend can do beyond :class:`Remote`; ``None``: it cannot.

    The data fields are what the planner and config need to know, in the backend's own
    names: they are the only source of step and pipeline names outside the backend.
    """

    grouping: Grouping = "none"
    #: Steps a video must finish after upload before it counts as processed.
    processing_steps: tuple[str, ...] = ()
    #: Pipelines a folder may start (``pipelines:`` in the config), and the default list.
    pipelines: tuple[Pipeline, ...] = ()
    default_pipelines: tuple[Pipeline, ...] = ()
    #: Pipelines a video must have finished before a collection accepts it.
    collection_pipelines: tuple[Pipeline, ...] = ()
    #: The processing step worth showing as progress (``syncd status``), if any.
    progress_step: str | None = None
    #: Steps or pipelines that must be done before a video's segment embeddings can be read.
    embeddings_after: tuple[str, ...] = ()
    #: ``search`` with no video ids searches every video of the account (or namespace), so
    #: it can find videos this catalog does not know; False: it needs the ids.
    search_library: bool = False
    #: Largest file ``Remote.upload`` sends in one request (0: no limit of its own).
    direct_upload_max_bytes: int = 0
    #: The name a listing shows for a video uploaded as ``<subfolder>/<file>.<ext>``: that path
    #: ("path"), or only the file's name without its extension ("stem"). Catalog recovery
    #: picks candidates by it.
    video_names: Literal["path", "stem"] = "path"
    #: ``InstanceMarks`` keeps each instance's note (so two syncds sharing a name show).
    instance_notes: bool = True
    #: Published request rates per endpoint group ("5/s", "1/min"); the config's
    #: ``remote.rate_limits`` may override any of them. Empty: the service publishes none.
    rate_limits: Mapping[str, str | None] = field(default_factory=dict)
    #: The names (from ``ABILITIES``) of the abilities a connected remote fills in: for
    #: checks made without a connection (config validation: a ``streams:`` section).
    abilities: frozenset[str] = frozenset()
    chunked: ChunkedUploader | None = None
    collections: Collections | None = None
    tags: Tags | None = None
    processing: Processing | None = None
    embeddings: Embeddings | None = None
    search: RemoteSearch | None = None
    chat: Chat | None = None
    visualize: Visualizer | None = None
    url_import: UrlImporter | None = None
    streams: LiveStreams | None = None
    media: MediaSource | None = None
    proof: ContentProof | None = None
    marks: InstanceMarks | None = None
    newest: NewestListing | None = None
    status_batch: StatusBatch | None = None
    batch_delete: BatchDelete | None = None


#: The optional abilities of :class:`Features` (the fields that hold a protocol).
ABILITIES = ("chunked", "collections", "tags", "processing", "embeddings", "search", "chat",
             "visualize", "url_import", "streams", "media", "proof", "marks", "newest",
             "status_batch", "batch_delete")


class Remote(Protocol):
    """What every backend must do. Optional abilities: ``features()``."""

    description: str  # for messages, e.g. "mikshi at http://127.0.0.1:8765"

    def features(self) -> Features: ...

    def upload(self, path: Path, name: str) -> str:
        """Upload one file however the backend does it best; the new video's id."""
        ...

    def list_videos(self) -> list[RemoteVideo]:
        """The complete listing, or IncompleteListingError/RemoteError. Never partial."""
        ...

    def list_into(self, sink: ListingSink[RemoteVideo]) -> None:
        """The complete listing, page by page into ``sink`` (a video once, however many
        pages show it); IncompleteListingError/RemoteError if it cannot be read in full,
        and then what ``sink`` took is no listing. ``list_videos`` is this into memory."""
        ...

    def video_details(self, video_id: str) -> VideoDetails:
        """NotFoundError when the remote does not know the video."""
        ...

    def delete_video(self, video_id: str) -> None:
        """Safe to repeat: a video already gone returns or raises NotFoundError."""
        ...

    def download_video(self, video_id: str, dest: BinaryIO) -> int:
        """Write the original bytes to ``dest``; the number written."""
        ...

    def check(self) -> str:
        """One cheap request proving the service answers and accepts the key; a short
        description of what it saw, for ``syncd doctor``. Raises like any call."""
        ...

    def close(self) -> None: ...


_T = TypeVar("_T")


def need(remote: Remote, ability: _T | None, what: str) -> _T:
    """``ability`` (a field of ``remote.features()``), or UnsupportedError saying the backend
    cannot ``what`` (e.g. "answer questions about a video")."""
    if ability is None:
        raise UnsupportedError(f"{remote.description} cannot {what}")
    return ability


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

    def list_newest(self, known: Container[str]) -> list[RemoteVideo]:
        """Videos newer than the newest of ``known`` (ids), newest first: pages from the
        newest end until one holds a known video. Not a complete listing."""
        ...
