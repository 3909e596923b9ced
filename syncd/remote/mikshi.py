"""Client for the Mikshi developer API (../shared/api-docs/mikshi-developer-api.txt).

Two layers in one class:

* one typed method per documented endpoint, named after the doc
  (``multipart_initiate``, ``upload_status``, ``collections_list`` ...);
* the backend-neutral :class:`~syncd.remote.base.Remote` methods the engine
  uses (``start_upload``, ``processing_status`` ...), written on top of them.

Vocabulary mapping (doc → neutral): upload steps ``pending|in_progress|
completed|failed`` and pipeline states ``pending|running|done|failed`` both map
to ``pending|running|done|failed``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Collection, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from syncd.errors import BadRequestError, ConflictError, IncompleteListingError, NotFoundError, RemoteError, TransportError
from syncd.remote.base import (
    ChatMessage,
    ContentEvidence,
    Features,
    ImportTask,
    ListedVideos,
    ListingSink,
    Marks,
    Pipeline,
    ProcessingStatus,
    RemoteCollection,
    RemoteVideo,
    SearchHit,
    Segment,
    StepState,
    StepStatus,
    UploadSession,
    VideoDetails,
    Visualization,
    VisualizationPoint,
    parse_timestamp,
)
from syncd.remote.facts import MIKSHI, MIKSHI_PIPELINES, MIKSHI_PROCESSING_STEPS
from syncd.remote.http import HttpClient, RetryPolicy
from syncd.remote.multipart import NoJournal, upload_file

BACKEND = "/api/backend/v1/developer"
CHAT = "/api/chat/v1/developer"
# Chat and search answer 502/503 when the auth service could not be reached to take the
# credit: nothing was done or charged, and the doc says to retry.
CREDIT_NOT_TAKEN = frozenset({502, 503})
PAGE_SIZE = 100  # the documented maximum for page-based listings
NEWEST_PAGE_SIZE = 20  # a poll for new videos usually finds none: one small page
# Upload-side processing statuses, as videos/list and get-video-details both name them.
PROCESSING_STATUS_KEYS = {
    "thumbnail_generation_status": "thumbnail",
    "transcoding_status": "transcoding",
    "hls_generation_status": "hls",
}
# Every step's status field (details and listing) → the step's name.
STATUS_KEYS = {
    **PROCESSING_STATUS_KEYS,
    "analyse_status": "analyse",
    "search_process_status": "search-process",
}
# Pre-signed URLs in get-video-details: they expire, so they differ on every answer.
PRESIGNED_FIELDS = frozenset({"video_path", "thumbnail_path"})
READ_BLOCK = 1 << 20
PROCESSING_STEPS = MIKSHI_PROCESSING_STEPS
PIPELINES: tuple[Pipeline, ...] = MIKSHI_PIPELINES
#: ``Remote.upload`` sends a file this large or smaller in one request unless told otherwise;
#: above it, in parts (the documented direct-upload cap is per environment).
DIRECT_UPLOAD_MAX = 100 * 2**20
UPLOAD_PART_SIZE = 16 * 2**20
FACTS = replace(MIKSHI, direct_upload_max_bytes=DIRECT_UPLOAD_MAX)
# Ownership markers: one collection per syncd instance, named this plus the instance name.
# Membership marks the videos the instance holds (Mikshi adds only fully processed videos
# to a collection); the description is the instance's heartbeat note. Hidden from
# ``list_collections`` so the engine and the mirror never take it for a folder's collection.
MARKER_PREFIX = "syncd-instance:"

_STEP_STATES: dict[str, StepState] = {
    "pending": "pending",
    "in_progress": "running",
    "running": "running",
    "enqueued": "running",
    "completed": "done",
    "done": "done",
    "failed": "failed",
}

T = TypeVar("T")


def step_state(value: object) -> StepState:
    return _STEP_STATES.get(str(value or "pending").lower(), "pending")


@dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    page: int
    page_size: int
    total: int


@dataclass(frozen=True)
class CollectionVideo:
    video_id: str
    name: str
    status: str | None
    created_at: str | None


def _uuid_or_raise(value: str, what: str = "video_id") -> str:
    """Refuse non-UUIDs locally: a stray path segment must never reach a URL."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise RemoteError(f"{what} is not a UUID: {value!r}") from None


class MikshiClient:
    """Typed client for the Mikshi developer API; implements ``Remote``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http: HttpClient | None = None,
        direct_upload_max_bytes: int = 0,
    ) -> None:
        self.http = http or HttpClient(base_url, api_key, timeout=timeout, retry=retry)
        self.direct_upload_max_bytes = direct_upload_max_bytes or DIRECT_UPLOAD_MAX
        self.page_size = PAGE_SIZE  # of list_videos' pages (tests make listings span pages)
        self.part_size = UPLOAD_PART_SIZE  # of uploads in parts by ``upload``
        self._marker_ids: dict[str, str] = {}  # instance → its marker collection (the list is cached)
        self.description = f"mikshi at {self.http.base_url}"

    def __repr__(self) -> str:
        return f"MikshiClient({self.http.base_url!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MikshiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ================================================================ uploads
    def multipart_initiate(self, filename: str, content_type: str = "video/mp4") -> UploadSession:
        body = self.http.call(
            "POST",
            f"{BACKEND}/uploads/multipart/initiate",
            json_body={"filename": filename, "content_type": content_type},
            idempotent=False,
        )
        return UploadSession(str(body["upload_id"]), _token(str(body["s3_object_name"]), str(body["video_id"])))

    def multipart_part_url(self, s3_object_name: str, upload_id: str, part_number: int) -> str:
        if not 1 <= part_number <= 10_000:
            raise RemoteError(f"part_number must be 1..10000, got {part_number}")
        body = self.http.call(
            "POST",
            f"{BACKEND}/uploads/multipart/part-url",
            json_body={
                "s3_object_name": s3_object_name,
                "upload_id": upload_id,
                "part_number": part_number,
            },
            idempotent=True,  # signing a URL changes nothing
        )
        return str(body["url"])

    def multipart_list_parts(self, s3_object_name: str, upload_id: str) -> dict[int, str]:
        body = self.http.call(
            "POST",
            f"{BACKEND}/uploads/multipart/list-parts",
            json_body={"s3_object_name": s3_object_name, "upload_id": upload_id},
            idempotent=True,
        )
        return {int(p["part_number"]): str(p["etag"]) for p in body.get("parts", [])}

    def multipart_complete(
        self, s3_object_name: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        self.http.call(
            "POST",
            f"{BACKEND}/uploads/multipart/complete",
            json_body={
                "s3_object_name": s3_object_name,
                "upload_id": upload_id,
                "parts": [{"part_number": n, "etag": etag} for n, etag in sorted(parts)],
            },
            # Not retried blindly: a lost answer to a successful complete turns
            # the repeat into 404; the multipart driver resolves that case.
            idempotent=False,
        )

    def multipart_abort(self, s3_object_name: str, upload_id: str) -> None:
        self.http.call(
            "POST",
            f"{BACKEND}/uploads/multipart/abort",
            json_body={"s3_object_name": s3_object_name, "upload_id": upload_id},
            idempotent=True,
        )

    def put_part_bytes(self, url: str, source: BinaryIO, offset: int, length: int) -> str:
        """Stream ``length`` bytes at ``offset`` of an open file to a pre-signed URL."""
        fd = source.fileno()

        def body() -> Iterator[bytes]:
            sent = 0
            while sent < length:
                block = os.pread(fd, min(READ_BLOCK, length - sent), offset + sent)
                if not block:
                    raise RemoteError("file shrank while its part was being sent")
                sent += len(block)
                yield block

        return self.http.put_object_part(url, body, length)

    def preprocess(
        self, s3_object_name: str, video_id: str, name: str, use_dynamic_hls: bool = False
    ) -> str:
        body = self.http.call(
            "POST",
            f"{BACKEND}/uploads/preprocess",
            json_body={
                "s3_object_name": s3_object_name,
                "video_id": video_id,
                "name": name,
                "use_dynamic_hls": use_dynamic_hls,
            },
            idempotent=False,  # a repeat answers 409 "Video already exists."
        )
        return str(body["video_id"])

    def upload_direct(self, path: Path, name: str | None = None, use_dynamic_hls: bool = False) -> str:
        with open(path, "rb") as fh:
            body = self.http.call(
                "POST",
                f"{BACKEND}/uploads/direct",
                files={"file": (path.name, fh, "application/octet-stream")},
                data={"name": name or path.name, "use_dynamic_hls": str(use_dynamic_hls).lower()},
                idempotent=False,
            )
        return str(body["video_id"])

    def youtube_import(self, url: str, name: str | None = None, use_dynamic_hls: bool = False) -> str:
        payload: dict[str, Any] = {"url": url, "use_dynamic_hls": use_dynamic_hls}
        if name is not None:
            payload["name"] = name
        body = self.http.call("POST", f"{BACKEND}/uploads/youtube", json_body=payload, idempotent=False)
        return str(body["video_id"])

    def upload_status(self, video_id: str) -> ProcessingStatus:
        vid = _uuid_or_raise(video_id)
        body = self.http.call("GET", f"{BACKEND}/uploads/status/{vid}", idempotent=True)
        steps = {}
        for key, name in (
            ("thumbnail_generation_status", "thumbnail"),
            ("transcoding_status", "transcoding"),
            ("hls_generation_status", "hls"),
        ):
            raw = body.get(key) or {}
            steps[name] = StepStatus(step_state(raw.get("status")), raw.get("percentage"), raw.get("error"))
        return ProcessingStatus(str(body.get("video_id", vid)), steps, body.get("error_message"))

    # ================================================================= videos
    def videos_list(
        self,
        *,
        skip: int = 0,
        limit: int = PAGE_SIZE,
        status: str | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        not_in_collection: bool | None = None,
        sort_by: str | None = "created_at",
        sort_order: str | None = "asc",
    ) -> list[RemoteVideo]:
        params = {
            "skip": skip,
            "limit": limit,
            "status": status,
            "start_time": start_time,
            "end_time": end_time,
            "not_in_collection": None if not_in_collection is None else str(not_in_collection).lower(),
            "sort_by": sort_by,
            "sort_order": sort_order,
        }
        body = self.http.call("GET", f"{BACKEND}/videos/list", params=params, idempotent=True)
        if not isinstance(body, list):
            raise IncompleteListingError("videos/list did not answer with a list")
        return [self._video_item(item) for item in body]

    def iter_videos(self, page_size: int = PAGE_SIZE, **filters: Any) -> Iterator[RemoteVideo]:
        """Walk every page of videos/list (skip/limit) until a short page."""
        skip = 0
        while True:
            batch = self.videos_list(skip=skip, limit=page_size, **filters)
            yield from batch
            if len(batch) < page_size:
                return
            skip += page_size

    @staticmethod
    def _video_item(item: dict[str, Any]) -> RemoteVideo:
        pipelines: dict[str, StepState] = {}
        for key, name in (("analyse_status", "analyse"), ("search_process_status", "search-process")):
            if item.get(key) is not None:
                pipelines[name] = step_state(item[key])
        return RemoteVideo(
            video_id=str(item["video_id"]),
            name=str(item.get("name") or ""),
            status=item.get("status"),
            created_at=item.get("created_at"),
            pipelines=pipelines,
            hls_playlist_url=item.get("hls_playlist_path"),
            processing={name: item.get(key) for key, name in PROCESSING_STATUS_KEYS.items()},
        )

    def get_video_details(self, video_id: str) -> VideoDetails:
        vid = _uuid_or_raise(video_id)
        body = self.http.call(
            "GET", f"{BACKEND}/videos/get-video-details", params={"video_id": vid}, idempotent=True
        )
        meta = body.get("video_metadata") or {}
        # Step name → the status as Mikshi reports it ("completed", "done", ...).
        statuses = {name: body.get(key) for key, name in STATUS_KEYS.items() if key in body}
        return VideoDetails(
            video_id=str(body.get("video_id", vid)),
            name=str(body.get("name") or ""),
            duration_seconds=_opt_float(meta.get("duration_seconds")),
            width=_opt_int(meta.get("width")),
            height=_opt_int(meta.get("height")),
            size_bytes=_opt_int(meta.get("size_bytes")),
            video_url=body.get("video_path"),
            thumbnail_url=body.get("thumbnail_path"),
            hls_playlist_url=body.get("hls_playlist_path"),
            created_at=body.get("created_at"),
            statuses=statuses,
            raw=body,
            reported={k: v for k, v in body.items() if k not in PRESIGNED_FIELDS},
        )

    def videos_delete(self, video_id: str) -> None:
        vid = _uuid_or_raise(video_id)
        # Deleting twice answers 404, which callers treat as done: safe to repeat.
        self.http.call("DELETE", f"{BACKEND}/videos/delete", params={"video_id": vid}, idempotent=True)

    def pipeline_initiate(self, pipeline: Pipeline, video_id: str) -> str:
        vid = _uuid_or_raise(video_id)
        body = self.http.call(
            "POST", f"{BACKEND}/videos/{_pipeline_path(pipeline)}/initiate",
            json_body={"video_id": vid}, idempotent=False,
        )
        return str((body or {}).get("status", "enqueued"))

    def pipeline_status_raw(self, pipeline: Pipeline, video_id: str) -> StepStatus:
        vid = _uuid_or_raise(video_id)
        body = self.http.call(
            "GET", f"{BACKEND}/videos/{_pipeline_path(pipeline)}/status/{vid}", idempotent=True
        )
        return StepStatus(step_state(body.get("status")), body.get("percentage"), body.get("error"))

    def analyse_initiate(self, video_id: str) -> str:
        return self.pipeline_initiate("analyse", video_id)

    def analyse_status(self, video_id: str) -> StepStatus:
        return self.pipeline_status_raw("analyse", video_id)

    def search_process_initiate(self, video_id: str) -> str:
        return self.pipeline_initiate("search-process", video_id)

    def search_process_status(self, video_id: str) -> StepStatus:
        return self.pipeline_status_raw("search-process", video_id)

    def hls_playlist(self, video_id: str, playlist: str = "master.m3u8") -> str:
        vid = _uuid_or_raise(video_id)
        return self.http.call_text(
            "GET", "/api/backend/v1/videos/hls-playlist", params={"video_id": vid, "playlist": playlist}
        )

    def hls_part(self, video_id: str, name: str) -> tuple[bytes, str]:
        """A playlist or segment through the key-gated HLS proxy (the UI relays it)."""
        vid = _uuid_or_raise(video_id)
        body, content_type = self.http.call_bytes(
            "GET", "/api/backend/v1/videos/hls-playlist", params={"video_id": vid, "playlist": name}
        )
        if name.endswith(".m3u8"):
            body = _relative_playlist(body.decode()).encode()
        return body, content_type

    def has_thumbnail(self, statuses: Mapping[str, object]) -> bool:
        return statuses.get("thumbnail") == "completed"

    def thumbnail(self, video_id: str) -> bytes | None:
        details = self.get_video_details(video_id)
        if not details.thumbnail_url or details.statuses.get("thumbnail") != "completed":
            return None
        return self.http.get_object_bytes(details.thumbnail_url)

    # ============================================================ collections
    def collections_list(self, page: int = 1, page_size: int = PAGE_SIZE) -> Page[RemoteCollection]:
        body = self.http.call(
            "GET", f"{BACKEND}/collections/list",
            params={"page": page, "page_size": page_size}, idempotent=True,
        )
        return Page(
            [self._collection(c) for c in body.get("data", [])],
            int(body.get("page", page)), int(body.get("page_size", page_size)), int(body.get("total", 0)),
        )

    def iter_collections(self) -> Iterator[RemoteCollection]:
        yield from _walk_pages(lambda page: self.collections_list(page, PAGE_SIZE), "collections/list")

    def collections_create(self, name: str, description: str | None = None) -> RemoteCollection:
        payload: dict[str, Any] = {"name": name}
        if description is not None:
            payload["description"] = description
        body = self.http.call("POST", f"{BACKEND}/collections/create", json_body=payload, idempotent=False)
        return self._collection(body)

    def collections_update(
        self, collection_id: str, name: str | None = None, description: str | None = None
    ) -> RemoteCollection:
        cid = _uuid_or_raise(collection_id, "collection_id")
        payload = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        body = self.http.call(
            "PATCH", f"{BACKEND}/collections/update/{cid}", json_body=payload, idempotent=True
        )
        return self._collection(body)

    def collections_delete(self, collection_id: str) -> None:
        cid = _uuid_or_raise(collection_id, "collection_id")
        self.http.call("DELETE", f"{BACKEND}/collections/delete/{cid}", idempotent=True)

    def collection_videos(
        self, collection_id: str, page: int = 1, page_size: int = PAGE_SIZE,
        sort_by: str | None = "created_at", sort_order: str | None = "asc",
    ) -> Page[CollectionVideo]:
        cid = _uuid_or_raise(collection_id, "collection_id")
        body = self.http.call(
            "GET", f"{BACKEND}/collections/{cid}/videos",
            params={"page": page, "page_size": page_size, "sort_by": sort_by, "sort_order": sort_order},
            idempotent=True,
        )
        videos = [
            CollectionVideo(str(v["video_id"]), str(v.get("name") or ""), v.get("status"), v.get("created_at"))
            for v in body.get("data", [])
        ]
        return Page(videos, int(body.get("page", page)), int(body.get("page_size", page_size)),
                    int(body.get("total", 0)))

    def iter_collection_videos(self, collection_id: str) -> Iterator[CollectionVideo]:
        yield from _walk_pages(
            lambda page: self.collection_videos(collection_id, page, PAGE_SIZE), "collection videos"
        )

    def collection_add_video(self, collection_id: str, video_id: str) -> None:
        cid = _uuid_or_raise(collection_id, "collection_id")
        self.http.call(
            "POST", f"{BACKEND}/collections/{cid}/videos",
            json_body={"video_id": _uuid_or_raise(video_id)}, idempotent=False,  # repeat → 409
        )

    def collection_remove_video(self, collection_id: str, video_id: str) -> None:
        cid = _uuid_or_raise(collection_id, "collection_id")
        vid = _uuid_or_raise(video_id)
        self.http.call("DELETE", f"{BACKEND}/collections/{cid}/videos/{vid}", idempotent=True)

    @staticmethod
    def _collection(body: dict[str, Any]) -> RemoteCollection:
        return RemoteCollection(
            collection_id=str(body["collection_id"]),
            name=str(body.get("name") or ""),
            description=body.get("description"),
            video_count=int(body.get("video_count") or 0),
            created_at=body.get("created_at"),
        )

    # =================================================== chat, search, vectors
    def chat_ask(
        self, video_id: str, question: str, history: Sequence[ChatMessage] = (), top_k: int | None = None
    ) -> str:
        body = self.http.call(
            "POST", f"{CHAT}/chat/ask",
            json_body=self._ask_body(video_id, question, history, top_k, stream=False),
            idempotent=False, transient=CREDIT_NOT_TAKEN,  # costs a credit
        )
        return str(body.get("answer", ""))

    def chat_ask_stream(
        self, video_id: str, question: str, history: Sequence[ChatMessage] = (), top_k: int | None = None
    ) -> Iterator[str]:
        """Yield tokens; return after ``done``; raise RemoteError on ``error`` or a cut stream."""
        payload = self._ask_body(video_id, question, history, top_k, stream=True)
        with self.http.stream("POST", f"{CHAT}/chat/ask", json_body=payload, idempotent=False,
                              transient=CREDIT_NOT_TAKEN) as response:
            for event, data in iter_sse(response.iter_lines()):
                if event == "token":
                    yield str(data.get("content", ""))
                elif event == "done":
                    return
                elif event == "error":
                    detail = data.get("detail") or data.get("message")
                    raise RemoteError(self.http.redact(f"chat stream failed: {detail}"))
        raise TransportError("chat stream ended without a done or error event")

    @staticmethod
    def _ask_body(
        video_id: str, question: str, history: Sequence[ChatMessage], top_k: int | None, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"question": question, "video_id": _uuid_or_raise(video_id), "stream": stream}
        if history:
            body["history"] = [{"role": m.role, "content": m.content} for m in history]
        if top_k is not None:
            body["top_k"] = top_k
        return body

    def search_segments(
        self, query: str, video_ids: Sequence[str] = (), collection_id: str | None = None, top_k: int = 5
    ) -> list[SearchHit]:
        body = self.http.call(
            "POST", f"{CHAT}/search",
            json_body={
                "query": query,
                "video_ids": [_uuid_or_raise(v) for v in video_ids],
                "collection_id": collection_id,
                "top_k": top_k,
            },
            idempotent=False, transient=CREDIT_NOT_TAKEN,  # costs a credit
        )
        return [
            SearchHit(
                rank=int(hit.get("rank", i + 1)),
                video_id=str(hit["video_id"]),
                start=parse_timestamp(hit.get("start")),
                end=parse_timestamp(hit.get("end")),
                thumbnail_url=hit.get("thumbnail_url"),
                hls_playlist_url=hit.get("hls_playlist_url"),
                video_url=hit.get("video_url"),
            )
            for i, hit in enumerate(body.get("results", []))
        ]

    def visualize(self, video_ids: Sequence[str] = (), collection_id: str | None = None) -> Visualization:
        body = self.http.call(
            "POST", f"{CHAT}/visualize",
            json_body={"video_ids": [_uuid_or_raise(v) for v in video_ids], "collection_id": collection_id},
            idempotent=True,  # free and read-only
        )
        points = [
            VisualizationPoint(
                str(p.get("segment_id", "")), str(p["video_id"]), float(p["x"]), float(p["y"]),
                parse_timestamp(p.get("start")), parse_timestamp(p.get("end")),
            )
            for p in body.get("points", [])
        ]
        return Visualization(dict(body.get("videos", {})), points)

    def embeddings_video(self, video_id: str) -> list[Segment]:
        vid = _uuid_or_raise(video_id)
        body = self.http.call("GET", f"{CHAT}/embeddings/video/{vid}", idempotent=True)
        return [
            Segment(
                start=parse_timestamp(item.get("start")),
                end=parse_timestamp(item.get("end")),
                option=str(item.get("embedding_option") or ""),
                scope=str(item.get("embedding_scope") or ""),
                vector=tuple(float(x) for x in item["embedding"]),
            )
            for item in body.get("data", [])
        ]

    def embeddings_text(self, text: str) -> list[float]:
        body = self.http.call("POST", f"{CHAT}/embeddings/text", json_body={"text": text}, idempotent=True)
        data = body.get("data") or []
        if not data:
            raise RemoteError("text embedding answer has no data")
        return [float(x) for x in data[0]["embedding"]]

    # ======================================================= Remote protocol
    def features(self) -> Features:
        return replace(
            FACTS, direct_upload_max_bytes=self.direct_upload_max_bytes, chunked=self, collections=self, processing=self, embeddings=self, search=self,
            chat=self, visualize=self, url_import=self, media=self, proof=self, marks=self, newest=self,
        )

    def upload(self, path: Path, name: str) -> str:
        """Direct upload up to the cap, else the multipart driver without a journal (the
        engine drives ``chunked`` itself, journalled in its catalog, for resumable uploads).
        A 413 (the server's cap is lower) is the caller's to handle: it says "use parts"."""
        if path.stat().st_size <= self.direct_upload_max_bytes:
            return self.upload_direct(path, name)
        return upload_file(self, path, name=name, part_size=self.part_size, concurrency=2,
                           journal=NoJournal()).video_id

    def check(self) -> str:
        page = self.collections_list(1, PAGE_SIZE)
        return f"{page.total} collection(s)"

    def missing_collection(self, exc: Exception) -> bool:
        # The API names what it did not find: "Collection not found" vs "Video not found".
        return isinstance(exc, NotFoundError) and "collection" in exc.message.lower()

    def check_urls(self, urls: Sequence[str]) -> str | None:
        if not 1 <= len(urls) <= MAX_IMPORT_URLS:
            return f"give 1 to {MAX_IMPORT_URLS} URLs per import (got {len(urls)})"
        for url in urls:
            if _youtube_id(url) is None:
                return f"not a YouTube video URL (Mikshi imports only from YouTube): {url}"
        return None

    def import_urls(self, urls: Sequence[str]) -> ImportTask:
        """YouTube import: one request and one video per URL, known at once. A URL the
        service refuses (a private video...) after others went through is reported in
        ``failed``, so the videos already created are not lost from sight."""
        ids: list[str] = []
        failed: list[str] = []
        for url in urls:
            try:
                ids.append(self.youtube_import(url))
            except BadRequestError as exc:
                failed.append(f"{url}: {exc.code or exc.message}")
            except RemoteError as exc:
                if not ids:
                    raise
                failed.append(f"{url}: {exc}")
        return ImportTask(",".join(ids) or "none", tuple(ids), done=True, failed=tuple(failed))

    def import_status(self, task: ImportTask) -> ImportTask:
        return task

    def start_upload(self, filename: str, content_type: str) -> UploadSession:
        return self.multipart_initiate(filename, content_type)

    def put_part(self, session: UploadSession, part_number: int, source: BinaryIO, offset: int, length: int) -> str:
        url = self.multipart_part_url(_object_name(session), session.upload_id, part_number)
        return self.put_part_bytes(url, source, offset, length)

    def list_parts(self, session: UploadSession) -> dict[int, str]:
        return self.multipart_list_parts(_object_name(session), session.upload_id)

    def complete_upload(self, session: UploadSession, parts: Sequence[tuple[int, str]]) -> None:
        self.multipart_complete(_object_name(session), session.upload_id, parts)

    def abort_upload(self, session: UploadSession) -> None:
        self.multipart_abort(_object_name(session), session.upload_id)

    def upload_video_id(self, session: UploadSession) -> str | None:
        return _video_id(session)

    def register_video(self, session: UploadSession, name: str) -> str:
        video_id = _video_id(session)
        try:
            return self.preprocess(_object_name(session), video_id, name)
        except ConflictError:
            return video_id  # registered by an earlier attempt whose answer was lost

    def processing_status(self, video_id: str) -> ProcessingStatus:
        return self.upload_status(video_id)

    def start_pipeline(self, video_id: str, pipeline: Pipeline) -> None:
        self.pipeline_initiate(pipeline, video_id)

    def pipeline_status(self, video_id: str, pipeline: Pipeline) -> StepStatus:
        return self.pipeline_status_raw(pipeline, video_id)

    def list_videos(self) -> list[RemoteVideo]:
        sink: ListedVideos[RemoteVideo] = ListedVideos(lambda v: v.video_id)
        self.list_into(sink)
        return list(sink.videos.values())

    def list_into(self, sink: ListingSink[RemoteVideo]) -> None:
        """Every page of videos/list (skip/limit) until a short one, each handed on as read."""
        skip = 0
        while True:
            batch = self.videos_list(skip=skip, limit=self.page_size)
            sink.add(batch)
            if len(batch) < self.page_size:
                return
            skip += self.page_size

    def list_newest(self, known: Container[str], page_size: int = NEWEST_PAGE_SIZE) -> list[RemoteVideo]:
        found: dict[str, RemoteVideo] = {}
        skip = 0
        while True:
            batch = self.videos_list(skip=skip, limit=page_size, sort_by="created_at", sort_order="desc")
            for video in batch:
                if video.video_id not in known:
                    found.setdefault(video.video_id, video)
            if len(batch) < page_size or any(v.video_id in known for v in batch):
                return list(found.values())
            skip += page_size

    def video_details(self, video_id: str) -> VideoDetails:
        return self.get_video_details(video_id)

    def delete_video(self, video_id: str) -> None:
        self.videos_delete(video_id)

    def download_video(self, video_id: str, dest: BinaryIO) -> int:
        details = self.get_video_details(video_id)
        if not details.video_url:
            raise RemoteError(f"video {video_id} has no download URL")
        return self.http.get_object(details.video_url, dest.write)

    def list_collections(self) -> list[RemoteCollection]:
        return [c for c in self.iter_collections() if not c.name.startswith(MARKER_PREFIX)]

    def create_collection(self, name: str) -> RemoteCollection:
        return self.collections_create(name, description="Synced by syncd")

    def rename_collection(self, collection_id: str, name: str) -> None:
        self.collections_update(collection_id, name=name)

    def delete_collection(self, collection_id: str) -> None:
        self.collections_delete(collection_id)

    def collection_video_ids(self, collection_id: str) -> list[str]:
        return [v.video_id for v in self.iter_collection_videos(collection_id)]

    def add_to_collection(self, collection_id: str, video_id: str) -> None:
        self.collection_add_video(collection_id, video_id)

    def remove_from_collection(self, collection_id: str, video_id: str) -> None:
        self.collection_remove_video(collection_id, video_id)

    def video_segments(self, video_id: str) -> list[Segment]:
        return self.embeddings_video(video_id)

    # ------------------------------------------- proof of content (ContentProof)
    def content_evidence(self, video_id: str) -> ContentEvidence:
        """The original object's S3 ETag and size, from a one-byte ranged GET of video_path."""
        details = self.get_video_details(video_id)
        if not details.video_url:
            return ContentEvidence(size=details.size_bytes)
        etag, size = self.http.object_etag(details.video_url)
        return ContentEvidence(size=details.size_bytes if size is None else size, etag=etag)

    # ------------------------------------------ ownership markers (InstanceMarks)
    def _markers(self) -> dict[str, RemoteCollection]:
        found = {c.name[len(MARKER_PREFIX):]: c for c in self.iter_collections() if c.name.startswith(MARKER_PREFIX)}
        for instance, collection in found.items():
            self._marker_ids[instance] = collection.collection_id
        return found

    def _marker_id(self, instance: str, *, create: bool) -> str | None:
        if instance not in self._marker_ids:
            self._markers()
        if instance not in self._marker_ids and create:
            try:
                made = self.collections_create(MARKER_PREFIX + instance, description="")
            except ConflictError:  # made meanwhile; the list may lag (it is cached)
                self._markers()
                if instance not in self._marker_ids:
                    raise RemoteError(f"marker collection of {instance!r} exists but is not listed yet") from None
            else:
                self._marker_ids[instance] = made.collection_id
        return self._marker_ids.get(instance)

    def read_marks(self) -> Marks:
        # Each video's holders as one frozenset shared by every video with the same ones
        # (with one syncd on the account, all of them): not a set per video, ~200 bytes
        # each, which a library of a million would hold at every complete listing.
        shared: dict[frozenset[str], frozenset[str]] = {}
        videos: dict[str, frozenset[str]] = {}
        markers = self._markers()
        for instance, collection in markers.items():
            for video in self.iter_collection_videos(collection.collection_id):
                holders = videos.get(video.video_id, frozenset()) | {instance}
                videos[video.video_id] = shared.setdefault(holders, holders)
        return Marks(frozenset(markers), videos)

    def add_mark(self, instance: str, video_id: str) -> bool:
        marker = self._marker_id(instance, create=True)
        assert marker is not None
        try:
            self.collection_add_video(marker, video_id)
        except ConflictError:
            pass  # already marked
        except BadRequestError:
            return False  # "Only fully processed videos can be added to a collection."
        return True

    def remove_mark(self, instance: str, video_id: str) -> None:
        marker = self._marker_id(instance, create=False)
        if marker is not None:
            try:
                self.collection_remove_video(marker, video_id)
            except NotFoundError:
                pass

    def write_note(self, instance: str, note: str) -> str | None:
        markers = self._markers()
        if instance in markers:
            self.collections_update(markers[instance].collection_id, description=note)
            return markers[instance].description
        marker = self._marker_id(instance, create=True)  # or found, if the list lagged
        assert marker is not None
        self.collections_update(marker, description=note)
        return None

    def read_note(self, instance: str) -> str | None:
        marker = self._markers().get(instance)
        return None if marker is None else marker.description

    def embed_text(self, text: str) -> list[float]:
        return self.embeddings_text(text)

    def search(
        self, query: str, video_ids: Sequence[str], top_k: int = 5, collection_id: str | None = None
    ) -> list[SearchHit]:
        return self.search_segments(query, video_ids, collection_id, top_k)

    def ask(self, video_id: str, question: str, history: Sequence[ChatMessage] = ()) -> str:
        return self.chat_ask(video_id, question, history)

    def ask_stream(self, video_id: str, question: str, history: Sequence[ChatMessage] = ()) -> Iterator[str]:
        return self.chat_ask_stream(video_id, question, history)


def _token(object_name: str, video_id: str) -> str:
    """An upload's resume token: the object it assembles and the video id it will have."""
    return json.dumps({"object_name": object_name, "video_id": video_id}, separators=(",", ":"))


MAX_IMPORT_URLS = 50  # no documented cap; one request per URL, so a sane one
_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be"})


def _youtube_id(url: str) -> str | None:
    """The video id of a YouTube URL (watch?v=, youtu.be/, /shorts/), or None."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or host not in _YOUTUBE_HOSTS:
        return None
    if host == "youtu.be":
        found = parts.path.strip("/")
    else:
        found = (parse_qs(parts.query).get("v") or [""])[0] or parts.path.rstrip("/").rsplit("/", 1)[-1]
    return found if found and found not in ("watch", "shorts") else None


def _object_name(session: UploadSession) -> str:
    return str(json.loads(session.token)["object_name"])


def _video_id(session: UploadSession) -> str:
    return str(json.loads(session.token)["video_id"])


def _relative_playlist(text: str) -> str:
    """An HLS playlist whose URIs (proxy URLs naming the part in ``playlist=``) become bare
    part names, so whoever relays the playlist resolves them against its own address."""
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            named = parse_qs(urlsplit(line).query).get("playlist")
            line = named[0] if named else urlsplit(line).path.rsplit("/", 1)[-1]
        lines.append(line)
    return "\n".join(lines) + "\n"


def _pipeline_path(pipeline: Pipeline) -> str:
    if pipeline not in PIPELINES:
        raise RemoteError(f"unknown pipeline {pipeline!r}")
    return pipeline


def _walk_pages(fetch: Any, what: str) -> Iterator[Any]:
    """Page-based walk that stops at ``total``; a short walk is an error, not an end."""
    page, seen = 1, 0
    while True:
        result: Page[Any] = fetch(page)
        yield from result.data
        seen += len(result.data)
        if seen >= result.total:
            return
        if not result.data:
            raise IncompleteListingError(f"{what}: page {page} was empty after {seen} of {result.total}")
        page += 1


def iter_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parse a text/event-stream into (event, JSON data) pairs."""
    event, data_lines = "message", list[str]()
    for line in lines:
        if line == "":
            if data_lines:
                raw = "\n".join(data_lines)
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError:
                    data = {"content": raw}
                yield event, data if isinstance(data, dict) else {"content": data}
            event, data_lines = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data_lines.append(value)
    if data_lines:
        raw = "\n".join(data_lines)
        try:
            yield event, json.loads(raw)
        except json.JSONDecodeError:
            yield event, {"content": raw}


def _opt_float(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _opt_int(value: object) -> int | None:
    try:
        return None if value is None else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
