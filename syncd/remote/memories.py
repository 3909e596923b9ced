"""Client for memories.ai (../shared/api-docs/memories-*.txt and memories-public-summary.md).

One method per documented endpoint, named after it. The service's habits handled here:

* ``Authorization: <key>`` with no ``Bearer`` (``Bearer`` is never sent);
* v1 answers ``{"code", "msg", "data", "success", "failed"}``: any code other than ``"0000"``
  is an error even at HTTP 200, decoded into the semantic errors of ``syncd.errors``; v2
  answers carry integer codes equal to HTTP statuses (``decode_error`` below);
* numbers arrive as strings in list_videos and task status, as JSON numbers in
  get_metadata: both are read (``_int``/``_float``); ``videoNo``/``video_no`` both read;
* get_metadata of an unknown ``video_no`` is ``data: null`` → ``None``, not an error;
* a repeated delete may answer ``0409``: treated as success (both mean gone);
* every request is paced by the per-account rate limiter (defaults: the published
  figures, overridable); ``0429`` waits and goes on;
* uploads stream from disk (httpx reads the file in blocks), one request per file.

``MemoriesClient`` speaks the service's vocabulary only; ``MemoriesRemote`` (at the end)
is the engine-facing ``Remote`` on top of it, with its ``Features``: tags (set at upload),
one processing step (parsing, which starts by itself: no pipelines), remote search,
import from URLs and live streams; no chunked upload, no collections.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from syncd.errors import (
    AccessDeniedError,
    AuthError,
    BadRequestError,
    ConflictError,
    HTTPStatusError,
    IncompleteListingError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    RateLimitedError,
    RemoteError,
    ServerError,
    TransportError,
    UnavailableError,
    error_for_status,
)
from syncd.models import Capture
from syncd.remote.base import (
    ContentEvidence,
    Features,
    ImportTask,
    ListedVideos,
    ListingSink,
    Marks,
    Pipeline,
    ProcessingStatus,
    RemoteVideo,
    SearchHit,
    StepState,
    StepStatus,
    VideoDetails,
)
from syncd.remote.facts import MEMORIES, MEMORIES_PARSE_STEP, MEMORIES_RATE_LIMITS
from syncd.remote.http import HttpClient, RetryPolicy, error_message, parse_retry_after
from syncd.remote.ratelimit import RateLimiter

DEFAULT_BASE_URL = "https://api.memories.ai/serve/api/v1"
DEFAULT_V2_BASE_URL = "https://mavi-backend.memories.ai/serve/api/v2"

DEFAULT_RATE_LIMITS = MEMORIES_RATE_LIMITS

VIDEO_EXTENSIONS = {".mp4": "video/mp4", ".avi": "video/x-msvideo",
                    ".mkv": "video/x-matroska", ".mov": "video/quicktime"}
#: "at most 3 GB" (public summary): decimal gigabytes, the stricter reading.
MAX_UPLOAD_BYTES = 3 * 1000 ** 3
MAX_DELETE_IDS = 100
MAX_SEARCH_VIDEO_NOS = 100
MAX_SCRAPER_URLS = 50
PAGE_SIZE = 100
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # yyyy-MM-dd HH:mm:ss
STATUSES = ("PARSE", "UNPARSE", "FAIL")
#: The code table page names the failure PARSE_ERROR; list_videos says FAIL. Both failed.
FAILED_STATUSES = frozenset({"FAIL", "PARSE_ERROR", "FAILED"})
LIST_RESTARTS = 3
KNOWN_MAX = 10_000  # videos whose cover URL and stored file MemoriesRemote remembers

OK = "0000"
_BAD_PARAMS = frozenset({"0001", "0003"})
_TOO_LARGE = re.compile(r"size exceeded|too large|exceeds the limit", re.IGNORECASE)
_NOT_FOUND = re.compile(r"does not exist|not found", re.IGNORECASE)


# ==================================================================== decoding errors
def _error_for_code(code: str, message: str, *, status: int, endpoint: str,
                    retry_after: float | None) -> HTTPStatusError:
    """A v1 business code (a string) or v2 integer code as the semantic error."""
    cls: type[HTTPStatusError]
    if code in _BAD_PARAMS or code in ("400", "405", "415"):
        cls = BadRequestError
        if _TOO_LARGE.search(message):
            cls = PayloadTooLargeError
        elif code == "400" and _NOT_FOUND.search(message):
            cls = NotFoundError  # v2 "Resource does not exist", "task not found"
    elif code in ("0401", "401"):
        cls = AuthError
    elif code in ("0402", "402"):
        cls = PaymentRequiredError
    elif code in ("0403", "403", "9009"):
        cls = AccessDeniedError
    elif code in ("0404", "404"):
        cls = NotFoundError
    elif code in ("0409", "409"):
        cls = ConflictError
    elif code in ("0429", "429"):
        cls = RateLimitedError
    elif code in ("500",):
        cls = ServerError
    elif code in ("502", "503", "504"):
        cls = UnavailableError
    else:
        cls = HTTPStatusError
    label = f"memories.ai {code}" if status < 400 or code != str(status) else None
    return cls(message, status=status, endpoint=endpoint, code=code, retry_after=retry_after,
               label=label)


def decode_error(response: httpx.Response, endpoint: str,
                 redact: Callable[[str], str]) -> RemoteError | None:
    """The error a memories.ai answer means, or None for success (``HttpClient`` hook)."""
    status = response.status_code
    body: Any = None
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or status >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if isinstance(body, dict) and "code" in body and isinstance(body["code"], (str, int)) \
            and not isinstance(body["code"], bool):
        code = str(body["code"])
        if code in (OK, "200") and status < 400:
            return None
        raw = body.get("msg") or body.get("message") or body.get("error") or f"code {code}"
        return _error_for_code(code, redact(str(raw))[:500], status=status, endpoint=endpoint,
                               retry_after=retry_after)
    if status >= 400:
        message, _ = error_message(response)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            message = body["error"]  # Spring's {"timestamp", "status", "error", "path"}
        return error_for_status(status, redact(message), endpoint=endpoint,
                                retry_after=retry_after)
    return None


def authorization(api_key: str) -> dict[str, str]:
    """The key as memories.ai wants it: the bare key, never ``Bearer <key>``."""
    return {"Authorization": api_key}


# ==================================================================== records
def _int(value: Any) -> int | None:
    """A number the service may send as a string ("105"), a JSON number, null or "null"."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    text = str(value).strip()
    if not text or text.lower() == "null":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if math.isfinite(number) else None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return None if text in ("", "null") else text


def _first(item: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in item:
            return item[name]
    return None


@dataclass(frozen=True)
class MemoriesVideo:
    """One video as list_videos, get_metadata or task status describe it."""

    video_no: str
    name: str
    status: str  # PARSE | UNPARSE | FAIL (PARSE_ERROR read as failed too)
    duration_seconds: int | None = None
    size: int | None = None
    created_ms: int | None = None
    cause: str | None = None  # failure reason ("null" in the answer -> None)
    tags: tuple[str, ...] = ()
    bucket: str | None = None
    blob: str | None = None
    datetime_taken_ms: int | None = None
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    resolution_label: str | None = None
    video_url: str | None = None
    cover_url: str | None = None
    #: The answer's item as the service sent it (sidecars carry it under ``remote``).
    reported: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def parsed(self) -> bool:
        return self.status == "PARSE"

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @classmethod
    def from_answer(cls, item: Mapping[str, Any]) -> MemoriesVideo:
        tags = item.get("tags")
        return cls(
            video_no=str(_first(item, "video_no", "videoNo")),
            name=str(_first(item, "video_name", "videoName") or ""),
            status=str(_first(item, "status", "videoStatus") or "UNPARSE"),
            duration_seconds=_int(item.get("duration")),
            size=_int(item.get("size")),
            created_ms=_int(_first(item, "create_time", "uploadTime")),
            cause=_str(item.get("cause")),
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
            bucket=_str(item.get("bucket")),
            blob=_str(item.get("blob")),
            datetime_taken_ms=_int(item.get("datetime_taken")),
            camera_model=_str(item.get("camera_model")),
            latitude=_float(item.get("latitude")),
            longitude=_float(item.get("longitude")),
            width=_int(item.get("width")),
            height=_int(item.get("height")),
            fps=_float(item.get("fps")),
            resolution_label=_str(item.get("resolution_label")),
            video_url=_str(item.get("video_url")),
            cover_url=_str(item.get("cover_url")),
            reported=item,
        )


@dataclass(frozen=True)
class UploadResult:
    video_no: str
    name: str
    status: str
    upload_time_ms: int | None


@dataclass(frozen=True)
class VideoPage:
    videos: list[MemoriesVideo]
    total: int
    page: int
    size: int


@dataclass(frozen=True)
class MemoriesHit:
    """One search hit: a moment of a video (seconds), with where its file lives."""

    video_no: str
    video_name: str
    start_seconds: float
    end_seconds: float
    score: float
    video_bucket: str | None = None
    video_blob: str | None = None
    keyframe_bucket: str | None = None
    keyframe_blob: str | None = None


@dataclass(frozen=True)
class Download:
    size: int
    sha256: str


@dataclass(frozen=True)
class ListFilters:
    """list_videos filters. Capture-metadata filters only match parsed videos."""

    video_name: str | None = None
    video_no: str | None = None
    video_nos: Sequence[str] | None = None
    status: str | None = None
    camera_model: str | None = None
    tag: str | None = None
    datetime_taken_ms: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"status filter must be one of {', '.join(STATUSES)}")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude must be given together")
        out: dict[str, Any] = {
            "video_name": self.video_name, "video_no": self.video_no,
            "video_nos": list(self.video_nos) if self.video_nos is not None else None,
            "status": self.status, "camera_model": self.camera_model, "tag": self.tag,
            "datetime_taken": self.datetime_taken_ms, "latitude": self.latitude,
            "longitude": self.longitude, **self.extra,
        }
        return {k: v for k, v in out.items() if v is not None}


def format_datetime_taken(when: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in UTC (the doc names no zone; UTC is unambiguous)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime(DATETIME_FORMAT)


# ==================================================================== client
class MemoriesClient:
    """Typed client for memories.ai: the v1 Visual Search host and the v2 host.

    ``limiter`` may be shared with other clients of the same account in this process; by
    default each client has its own, fed ``rate_limits`` over the published defaults.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        v2_base_url: str = DEFAULT_V2_BASE_URL,
        unique_id: str = "default",
        rate_limits: Mapping[str, str | None] | None = None,
        limiter: RateLimiter | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not unique_id:
            raise ValueError("unique_id must not be empty")
        self.unique_id = unique_id
        # The daemon's ``sleep`` is cut short by a stop: a minute's wait for an upload slot too.
        self.limiter = limiter or RateLimiter({**DEFAULT_RATE_LIMITS, **(rate_limits or {})},
                                              sleep=sleep or time.sleep)
        extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self.v1 = HttpClient(base_url, api_key, timeout=timeout, retry=retry,
                             transport=transport, auth_headers=authorization,
                             decode_error=decode_error, limiter=self.limiter, **extra)
        self.v2 = HttpClient(v2_base_url, api_key, timeout=timeout, retry=retry,
                             transport=transport, auth_headers=authorization,
                             decode_error=decode_error, limiter=self.limiter, **extra)
        self.description = f"memories.ai at {self.v1.base_url} (unique_id {unique_id})"

    def __repr__(self) -> str:
        return f"MemoriesClient({self.v1.base_url!r}, unique_id={self.unique_id!r})"

    def close(self) -> None:
        self.v1.close()
        self.v2.close()

    def __enter__(self) -> MemoriesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scope(self, unique_id: str | None) -> str:
        return unique_id or self.unique_id

    # ---------------------------------------------------------------- upload
    def upload(
        self,
        path: Path,
        *,
        unique_id: str | None = None,
        tags: Sequence[str] = (),
        datetime_taken: datetime | None = None,
        camera_model: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        callback: str | None = None,
        retain_original_video: bool | None = None,
        video_transcription_prompt: str | None = None,
        max_bytes: int = MAX_UPLOAD_BYTES,
        name: str | None = None,
    ) -> UploadResult:
        """``POST /upload``: one multipart/form-data request, the file streamed from disk.

        Refused here, before any byte is sent: an extension the service does not take, a
        file over ``max_bytes``, latitude without longitude, an empty tag. ``name``: the
        file name the service records (default: the file's own).
        """
        path = Path(path)
        ctype = VIDEO_EXTENSIONS.get(path.suffix.lower())
        if ctype is None:
            raise BadRequestError(f"memories.ai takes only {', '.join(VIDEO_EXTENSIONS)} files",
                                  label="not sent")
        size = path.stat().st_size
        if size > max_bytes:
            raise PayloadTooLargeError(f"{size:,} bytes is over memories.ai's upload cap of "
                                       f"{max_bytes:,} bytes", label="not sent")
        if (latitude is None) != (longitude is None):
            raise ValueError("latitude and longitude must be given together")
        if any(not t.strip() for t in tags):
            raise ValueError("tags must not be empty")
        data: dict[str, Any] = {"unique_id": self._scope(unique_id)}
        if tags:
            data["tags"] = list(tags)  # the repeated-field form
        if datetime_taken is not None:
            data["datetime_taken"] = format_datetime_taken(datetime_taken)
        if camera_model:
            data["camera_model"] = camera_model
        if latitude is not None and longitude is not None:
            data["latitude"] = repr(float(latitude))
            data["longitude"] = repr(float(longitude))
        if callback:
            data["callback"] = callback
        if retain_original_video is not None:
            data["retain_original_video"] = "true" if retain_original_video else "false"
        if video_transcription_prompt:
            data["video_transcription_prompt"] = video_transcription_prompt
        with open(path, "rb") as fh:
            def files() -> dict[str, tuple[str, BinaryIO, str]]:
                fh.seek(0)  # a retried attempt sends the file from its start again
                return {"file": (name or path.name, fh, ctype)}

            body = self.v1.call("POST", "/upload", files=files, data=data, idempotent=False,
                                limit="upload")
        answer = _data(body, "/upload")
        if not isinstance(answer, dict) or not _first(answer, "videoNo", "video_no"):
            raise RemoteError("memories.ai upload answered without a videoNo")
        return UploadResult(str(_first(answer, "videoNo", "video_no")),
                            str(_first(answer, "videoName", "video_name") or ""),
                            str(_first(answer, "videoStatus", "status") or "UNPARSE"),
                            _int(_first(answer, "uploadTime", "create_time")))

    # ---------------------------------------------------------------- reading
    def get_metadata(self, video_no: str, *, unique_id: str | None = None) -> MemoriesVideo | None:
        """``GET /get_metadata``; None when the service does not know the video (``data: null``)."""
        body = self.v1.call("GET", "/get_metadata",
                            params={"video_no": video_no, "unique_id": self._scope(unique_id)},
                            idempotent=True, limit="metadata")
        data = _data(body, "/get_metadata")
        if data is None:
            return None
        if not isinstance(data, dict):
            raise RemoteError("memories.ai get_metadata answered an unexpected shape")
        return MemoriesVideo.from_answer(data)

    def list_videos_page(self, page: int = 1, size: int = PAGE_SIZE, *,
                         filters: ListFilters | None = None,
                         unique_id: str | None = None) -> VideoPage:
        """``POST /list_videos``: one page (one-based)."""
        body = {"page": page, "size": size, "unique_id": self._scope(unique_id),
                **(filters or ListFilters()).body()}
        answer = _data(self.v1.call("POST", "/list_videos", json_body=body, idempotent=True,
                                    limit="list"), "/list_videos")
        if not isinstance(answer, dict) or not isinstance(answer.get("videos"), list):
            raise IncompleteListingError("memories.ai list_videos answered without a videos list")
        total = _int(answer.get("total_count"))
        if total is None:
            raise IncompleteListingError("memories.ai list_videos answered without total_count")
        videos = [MemoriesVideo.from_answer(v) for v in answer["videos"] if isinstance(v, dict)]
        return VideoPage(videos, total, page, size)

    def list_videos(self, *, filters: ListFilters | None = None, unique_id: str | None = None,
                    page_size: int = PAGE_SIZE) -> list[MemoriesVideo]:
        """Every matching video, or ``IncompleteListingError`` — never a silently short list."""
        sink: ListedVideos[MemoriesVideo] = ListedVideos(lambda v: v.video_no)
        self.list_into(sink, filters=filters, unique_id=unique_id, page_size=page_size)
        return list(sink.videos.values())

    def list_into(self, sink: ListingSink[MemoriesVideo], *, filters: ListFilters | None = None,
                  unique_id: str | None = None, page_size: int = PAGE_SIZE) -> None:
        """Every matching video, page by page into ``sink``, or ``IncompleteListingError``.

        Pages are read until ``total_count`` distinct videos were seen (``sink.add`` counts
        them). A total that changes while reading (an upload or delete meanwhile shifts the
        pages) restarts the listing (``sink.restart``); a short page or a restart limit
        reached raises.
        """
        for _ in range(LIST_RESTARTS):
            first = self.list_videos_page(1, page_size, filters=filters, unique_id=unique_id)
            total, page_result, page = first.total, first, 1
            seen = 0
            changed = False
            while True:
                seen += sink.add(page_result.videos)
                if seen >= total or not page_result.videos:
                    break
                page += 1
                page_result = self.list_videos_page(page, page_size, filters=filters,
                                                    unique_id=unique_id)
                if page_result.total != total:
                    changed = True
                    break
            if changed:
                sink.restart()
                continue
            if seen != total:
                raise IncompleteListingError(f"memories.ai list_videos: read {seen} of "
                                             f"{total} videos")
            return
        raise IncompleteListingError("memories.ai list_videos: the library kept changing while "
                                     "it was being listed")

    def iter_videos(self, **kwargs: Any) -> Iterator[MemoriesVideo]:
        yield from self.list_videos(**kwargs)

    # ---------------------------------------------------------------- changing
    def delete_videos(self, video_nos: Sequence[str], *, unique_id: str | None = None) -> None:
        """``POST /delete_videos`` in batches of at most 100; ``0409`` (already deleted)
        counts as success: both answers mean the videos are gone."""
        ids = list(dict.fromkeys(video_nos))
        for start in range(0, len(ids), MAX_DELETE_IDS):
            batch = ids[start:start + MAX_DELETE_IDS]
            try:
                self.v1.call("POST", "/delete_videos",
                             params={"unique_id": self._scope(unique_id)}, json_body=batch,
                             idempotent=True, limit="delete")
            except ConflictError:
                continue

    # ---------------------------------------------------------------- search
    def search(
        self,
        query: str,
        *,
        search_type: str = "BY_CLIP",
        top_k: int = 10,
        filtering_level: str | None = None,
        video_nos: Sequence[str] | None = None,
        tag: str | None = None,
        camera_tag: str | None = None,
        datetime_taken: datetime | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        unique_id: str | None = None,
    ) -> list[MemoriesHit]:
        """``POST /search``: moments matching ``query`` (seconds arrive as strings)."""
        if (latitude is None) != (longitude is None):
            raise ValueError("latitude and longitude must be given together")
        body: dict[str, Any] = {"search_param": query, "search_type": search_type,
                                "top_k": top_k, "unique_id": self._scope(unique_id)}
        optional = {"filtering_level": filtering_level, "tag": tag, "camera_tag": camera_tag,
                    "latitude": latitude, "longitude": longitude,
                    "video_nos": list(video_nos) if video_nos is not None else None,
                    "datetime_taken": (format_datetime_taken(datetime_taken)
                                       if datetime_taken is not None else None)}
        body.update({k: v for k, v in optional.items() if v is not None})
        data = _data(self.v1.call("POST", "/search", json_body=body, idempotent=True,
                                  limit="search"), "/search")
        items = data if isinstance(data, list) else (
            data.get("hits") or data.get("items") or [] if isinstance(data, dict) else [])
        hits = []
        for item in items:
            if not isinstance(item, dict):
                continue
            hits.append(MemoriesHit(
                video_no=str(_first(item, "videoNo", "video_no")),
                video_name=str(_first(item, "videoName", "video_name") or ""),
                start_seconds=_float(_first(item, "startTime", "start_time")) or 0.0,
                end_seconds=_float(_first(item, "endTime", "end_time")) or 0.0,
                score=_float(item.get("score")) or 0.0,
                video_bucket=_str(item.get("video_bucket")),
                video_blob=_str(item.get("video_blob")),
                keyframe_bucket=_str(item.get("keyframe_bucket")),
                keyframe_blob=_str(item.get("keyframe_blob"))))
        return hits

    # ---------------------------------------------------------------- import from URLs
    def scraper_url(self, video_urls: Sequence[str], *, unique_id: str | None = None,
                    callback_url: str | None = None, quality: str | None = None) -> str:
        """``POST /scraper_url``: start importing up to 50 posts of one platform; the task id."""
        urls = list(video_urls)
        if not 1 <= len(urls) <= MAX_SCRAPER_URLS:
            raise ValueError(f"give 1 to {MAX_SCRAPER_URLS} URLs per import")
        body: dict[str, Any] = {"video_urls": urls, "unique_id": self._scope(unique_id)}
        if callback_url:
            body["callback_url"] = callback_url
        if quality:
            body["quality"] = quality
        data = _data(self.v1.call("POST", "/scraper_url", json_body=body, idempotent=False,
                                  limit="upload"), "/scraper_url")
        task_id = _first(data, "taskId", "task_id") if isinstance(data, dict) else None
        if not task_id:
            raise RemoteError("memories.ai scraper_url answered without a taskId")
        return str(task_id)

    def get_video_ids_by_task_id(self, task_id: str, *,
                                 unique_id: str | None = None) -> list[MemoriesVideo]:
        """``GET /get_video_ids_by_task_id``: the videos a task produced so far.

        An empty list is ambiguous (still downloading, or no such task): only the caller's
        own timeout can tell them apart."""
        data = _data(self.v1.call("GET", "/get_video_ids_by_task_id",
                                  params={"task_id": task_id,
                                          "unique_id": self._scope(unique_id)},
                                  idempotent=True, limit="task_status"),
                     "/get_video_ids_by_task_id")
        items = data.get("videos") if isinstance(data, dict) else None
        return [MemoriesVideo.from_answer(v) for v in items or [] if isinstance(v, dict)]

    # ---------------------------------------------------------------- v2: download
    def download(self, bucket: str, blob: str, dest: Path) -> Download:
        """``GET <v2>/download``: stream the file to ``dest`` (via a temp file in the same
        folder, renamed when complete), hashing on the way. A cut stream raises
        ``TransportError`` and leaves nothing at ``dest``."""
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        try:
            with open(tmp, "wb") as out:
                done = self.download_to(bucket, blob, out.write)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return done

    def download_to(self, bucket: str, blob: str, write: Callable[[bytes], object]) -> Download:
        """``GET <v2>/download`` into ``write``, hashing on the way; a cut stream raises
        ``TransportError`` (what was written so far is the caller's to discard)."""
        digest = hashlib.sha256()
        size = 0
        with self.v2.stream("GET", "/download", params={"bucket": bucket, "blob": blob},
                            idempotent=True, limit="download") as response:
            expected = _int(response.headers.get("Content-Length"))
            try:
                for chunk in response.iter_bytes(1 << 20):
                    write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except httpx.HTTPError as exc:
                raise TransportError(f"GET /download: cut after {size} bytes "
                                     f"({type(exc).__name__})") from None
            if expected is not None and size != expected:
                raise TransportError(f"GET /download: got {size} of {expected} bytes")
        return Download(size, digest.hexdigest())

    # ---------------------------------------------------------------- v2: live streams
    def stream_start(self, url: str, *, enable_content_moderation: bool = False,
                     enable_logo_detection: bool = False, fps: int = 1,
                     max_logos: int = 5) -> str:
        """``POST <v2>/stream/start``; the stream's task id. Access is enabled per account
        (``AccessDeniedError`` otherwise)."""
        body = {"url": url, "enable_content_moderation": enable_content_moderation,
                "enable_logo_detection": enable_logo_detection, "fps": fps,
                "max_logos": max_logos}
        data = _data(self.v2.call("POST", "/stream/start", json_body=body, idempotent=False,
                                  limit="stream"), "/stream/start")
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not task_id:
            raise RemoteError("memories.ai stream/start answered without a task_id")
        return str(task_id)

    def stream_stop(self, task_id: str) -> None:
        """``POST <v2>/stream/stop``; safe to repeat (a stopped stream answers success)."""
        self.v2.call("POST", "/stream/stop", json_body={"task_id": task_id}, idempotent=True,
                     limit="stream")

    # ---------------------------------------------------------------- neutral check
    def check(self) -> int:
        """Reachability and key check: one list_videos page of one; the library's size."""
        return self.list_videos_page(1, 1).total


def _data(body: Any, endpoint: str) -> Any:
    """The ``data`` of a successful answer (the decoder already raised on error codes)."""
    if not isinstance(body, dict):
        raise RemoteError(f"memories.ai {endpoint} answered without a JSON object")
    return body.get("data")


# ==================================================================== the Remote
PARSE_STEP = MEMORIES_PARSE_STEP
_PARSE_STATES: dict[str, StepState] = {"PARSE": "done", "UNPARSE": "running"}


def _step_state(video: MemoriesVideo) -> StepState:
    return "failed" if video.failed else _PARSE_STATES.get(video.status, "pending")


def _processing(video: MemoriesVideo) -> ProcessingStatus:
    step = StepStatus(_step_state(video), error=(video.cause or "parsing failed") if video.failed else None)
    return ProcessingStatus(video.video_no, {PARSE_STEP: step}, step.error)


#: The tags syncd writes at upload (``syncd.sync.instances.upload_labels``), read back here.
SHA256_TAG = "sha256:"
INSTANCE_TAG = "syncd-instance:"


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _keywords(video: MemoriesVideo) -> tuple[str, ...]:
    """What describes the video beyond its name, for the local full-text search: its tags
    and capture metadata (camera, when and where it was taken, resolution). syncd's own
    bookkeeping tags (proof of content, instance marks) describe nothing: left out."""
    words = [tag for tag in video.tags if not tag.startswith((SHA256_TAG, INSTANCE_TAG))]
    if video.camera_model:
        words.append(video.camera_model)
    if video.datetime_taken_ms is not None:
        taken = datetime.fromtimestamp(video.datetime_taken_ms / 1000, UTC)
        words.append(taken.strftime(DATETIME_FORMAT))
    if video.latitude is not None and video.longitude is not None:
        words.append(f"{video.latitude} {video.longitude}")
    if video.resolution_label:
        words.append(video.resolution_label)
    return tuple(dict.fromkeys(words))


FACTS = MEMORIES

#: The platforms ``scraper_url`` imports from, by host (one platform per task).
_PLATFORMS: dict[str, tuple[str, ...]] = {
    "tiktok": ("tiktok.com",),
    "youtube": ("youtube.com", "youtu.be"),
    "instagram": ("instagram.com",),
    "x": ("x.com", "twitter.com"),
    "facebook": ("facebook.com", "fb.watch"),
}


def _platform(url: str) -> str | None:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not parts.path.strip("/"):
        return None
    for name, domains in _PLATFORMS.items():
        if any(host == d or host.endswith("." + d) for d in domains):
            return name
    return None


@dataclass(frozen=True)
class _Where:
    """What MemoriesRemote keeps of a listed video (small: a listing may hold 10,000s)."""

    cover_url: str | None
    bucket: str | None
    blob: str | None

    @classmethod
    def of(cls, video: MemoriesVideo) -> _Where:
        return cls(video.cover_url, video.bucket, video.blob)


class _ListedPages:
    """The complete listing's pages as RemoteVideos into ``sink``; the first KNOWN_MAX
    videos' cover URL and stored file kept aside (``MemoriesRemote._known``)."""

    def __init__(self, sink: ListingSink[RemoteVideo]) -> None:
        self.sink = sink
        self.known: dict[str, _Where] = {}

    def add(self, videos: Sequence[MemoriesVideo]) -> int:
        for video in videos[:max(0, KNOWN_MAX - len(self.known))]:
            self.known.setdefault(video.video_no, _Where.of(video))
        return self.sink.add([MemoriesRemote._listed(v) for v in videos])

    def restart(self) -> None:
        self.known.clear()
        self.sink.restart()


class _SeenDigests:
    """Which ids were seen, as 64-bit digests in an open-addressing table (``array('Q')``,
    at most half full): 8–32 bytes an id, where a set of the id strings holds ~110 (the str
    and its slot). Two ids with one digest (~n²/2⁶⁵: 3·10⁻⁸ at 1,000,000) count as one,
    so a listing then reads one video short and fails as incomplete: never a video missed."""

    def __init__(self) -> None:
        self._slots = array("Q", bytes(8 * 64))
        self._count = 0

    def add(self, key: str) -> bool:
        """True if ``key`` was not seen before."""
        digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1
        if not self._place(self._slots, digest):
            return False
        self._count += 1
        if self._count * 2 > len(self._slots):
            grown = array("Q", bytes(16 * len(self._slots)))
            for old in self._slots:
                if old:
                    self._place(grown, old)
            self._slots = grown
        return True

    @staticmethod
    def _place(slots: array[int], digest: int) -> bool:
        """Put ``digest`` in ``slots`` (0 is an empty slot); False if it is there already."""
        mask = len(slots) - 1
        i = digest & mask
        while slots[i]:
            if slots[i] == digest:
                return False
            i = (i + 1) & mask
        slots[i] = digest
        return True


class _MarksOfPages:
    """The complete listing's pages reduced to instance marks as they are read: each
    video's holders as one frozenset shared by every video with the same ones (as Mikshi's
    ``read_marks``); of every video, a digest, for the distinct count the listing needs
    (pages that shift list a video twice): the ids of the videos without a mark are not
    kept. A page's videos, with their tags and reported fields, go with the page."""

    def __init__(self, tags_of: Callable[[str], tuple[str, ...]]) -> None:
        self._tags_of = tags_of  # get_metadata's tags: an unparsed video lists none
        self.videos: dict[str, frozenset[str]] = {}
        self.seen = _SeenDigests()  # every video listed, marked or not
        self.instances: set[str] = set()
        self._shared: dict[frozenset[str], frozenset[str]] = {}

    def add(self, videos: Sequence[MemoriesVideo]) -> int:
        new = 0
        for video in videos:
            key = video.video_no
            if not self.seen.add(key):
                continue  # listed twice (the pages shifted): the first one counts
            new += 1
            tags = video.tags if video.parsed else self._tags_of(key)
            names = frozenset(t[len(INSTANCE_TAG):] for t in tags if t.startswith(INSTANCE_TAG))
            if names:
                self.videos[key] = self._shared.setdefault(names, names)
                self.instances |= names
        return new

    def restart(self) -> None:
        self.videos.clear()
        self.seen = _SeenDigests()
        self.instances.clear()
        self._shared.clear()


class MemoriesRemote:
    """memories.ai as a :class:`~syncd.remote.base.Remote` (video ids are ``video_no``s)."""

    def __init__(self, client: MemoriesClient) -> None:
        self.client = client
        self.description = client.description
        self.page_size = PAGE_SIZE  # of list_videos' pages (tests make listings span pages)
        # What the last complete listing (and each get_metadata since) said of each video:
        # its cover URL (get_metadata has none) and its stored file (bucket/blob), so that
        # details and downloads need not ask the service again. Replaced by each listing;
        # at most KNOWN_MAX videos (the first listed: the newest), so that a library of a
        # million costs a request more per details or download, not memory per video.
        self._known: dict[str, _Where] = {}

    def __repr__(self) -> str:
        return f"MemoriesRemote({self.client!r})"

    def close(self) -> None:
        self.client.close()

    def features(self) -> Features:
        return replace(
            FACTS, tags=self, processing=self, search=self, url_import=self, streams=self,
            proof=self, marks=self, status_batch=self, batch_delete=self,
        )

    # ------------------------------------------------------------ required
    def upload(self, path: Path, name: str) -> str:
        return self.upload_tagged(path, name, ())

    def list_videos(self) -> list[RemoteVideo]:
        sink: ListedVideos[RemoteVideo] = ListedVideos(lambda v: v.video_id)
        self.list_into(sink)
        return list(sink.videos.values())

    def list_into(self, sink: ListingSink[RemoteVideo]) -> None:
        pages = _ListedPages(sink)
        self.client.list_into(pages, page_size=self.page_size)
        self._known = pages.known

    def _remember(self, video_id: str, where: _Where) -> None:
        self._known.pop(video_id, None)
        self._known[video_id] = where
        while len(self._known) > KNOWN_MAX:
            del self._known[next(iter(self._known))]

    @staticmethod
    def _listed(video: MemoriesVideo) -> RemoteVideo:
        return RemoteVideo(video_id=video.video_no, name=video.name, status=video.status,
                           created_at=_iso(video.created_ms),
                           processing={PARSE_STEP: video.status})

    def _metadata(self, video_id: str) -> MemoriesVideo:
        video = self.client.get_metadata(video_id)
        if video is None:  # the service answers data: null for a video it does not know
            self._known.pop(video_id, None)
            raise NotFoundError(f"video {video_id} is unknown", endpoint="/get_metadata")
        listed = self._known.get(video_id)
        if video.cover_url is None and listed is not None and listed.cover_url:
            video = replace(video, cover_url=listed.cover_url)
        self._remember(video_id, _Where.of(video))
        return video

    def _cover_url(self, video_id: str) -> str | None:
        """The cover frame's URL, from one listing page filtered to the video (get_metadata
        does not carry it)."""
        page = self.client.list_videos_page(1, 1, filters=ListFilters(video_no=video_id))
        return next((v.cover_url for v in page.videos if v.video_no == video_id), None)

    def video_details(self, video_id: str) -> VideoDetails:
        video = self._metadata(video_id)
        if video.cover_url is None:  # no listing of this process had it
            cover = self._cover_url(video_id)
            if cover:
                video = replace(video, cover_url=cover)
                self._remember(video_id, _Where.of(video))
        # As the service reported it, with the cover URL (a stable CDN address) from its
        # listing; the video's own CDN URL is left out: the file is fetched by bucket/blob.
        reported = {k: v for k, v in video.reported.items() if k != "video_url"}
        if video.cover_url is not None:
            reported["cover_url"] = video.cover_url
        return VideoDetails(
            video_id=video.video_no, name=video.name,
            duration_seconds=None if video.duration_seconds is None else float(video.duration_seconds),
            width=video.width, height=video.height, size_bytes=video.size,
            video_url=video.video_url, thumbnail_url=video.cover_url, hls_playlist_url=None,
            created_at=_iso(video.created_ms), statuses={PARSE_STEP: video.status},
            raw=dict(video.reported), reported=reported, keywords=_keywords(video),
        )

    def delete_video(self, video_id: str) -> None:
        self.client.delete_videos([video_id])

    def download_video(self, video_id: str, dest: BinaryIO) -> int:
        """v2 download by bucket/blob (paced as ``download``), streamed into ``dest``; the
        bucket/blob of the last listing or details are used, else get_metadata is asked."""
        where = self._known.get(video_id)
        if where is None or not where.bucket or not where.blob:
            where = _Where.of(self._metadata(video_id))
        if not where.bucket or not where.blob:
            raise RemoteError(f"video {video_id} has no stored file to download")
        return self.client.download_to(where.bucket, where.blob, dest.write).size

    def check(self) -> str:
        return f"{self.client.check()} video(s)"

    # ------------------------------------------------------------ tags
    def upload_tagged(self, path: Path, name: str, tags: Sequence[str], capture: Capture | None = None) -> str:
        """One upload request; the service keeps the file's own name (no folders), and the
        capture metadata its list filters and search read."""
        capture = capture or Capture()
        taken = (None if capture.taken_at is None
                 else datetime.fromtimestamp(capture.taken_at, UTC))
        located = capture.latitude is not None and capture.longitude is not None
        return self.client.upload(
            path, name=PurePosixPath(name).name, tags=[t for t in tags if t.strip()],
            datetime_taken=taken, camera_model=capture.camera_model,
            latitude=capture.latitude if located else None,
            longitude=capture.longitude if located else None).video_no

    def video_tags(self, video_id: str) -> tuple[str, ...]:
        return self._metadata(video_id).tags

    # ------------------------------------------------------------ many at once
    def processing_statuses(self, video_ids: Collection[str]) -> dict[str, ProcessingStatus]:
        """A list_videos request filtered to a page of the ids (``video_nos``) per page:
        the requests grow with the videos asked about, not with the library."""
        ids = list(dict.fromkeys(video_ids))
        found: dict[str, ProcessingStatus] = {}
        for start in range(0, len(ids), self.page_size):
            chunk = ids[start:start + self.page_size]
            result = self.client.list_videos_page(1, len(chunk), filters=ListFilters(video_nos=chunk))
            for video in result.videos:
                if video.video_no in chunk:
                    found[video.video_no] = _processing(video)
        return found

    def delete_videos(self, video_ids: Sequence[str]) -> None:
        self.client.delete_videos(video_ids)  # batches of 100; 0409 (already gone) is success

    # ------------------------------------------------------------ proof and instance marks
    def content_evidence(self, video_id: str) -> ContentEvidence:
        """The ``sha256:<hex>`` tag syncd writes at upload (and the stored size)."""
        video = self._metadata(video_id)
        digest = next((t[len(SHA256_TAG):] for t in video.tags if t.startswith(SHA256_TAG)), None)
        return ContentEvidence(size=video.size, sha256=digest)

    def read_marks(self) -> Marks:
        """The ``syncd-instance:<name>`` tags of every video: from the complete listing, and
        from get_metadata for videos not parsed yet (their listing shows no tags). Read a
        page at a time (``_MarksOfPages``): never the whole listing in memory."""
        pages = _MarksOfPages(self._metadata_tags)
        self.client.list_into(pages, page_size=self.page_size)
        return Marks(frozenset(pages.instances), pages.videos)

    def _metadata_tags(self, video_id: str) -> tuple[str, ...]:
        video = self.client.get_metadata(video_id)
        return () if video is None else video.tags

    def add_mark(self, instance: str, video_id: str) -> bool:
        """Tags are given at upload only: True if the video was uploaded with our tag."""
        return f"{INSTANCE_TAG}{instance}" in self._metadata_tags(video_id)

    def remove_mark(self, instance: str, video_id: str) -> None:
        """Tags cannot be removed: the tag stays (another syncd then keeps holding the video
        for us too: it is never deleted wrongly, at worst kept)."""

    def write_note(self, instance: str, note: str) -> str | None:
        return None  # the service keeps no per-instance text: no clash warnings on this backend

    def read_note(self, instance: str) -> str | None:
        return None

    # ------------------------------------------------------------ processing
    def processing_status(self, video_id: str) -> ProcessingStatus:
        return _processing(self._metadata(video_id))

    def start_pipeline(self, video_id: str, pipeline: Pipeline) -> None:
        raise RemoteError(f"memories.ai has no pipeline {pipeline!r} to start (parsing starts by itself)")

    def pipeline_status(self, video_id: str, pipeline: Pipeline) -> StepStatus:
        raise RemoteError(f"memories.ai has no pipeline {pipeline!r}")

    # ------------------------------------------------------------ search
    def search(self, query: str, video_ids: Sequence[str], top_k: int = 5,
               collection_id: str | None = None) -> list[SearchHit]:
        """No ``video_ids``: the whole namespace (``Features.search_library``). More than the
        service takes in one request (100): one search per batch, merged by score."""
        ids = list(dict.fromkeys(video_ids))
        batches: list[list[str] | None] = [
            ids[i:i + MAX_SEARCH_VIDEO_NOS] for i in range(0, len(ids), MAX_SEARCH_VIDEO_NOS)]
        hits = []
        for batch in batches or [None]:
            hits += self.client.search(query, top_k=top_k, video_nos=batch)
        hits.sort(key=lambda h: -h.score)  # stable: a batch's own order is kept on ties
        return [SearchHit(rank=i, video_id=h.video_no, start=h.start_seconds, end=h.end_seconds)
                for i, h in enumerate(hits[:top_k], start=1)]

    # ------------------------------------------------------------ import, streams
    def check_urls(self, urls: Sequence[str]) -> str | None:
        if not 1 <= len(urls) <= MAX_SCRAPER_URLS:
            return f"give 1 to {MAX_SCRAPER_URLS} URLs per import (got {len(urls)})"
        platforms: set[str] = set()
        for url in urls:
            platform = _platform(url)
            if platform is None:
                return (f"not a post URL memories.ai can import ({', '.join(_PLATFORMS)}): {url}")
            platforms.add(platform)
        if len(platforms) > 1:
            return f"one import takes URLs of one platform; these mix {' and '.join(sorted(platforms))}"
        return None

    def import_urls(self, urls: Sequence[str]) -> ImportTask:
        return ImportTask(self.client.scraper_url(urls))

    def import_status(self, task: ImportTask) -> ImportTask:
        videos = self.client.get_video_ids_by_task_id(task.task_id)
        # An empty answer is ambiguous (still downloading, or no such task): never "done".
        return ImportTask(task.task_id, tuple(v.video_no for v in videos), done=False)

    def start_stream(self, url: str, options: dict[str, object]) -> str:
        return self.client.stream_start(url, **options)  # type: ignore[arg-type]

    def stop_stream(self, task_id: str) -> None:
        self.client.stream_stop(task_id)
