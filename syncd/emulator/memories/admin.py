"""``/_admin/`` for the memories.ai emulator: the shared routes (health, request log,
faults, clock) plus this service's records. No key, never faulted, never logged.

    GET    /_admin/videos[?deleted=1]     every video (with ?deleted=1 also deleted ones)
    GET    /_admin/videos/{video_no}      one video
    GET    /_admin/videos/{video_no}/bytes
    DELETE /_admin/videos/{video_no}      delete it as the web app could
    GET    /_admin/users                  accounts: credits, disabled, streams_enabled
    POST   /_admin/users/{account_id}     {"credits": n|null, "disabled": b, "streams_enabled": b}
    GET    /_admin/tasks                  scraper tasks
    GET    /_admin/streams                live streams (running: stopped_at null)
    GET    /_admin/rate_limits            group -> "count/period" or null
    POST   /_admin/rate_limits            replace some groups' limits
    POST   /_admin/videos/register        {"account_id"?, "unique_id"?, "videos": [{"name", "size",
                                          "sha256", "tags"?}]}: parsed videos without files, for
                                          tests and benchmarks at library scale; answers their
                                          video numbers in order
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Any

from syncd.emulator import media
from syncd.emulator.admin import COMMON_ROUTES, bytes_response, credits_value
from syncd.emulator.errors import detail
from syncd.emulator.memories import videos
from syncd.emulator.memories.api_v1 import new_blob, new_video_no
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.memories.store import Video
from syncd.emulator.routing import ADMIN, Route
from syncd.emulator.wire import Request, Response, json_response


def video_info(ctx: MemoriesContext, video: Video) -> dict[str, Any]:
    now = ctx.now()
    info: dict[str, Any] = asdict(video)
    info["tags"] = video.user_tags
    info["status"] = videos.status(video, now)
    info["all_tags"] = videos.tags(video, now)
    info["visible"] = video.visible_at <= now
    return info


def all_videos(ctx: MemoriesContext) -> list[dict[str, Any]]:
    return [video_info(ctx, v) for v in ctx.store.videos()]


def _video(ctx: MemoriesContext, req: Request) -> Video:
    video = ctx.store.video(req.params["video_no"])
    if video is None:
        raise detail(404, "Video not found")
    return video


def h_videos(ctx: MemoriesContext, req: Request) -> Response:
    with_deleted = (req.query.get("deleted") or ["0"])[-1] == "1"
    rows = ctx.store.videos(include_deleted=with_deleted)
    return json_response(200, [video_info(ctx, v) for v in rows])


def h_video(ctx: MemoriesContext, req: Request) -> Response:
    return json_response(200, video_info(ctx, _video(ctx, req)))


def h_video_bytes(ctx: MemoriesContext, req: Request) -> Response:
    video = _video(ctx, req)
    try:
        fh = ctx.store.file_path(video).open("rb")
    except FileNotFoundError:
        raise detail(404, "Video file not found") from None
    return bytes_response(fh, video.size)


def h_delete_video(ctx: MemoriesContext, req: Request) -> Response:
    video = _video(ctx, req)
    ctx.store.delete_video(video.video_no, ctx.now())
    return json_response(200, {"deleted": video.video_no})


def h_register_videos(ctx: MemoriesContext, req: Request) -> Response:
    """Parsed videos by name, size, sha256 and upload tags, without files: a library of
    thousands listed (tags included) without thousands of uploads."""
    body = req.json_body()
    accounts = ctx.keys.user_ids()
    account_id = body.get("account_id") or (accounts[0] if accounts else None)
    unique_id = body.get("unique_id") or "default"
    entries = body.get("videos")
    if not isinstance(account_id, str) or not isinstance(unique_id, str) or not isinstance(entries, list):
        raise detail(400, "need videos: [{name, size, sha256, tags}] (and account_id with several keys)")
    parsed_at = ctx.now() - 86_400.0  # long parsed: tags and metadata show in listings
    rows: list[Video] = []
    for i, entry in enumerate(entries):
        name, size, sha256, tags = (entry.get(k) if isinstance(entry, dict) else None
                                    for k in ("name", "size", "sha256", "tags"))
        tags = [] if tags is None else tags
        if not (isinstance(name, str) and name and isinstance(size, int) and size > 0
                and isinstance(sha256, str) and isinstance(tags, list)
                and all(isinstance(t, str) for t in tags)):
            raise detail(400, "each video needs name, size > 0, sha256 (and tags: a list of strings)")
        rows.append(Video(
            video_no=new_video_no(), account_id=account_id, unique_id=unique_id,
            name=PurePosixPath(name).stem or "video", filename=PurePosixPath(name).name,
            content_type="video/mp4", size=size, sha256=sha256, bucket=ctx.config.bucket,
            blob=new_blob(PurePosixPath(name).suffix or ".mp4"),
            created_ms=int(parsed_at * 1000) + i,  # in the order given: the last is the newest
            visible_at=parsed_at, parse_seconds=0.0, fail_cause=None,
            duration=media.fallback(size).duration_seconds, width=None, height=None, fps=None,
            datetime_taken_ms=None, camera_model=None, latitude=None, longitude=None,
            tags=json.dumps(tags), task_id=None, deleted_at=None))
    ctx.store.register_videos(rows)
    return json_response(200, {"video_nos": [v.video_no for v in rows]})


def users(ctx: MemoriesContext) -> list[dict[str, Any]]:
    return [asdict(a) for a in ctx.store.accounts()]


def h_users(ctx: MemoriesContext, req: Request) -> Response:
    return json_response(200, users(ctx))


def h_update_user(ctx: MemoriesContext, req: Request) -> Response:
    body = req.json_body()
    changes: dict[str, Any] = {}
    if "credits" in body:
        changes["credits"] = credits_value(body)
    for flag in ("disabled", "streams_enabled"):
        if flag in body:
            if not isinstance(body[flag], bool):
                raise detail(400, f"{flag} must be true or false")
            changes[flag] = body[flag]
    if not changes:
        raise detail(400, "nothing to change")
    if not ctx.store.update_account(req.params["account_id"], **changes):
        raise detail(404, "Account not found")
    account = ctx.store.account(req.params["account_id"])
    return json_response(200, asdict(account) if account else {})


def h_tasks(ctx: MemoriesContext, req: Request) -> Response:
    out = []
    for task in ctx.store.tasks():
        info = asdict(task)
        info["urls"] = json.loads(task.urls)
        out.append(info)
    return json_response(200, out)


def h_streams(ctx: MemoriesContext, req: Request) -> Response:
    out = []
    for stream in ctx.store.streams():
        info = asdict(stream)
        info["options"] = json.loads(stream.options)
        out.append(info)
    return json_response(200, out)


def h_get_limits(ctx: MemoriesContext, req: Request) -> Response:
    return json_response(200, ctx.limiter.limits())


def h_set_limits(ctx: MemoriesContext, req: Request) -> Response:
    body = req.json_body()
    merged = ctx.limiter.limits()
    for group, value in body.items():
        if group not in merged:
            raise detail(400, f"unknown rate limit group {group!r}")
        if value is not None and not isinstance(value, str):
            raise detail(400, f"{group}: give a rate like '5/s' or null")
        merged[group] = value
    try:
        ctx.limiter.set_limits(merged)
    except ValueError as exc:
        raise detail(400, str(exc)) from None
    return json_response(200, ctx.limiter.limits())


_NO = r"(?P<video_no>[^/]+)"

ROUTES = [
    *COMMON_ROUTES,
    Route("GET", r"/_admin/videos", h_videos, ADMIN),
    Route("POST", r"/_admin/videos/register", h_register_videos, ADMIN),
    Route("GET", rf"/_admin/videos/{_NO}", h_video, ADMIN),
    Route("GET", rf"/_admin/videos/{_NO}/bytes", h_video_bytes, ADMIN),
    Route("DELETE", rf"/_admin/videos/{_NO}", h_delete_video, ADMIN),
    Route("GET", r"/_admin/users", h_users, ADMIN),
    Route("POST", r"/_admin/users/(?P<account_id>[^/]+)", h_update_user, ADMIN),
    Route("GET", r"/_admin/tasks", h_tasks, ADMIN),
    Route("GET", r"/_admin/streams", h_streams, ADMIN),
    Route("GET", r"/_admin/rate_limits", h_get_limits, ADMIN),
    Route("POST", r"/_admin/rate_limits", h_set_limits, ADMIN),
]
