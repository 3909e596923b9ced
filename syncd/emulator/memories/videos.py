"""A stored video as each endpoint shows it, and its parse status as a function of time.

Parsing is lazy like the Mikshi timeline: ``UNPARSE`` until ``visible_at + parse_seconds``,
then ``PARSE`` (or ``FAIL`` with a ``cause`` when doomed). After parsing the "summary row"
exists: capture metadata and tags then show up in list_videos and metadata filters match
(memories-list-videos.txt: "These fields are only present when ... the video's summary row
has been written"); the service's own scene tags and its ``api`` tag join the user's tags.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from typing import Any

from syncd.emulator.embeddings import VOCABULARY
from syncd.emulator.memories.config import MemoriesConfig
from syncd.emulator.memories.store import Video

PARSE, UNPARSE, FAIL = "PARSE", "UNPARSE", "FAIL"
STATUSES = (UNPARSE, PARSE, FAIL)  # the live enum, in the order the server names it
API_TAG = "api"


def doomed_cause(config: MemoriesConfig, video_no: str, name: str) -> str | None:
    """Why this video's parsing will fail, or None. Reproducible from (seed, video_no)."""
    if config.fail_name_glob is not None and fnmatch.fnmatchcase(name, config.fail_name_glob):
        return f"video parse failed: simulated failure for names matching {config.fail_name_glob!r}"
    if config.fail_share <= 0:
        return None
    digest = hashlib.sha256(f"{config.seed}:{video_no}:parse".encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2 ** 64 < config.fail_share:
        return "video parse failed: simulated random failure"
    return None


def status(video: Video, now: float) -> str:
    if now < video.visible_at + video.parse_seconds:
        return UNPARSE
    return FAIL if video.fail_cause else PARSE


def summarised(video: Video, now: float) -> bool:
    return status(video, now) == PARSE


def auto_tags(video: Video) -> list[str]:
    """Two scene tags "the indexing pipeline" found, drawn from the video number."""
    digest = hashlib.sha256(video.video_no.encode()).digest()
    return [VOCABULARY[digest[0] % len(VOCABULARY)], VOCABULARY[digest[1] % len(VOCABULARY)]]


def tags(video: Video, now: float) -> list[str]:
    """User tags, then scene tags once parsed, then ``api`` (added on every API upload)."""
    out = list(video.user_tags)
    if summarised(video, now):
        out += [t for t in auto_tags(video) if t not in out]
    if API_TAG not in out:
        out.append(API_TAG)
    return out


def resource_url(base_url: str, blob: str) -> str:
    # The service hands out CDN URLs; the emulator's point nowhere real (download by
    # bucket/blob is the documented way to fetch a file).
    return f"{base_url}/mavi-resource/{blob}"


def cover_url(base_url: str, video: Video) -> str:
    return f"{base_url}/mavi-resource/{video.blob.rsplit('.', 1)[0]}/frame_0032.jpg"


def resolution_label(video: Video) -> str | None:
    return None if not video.height else f"{video.height}p"


def list_item(video: Video, now: float, base_url: str) -> dict[str, Any]:
    """A list_videos entry: numbers as strings, capture metadata only once parsed."""
    st = status(video, now)
    item: dict[str, Any] = {
        "video_no": video.video_no,
        "video_name": video.name,
        "duration": str(int(math.ceil(video.duration))),
        "size": str(video.size),
        "status": st,
        "cause": video.fail_cause if st == FAIL else "null",
        "create_time": str(video.created_ms),
        "video_url": resource_url(base_url, video.blob),
        "cover_url": cover_url(base_url, video),
        "fps": video.fps,
        "width": video.width,
        "height": video.height,
        "resolution_label": resolution_label(video),
    }
    if st == PARSE:
        item["tags"] = tags(video, now)
        if video.datetime_taken_ms is not None:
            item["datetime_taken"] = str(video.datetime_taken_ms)
        if video.camera_model is not None:
            item["camera_model"] = video.camera_model
        if video.latitude is not None and video.longitude is not None:
            item["latitude"] = video.latitude
            item["longitude"] = video.longitude
    item["bucket"] = video.bucket
    item["blob"] = video.blob
    return item


def metadata(video: Video, now: float) -> dict[str, Any]:
    """get_metadata's ``data``: the doc's example has JSON numbers here, not strings."""
    return {
        "video_no": video.video_no,
        "video_name": video.name,
        "duration": int(math.ceil(video.duration)),
        "size": video.size,
        "status": status(video, now),
        "create_time": video.created_ms,
        "resolution_label": resolution_label(video),
        "fps": video.fps,
        "width": video.width,
        "height": video.height,
        "datetime_taken": video.datetime_taken_ms,
        "camera_model": video.camera_model,
        "latitude": video.latitude,
        "longitude": video.longitude,
        "tags": tags(video, now),
        "bucket": video.bucket,
        "blob": video.blob,
    }


def task_item(video: Video, now: float, base_url: str) -> dict[str, Any]:
    """A get_video_ids_by_task_id entry (numbers as strings)."""
    return {
        "duration": str(int(math.ceil(video.duration))),
        "status": status(video, now),
        "video_no": video.video_no,
        "video_name": video.name,
        "create_time": str(video.created_ms),
        "video_url": resource_url(base_url, video.blob),
        "bucket": video.bucket,
        "blob": video.blob,
    }


def within_km(lat1: float, lon1: float, lat2: float, lon2: float, km: float) -> bool:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a))) <= km
