"""Video endpoints: list, details, delete, the HLS proxy, and the analyse / search-process
pipelines (initiate + status)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from syncd.emulator.errors import detail
from syncd.emulator.mikshi import hls, timeline
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.failures import doom
from syncd.emulator.mikshi.store import RunRecord, VideoRecord
from syncd.emulator.mikshi.views import (
    HLS_PATH,
    hls_url,
    iso,
    list_item,
    media_fields,
    owned_video,
    pipeline_status,
    video_status,
)
from syncd.emulator.routing import Route
from syncd.emulator.validation import require_path_uuid
from syncd.emulator.wire import FileStream, Request, Response, json_response

PREFIX = "/api/backend/v1/developer/videos"
STATUS_FILTERS = ("uploaded", "analysed", "search_processed", "processed")


def _matches(status_filter: str, analyse: str | None, search: str | None) -> bool:
    """``processed`` needs both pipelines done, ``analysed`` / ``search_processed`` one of
    them (so processed videos match too), ``uploaded`` neither."""
    if status_filter == "analysed":
        return analyse == "done"
    if status_filter == "search_processed":
        return search == "done"
    return video_status(analyse, search) == status_filter


def list_videos(ctx: Context, req: Request) -> Response:
    q = req.query_fields()
    status_filter = q.choice("status", STATUS_FILTERS, default=None)
    start = q.timestamp("start_time")
    end = q.timestamp("end_time")
    not_in_collection = q.boolean("not_in_collection", default=False)
    skip = q.integer("skip", default=0, ge=0)
    limit = q.integer("limit", default=100, ge=1, le=100)
    sort_by = q.choice("sort_by", ("created_at", "name"), default="created_at")
    sort_order = q.choice("sort_order", ("asc", "desc"), default="desc")
    q.done()
    assert req.user_id is not None
    if status_filter is None and not not_in_collection and sort_by == "created_at":
        page = ctx.store.page_videos(req.user_id, skip=skip, limit=limit, descending=sort_order == "desc",
                                     start=start, end=end)
        # Only this page's runs: reading every run per page made a full walk quadratic.
        runs = ctx.store.runs_of([v.video_id for v in page])
        return json_response(200, [list_item(ctx, req, v, runs) for v in page])
    runs = ctx.store.runs_by_video(req.user_id)
    in_collections = ctx.store.videos_in_any_collection() if not_in_collection else set()
    selected = []
    for video in ctx.store.list_videos(req.user_id):
        if start is not None and video.created_at < start:
            continue
        if end is not None and video.created_at > end:
            continue
        if video.video_id in in_collections:
            continue
        if status_filter is not None:  # pipeline states cost: work them out only to filter
            analyse = pipeline_status(ctx, video, "analyse", runs)
            search = pipeline_status(ctx, video, "search-process", runs)
            if not _matches(status_filter, analyse, search):
                continue
        selected.append(video)
    if sort_by == "name":
        selected.sort(key=lambda v: (v.name.casefold(), v.video_id))
    else:
        selected.sort(key=lambda v: (v.created_at, v.video_id))
    if sort_order == "desc":
        selected.reverse()
    page = selected[skip:skip + limit]
    return json_response(200, [list_item(ctx, req, v, runs) for v in page])


def _query_video_id(req: Request) -> str:
    q = req.query_fields()
    video_id = q.uuid("video_id", required=True)
    q.done()
    assert video_id is not None
    return video_id


def details(ctx: Context, req: Request) -> Response:
    video = owned_video(ctx, req, _query_video_id(req))
    media = media_fields(ctx, req, video)
    return json_response(200, {
        "video_id": video.video_id,
        "name": video.name,
        "video_path": media["video_path"],
        "thumbnail_path": media["thumbnail_path"],
        "hls_playlist_path": media["hls_playlist_path"],
        "transcoding_status": media["transcoding_status"],
        "hls_generation_status": media["hls_generation_status"],
        "thumbnail_generation_status": media["thumbnail_generation_status"],
        "video_metadata": {
            "duration_seconds": video.duration_seconds,
            "width": video.width,
            "height": video.height,
        },
        "created_at": iso(video.created_at),
    })


def delete(ctx: Context, req: Request) -> Response:
    video = owned_video(ctx, req, _query_video_id(req))
    ctx.store.delete_video(video.video_id)
    hls.remove(ctx.store.data_dir, video.video_id)
    ctx.embedder.forget(video.video_id)
    return json_response(200, {"message": "Video deleted successfully."})


def hls_playlist(ctx: Context, req: Request) -> Response:
    q = req.query_fields()
    video_id = q.uuid("video_id", required=True)
    playlist = q.string("playlist", default="master.m3u8")
    q.done()
    assert video_id is not None and playlist is not None
    video = owned_video(ctx, req, video_id)
    if timeline.upload_task(video, "hls", ctx.now()).status != "completed":
        raise detail(404, "HLS playlist not available yet")
    # Every manifest and segment goes through this key-gated proxy, as the doc says; the
    # names of the media playlist and the segments are the emulator's choice.
    if playlist == "master.m3u8":
        text = ("#EXTM3U\n#EXT-X-VERSION:3\n"
                f"#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION={video.width}x{video.height}\n"
                f"{hls_url(req, video.video_id, hls.MEDIA_PLAYLIST)}\n")
        return Response(200, text.encode(), {"Content-Type": "application/vnd.apple.mpegurl"})
    if playlist != hls.MEDIA_PLAYLIST and not hls.SEGMENT.match(playlist):
        raise detail(404, "Playlist not found")
    rendition = _rendition(ctx, video)
    if playlist == hls.MEDIA_PLAYLIST:
        text = hls.media_playlist(rendition, lambda name: hls_url(req, video.video_id, name))
        return Response(200, text.encode(), {"Content-Type": "application/vnd.apple.mpegurl"})
    segment = hls.segment_path(rendition, playlist)
    if segment is None:
        raise detail(404, "Segment not found")
    fh = segment.open("rb")
    size = os.fstat(fh.fileno()).st_size
    return Response(200, b"", {"Content-Type": "video/mp2t"}, stream=FileStream(fh, 0, size), length=size)


def _rendition(ctx: Context, video: VideoRecord) -> Path:
    """The video's HLS rendition, made from its stored object on first use."""
    obj = ctx.store.get_object(video.object_name)
    if obj is None:
        raise detail(404, "Playlist not found")
    try:
        return hls.ensure(ctx.store.data_dir, video.video_id, ctx.store.blob_path(obj))
    except hls.NotPlayable:
        raise detail(404, "Playlist not found") from None


def _initiate(pipeline: str) -> Callable[[Context, Request], Response]:
    def handler(ctx: Context, req: Request) -> Response:
        f = req.body_fields()
        video_id = f.uuid("video_id", required=True)
        f.done()
        assert video_id is not None
        video = owned_video(ctx, req, video_id)
        transcoding = timeline.upload_task(video, "transcoding", ctx.now()).status
        if transcoding != "completed":
            raise detail(409, f"Video transcoding is not completed (transcoding_status: "
                         f"{transcoding}).")
        with ctx.store.lock:  # check-and-start must not race a concurrent initiate
            run = ctx.store.get_run(video_id, pipeline)
            state = timeline.run_state(run, ctx.now())
            if run is None or state.status == "failed":
                attempt = 1 if run is None else run.attempt + 1
                error = doom(ctx.config, video_id, video.name, pipeline, attempt)
                ctx.store.put_run(RunRecord(video_id, pipeline, attempt, ctx.now(),
                                            ctx.config.pipeline_seconds, error is not None,
                                            error))
        return json_response(200, {"video_id": video_id, "status": "enqueued"})
    return handler


def _status(pipeline: str) -> Callable[[Context, Request], Response]:
    def handler(ctx: Context, req: Request) -> Response:
        video = owned_video(ctx, req, require_path_uuid("video_id", req.params["video_id"]))
        state = timeline.run_state(ctx.store.get_run(video.video_id, pipeline), ctx.now(),
                                   ctx.config.status_cache_seconds)
        return json_response(200, {"video_id": video.video_id, **state.as_dict()})
    return handler


ROUTES = [
    Route("GET", PREFIX + "/list", list_videos),
    Route("GET", PREFIX + "/get-video-details", details),
    Route("DELETE", PREFIX + "/delete", delete),
    Route("GET", HLS_PATH, hls_playlist),
    Route("POST", PREFIX + "/analyse/initiate", _initiate("analyse")),
    Route("GET", PREFIX + r"/analyse/status/(?P<video_id>[^/]+)", _status("analyse")),
    Route("POST", PREFIX + "/search-process/initiate", _initiate("search-process")),
    Route("GET", PREFIX + r"/search-process/status/(?P<video_id>[^/]+)",
          _status("search-process")),
]
