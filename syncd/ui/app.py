"""The Starlette app: every page is a URL (and its JSON twin), every handler reads only.

Handlers are plain functions (Starlette runs them in its thread pool): the catalog is
one read-only SQLite connection, the remote one lazily opened client. Nothing here
blocks the sync: a read-only connection takes no write lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from syncd.store.catalog import Catalog
from syncd.config import Config
from syncd.errors import SyncdError, TransportError
from syncd.mirror.index import SEARCH_DIR, SearchIndex
from syncd.mirror.search import Hit, embed_text, query_source, query_vector, search_local, search_offline
from syncd.remote.base import ChatMessage, MediaSource, Remote, need
from syncd.ui import browse as grid
from syncd.ui.auth import Gate, host_name
from syncd.ui.files import SHA256, LocalFiles, ThumbnailCache, frame_jpeg, image_type
from syncd.units import format_size, rough_duration

log = logging.getLogger("syncd.ui")

HERE = Path(__file__).parent
TOP_K = 24
REMOTE_PAUSE = 30.0  # seconds without remote thumbnails after the remote could not be reached
MAX_QUESTION = 2000
MAX_HISTORY = 40  # messages resent with a question (the remote is stateless)
JOURNAL_SCAN, JOURNAL_SHOWN = 200, 25
TRASH_SHOWN = 100
PENDING_SHOWN = 500  # files not done listed on the status page (all are counted)
MAX_FORM = 65536  # bytes of a posted form read
MAX_ASK_BODY = 1 << 20  # a question with its history


class NotFound(Exception):
    """Answered 404, naming nothing about the file system."""


class UiState:
    """What every request shares: config, the read-only catalog and index, the remote."""

    def __init__(self, config: Config, open_remote: Callable[[], Remote] | None) -> None:
        self.config = config
        self.catalog = Catalog.open_readonly(config.state_dir)
        self.index = SearchIndex(self.catalog, config.state_dir / SEARCH_DIR)
        self.files = LocalFiles.from_config(config)
        self.thumbs = ThumbnailCache(config.state_dir)
        self._open_remote = open_remote
        self._remote: Remote | None = None
        self._remote_lock = threading.Lock()
        self._remote_down_until = 0.0

    @property
    def can_call_remote(self) -> bool:
        return self._open_remote is not None

    def remote(self) -> Remote:
        if self._open_remote is None:
            raise SyncdError("no API key configured, so the remote cannot be asked")
        with self._remote_lock:
            if self._remote is None:
                self._remote = self._open_remote()
            return self._remote

    def remote_media(self) -> MediaSource | None:
        if self._open_remote is None or time.monotonic() < self._remote_down_until:
            return None
        remote = self.remote()
        return remote.features().media

    def remote_unreachable(self) -> None:
        self._remote_down_until = time.monotonic() + REMOTE_PAUSE

    def close(self) -> None:
        with self._remote_lock:
            if self._remote is not None:
                self._remote.close()
                self._remote = None
        self.catalog.close()


# ------------------------------------------------------------------ rendering
def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters.update(
        duration=grid.format_duration, when=grid.format_time, stamp=lambda s: grid.format_duration(s or 0.0),
        urlpath=lambda s: quote(str(s)), size=format_size,
    )
    return env


def _wants_json(request: Request) -> bool:
    return request.query_params.get("format") == "json" or request.url.path.endswith(".json") or (
        "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")
    )


def _page(request: Request, template: str, context: dict[str, Any], data: Any, status: int = 200) -> Response:
    if _wants_json(request):
        return JSONResponse(data, status_code=status)
    env: Environment = request.app.state.templates
    html = env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status)


def _state(request: Request) -> UiState:
    ui: UiState = request.app.state.ui
    return ui


def _query(request: Request, **changes: Any) -> str:
    """The current query string with ``changes`` applied (None removes a key)."""
    params = dict(request.query_params)
    params.update({k: v for k, v in changes.items() if v is not None})
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
    return "?" + urlencode(params) if params else request.url.path


def _watch_url(n: int, rel_path: str, t: float | None = None) -> str:
    url = f"/watch/{n}/{quote(rel_path)}"
    return f"{url}?t={t:g}" if t else url


# ------------------------------------------------------------------ pages
def home(request: Request) -> Response:
    if request.query_params.get("q", "").strip():
        return search(request)
    ui = _state(request)
    q = request.query_params
    folder = _int(q.get("folder"))
    if folder is not None and not 0 <= folder < len(ui.config.folders):
        folder = None
    state = q.get("state") if q.get("state") in grid.STATES else None
    collection = q.get("collection") or None
    page = grid.browse(ui.config, ui.catalog, folder=folder, collection=collection, state=state,
                       cursor=q.get("after"))
    next_url = _query(request, after=page.next_cursor) if page.next_cursor else None
    cards = [{**c.as_json(), "name": c.name, "watch": _watch_url(c.folder_index, c.rel_path),
              "thumb": f"/thumb/{c.sha256}" if c.sha256 else None} for c in page.cards]
    data = {"videos": cards, "next": next_url}
    context = {
        "cards": cards, "next_url": next_url, "first_url": _query(request, after=None) if q.get("after") else None,
        "folders": [(n, f.path) for n, f in enumerate(ui.config.folders)], "folder": folder,
        "collections": [c.name for c in ui.catalog.collections()], "collection": collection,
        "states": grid.STATES, "state": state, "q": "",
        "filter_url": lambda **kw: _query(request, after=None, **kw),
    }
    return _page(request, "grid.html", context, data)


def search(request: Request) -> Response:
    ui = _state(request)
    text = request.query_params.get("q", "").strip()
    hits, mode, note = _search(ui, text) if text else ([], "", "")
    cards = []
    for hit in hits:
        where = ui.files.locate(hit.path) if hit.path else None
        content = ui.catalog.content_for_video(hit.video_id)
        cards.append({
            **hit.as_json(), "name": Path(hit.path).name if hit.path else hit.video_id,
            "watch": _watch_url(*where, hit.start) if where else None,
            "thumb": f"/thumb/{content.sha256}" if content else None,
        })
    data = {"query": text, "mode": mode, "note": note, "hits": cards}
    return _page(request, "search.html", {"q": text, "hits": cards, "mode": mode, "note": note}, data)


def _search(ui: UiState, text: str) -> tuple[list[Hit], str, str]:
    """As `syncd search`: by meaning over the stored vectors (the query's embedding cached in
    the catalog), by full text where there are none or the query cannot be embedded."""
    dim = ui.index.dim()
    if dim:
        try:
            vector = query_vector(ui.catalog, query_source(ui.config.remote), text,
                                  lambda t: embed_text(ui.remote(), t), dim)
            return search_local(ui.catalog, ui.index, vector, TOP_K), "meaning", ""
        except SyncdError as exc:
            note = f"The query could not be embedded ({exc}), so the ranking is by full text."
            return search_offline(ui.catalog, ui.index, text, TOP_K), "text", note
    return search_offline(ui.catalog, ui.index, text, TOP_K), "text", ""


def watch(request: Request) -> Response:
    ui = _state(request)
    n, rel = request.path_params["n"], request.path_params["rel"]
    try:
        context = _watch_context(ui, n, rel)
    except NotFound:
        return _not_found(request)
    t = max(0.0, _float(request.query_params.get("t")) or 0.0)
    context["t"] = t
    data = {k: v for k, v in context.items() if k not in ("segments",)}
    data["segments"] = [dataclasses.asdict(s) for s in context["segments"]]
    return _page(request, "watch.html", context, data)


def _watch_context(ui: UiState, n: int, rel: str) -> dict[str, Any]:
    key = ui.files.key(n, rel)
    if key is None:
        raise NotFound
    folder, rel = key
    record = ui.catalog.file(folder, rel)
    if record is None:
        raise NotFound
    content = ui.catalog.content(record.sha256) if record.sha256 else None
    video_id = content.video_id if content and content.state == "uploaded" else None
    local = ui.files.resolve(folder, rel) if record.present else None
    details = json.loads(ui.catalog.mirror_details_of([video_id]).get(video_id, "{}")) if video_id else {}
    source, kind = None, None
    if local is not None:
        source, kind = f"/media/{n}/{quote(rel)}", "local"
    elif video_id and details.get("hls_playlist_url") and ui.can_call_remote:
        source, kind = f"/hls/{video_id}/master.m3u8", "remote HLS"
    return {
        "n": n, "rel_path": rel, "name": rel.rsplit("/", 1)[-1], "path": str(folder / rel),
        "video_id": video_id, "source": source, "source_kind": kind, "hls": kind == "remote HLS",
        "duration": details.get("duration_seconds"), "captured_at": record.mtime_ns / 1e9,
        "thumb": f"/thumb/{record.sha256}" if record.sha256 else None,
        "segments": ui.catalog.mirror_segments(video_id) if video_id else [],
        "can_ask": bool(video_id) and ui.can_call_remote,
    }


def status(request: Request) -> Response:
    from syncd.sync.folder_health import folder_health
    from syncd.sync.report import status_overview
    from syncd.sync.trash import list_trash

    ui = _state(request)
    config = ui.config
    # Counts from SQL, rows only for the first PENDING_SHOWN files not done: the page
    # refreshes every 10 s, and a library of a million files must not rebuild each one.
    overview = status_overview(config, ui.catalog, pending_limit=PENDING_SHOWN)
    counts, pending = overview.counts, overview.pending
    # As `syncd status`: the folder guard live, the rest as the engine's last scan stored it.
    healths = folder_health(config.folders, ui.catalog.scan_summaries(), overview.tracked, time.time())
    folders = [{"index": n, "path": h.path, "files": h.tracked, "problem": h.problem or "",
                "scanned_at": h.scanned_at,
                "scanned_ago": rough_duration(h.scanned_ago) if h.scanned_ago is not None else None,
                "empty": h.empty, "settling": h.settling, "unreadable": list(h.unreadable), "notes": h.notes}
               for n, h in enumerate(healths)]
    trash = list_trash([f.path for f in config.folders])
    # The outcomes of recent actions, newest first ("started" rows are the before-records).
    finished = [e for e in reversed(ui.catalog.journal(JOURNAL_SCAN)) if e.outcome != "started"]
    journal = [{**dataclasses.asdict(e), "bad": e.outcome != "ok"} for e in finished[:JOURNAL_SHOWN]]
    metrics = None
    if config.metrics.listen:
        host, port = config.metrics.listen
        if host in ("0.0.0.0", "::"):
            host = host_name(request.headers.get("host", "127.0.0.1"))
        metrics = f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"
    data = {
        "counts": dict(sorted((k, n) for k, n in counts.items() if n)), "total": overview.total,
        "blocked": ui.catalog.get_meta("blocked") or "",
        "pending": [s.as_json() for s in pending], "folders": folders,
        "trash": len(trash), "journal": journal, "metrics": metrics,
        "trashed": [{"path": str(e.path), "size": e.size, "trashed_at": e.trashed_at}
                    for e in sorted(trash, key=lambda e: -e.trashed_at)[:TRASH_SHOWN]],
    }
    return _page(request, "status.html", {**data, "pending_statuses": pending}, data)


# ------------------------------------------------------------------ media
def media(request: Request) -> Response:
    """A tracked local file, with HTTP Range (FileResponse answers 206 for a Range)."""
    ui = _state(request)
    key = ui.files.key(request.path_params["n"], request.path_params["rel"])
    record = ui.catalog.file(*key) if key else None
    path = ui.files.resolve(*key) if key and record is not None and record.present else None
    if path is None:
        return _not_found(request)
    return FileResponse(path, media_type=_video_type(path))


def _video_type(path: Path) -> str:
    return {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
            ".mkv": "video/x-matroska", ".ts": "video/mp2t"}.get(path.suffix.lower(), "application/octet-stream")


def thumbnail(request: Request) -> Response:
    ui = _state(request)
    sha = request.path_params["sha"]
    if not SHA256.match(sha):
        return _not_found(request)
    data = ui.thumbs.get(sha)
    if data is None:
        data = _make_thumbnail(ui, sha)
        if data is not None:
            ui.thumbs.put(sha, data)
    if data is None:
        return FileResponse(HERE / "static" / "no-thumbnail.svg", media_type="image/svg+xml")
    return Response(data, media_type=image_type(data), headers={"Cache-Control": "private, max-age=86400"})


def _make_thumbnail(ui: UiState, sha: str) -> bytes | None:
    """The remote's thumbnail where it has one, else a frame of a local copy."""
    content = ui.catalog.content(sha)
    if content is None:
        return None
    if content.video_id and content.state == "uploaded":
        facts = json.loads(ui.catalog.mirror_details_of([content.video_id]).get(content.video_id, "{}"))
        if ui.can_call_remote:
            try:
                source = ui.remote_media()
                statuses = facts.get("statuses") or {}
                data = source.thumbnail(content.video_id) if source and source.has_thumbnail(statuses) else None
                if data:
                    return data
            except TransportError as exc:
                log.info("remote thumbnail unavailable (%s); using local frames for a while", exc)
                ui.remote_unreachable()
            except SyncdError as exc:
                log.info("remote thumbnail of %s unavailable: %s", content.video_id, exc)
    for record in ui.catalog.files_of(sha):
        path = ui.files.resolve(record.folder, record.rel_path) if record.present and \
            record.folder in ui.files.folders else None
        if path is None:
            continue
        try:
            return frame_jpeg(path)
        except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds; a placeholder is shown
            log.info("no thumbnail from %s: %s", path, exc)
    return None


def hls(request: Request) -> Response:
    """The remote's HLS, relayed: the browser asks us, we ask the remote with the key."""
    ui = _state(request)
    video_id, name = request.path_params["video_id"], request.path_params["name"]
    if ui.catalog.content_for_video(video_id) is None or "/" in name or name.startswith("."):
        return _not_found(request)
    try:
        source = ui.remote_media()
        if source is None:
            return _not_found(request)
        body, content_type = source.hls_part(video_id, name)
    except SyncdError as exc:
        log.info("HLS %s/%s: %s", video_id, name, exc)
        return _not_found(request)
    return Response(body, media_type=content_type)


# ------------------------------------------------------------------ ask
async def ask(request: Request) -> Response:
    """POST {question, history}: the answer as Server-Sent Events (``token`` events, then
    ``done``, or ``error``). The conversation lives in the page; the remote is stateless."""
    ui = _state(request)
    if not _same_origin(request):
        return PlainTextResponse("cross-site request refused\n", 403)
    video_id = request.path_params["video_id"]
    raw = await request.body()
    if len(raw) > MAX_ASK_BODY:
        return JSONResponse({"error": "the conversation is too long"}, status_code=413)
    try:
        body = json.loads(raw)
        question, history = _question(body.get("question")), _history(body.get("history"))
    except (ValueError, AttributeError) as exc:
        return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
    if await run_in_threadpool(ui.catalog.content_for_video, video_id) is None:
        return _not_found(request)

    def events() -> Iterator[str]:
        try:
            remote = ui.remote()
            for token in need(remote, remote.features().chat, "answer questions").ask_stream(video_id, question, history):
                yield f"event: token\ndata: {json.dumps(token)}\n\n"
            yield "event: done\ndata: {}\n\n"
        except SyncdError as exc:
            yield f"event: error\ndata: {json.dumps(str(exc))}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def ask_form(request: Request) -> Response:
    """The ask form posted by a page without script (the watch page's own URL): the
    answer in one piece, on the page."""
    if not _same_origin(request):
        return PlainTextResponse("cross-site request refused\n", 403)
    body = (await request.body())[:MAX_FORM]
    return await run_in_threadpool(_ask_without_script, request, parse_qs(body.decode(errors="replace")))


def _ask_without_script(request: Request, form: dict[str, list[str]]) -> Response:
    ui = _state(request)
    try:
        context = _watch_context(ui, request.path_params["n"], request.path_params["rel"])
    except NotFound:
        return _not_found(request)
    context["t"] = 0.0
    try:
        question = _question((form.get("question") or [""])[0])
        if not context["can_ask"]:
            raise SyncdError("this video cannot be asked about (not on the remote yet, or no API key)")
        remote = ui.remote()
        answer = need(remote, remote.features().chat, "answer questions").ask(context["video_id"], question, [])
        context["conversation"] = [("user", question), ("assistant", answer)]
    except (ValueError, SyncdError) as exc:
        context["ask_error"] = str(exc)
    return _page(request, "watch.html", context, {"answer": context.get("conversation"),
                                                  "error": context.get("ask_error")})


def _question(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("the question is empty")
    if len(value) > MAX_QUESTION:
        raise ValueError(f"the question is longer than {MAX_QUESTION} characters")
    return value.strip()


def _history(value: object) -> list[ChatMessage]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("history must be a list")
    messages = []
    for item in value[-MAX_HISTORY:]:
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant") \
                or not isinstance(item.get("content"), str):
            raise ValueError("history items are {role: user|assistant, content: text}")
        messages.append(ChatMessage(item["role"], item["content"]))
    return messages


def _same_origin(request: Request) -> bool:
    """A browser names the page that sent a POST; only our own pages may ask (asking costs credits)."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site form (those always carry Origin on POST)
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


# ------------------------------------------------------------------ plumbing
def _not_found(request: Request) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": "not found"}, status_code=404)
    env: Environment = request.app.state.templates
    return HTMLResponse(env.get_template("404.html").render(request=request, q=""), status_code=404)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def create_app(config: Config, *, open_remote: Callable[[], Remote] | None = None) -> Starlette:
    """The UI over ``config``'s state directory. ``open_remote``: None when there is no API
    key (browsing, text search, local playback still work)."""
    ui = UiState(config, open_remote)
    routes = [
        Route("/", home, name="home"),
        Route("/index.json", home),
        Route("/search", search, name="search"),
        Route("/search.json", search),
        Route("/status", status, name="status"),
        Route("/status.json", status),
        Route("/watch/{n:int}/{rel:path}", watch, name="watch"),
        Route("/watch/{n:int}/{rel:path}", ask_form, methods=["POST"]),
        Route("/media/{n:int}/{rel:path}", media, name="media"),
        Route("/thumb/{sha}", thumbnail, name="thumb"),
        Route("/hls/{video_id}/{name}", hls, name="hls-part"),
        Route("/ask/{video_id}", ask, methods=["POST"], name="ask"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        ui.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ui = ui
    app.state.templates = _templates()
    app.add_middleware(Gate, password=config.ui.password)
    return app
