"""Shared lookups and JSON shapes: ownership checks, URLs, statuses, Video/Collection records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from syncd.emulator.errors import detail
from syncd.emulator.mikshi import timeline
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.store import CollectionRecord, RunRecord, VideoRecord
from syncd.emulator.wire import Request

HLS_PATH = "/api/backend/v1/videos/hls-playlist"

Runs = dict[tuple[str, str], RunRecord]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def s3_path(ctx: Context, object_name: str) -> str:
    """Decoded object-store path of an object (what the signature covers)."""
    return f"/s3/{ctx.config.bucket}/{object_name}"


def signed_url(ctx: Context, req: Request, method: str, object_name: str,
               extra: dict[str, str] | None = None) -> str:
    path = s3_path(ctx, object_name)
    return req.url(f"{quote(path, safe='/')}?{ctx.signer.sign(method, path, extra)}")


def object_url(ctx: Context, req: Request, object_name: str) -> str:
    return signed_url(ctx, req, "GET", object_name)


def thumbnail_key(video_id: str) -> str:
    return f"thumbnails/{video_id}/thumbnail.png"


def hls_url(req: Request, video_id: str, playlist: str = "master.m3u8") -> str:
    return req.url(f"{HLS_PATH}?{urlencode({'video_id': video_id, 'playlist': playlist})}")


def owned_video(ctx: Context, req: Request, video_id: str) -> VideoRecord:
    video = ctx.store.get_video(video_id)
    if video is None:
        raise detail(404, "Video not found")
    if video.user_id != req.user_id:
        raise detail(403, "Not authorized for this video")
    return video


def owned_collection(ctx: Context, req: Request, collection_id: str) -> CollectionRecord:
    coll = ctx.store.get_collection(collection_id)
    if coll is None:
        raise detail(404, "Collection not found")
    if coll.user_id != req.user_id:
        raise detail(403, "Not authorized for this collection")
    return coll


def run_of(ctx: Context, video_id: str, pipeline: str, runs: Runs | None) -> RunRecord | None:
    if runs is not None:
        return runs.get((video_id, pipeline))
    return ctx.store.get_run(video_id, pipeline)


def pipeline_status(ctx: Context, video: VideoRecord, pipeline: str,
                    runs: Runs | None = None) -> str | None:
    """List-view status of analyse / search-process: None when never initiated."""
    run = run_of(ctx, video.video_id, pipeline, runs)
    return None if run is None else timeline.run_state(run, ctx.now()).status


def video_status(analyse: str | None, search: str | None) -> str:
    if analyse == "done" and search == "done":
        return "processed"
    if analyse == "done":
        return "analysed"
    if search == "done":
        return "search_processed"
    return "uploaded"


def media_fields(ctx: Context, req: Request, video: VideoRecord) -> dict[str, Any]:
    """Paths and per-task statuses common to every video shape.

    ``thumbnail_path`` / ``hls_playlist_path`` stay null until their task completed.
    """
    states = timeline.upload_states(video, ctx.now())
    thumb_done = states["thumbnail"].status == "completed"
    hls_done = states["hls"].status == "completed"
    return {
        "video_path": object_url(ctx, req, video.object_name),
        "thumbnail_path": object_url(ctx, req, thumbnail_key(video.video_id)) if thumb_done
        else None,
        "hls_playlist_path": hls_url(req, video.video_id) if hls_done else None,
        "transcoding_status": states["transcoding"].status,
        "hls_generation_status": states["hls"].status,
        "thumbnail_generation_status": states["thumbnail"].status,
    }


def list_item(ctx: Context, req: Request, video: VideoRecord, runs: Runs | None) -> dict[str, Any]:
    analyse = pipeline_status(ctx, video, "analyse", runs)
    search = pipeline_status(ctx, video, "search-process", runs)
    media = media_fields(ctx, req, video)
    return {
        "video_id": video.video_id,
        "name": video.name,
        "status": video_status(analyse, search),
        "thumbnail_path": media["thumbnail_path"],
        "hls_playlist_path": media["hls_playlist_path"],
        "transcoding_status": media["transcoding_status"],
        "hls_generation_status": media["hls_generation_status"],
        "thumbnail_generation_status": media["thumbnail_generation_status"],
        "analyse_status": analyse,
        "search_process_status": search,
        "created_at": iso(video.created_at),
    }


def video_record(ctx: Context, req: Request, video: VideoRecord,
                 runs: Runs | None = None) -> dict[str, Any]:
    """The doc's ``Video`` object (collection listings)."""
    analyse = pipeline_status(ctx, video, "analyse", runs)
    search = pipeline_status(ctx, video, "search-process", runs)
    media = media_fields(ctx, req, video)
    return {
        "video_id": video.video_id,
        "name": video.name,
        "parent_id": video.user_id,
        "parent_type": "user",
        "status": video_status(analyse, search),
        "video_path": media["video_path"],
        "thumbnail_path": media["thumbnail_path"],
        "hls_playlist_path": media["hls_playlist_path"],
        "created_at": iso(video.created_at),
        "thumbnail_generation_status": media["thumbnail_generation_status"],
        "transcoding_status": media["transcoding_status"],
        "hls_generation_status": media["hls_generation_status"],
    }


def collection_record(ctx: Context, req: Request, coll: CollectionRecord) -> dict[str, Any]:
    """``CollectionResponse``: ``thumbnails`` holds up to four signed URLs (null when none)."""
    members = ctx.store.collection_video_ids(coll.collection_id)
    thumbs = [object_url(ctx, req, thumbnail_key(vid)) for vid in members[:4]]
    return {
        "collection_id": coll.collection_id,
        "parent_id": coll.user_id,
        "parent_type": "user",
        "name": coll.name,
        "description": coll.description,
        "created_at": iso(coll.created_at),
        "video_count": len(members),
        "thumbnails": thumbs or None,
    }
