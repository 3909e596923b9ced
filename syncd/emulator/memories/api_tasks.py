"""Upload from social media: ``scraper_url`` starts a task; ``get_video_ids_by_task_id``
reports the videos it produced so far.

No network here: each URL becomes a few synthetic bytes. The task's videos appear one by
one over ``task_seconds`` and then parse like uploads. A URL containing ``private``,
``blocked``, ``drm`` or ``unavailable`` yields a video that ends ``FAIL``; one containing
``notfound`` never yields a video (the task found nothing to download).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from urllib.parse import urlsplit

from syncd.emulator.memories import envelope, videos
from syncd.emulator.memories.api_v1 import new_blob, new_video_no
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.memories.params import Params, bad, json_object
from syncd.emulator.memories.routes import api_route
from syncd.emulator.memories.store import Task, Video
from syncd.emulator.wire import Request, Response

V1 = envelope.V1
MAX_URLS = 50
QUALITIES = ("360", "480", "720", "1080", "1440", "2160")
_PLATFORMS = {
    "tiktok": ("tiktok.com",),
    "youtube": ("youtube.com", "youtu.be"),
    "instagram": ("instagram.com",),
    "x": ("x.com", "twitter.com"),
    "facebook": ("facebook.com", "fb.watch"),
}
_FAIL_MARKERS = ("private", "blocked", "drm", "unavailable")


def platform_of(url: str) -> str | None:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https"):
        return None
    for name, domains in _PLATFORMS.items():
        if any(host == d or host.endswith("." + d) for d in domains):
            return name
    return None


def _name_of(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return (path.rsplit("/", 1)[-1] or "post")[:100]


def scraper_url(ctx: MemoriesContext, req: Request) -> Response:
    assert req.user_id is not None
    p = Params(json_object(req))
    urls = p.string_list("video_urls", max_items=MAX_URLS)
    if not urls:
        raise bad("video_urls is required (1 to 50 URLs)")
    platforms = {platform_of(u) for u in urls}
    if None in platforms:
        raise bad("video_urls: unsupported or malformed post URL")
    if len(platforms) > 1:
        raise bad("video_urls must all come from one platform")
    unique_id = p.string("unique_id", default="default", non_empty=True)
    callback = p.string("callback_url") or p.string("callback")
    if callback is not None and not callback.startswith(("http://", "https://")):
        raise bad("callback_url must be an http(s) URL")
    quality = p.string("quality")
    if quality is not None and quality not in QUALITIES:
        raise bad(f"quality must be one of {', '.join(QUALITIES)}", envelope.BAD_PARAM_VALUE)
    assert unique_id is not None
    if not ctx.store.charge(req.user_id, len(urls)):
        raise envelope.v1_error(envelope.NO_CREDITS, envelope.CREDITS_MSG)
    now = ctx.now()
    task = Task(str(uuid.uuid4()), req.user_id, unique_id, now, json.dumps(urls), quality,
                callback)
    ctx.store.insert_task(task)
    for i, url in enumerate(urls):
        flat = url.lower().replace("-", "").replace("_", "")
        if "notfound" in flat:
            continue
        appears = now + ctx.config.task_seconds * (i + 1) / len(urls)
        payload = f"EMULATED SCRAPED POST {url}\n".encode()
        video_no = new_video_no()
        name = _name_of(url)
        blob = new_blob(".mp4")
        tmp = ctx.store.new_tmp_path("scrape")
        tmp.write_bytes(payload)
        cause = next((f"source post is {m}" for m in _FAIL_MARKERS if m in flat), None)
        seconds = 5 + int.from_bytes(hashlib.sha256(url.encode()).digest()[:2], "big") % 116
        ctx.store.insert_video(Video(
            video_no=video_no, account_id=req.user_id, unique_id=unique_id, name=name,
            filename=f"{name}.mp4", content_type="video/mp4", size=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(), bucket=ctx.config.bucket, blob=blob,
            created_ms=int(appears * 1000), visible_at=appears,
            parse_seconds=ctx.config.parse_seconds,
            fail_cause=cause or videos.doomed_cause(ctx.config, video_no, name),
            duration=float(seconds), width=1280, height=720, fps=30.0,
            datetime_taken_ms=None, camera_model=None, latitude=None, longitude=None,
            tags="[]", task_id=task.task_id, deleted_at=None), tmp)
    return envelope.v1_ok({"taskId": task.task_id})


def get_video_ids_by_task_id(ctx: MemoriesContext, req: Request) -> Response:
    p = Params(req.query, text=True)
    task_id = p.string("task_id", required=True)
    unique_id = p.string("unique_id", default="default", non_empty=True)
    assert task_id is not None
    task = ctx.store.task(task_id)
    now = ctx.now()
    if task is None or task.account_id != req.user_id or task.unique_id != unique_id:
        # memories-task-status.txt: an unknown task is "0000" with videos [] - the same
        # answer as a task still downloading. Only a timeout tells them apart.
        return envelope.v1_ok({"videos": []})
    return envelope.v1_ok({"videos": [videos.task_item(v, now, req.base_url)
                                      for v in ctx.store.task_videos(task_id, now)]})


ROUTES = [
    api_route("POST", V1 + "/scraper_url", "upload", scraper_url),
    api_route("GET", V1 + "/get_video_ids_by_task_id", "task_status", get_video_ids_by_task_id),
]
