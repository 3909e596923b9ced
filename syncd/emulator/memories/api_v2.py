"""v2 host: download by bucket/blob, live stream start/stop. Integer codes = HTTP status."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from syncd.emulator.errors import ApiError
from syncd.emulator.memories import envelope
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.memories.params import Params
from syncd.emulator.memories.routes import api_route
from syncd.emulator.memories.store import Stream
from syncd.emulator.wire import MAX_JSON_BYTES, FileStream, Request, Response

V2 = envelope.V2
_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://")


def download(ctx: MemoriesContext, req: Request) -> Response:
    p = Params(req.query, text=True)
    bucket = p.string("bucket")
    blob = p.string("blob")
    if not bucket or not bucket.strip():
        raise envelope.v2_error(400, "Bucket cannot be null or empty")
    if not blob or not blob.strip():
        raise envelope.v2_error(400, "Blob cannot be null or empty")
    video = ctx.store.video_by_blob(bucket, blob)
    opened = None
    if video is not None and video.account_id == req.user_id:
        try:
            opened = ctx.store.file_path(video).open("rb")
        except FileNotFoundError:
            opened = None
    if video is None or opened is None:
        # The v2 code list has no 404: "Resource does not exist" is answered as 400.
        raise envelope.v2_error(400, "Resource does not exist")
    # Billing happens before the stream is written (memories-download.txt).
    assert req.user_id is not None
    if not ctx.store.charge(req.user_id):
        opened.close()
        raise envelope.v2_error(402, "Insufficient balance to download the resource. "
                                "Please recharge and try again.")
    stream: Any = FileStream(opened, 0, video.size)
    if ctx.faults.stream_fails():
        stream = _cut(stream, video.size // 2)
    return Response(200, b"", {"Content-Type": video.content_type,
                               "Content-Disposition": content_disposition(video.filename)},
                    stream=stream, length=video.size)


def _cut(stream: FileStream, after: int) -> Iterator[bytes]:
    """Send ``after`` bytes, then fail as a dropped connection does."""
    sent = 0
    try:
        for chunk in stream:
            if sent + len(chunk) > after:
                yield chunk[:after - sent]
                raise OSError("simulated connection drop mid-download")
            sent += len(chunk)
            yield chunk
    finally:
        stream.close()


def _json(req: Request) -> dict[str, Any]:
    ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise envelope.v2_error(415, "Content-Type must be application/json")
    try:
        data = json.loads(req.body.read_all(MAX_JSON_BYTES))
    except (ValueError, UnicodeDecodeError):
        raise envelope.v2_error(400, "JSON parse error") from None
    if not isinstance(data, dict):
        raise envelope.v2_error(400, "JSON parse error: the body must be a JSON object")
    return data


def _v2_bad(msg: str) -> ApiError:
    return envelope.v2_error(400, msg)


def stream_start(ctx: MemoriesContext, req: Request) -> Response:
    assert req.user_id is not None
    account = ctx.store.account(req.user_id)
    if account is not None and not account.streams_enabled:
        raise envelope.v2_error(403, "Stream processing is not enabled for this account. "
                                "Contact contact@memories.ai to enable it.")
    body = _json(req)
    url = body.get("url")
    if not isinstance(url, str) or not url.strip().lower().startswith(_STREAM_SCHEMES):
        raise _v2_bad("url must be an RTSP, RTMP or HLS URL")
    options: dict[str, Any] = {}
    for name in ("enable_content_moderation", "enable_logo_detection"):
        value = body.get(name, False)
        if not isinstance(value, bool):
            raise _v2_bad(f"{name} must be true or false")
        options[name] = value
    fps = body.get("fps", 1)
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise _v2_bad("fps must be a positive integer")
    max_logos = body.get("max_logos", 5)
    if isinstance(max_logos, bool) or not isinstance(max_logos, int) or not 1 <= max_logos <= 50:
        raise _v2_bad("max_logos must be an integer from 1 to 50")
    options.update(fps=fps, max_logos=max_logos)
    stream = Stream(str(uuid.uuid4()), req.user_id, url, json.dumps(options), ctx.now(), None)
    ctx.store.insert_stream(stream)
    return envelope.v2_ok({"task_id": stream.task_id, "message": "Stream started successfully"})


def stream_stop(ctx: MemoriesContext, req: Request) -> Response:
    task_id = _json(req).get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise _v2_bad("Invalid task_id or task not found")
    stream = ctx.store.stream(task_id)
    if stream is None or stream.account_id != req.user_id:
        raise _v2_bad("Invalid task_id or task not found")
    ctx.store.stop_stream(task_id, ctx.now())  # "safe to call even if already ended"
    return envelope.v2_ok({"task_id": task_id, "message": "Stream stopped successfully"})


ROUTES = [
    api_route("GET", V2 + "/download", "download", download),
    api_route("POST", V2 + "/stream/start", "stream", stream_start),
    api_route("POST", V2 + "/stream/stop", "stream", stream_stop),
]


def content_disposition(filename: str) -> str:
    """``attachment`` with the file's name: an ASCII fallback, and the name itself as
    RFC 6266/5987 ``filename*`` when it is not plain ASCII (a header is Latin-1 only)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
