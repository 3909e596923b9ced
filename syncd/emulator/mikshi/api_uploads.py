"""Upload endpoints: multipart (initiate / part-url / list-parts / complete / abort),
preprocess, direct upload, YouTube import and upload status.

Multipart errors that come from S3 are worded the way a FastAPI service re-raising a
botocore ``ClientError`` would: ``{"detail": "An error occurred (InvalidPart) when calling
the CompleteMultipartUpload operation: ..."}``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from urllib.parse import parse_qs, urlsplit

from syncd.emulator import formdata, media
from syncd.emulator.errors import boto_detail, detail, field_error, message, validation
from syncd.emulator.mikshi import timeline
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.failures import doom
from syncd.emulator.mikshi.s3 import NO_SUCH_UPLOAD
from syncd.emulator.mikshi.store import Duplicate, ObjectRecord, PartRecord, UploadRecord, VideoRecord
from syncd.emulator.mikshi.views import owned_video, signed_url
from syncd.emulator.routing import Route
from syncd.emulator.validation import Fields, require_path_uuid
from syncd.emulator.wire import Request, Response, json_response

PREFIX = "/api/backend/v1/developer/uploads"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_COPY_CHUNK = 1024 * 1024
#: Multipart framing allowance on top of the file cap before rejecting on Content-Length.
_FORM_SLACK = 1024 * 1024


def _safe_filename(filename: str) -> str:
    cleaned = _UNSAFE.sub("_", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._")
    return cleaned[:200] or "video"


def upload_object_name(user_id: str, video_id: str, filename: str) -> str:
    return f"uploads/{user_id}/{video_id}/{_safe_filename(filename)}"


def _strip_quotes(etag: str) -> str:
    return etag.strip().strip('"')


# -- multipart ---------------------------------------------------------------------------


def initiate(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    filename = f.string("filename", required=True, min_len=1)
    content_type = f.string("content_type", default="application/octet-stream")
    f.done()
    assert req.user_id is not None and filename is not None
    video_id = str(uuid.uuid4())
    rec = UploadRecord(
        upload_id=secrets.token_urlsafe(48),
        user_id=req.user_id,
        object_name=upload_object_name(req.user_id, video_id, filename),
        video_id=video_id,
        filename=filename,
        content_type=content_type or "application/octet-stream",
        created_at=ctx.now(),
    )
    ctx.store.create_upload(rec)
    return json_response(200, {"upload_id": rec.upload_id, "s3_object_name": rec.object_name,
                               "video_id": rec.video_id})


def _upload_fields(f: Fields) -> tuple[str, str]:
    object_name = f.string("s3_object_name", required=True, min_len=1)
    upload_id = f.string("upload_id", required=True, min_len=1)
    return object_name or "", upload_id or ""


def _open_upload(ctx: Context, req: Request, object_name: str, upload_id: str,
                 operation: str) -> UploadRecord:
    upload = ctx.store.get_upload(upload_id)
    if upload is None or upload.object_name != object_name:
        raise detail(404, boto_detail("NoSuchUpload", operation, NO_SUCH_UPLOAD))
    if upload.user_id != req.user_id:
        raise detail(403, "Not authorized for this upload")
    return upload


def part_url(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    object_name, upload_id = _upload_fields(f)
    part_number = f.integer("part_number", default=0, ge=1, le=10000)
    if not f.present("part_number"):
        f.error("part_number", "Field required", "missing")
    f.done()
    upload = _open_upload(ctx, req, object_name, upload_id, "UploadPart")
    url = signed_url(ctx, req, "PUT", upload.object_name,
                     {"uploadId": upload.upload_id, "partNumber": str(part_number)})
    return json_response(200, {"url": url, "part_number": part_number})


def list_parts(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    object_name, upload_id = _upload_fields(f)
    f.done()
    upload = _open_upload(ctx, req, object_name, upload_id, "ListParts")
    parts = ctx.store.list_parts(upload.upload_id)
    return json_response(200, {"parts": [{"part_number": p.part_number, "etag": p.etag}
                                         for p in parts]})


def _requested_parts(f: Fields) -> list[tuple[int, str]]:
    raw = f.raw("parts")
    if raw is None:
        f.error("parts", "Field required", "missing")
        return []
    if not isinstance(raw, list):
        f.error("parts", "Input should be a valid list", "list_type")
        return []
    out: list[tuple[int, str]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            f.errors.append(field_error(["body", "parts", i], "Input should be a valid "
                                        "dictionary", "dict_type", item))
            continue
        number = item.get("part_number")
        etag = item.get("etag")
        if isinstance(number, bool) or not isinstance(number, int):
            f.errors.append(field_error(["body", "parts", i, "part_number"], "Input should be a "
                                        "valid integer", "int_type", number))
            continue
        if not isinstance(etag, str):
            f.errors.append(field_error(["body", "parts", i, "etag"], "Input should be a valid "
                                        "string", "string_type", etag))
            continue
        out.append((number, etag))
    return out


def complete(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    object_name, upload_id = _upload_fields(f)
    requested = _requested_parts(f)
    f.done()
    op = "CompleteMultipartUpload"
    upload = _open_upload(ctx, req, object_name, upload_id, op)
    if not requested:
        raise detail(400, boto_detail("MalformedXML", op, "The XML you provided was not "
                                      "well-formed or did not validate against our published "
                                      "schema"))
    numbers = [n for n, _ in requested]
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        raise detail(400, boto_detail("InvalidPartOrder", op, "The list of parts was not in "
                                      "ascending order. The parts list must be specified in "
                                      "order by part number."))
    stored = {p.part_number: p for p in ctx.store.list_parts(upload.upload_id)}
    used: list[PartRecord] = []
    for number, etag in requested:
        part = stored.get(number)
        if part is None or _strip_quotes(part.etag) != _strip_quotes(etag):
            raise detail(400, boto_detail("InvalidPart", op, "One or more of the specified "
                                          "parts could not be found. The part may not have "
                                          "been uploaded, or the specified entity tag may not "
                                          "match the part's entity tag."))
        used.append(part)
    for part in used[:-1]:
        if part.size < ctx.config.min_part_size:
            raise detail(400, boto_detail("EntityTooSmall", op, "Your proposed upload is "
                                          "smaller than the minimum allowed size"))
    # Assemble outside the store lock: only the final rename + row change is locked.
    tmp = ctx.store.new_tmp_path("object")
    sha = hashlib.sha256()
    md5s = b""
    size = 0
    try:
        with tmp.open("wb") as out:
            for part in used:
                md5s += bytes.fromhex(_strip_quotes(part.etag))
                with ctx.store.part_path(upload.upload_id, part.part_number).open("rb") as src:
                    while chunk := src.read(_COPY_CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
    except FileNotFoundError:  # a part vanished: the upload was aborted meanwhile
        tmp.unlink(missing_ok=True)
        raise detail(404, boto_detail("NoSuchUpload", op, NO_SUCH_UPLOAD)) from None
    etag = f'"{hashlib.md5(md5s).hexdigest()}-{len(used)}"'
    obj = ObjectRecord(upload.object_name, upload.user_id, upload.video_id, size,
                       sha.hexdigest(), etag, ctx.store.new_blob_name(), ctx.now())
    if not ctx.store.finish_upload(upload.upload_id, used, obj, tmp):
        tmp.unlink(missing_ok=True)
        if ctx.store.get_upload(upload.upload_id) is None:
            raise detail(404, boto_detail("NoSuchUpload", op, NO_SUCH_UPLOAD))
        raise detail(400, boto_detail("InvalidPart", op, "One or more of the specified parts "
                                      "changed while the upload was being completed."))
    return json_response(200, {"message": "Multipart upload completed.",
                               "s3_object_name": obj.object_name, "etag": etag})


def abort(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    object_name, upload_id = _upload_fields(f)
    f.done()
    upload = _open_upload(ctx, req, object_name, upload_id, "AbortMultipartUpload")
    if not ctx.store.delete_upload(upload.upload_id):
        raise detail(404, boto_detail("NoSuchUpload", "AbortMultipartUpload", NO_SUCH_UPLOAD))
    return json_response(200, {"message": "Multipart upload aborted."})


# -- creating videos ---------------------------------------------------------------------


def _create_video(ctx: Context, user_id: str, video_id: str, name: str, obj: ObjectRecord,
                  source: str, use_dynamic_hls: bool, info: media.MediaInfo) -> None:
    fail_pipeline: str | None = None
    fail_error: str | None = None
    for task in timeline.UPLOAD_TASKS:
        error = doom(ctx.config, video_id, name, task, 1)
        if error is not None:
            fail_pipeline, fail_error = task, error
            break
    now = ctx.now()
    rec = VideoRecord(
        video_id=video_id, user_id=user_id, name=name, object_name=obj.object_name,
        source=source, use_dynamic_hls=use_dynamic_hls, created_at=now,
        duration_seconds=info.duration_seconds, width=info.width, height=info.height,
        probed=info.probed, processing_started_at=now,
        processing_seconds=ctx.config.processing_seconds,
        segment_seconds=ctx.config.segment_seconds,
        fail_pipeline=fail_pipeline, fail_error=fail_error,
    )
    try:
        ctx.store.insert_video(rec)
    except Duplicate:
        raise detail(409, "Video already exists.") from None


def preprocess(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    object_name = f.string("s3_object_name", required=True, min_len=1)
    video_id = f.uuid("video_id", required=True)
    name = f.string("name", required=True, min_len=1)
    use_hls = f.boolean("use_dynamic_hls", default=False)
    f.done()
    assert req.user_id is not None and video_id and object_name and name
    if ctx.store.get_video(video_id) is not None:
        raise detail(409, "Video already exists.")
    obj = ctx.store.get_object(object_name)
    if obj is None or obj.user_id != req.user_id:
        raise detail(400, "Uploaded object not found: complete the multipart upload first.")
    if obj.video_id != video_id:
        raise detail(400, "video_id does not match the uploaded object.")
    info = media.probe(ctx.store.blob_path(obj), obj.size)
    _create_video(ctx, req.user_id, video_id, name, obj, "multipart", use_hls, info)
    return json_response(202, {"video_id": video_id})


def direct(ctx: Context, req: Request) -> Response:
    assert req.user_id is not None
    cap = ctx.config.direct_upload_max_bytes
    too_large = detail(413, f"File too large. Maximum size is {cap} bytes.")
    boundary = formdata.boundary_of(req.header("Content-Type"))
    if boundary is None:
        raise validation([field_error(["body", "file"], "Field required", "missing")])
    if req.body.length is not None and req.body.length > cap + _FORM_SLACK:
        raise too_large
    try:
        form = formdata.parse(req.body, boundary, lambda: ctx.store.new_tmp_path("direct"), cap)
    except formdata.FormTooLarge:
        raise too_large from None
    except formdata.FormError:
        raise detail(400, "There was an error parsing the body") from None
    try:
        upload = form.files.get("file")
        fields = Fields("body", form.fields, coerce=True)
        name = fields.string("name")
        use_hls = fields.boolean("use_dynamic_hls", default=False)
        if upload is None:
            fields.errors.append(field_error(["body", "file"], "Field required", "missing"))
        fields.done()
        assert upload is not None
        if upload.size == 0:
            raise detail(400, "Uploaded file is empty.")
        video_id = str(uuid.uuid4())
        md5 = hashlib.md5()
        with upload.path.open("rb") as fh:
            while chunk := fh.read(_COPY_CHUNK):
                md5.update(chunk)
        obj = ObjectRecord(upload_object_name(req.user_id, video_id, upload.filename or "video"),
                           req.user_id, video_id, upload.size, upload.sha256,
                           f'"{md5.hexdigest()}"', ctx.store.new_blob_name(), ctx.now())
        ctx.store.put_object(obj, upload.path)
        info = media.probe(ctx.store.blob_path(obj), obj.size)
        display = name or upload.filename or "video"
        _create_video(ctx, req.user_id, video_id, display, obj, "direct", use_hls, info)
    finally:
        form.cleanup()
    return json_response(202, {"video_id": video_id})


# YouTube import has no network here: the URL itself decides the outcome. Markers are
# matched in the lowercased URL with "-" and "_" removed; the first match wins.
_YOUTUBE_MARKERS = (
    ("unavailable", "YOUTUBE_VIDEO_UNAVAILABLE"),
    ("private", "YOUTUBE_VIDEO_PRIVATE"),
    ("agerestricted", "YOUTUBE_VIDEO_AGE_RESTRICTED"),
    ("geoblocked", "YOUTUBE_VIDEO_GEO_BLOCKED"),
    ("copyright", "YOUTUBE_VIDEO_BLOCKED"),
    ("authrequired", "YOUTUBE_AUTH_REQUIRED"),
    ("authexpired", "YOUTUBE_AUTH_EXPIRED"),
    ("authmissing", "YOUTUBE_AUTH_MISSING"),
    ("authinvalid", "YOUTUBE_AUTH_INVALID"),
    ("importfailed", "YOUTUBE_IMPORT_FAILED"),
)
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
                  "youtu.be"}


def youtube_outcome(url: str) -> tuple[str | None, str]:
    """(error code or None, YouTube video id) for an import URL."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or host not in _YOUTUBE_HOSTS:
        return "YOUTUBE_IMPORT_FAILED", ""
    flat = url.lower().replace("-", "").replace("_", "")
    for marker, code in _YOUTUBE_MARKERS:
        if marker in flat:
            return code, ""
    if host == "youtu.be":
        yt_id = parts.path.strip("/")
    else:
        yt_id = (parse_qs(parts.query).get("v") or [""])[0] or parts.path.rstrip("/") \
            .rsplit("/", 1)[-1]
    if not yt_id or yt_id in ("watch", "shorts"):
        return "YOUTUBE_IMPORT_FAILED", ""
    return None, yt_id


def youtube(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    url = f.string("url", required=True, min_len=1)
    name = f.string("name")
    use_hls = f.boolean("use_dynamic_hls", default=False)
    f.done()
    assert req.user_id is not None and url is not None
    code, yt_id = youtube_outcome(url)
    if code is not None:
        raise message(400, code)
    video_id = str(uuid.uuid4())
    payload = f"EMULATED YOUTUBE IMPORT {yt_id}\n".encode()
    tmp = ctx.store.new_tmp_path("youtube")
    tmp.write_bytes(payload)
    obj = ObjectRecord(upload_object_name(req.user_id, video_id, f"{yt_id}.mp4"), req.user_id,
                       video_id, len(payload), hashlib.sha256(payload).hexdigest(),
                       f'"{hashlib.md5(payload).hexdigest()}"', ctx.store.new_blob_name(),
                       ctx.now())
    ctx.store.put_object(obj, tmp)
    seconds = 30 + int.from_bytes(hashlib.sha256(yt_id.encode()).digest()[:2], "big") % 271
    info = media.MediaInfo(float(seconds), 1280, 720, False)
    _create_video(ctx, req.user_id, video_id, name or f"YouTube video {yt_id}", obj, "youtube",
                  use_hls, info)
    return json_response(202, {"video_id": video_id})


def status(ctx: Context, req: Request) -> Response:
    video = owned_video(ctx, req, require_path_uuid("video_id", req.params["video_id"]))
    states = timeline.upload_states(video, ctx.now())
    return json_response(200, {
        "video_id": video.video_id,
        "thumbnail_generation_status": states["thumbnail"].as_dict(),
        "transcoding_status": states["transcoding"].as_dict(),
        "hls_generation_status": states["hls"].as_dict(),
        "error_message": timeline.upload_error(video, ctx.now()),
    })


ROUTES = [
    Route("POST", PREFIX + "/multipart/initiate", initiate),
    Route("POST", PREFIX + "/multipart/part-url", part_url),
    Route("POST", PREFIX + "/multipart/list-parts", list_parts),
    Route("POST", PREFIX + "/multipart/complete", complete),
    Route("POST", PREFIX + "/multipart/abort", abort),
    Route("POST", PREFIX + "/preprocess", preprocess),
    Route("POST", PREFIX + "/direct", direct),
    Route("POST", PREFIX + "/youtube", youtube),
    Route("GET", PREFIX + r"/status/(?P<video_id>[^/]+)", status),
]
