"""``/_admin/`` for the Mikshi emulator: the shared routes (health, request log, faults,
clock: ``syncd.emulator.admin``) plus this service's records. No key, never faulted, never
logged; never exposes API keys or URL signatures.

    GET    /_admin/videos                  all users' videos
    GET    /_admin/videos/{id}             one video + segments (start/end/caption)
    GET    /_admin/videos/{id}/bytes       the raw object bytes
    DELETE /_admin/videos/{id}             delete it as another client would
    PATCH  /_admin/videos/{id}             {"name": ...}: rename it as the web app could
    GET    /_admin/uploads                 open multipart uploads with their parts
    GET    /_admin/objects                 completed objects (including never-preprocessed)
    GET    /_admin/collections             collections with member video ids
    GET    /_admin/users                   known users and their credits
    POST   /_admin/users/{user_id}/credits {"credits": n | null}
    POST   /_admin/videos/register         {"user_id"?, "videos": [{"name", "content"}]} (content: the
                                           bytes, base64): finished videos (processed, both pipelines
                                           done) as direct uploads of those bytes would leave them,
                                           without the requests, for tests and benchmarks at library
                                           scale; answers their video ids in order
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from syncd.emulator import media
from syncd.emulator.admin import COMMON_ROUTES, bytes_response, credits_value
from syncd.emulator.errors import detail
from syncd.emulator.mikshi import hls, timeline
from syncd.emulator.mikshi.api_uploads import upload_object_name
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.store import ObjectRecord, RunRecord, VideoRecord
from syncd.emulator.mikshi.views import iso
from syncd.emulator.routing import ADMIN, Route
from syncd.emulator.wire import Request, Response, json_response


def video_info(ctx: Context, video: VideoRecord, with_segments: bool = False) -> dict[str, Any]:
    now = ctx.now()
    obj = ctx.store.get_object(video.object_name)
    states = timeline.upload_states(video, now)
    runs = {p: timeline.run_state(ctx.store.get_run(video.video_id, p), now)
            for p in timeline.PIPELINES}
    info: dict[str, Any] = {
        "video_id": video.video_id,
        "user_id": video.user_id,
        "name": video.name,
        "object_name": video.object_name,
        "source": video.source,
        "size_bytes": obj.size if obj else None,
        "sha256": obj.sha256 if obj else None,
        "created_at": iso(video.created_at),
        "created_at_epoch": video.created_at,
        "duration_seconds": video.duration_seconds,
        "width": video.width,
        "height": video.height,
        "probed": video.probed,
        "use_dynamic_hls": video.use_dynamic_hls,
        "thumbnail_generation_status": states["thumbnail"].status,
        "transcoding_status": states["transcoding"].status,
        "hls_generation_status": states["hls"].status,
        "error_message": timeline.upload_error(video, now),
        "analyse_status": runs["analyse"].status,
        "analyse_error": runs["analyse"].error,
        "search_process_status": runs["search-process"].status,
        "search_process_error": runs["search-process"].error,
        "collections": ctx.store.collections_of_video(video.video_id),
    }
    if with_segments:
        info["segments"] = [{
            "index": s.index, "segment_id": s.segment_id, "start": s.start_hms,
            "end": s.end_hms, "start_seconds": s.start, "end_seconds": s.end,
            "caption": s.caption,
        } for s in ctx.embedder.segments(video.video_id, video.name, video.duration_seconds,
                                         video.segment_seconds)]
    return info


def videos(ctx: Context) -> list[dict[str, Any]]:
    return [video_info(ctx, v) for v in ctx.store.list_videos()]


def video(ctx: Context, video_id: str) -> dict[str, Any] | None:
    rec = ctx.store.get_video(video_id)
    return None if rec is None else video_info(ctx, rec, with_segments=True)


def uploads(ctx: Context) -> list[dict[str, Any]]:
    return [{
        "upload_id": u.upload_id, "user_id": u.user_id, "object_name": u.object_name,
        "video_id": u.video_id, "filename": u.filename, "content_type": u.content_type,
        "created_at": iso(u.created_at),
        "parts": [{"part_number": p.part_number, "size": p.size, "etag": p.etag}
                  for p in ctx.store.list_parts(u.upload_id)],
    } for u in ctx.store.list_uploads()]


def objects(ctx: Context) -> list[dict[str, Any]]:
    return [{"object_name": o.object_name, "user_id": o.user_id, "video_id": o.video_id,
             "size": o.size, "sha256": o.sha256, "etag": o.etag, "created_at": iso(o.created_at)}
            for o in ctx.store.list_objects()]


def collections(ctx: Context) -> list[dict[str, Any]]:
    return [{"collection_id": c.collection_id, "user_id": c.user_id, "name": c.name,
             "description": c.description, "created_at": iso(c.created_at),
             "video_ids": ctx.store.collection_video_ids(c.collection_id)}
            for c in ctx.store.list_collections()]


def users(ctx: Context) -> list[dict[str, Any]]:
    known = {u.user_id: u.credits for u in ctx.store.list_users()}
    for user_id in ctx.keys.user_ids():
        known.setdefault(user_id, ctx.config.credits)
    return [{"user_id": k, "credits": v} for k, v in sorted(known.items())]


def delete_video(ctx: Context, video_id: str) -> bool:
    ok = ctx.store.delete_video(video_id)
    ctx.embedder.forget(video_id)
    hls.remove(ctx.store.data_dir, video_id)  # as the API's delete does
    return ok


# -- HTTP handlers -----------------------------------------------------------------------


def h_videos(ctx: Context, req: Request) -> Response:
    return json_response(200, videos(ctx))


def h_video(ctx: Context, req: Request) -> Response:
    info = video(ctx, req.params["video_id"])
    if info is None:
        raise detail(404, "Video not found")
    return json_response(200, info)


def h_video_bytes(ctx: Context, req: Request) -> Response:
    rec = ctx.store.get_video(req.params["video_id"])
    opened = ctx.store.open_object(rec.object_name) if rec else None
    if opened is None:
        raise detail(404, "Video not found")
    obj, fh = opened
    return bytes_response(fh, obj.size)


def h_delete_video(ctx: Context, req: Request) -> Response:
    if not delete_video(ctx, req.params["video_id"]):
        raise detail(404, "Video not found")
    return json_response(200, {"message": "Video deleted successfully."})


def h_rename_video(ctx: Context, req: Request) -> Response:
    name = req.json_body().get("name")
    if not isinstance(name, str) or not name:
        raise detail(400, "name must be a non-empty string")
    if not ctx.store.rename_video(req.params["video_id"], name):
        raise detail(404, "Video not found")
    return json_response(200, {"video_id": req.params["video_id"], "name": name})


def h_uploads(ctx: Context, req: Request) -> Response:
    return json_response(200, uploads(ctx))


def h_objects(ctx: Context, req: Request) -> Response:
    return json_response(200, objects(ctx))


def h_collections(ctx: Context, req: Request) -> Response:
    return json_response(200, collections(ctx))


def h_users(ctx: Context, req: Request) -> Response:
    return json_response(200, users(ctx))


def h_set_credits(ctx: Context, req: Request) -> Response:
    credits = credits_value(req.json_body())
    ctx.store.set_credits(req.params["user_id"], credits, ctx.now())
    return json_response(200, {"user_id": req.params["user_id"], "credits": credits})


def h_register_videos(ctx: Context, req: Request) -> Response:
    """Finished videos from their bytes, as a direct upload of each would leave them: the
    object stored (so its pre-signed ``video_path`` serves it, ranged GETs included), its
    size, sha256 and ETag (the MD5 of its bytes) worked out here, never taken from the
    caller. What differs: processed a day ago (every step reads as done), and the duration
    and frame size are the fallback's, never probed (a real clip's upload is probed)."""
    body = req.json_body()
    user_ids = ctx.keys.user_ids()
    user_id = body.get("user_id") or (user_ids[0] if user_ids else None)
    entries = body.get("videos")
    if not isinstance(user_id, str) or not isinstance(entries, list):
        raise detail(400, "need videos: [{name, content}] (and user_id with several keys)")
    contents: list[tuple[str, bytes]] = []
    for entry in entries:
        name, encoded = (entry.get(k) if isinstance(entry, dict) else None for k in ("name", "content"))
        try:
            content = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
        except binascii.Error:
            content = b""
        if not (isinstance(name, str) and name and content):
            raise detail(400, "each video needs a name and its content (base64, not empty)")
        contents.append((name, content))
    done_at = ctx.now() - 86_400.0  # long finished: every step reads as done
    items: list[tuple[ObjectRecord, VideoRecord]] = []
    runs: list[RunRecord] = []
    received: list[Path] = []
    try:
        for name, content in contents:
            video_id = str(uuid.uuid4())
            obj = ObjectRecord(upload_object_name(user_id, video_id, PurePosixPath(name).name), user_id,
                               video_id, len(content), hashlib.sha256(content).hexdigest(),
                               f'"{hashlib.md5(content).hexdigest()}"', ctx.store.new_blob_name(), done_at)
            received.append(ctx.store.new_tmp_path("register"))
            received[-1].write_bytes(content)
            info = media.fallback(len(content))  # not probed: PyAV's open was most of a video's cost here
            items.append((obj, VideoRecord(
                video_id=video_id, user_id=user_id, name=name, object_name=obj.object_name, source="direct",
                use_dynamic_hls=False, created_at=done_at, duration_seconds=info.duration_seconds,
                width=info.width, height=info.height, probed=info.probed, processing_started_at=done_at,
                processing_seconds=0.0, segment_seconds=ctx.config.segment_seconds,
                fail_pipeline=None, fail_error=None,
            )))
            runs += [RunRecord(video_id, p, 1, done_at, 0.0, False, None) for p in timeline.PIPELINES]
        ctx.store.register_videos(items, runs, received)
    finally:
        for path in received:  # moved into place unless something failed
            path.unlink(missing_ok=True)
    return json_response(200, {"video_ids": [v.video_id for _, v in items]})


_VID = r"(?P<video_id>[^/]+)"

ROUTES = [
    *COMMON_ROUTES,
    Route("GET", r"/_admin/videos", h_videos, ADMIN),
    Route("POST", r"/_admin/videos/register", h_register_videos, ADMIN),
    Route("GET", rf"/_admin/videos/{_VID}", h_video, ADMIN),
    Route("GET", rf"/_admin/videos/{_VID}/bytes", h_video_bytes, ADMIN),
    Route("DELETE", rf"/_admin/videos/{_VID}", h_delete_video, ADMIN),
    Route("PATCH", rf"/_admin/videos/{_VID}", h_rename_video, ADMIN),
    Route("GET", r"/_admin/uploads", h_uploads, ADMIN),
    Route("GET", r"/_admin/objects", h_objects, ADMIN),
    Route("GET", r"/_admin/collections", h_collections, ADMIN),
    Route("GET", r"/_admin/users", h_users, ADMIN),
    Route("POST", r"/_admin/users/(?P<user_id>[^/]+)/credits", h_set_credits, ADMIN),
]
