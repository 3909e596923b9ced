"""The object-store side: pre-signed part PUTs and object GETs under ``/s3/<bucket>/<key>``.

Checks happen in this order on a part PUT (``partNumber`` before the signature so an
out-of-range number is observable as S3's InvalidArgument)::

    Transfer-Encoding: chunked  -> 501 NotImplemented
    no Content-Length           -> 411 MissingContentLength
    partNumber not 1..10000     -> 400 InvalidArgument
    bad / expired signature     -> 403 AccessDenied
    unknown bucket              -> 404 NoSuchBucket
    upload completed / aborted  -> 404 NoSuchUpload
    Content-Length > 5 GiB      -> 400 EntityTooLarge
    Content-MD5 mismatch        -> 400 BadDigest

The body is streamed to a temporary file (never held in memory) and renamed into place;
the answer is ``200`` with ``ETag: "<md5hex>"``, quoted exactly like S3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from email.utils import formatdate

from syncd.emulator.errors import S3Error
from syncd.emulator.media import thumbnail_png
from syncd.emulator.mikshi import timeline
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.store import PartRecord
from syncd.emulator.routing import S3, Route
from syncd.emulator.wire import FileStream, Request, Response

MAX_PART_BYTES = 5 * 1024 ** 3
CHUNK = 1024 * 1024
_THUMB = re.compile(r"thumbnails/(?P<vid>[0-9a-f-]{36})/thumbnail\.png")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

NO_SUCH_UPLOAD = ("The specified upload does not exist. The upload ID may be invalid, or the "
                  "upload may have been aborted or completed.")


def _request_id() -> dict[str, str]:
    return {"x-amz-request-id": uuid.uuid4().hex[:16].upper()}


def _check_bucket(ctx: Context, req: Request) -> str:
    if req.params["bucket"] != ctx.config.bucket:
        raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist")
    return req.params["key"]


def put_part(ctx: Context, req: Request) -> Response:
    if req.body.chunked:
        raise S3Error(501, "NotImplemented", "A header you provided implies functionality that "
                      "is not implemented", resource="Transfer-Encoding")
    if req.body.length is None:
        raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP "
                      "header.")
    q = {k: v[-1] for k, v in req.query.items() if v}
    upload_id, part_text = q.get("uploadId"), q.get("partNumber")
    if upload_id is not None and part_text is not None:
        try:
            part_number = int(part_text)
        except ValueError:
            part_number = 0
        if not 1 <= part_number <= 10000:
            raise S3Error(400, "InvalidArgument", "Part number must be an integer between 1 "
                          "and 10000, inclusive")
    ctx.signer.verify("PUT", req.path, req.query)
    key = _check_bucket(ctx, req)
    if upload_id is None or part_text is None:
        # We only ever sign part uploads; a plain PutObject is not offered by this service.
        raise S3Error(501, "NotImplemented", "Only multipart part uploads are supported")
    upload = ctx.store.get_upload(upload_id)
    if upload is None or upload.object_name != key:
        raise S3Error(404, "NoSuchUpload", NO_SUCH_UPLOAD)
    if req.body.length > MAX_PART_BYTES:
        raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed "
                      "size")
    want_md5 = _content_md5(req.header("Content-MD5"))
    tmp = ctx.store.new_tmp_path("part")
    md5 = hashlib.md5()
    size = 0
    try:
        with tmp.open("wb") as fh:
            while chunk := req.body.read(CHUNK):
                md5.update(chunk)
                fh.write(chunk)
                size += len(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if want_md5 is not None and want_md5 != md5.digest():
        tmp.unlink(missing_ok=True)
        raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we "
                      "received.")
    etag = f'"{md5.hexdigest()}"'
    rec = PartRecord(upload_id, part_number, size, etag, ctx.now())
    if not ctx.store.put_part(rec, tmp):
        raise S3Error(404, "NoSuchUpload", NO_SUCH_UPLOAD)
    return Response(200, b"", {"ETag": etag, **_request_id()})


def _content_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    return digest


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range; None means the whole object."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None:
        return None  # S3 ignores ranges it does not understand (and multi-range requests)
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise S3Error(416, "InvalidRange", "The requested range is not satisfiable",
                          {"Content-Range": f"bytes */{size}"})
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise S3Error(416, "InvalidRange", "The requested range is not satisfiable",
                      {"Content-Range": f"bytes */{size}"})
    return start, end


def get_object(ctx: Context, req: Request) -> Response:
    ctx.signer.verify(req.method, req.path, req.query)
    key = _check_bucket(ctx, req)
    thumb = _THUMB.fullmatch(key)
    if thumb is not None:
        video = ctx.store.get_video(thumb.group("vid"))
        if video is None or timeline.upload_task(video, "thumbnail", ctx.now()).status \
                != "completed":
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        png = thumbnail_png(video.video_id)
        etag = f'"{hashlib.md5(png).hexdigest()}"'
        return Response(200, png, {"Content-Type": "image/png", "ETag": etag,
                                   **_request_id()})
    opened = ctx.store.open_object(key)
    if opened is None:
        raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
    obj, fh = opened
    headers = {
        "Content-Type": "video/mp4" if key.lower().endswith(".mp4") else
        "application/octet-stream",
        "ETag": obj.etag,
        "Accept-Ranges": "bytes",
        "Last-Modified": formatdate(obj.created_at, usegmt=True),
        **_request_id(),
    }
    try:
        span = _byte_range(req.header("Range"), obj.size)
    except S3Error:
        fh.close()
        raise
    if span is None:
        start, length, status = 0, obj.size, 200
    else:
        start, length, status = span[0], span[1] - span[0] + 1, 206
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{obj.size}"
    return Response(status, b"", headers, stream=FileStream(fh, start, length), length=length)


ROUTES = [
    Route("PUT", r"/s3/(?P<bucket>[^/]+)/(?P<key>.+)", put_part, S3),
    Route("GET", r"/s3/(?P<bucket>[^/]+)/(?P<key>.+)", get_object, S3),
    Route("HEAD", r"/s3/(?P<bucket>[^/]+)/(?P<key>.+)", get_object, S3),
]
