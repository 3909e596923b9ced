"""Chat-service endpoints: search, visualize, embeddings (video + text) and chat/ask.

Credits follow the doc: search 1 (charged once every check passed, so nothing to refund);
visualize free; video embeddings 1, refunded on 404 but not on 409; text embeddings 1;
chat 1, charged after the 403 ownership check and refunded on a streaming error event.
Only videos whose search-process is ``done`` have segments; others are skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from syncd.emulator.embeddings import Segment, projection, to_json
from syncd.emulator.errors import detail, field_error
from syncd.emulator.mikshi import timeline
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.store import VideoRecord
from syncd.emulator.mikshi.views import hls_url, object_url, owned_video, thumbnail_key
from syncd.emulator.routing import Route
from syncd.emulator.validation import Fields, parse_uuid
from syncd.emulator.wire import Request, Response, json_response

PREFIX = "/api/chat/v1/developer"
DEFAULT_TOP_K = 5


def _searchable(ctx: Context, video: VideoRecord) -> bool:
    run = ctx.store.get_run(video.video_id, "search-process")
    return timeline.run_state(run, ctx.now()).status == "done"


def _segments(ctx: Context, video: VideoRecord) -> list[Segment]:
    return ctx.embedder.segments(video.video_id, video.name, video.duration_seconds,
                                 video.segment_seconds)


def _hls_or_none(ctx: Context, req: Request, video: VideoRecord) -> str | None:
    done = timeline.upload_task(video, "hls", ctx.now()).status == "completed"
    return hls_url(req, video.video_id) if done else None


def _resolve(ctx: Context, req: Request, f: Fields, none_found: str) -> list[VideoRecord]:
    """Videos named directly or through a collection; every one must be the caller's."""
    raw_ids = f.raw("video_ids")
    if raw_ids is None:
        raw_ids = []
    if not isinstance(raw_ids, list) or not all(isinstance(v, str) for v in raw_ids):
        f.error("video_ids", "Input should be a valid list of strings", "list_type")
        raw_ids = []
    collection_id = f.uuid("collection_id")
    if not raw_ids and collection_id is None and not f.errors:
        f.errors.append(field_error(["body"], "Value error, At least one of video_ids or "
                                    "collection_id must be provided", "value_error"))
    f.done()
    ids: list[str] = []
    for raw in raw_ids:
        parsed = parse_uuid(raw)
        if parsed is None:
            raise detail(400, f"Malformed video_id: {raw}")
        ids.append(parsed)
    if collection_id is not None:
        coll = ctx.store.get_collection(collection_id)
        if coll is None:
            raise detail(404, "Collection not found")
        if coll.user_id != req.user_id:
            raise detail(403, "Not authorized for this collection")
        ids.extend(ctx.store.collection_video_ids(collection_id))
    ids = list(dict.fromkeys(ids))
    found = ctx.store.get_videos(ids)
    not_owned = [i for i in ids if i not in found or found[i].user_id != req.user_id]
    if not_owned:
        raise detail(403, f"Video(s) not owned by user: {', '.join(not_owned)}")
    if not ids:
        raise detail(404, none_found)
    return [found[i] for i in ids]


def search(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    query = f.string("query", required=True, min_len=1)
    top_k = f.integer("top_k", default=DEFAULT_TOP_K, ge=1, le=100)
    videos = _resolve(ctx, req, f, "No videos resolved")
    assert req.user_id is not None and query is not None
    ctx.charge(req.user_id)
    pool: list[tuple[VideoRecord, Segment]] = [
        (v, s) for v in videos if _searchable(ctx, v) for s in _segments(ctx, v)]
    results: list[dict[str, Any]] = []
    if pool:
        sims = np.stack([s.vector for _, s in pool]) @ ctx.embedder.text(query)
        order = sorted(range(len(pool)), key=lambda i: (-sims[i], i))[:top_k]
        for rank, i in enumerate(order, start=1):
            video, seg = pool[i]
            results.append({
                "rank": rank,
                "start": seg.start_hms,
                "end": seg.end_hms,
                "video_id": video.video_id,
                "thumbnail_url": object_url(ctx, req, thumbnail_key(video.video_id)),
                "hls_playlist_url": _hls_or_none(ctx, req, video),
                "video_url": object_url(ctx, req, video.object_name),
            })
    return json_response(200, {"results": results})


def visualize(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    videos = _resolve(ctx, req, f, "No videos to visualize.")
    pool = [(v, s) for v in videos if _searchable(ctx, v) for s in _segments(ctx, v)]
    if len(pool) < 2:
        raise detail(400, "Need at least 2 segments across the selected videos for projection.")
    xy = projection(np.stack([s.vector for _, s in pool]))
    out_videos: dict[str, Any] = {}
    for v in videos:
        hue = int.from_bytes(hashlib.sha256(v.video_id.encode()).digest()[:2], "big") % 360
        out_videos[v.video_id] = {
            "video_id": v.video_id,
            "color": f"hsl({hue}, 70%, 55%)",
            "hls_playlist_url": _hls_or_none(ctx, req, v),
            "video_url": object_url(ctx, req, v.object_name),
        }
    points = [{
        "segment_id": seg.segment_id,
        "video_id": video.video_id,
        "x": round(float(xy[i, 0]), 4),
        "y": round(float(xy[i, 1]), 4),
        "start": seg.start_hms,
        "end": seg.end_hms,
        "thumbnail_url": object_url(ctx, req, thumbnail_key(video.video_id)),
    } for i, (video, seg) in enumerate(pool)]
    return json_response(200, {"videos": out_videos, "points": points})


def video_embeddings(ctx: Context, req: Request) -> Response:
    video_id = parse_uuid(req.params["video_id"])
    if video_id is None:
        raise detail(400, "video_id is not a valid UUID")
    assert req.user_id is not None
    ctx.charge(req.user_id)
    video = ctx.store.get_video(video_id)
    if video is None or video.user_id != req.user_id:  # 403 is reported as 404
        ctx.refund(req.user_id)
        raise detail(404, "Video not found")
    state = timeline.run_state(ctx.store.get_run(video_id, "search-process"), ctx.now())
    if state.status != "done":
        raise detail(409, f"Video search processing is not complete "
                     f"(search_process_status: {state.status}).")
    data = [{"embedding": to_json(s.vector), "embedding_option": "visual",
             "embedding_scope": "clip", "start": s.start_hms, "end": s.end_hms}
            for s in _segments(ctx, video)]
    return json_response(200, {"id": video_id, "status": "ready", "data": data})


def text_embedding(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    text = f.string("text", required=True, min_len=1, max_len=4096)
    f.done()
    assert req.user_id is not None and text is not None
    ctx.charge(req.user_id)
    return json_response(200, {"status": "ready",
                               "data": [{"embedding": to_json(ctx.embedder.text(text))}]})


def _history(f: Fields) -> list[dict[str, str]]:
    raw = f.raw("history")
    if raw is None:
        return []
    if not isinstance(raw, list):
        f.error("history", "Input should be a valid list", "list_type")
        return []
    out: list[dict[str, str]] = []
    for i, item in enumerate(raw):
        ok = (isinstance(item, dict) and item.get("role") in ("user", "assistant")
              and isinstance(item.get("content"), str))
        if not ok:
            f.errors.append(field_error(["body", "history", i], "Input should be a message "
                                        "with role 'user' or 'assistant' and string content",
                                        "model_type", item))
            continue
        out.append({"role": item["role"], "content": item["content"]})
    return out


def answer_for(ctx: Context, video: VideoRecord, question: str, top_k: int,
               history_len: int) -> str:
    """A deterministic answer from the video's name and its best-matching segments."""
    if _searchable(ctx, video):
        segments = _segments(ctx, video)
        sims = np.stack([s.vector for s in segments]) @ ctx.embedder.text(question)
        best = sorted(range(len(segments)), key=lambda i: (-sims[i], i))[:top_k]
        moments = "; ".join(f"{segments[i].start_hms}-{segments[i].end_hms} shows "
                            f"{segments[i].caption}" for i in best)
        text = (f'In "{video.name}" ({video.duration_seconds:.0f} s), the moments most '
                f'relevant to "{question}" are: {moments}.')
    else:
        text = (f'"{video.name}" has not been indexed for search yet, so I cannot point to '
                f'specific moments for "{question}".')
    if history_len:
        text += f" (Answer takes into account {history_len} earlier messages.)"
    return text


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(text: str, words_per_chunk: int = 3) -> list[str]:
    tokens = re.findall(r"\S+\s*", text) or [text]
    return ["".join(tokens[i:i + words_per_chunk]) for i in range(0, len(tokens),
                                                                   words_per_chunk)]


def _stream(ctx: Context, user_id: str, answer: str, fail: bool) -> Iterator[bytes]:
    chunks = _chunks(answer)
    cut = max(1, len(chunks) // 2) if fail else len(chunks)
    for chunk in chunks[:cut]:
        yield _sse("token", {"content": chunk})
        if ctx.stopping.wait(0.005):  # a little pacing so clients see a real stream
            return
    if fail:
        ctx.refund(user_id)
        yield _sse("error", {"detail": "Chat pipeline failed mid-stream."})
    else:
        yield _sse("done", {"answer": answer})


def ask(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    question = f.string("question", required=True, min_len=1)
    video_id = f.uuid("video_id", required=True)
    top_k = f.integer("top_k", default=DEFAULT_TOP_K, ge=1, le=100)
    history = _history(f)
    stream = f.boolean("stream", default=False)
    f.done()
    assert req.user_id is not None and question is not None and video_id is not None
    video = owned_video(ctx, req, video_id)
    ctx.charge(req.user_id)
    answer = answer_for(ctx, video, question, top_k, len(history))
    if not stream:
        return json_response(200, {"answer": answer})
    fail = ctx.faults.stream_fails()
    return Response(200, b"", {"Content-Type": "text/event-stream; charset=utf-8",
                               "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                    stream=_stream(ctx, req.user_id, answer, fail), length=None)


ROUTES = [
    Route("POST", PREFIX + "/search", search),
    Route("POST", PREFIX + "/visualize", visualize),
    Route("GET", PREFIX + r"/embeddings/video/(?P<video_id>[^/]+)", video_embeddings),
    Route("POST", PREFIX + "/embeddings/text", text_embedding),
    Route("POST", PREFIX + "/chat/ask", ask),
]
