"""Visual Search v1: upload, get_metadata, list_videos, delete_videos, search."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from syncd.emulator import formdata, media
from syncd.emulator.memories import envelope, videos
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.memories.params import (Params, bad, datetime_ms, json_body, json_object)
from syncd.emulator.memories.routes import api_route
from syncd.emulator.memories.store import Video
from syncd.emulator.wire import Request, Response

V1 = envelope.V1
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
MAX_DELETE_IDS = 100
MAX_SEARCH_VIDEO_NOS = 100
#: Multipart framing allowance on top of the file cap before refusing on Content-Length.
_FORM_SLACK = 1024 * 1024
GEO_RADIUS_KM = 20.0  # list_videos: "~20 km geo-within radius"


def new_video_no() -> str:
    return "VI" + str(600_000_000_000_000_000 + secrets.randbelow(10 ** 17))


def new_blob(extension: str) -> str:
    return f"VI{uuid.uuid4()}{extension}"


def _tags(form: formdata.FormData) -> list[str]:
    """``tags`` repeated, or ``tags[0]``, ``tags[1]``… (the docs show both forms)."""
    plain = [v for k, v in form.all_fields if k == "tags"]
    indexed: list[tuple[int, str]] = []
    for key, value in form.all_fields:
        if key.startswith("tags[") and key.endswith("]"):
            index = key[5:-1]
            if not index.isdigit():
                raise bad(f"{key} is not a valid tags index")
            indexed.append((int(index), value))
    out = plain + [v for _, v in sorted(indexed)]
    for tag in out:
        if not tag.strip():
            raise bad("tags must not be empty")
        if len(tag) > 255:
            raise bad("a tag is longer than 255 characters")
    return list(dict.fromkeys(out))


def upload(ctx: MemoriesContext, req: Request) -> Response:
    assert req.user_id is not None
    cap = ctx.config.max_upload_bytes
    too_large = bad(f"Maximum upload size exceeded: a file may be at most {cap} bytes")
    boundary = formdata.boundary_of(req.header("Content-Type"))
    if boundary is None:
        raise bad("Current request is not a multipart request")
    if req.body.length is not None and req.body.length > cap + _FORM_SLACK:
        raise too_large
    account = ctx.store.account(req.user_id)
    if account is not None and account.credits == 0:
        raise envelope.v1_error(envelope.NO_CREDITS, envelope.CREDITS_MSG)
    try:
        form = formdata.parse(req.body, boundary, lambda: ctx.store.new_tmp_path("upload"), cap)
    except formdata.FormTooLarge:
        raise too_large from None
    except formdata.FormError as exc:
        raise bad(f"Failed to parse multipart servlet request: {exc}") from None
    try:
        return _store_upload(ctx, req, form)
    finally:
        form.cleanup()


def _store_upload(ctx: MemoriesContext, req: Request, form: formdata.FormData) -> Response:
    assert req.user_id is not None
    if form.file_names != ["file"]:
        raise bad("exactly one file part named 'file' is required")
    part = form.files["file"]
    extension = PurePosixPath(part.filename).suffix.lower()
    if extension not in VIDEO_EXTENSIONS:
        raise bad(f"unsupported file type {extension or '(none)'}: use .mp4, .avi, .mkv or .mov")
    if not part.content_type.startswith("video/"):
        raise bad(f"file part Content-Type must be video/*, got {part.content_type}")
    if part.size == 0:
        raise bad("the uploaded file is empty")
    p = Params(form.fields, text=True)
    unique_id = p.string("unique_id", default="default", non_empty=True, max_len=128)
    callback = p.string("callback")
    if callback is not None and not callback.startswith(("http://", "https://")):
        raise bad("callback must be an http(s) URL")
    taken = p.string("datetime_taken")
    taken_ms = None if taken is None else datetime_ms("datetime_taken", taken)
    camera = p.string("camera_model", max_len=255)
    where = p.lat_lon()
    p.boolean("retain_original_video", default=False)
    p.string("video_transcription_prompt", max_len=4000)
    tags = _tags(form)
    assert unique_id is not None
    if not ctx.store.charge(req.user_id):
        raise envelope.v1_error(envelope.NO_CREDITS, envelope.CREDITS_MSG)
    info = media.probe(part.path, part.size)
    video_no = new_video_no()
    name = PurePosixPath(part.filename.replace("\\", "/")).stem or "video"
    now = ctx.now()
    video = Video(
        video_no=video_no, account_id=req.user_id, unique_id=unique_id, name=name,
        filename=PurePosixPath(part.filename.replace("\\", "/")).name,
        content_type=part.content_type, size=part.size, sha256=part.sha256,
        bucket=ctx.config.bucket, blob=new_blob(extension), created_ms=int(now * 1000),
        visible_at=now, parse_seconds=ctx.config.parse_seconds,
        fail_cause=videos.doomed_cause(ctx.config, video_no, name),
        duration=info.duration_seconds, width=info.width if info.probed else None,
        height=info.height if info.probed else None, fps=None,
        datetime_taken_ms=taken_ms, camera_model=camera,
        latitude=where[0] if where else None, longitude=where[1] if where else None,
        tags=json.dumps(tags), task_id=None, deleted_at=None)
    ctx.store.insert_video(video, part.path)
    return envelope.v1_ok({"videoNo": video_no, "videoName": name, "videoStatus": "UNPARSE",
                           "uploadTime": str(video.created_ms)})


def _scoped(ctx: MemoriesContext, req: Request, video_no: str, unique_id: str) -> Video | None:
    video = ctx.store.video(video_no)
    if (video is None or video.deleted_at is not None or video.account_id != req.user_id
            or video.unique_id != unique_id or video.visible_at > ctx.now()):
        return None
    return video


def get_metadata(ctx: MemoriesContext, req: Request) -> Response:
    p = Params(req.query, text=True)
    video_no = p.string("video_no", required=True)
    unique_id = p.string("unique_id", default="default", non_empty=True)
    assert video_no is not None and unique_id is not None
    video = _scoped(ctx, req, video_no, unique_id)
    # An unknown video_no is not an error: "0000" with data null (public summary).
    return envelope.v1_ok(None if video is None else videos.metadata(video, ctx.now()))


def _status_filter(value: Any) -> str | None:
    if value is None:
        return None
    if value not in videos.STATUSES:
        # memories-list-videos.txt: the legacy FAILED is refused "with a JSON parse error
        # referencing the live enum ([UNPARSE, PARSE, FAIL])".
        raise bad(f"JSON parse error: Cannot deserialize value of type `VideoStatus` from "
                  f"String {json.dumps(value)}: not one of the values accepted for Enum class: "
                  f"[{', '.join(videos.STATUSES)}]")
    return str(value)


def list_videos(ctx: MemoriesContext, req: Request) -> Response:
    body = json_object(req)
    p = Params(body)
    page = p.integer("page", required=True, ge=1)
    size = p.integer("size", default=20, ge=1)  # the summary: "size default 20"
    unique_id = p.string("unique_id", default="default", non_empty=True)
    video_name = p.string("video_name")
    video_no = p.string("video_no")
    video_nos = p.string_list("video_nos", max_items=10_000)
    status = _status_filter(body.get("status"))
    camera = p.string("camera_model")
    tag = p.string("tag")
    taken_min = p.integer("datetime_taken")
    where = p.lat_lon()
    assert page is not None and size is not None
    now = ctx.now()
    start = (page - 1) * size
    if all(f is None for f in (video_name, video_no, video_nos, status, camera, tag, taken_min, where)):
        # The plain listing (a client's complete walk): counted and sliced in SQL.
        assert req.user_id is not None and unique_id is not None
        total, sliced = ctx.store.videos_page(req.user_id, unique_id, now, start, size)
        return envelope.v1_ok({"current_page": page, "page_size": size, "total_count": str(total),
                               "videos": [videos.list_item(v, now, req.base_url) for v in sliced]})
    found = ctx.store.videos(req.user_id, unique_id, now)
    if video_name is not None:
        found = [v for v in found if v.name == video_name]
    if video_no is not None:
        found = [v for v in found if v.video_no == video_no]
    if video_nos is not None:
        wanted = set(video_nos)
        found = [v for v in found if v.video_no in wanted]
    if status is not None:
        found = [v for v in found if videos.status(v, now) == status]
    if camera is not None or tag is not None or taken_min is not None or where is not None:
        # Metadata filters resolve against the summary: unparsed videos never match.
        found = [v for v in found if videos.summarised(v, now)
                 and (camera is None or v.camera_model == camera)
                 and (tag is None or tag in videos.tags(v, now))
                 and (taken_min is None or (v.datetime_taken_ms is not None
                                            and v.datetime_taken_ms >= taken_min))
                 and (where is None or (v.latitude is not None and v.longitude is not None
                                        and videos.within_km(where[0], where[1], v.latitude,
                                                             v.longitude, GEO_RADIUS_KM)))]
    items = [videos.list_item(v, now, req.base_url) for v in found[start:start + size]]
    return envelope.v1_ok({"current_page": page, "page_size": size,
                           "total_count": str(len(found)), "videos": items})


def delete_videos(ctx: MemoriesContext, req: Request) -> Response:
    unique_id = Params(req.query, text=True).string("unique_id", default="default",
                                                    non_empty=True)
    ids = json_body(req)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad("JSON parse error: the body must be a JSON array of video_no strings")
    if not ids:
        raise bad("the list of video_no must not be empty")
    if len(ids) > MAX_DELETE_IDS:
        raise bad(f"at most {MAX_DELETE_IDS} video_no per request")
    repeated = False
    now = ctx.now()
    for video_no in dict.fromkeys(ids):
        video = ctx.store.video(video_no)
        if video is None or video.account_id != req.user_id or video.unique_id != unique_id:
            continue  # "deleting unknown IDs" is a success (public summary)
        if video.deleted_at is not None:
            repeated = True
            continue
        ctx.store.delete_video(video_no, now)
    if repeated:
        # The code table's "0409 duplicate request" for a repeated delete; the rest of the
        # batch was still deleted, so 0409 and 0000 both mean "all of these are gone".
        raise envelope.v1_error(envelope.DUPLICATE, "Duplicate request: video already deleted")
    return envelope.v1_ok(None)


SEARCH_TYPES = ("BY_CLIP", "BY_VIDEO", "BY_AUDIO", "BY_CAPTION")
FILTER_LEVELS = {"low": 0.15, "medium": 0.225, "high": 0.4}


def search(ctx: MemoriesContext, req: Request) -> Response:
    p = Params(json_object(req))
    query = p.string("search_param", required=True)
    search_type = p.string("search_type", default="BY_CLIP")
    if search_type not in SEARCH_TYPES:
        # BY_IMAGE is named by one page only and needs an image upload the summary does
        # not describe: refused like any unknown value ("0003").
        raise bad(f"search_type must be one of {', '.join(SEARCH_TYPES)}",
                  envelope.BAD_PARAM_VALUE)
    top_k = p.integer("top_k", default=10, ge=1, le=200 if search_type == "BY_CAPTION" else 1000)
    level = p.string("filtering_level", default="low")
    if level not in FILTER_LEVELS:
        raise bad("filtering_level must be low, medium or high", envelope.BAD_PARAM_VALUE)
    unique_id = p.string("unique_id", default="default", non_empty=True)
    video_nos = p.string_list("video_nos", max_items=MAX_SEARCH_VIDEO_NOS)
    tag = p.string("tag")
    camera = p.string("camera_tag")
    taken = p.string("datetime_taken")
    taken_ms = None if taken is None else datetime_ms("datetime_taken", taken)
    where = p.lat_lon()
    assert query is not None and top_k is not None and level is not None
    now = ctx.now()
    pool = [v for v in ctx.store.videos(req.user_id, unique_id, now)
            if videos.summarised(v, now)
            and (video_nos is None or v.video_no in video_nos)
            and (tag is None or tag in videos.tags(v, now))
            and (camera is None or v.camera_model == camera)
            and (taken_ms is None or (v.datetime_taken_ms or 0) >= taken_ms)
            and (where is None or (v.latitude is not None and v.longitude is not None
                                   and videos.within_km(where[0], where[1], v.latitude,
                                                        v.longitude, GEO_RADIUS_KM)))]
    qvec = ctx.embedder.text(query)
    hits: list[dict[str, Any]] = []
    for video in pool:
        stem = video.blob.rsplit(".", 1)[0]
        # The shared embedder keys segments by a UUID; derive one from the video_no.
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, video.video_no))
        for seg in ctx.embedder.segments(key, video.name, video.duration,
                                         ctx.config.segment_seconds):
            score = float(np.dot(qvec, seg.vector))
            if score >= FILTER_LEVELS[level]:
                hits.append({
                    "videoNo": video.video_no, "videoName": video.name,
                    "startTime": str(int(seg.start)), "endTime": str(int(seg.end)),
                    "score": round(score, 6), "video_bucket": video.bucket,
                    "video_blob": video.blob, "keyframe_bucket": video.bucket,
                    "keyframe_blob": f"{stem}/frame_{seg.index:04d}.jpg"})
    hits.sort(key=lambda h: -float(h["score"]))
    # The summary names the hit fields but not the wrapper: ``data`` is the list of hits.
    return envelope.v1_ok(hits[:top_k])




ROUTES = [
    api_route("POST", V1 + "/upload", "upload", upload),
    api_route("GET", V1 + "/get_metadata", "metadata", get_metadata),
    api_route("POST", V1 + "/list_videos", "list", list_videos),
    api_route("POST", V1 + "/delete_videos", "delete", delete_videos),
    api_route("POST", V1 + "/search", "search", search),
]
