"""``Emulator``: start/stop one emulator instance serving in a background thread."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from syncd.emulator import admin, api_ai, api_collections, api_uploads, api_videos, s3
from syncd.emulator.auth import KeyRing, user_id_for_key
from syncd.emulator.config import EmulatorConfig, Faults
from syncd.emulator.context import Clock, Context
from syncd.emulator.embeddings import Embedder
from syncd.emulator.faults import FaultInjector
from syncd.emulator.requestlog import RequestLog
from syncd.emulator.routing import Router
from syncd.emulator.server import (App, HttpServer, MikshiHooks, base_url_for,
                                   serve_in_background, stop_serving)
from syncd.emulator.signing import Signer
from syncd.emulator.store import Store

log = logging.getLogger("syncd.emulator")


def build_router() -> Router:
    return Router([*api_uploads.ROUTES, *api_videos.ROUTES, *api_collections.ROUTES,
                   *api_ai.ROUTES, *s3.ROUTES, *admin.ROUTES])


class Emulator:
    """A local Mikshi developer API + pre-signed object store on one port.

    Faults, the request log and the clock offset live on this object, so they survive a
    ``stop()`` / ``start()`` cycle; everything else is re-read from ``data_dir``.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._faults = FaultInjector(config.faults, config.seed)
        self._requests = RequestLog()
        self._clock = Clock()
        self._embedder = Embedder()
        self._ctx: Context | None = None
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind, then serve in a background thread; returns once the socket is listening."""
        if self._server is not None:
            raise RuntimeError("emulator already running")
        cfg = self.config
        store = Store(cfg.data_dir)
        try:
            server = HttpServer((cfg.host, cfg.port), cfg.keepalive_seconds)
        except BaseException:
            store.close()
            raise
        keys = KeyRing(cfg.api_keys)
        ctx = Context(cfg, store, self._clock, Signer(store.secret, self._clock.now,
                                                      cfg.url_ttl_seconds),
                      self._embedder, self._faults, self._requests, keys)
        stored_offset = store.get_meta("clock_offset")
        if stored_offset is not None:
            self._clock.set_offset(max(self._clock.offset, float(stored_offset)))
        self._clock.on_change = lambda offset: store.set_meta("clock_offset", repr(offset))
        for user_id in keys.user_ids():
            store.ensure_user(user_id, cfg.credits, ctx.now())
        self._server, self._ctx = server, ctx
        server.app = App(ctx, build_router(), self.base_url, MikshiHooks(keys))
        self._thread = serve_in_background(server)
        log.info("emulator listening on %s (data dir %s)", self.base_url, cfg.data_dir)

    def stop(self) -> None:
        """Stop accepting, close every connection, join all threads, close the database."""
        server, thread, ctx = self._server, self._thread, self._ctx
        if server is None:
            return
        assert ctx is not None
        ctx.stopping.set()
        stop_serving(server, thread)
        self._clock.on_change = None
        ctx.store.close()
        self._server = self._thread = self._ctx = None
        log.info("emulator stopped")

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return base_url_for(self.config.host, self.port)

    # -- runtime control (same as the admin API) ----------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults.faults

    def set_faults(self, faults: Faults) -> None:
        self._faults.set(faults)

    def set_embedding_dim(self, dim: int) -> None:
        """Switch the server-side embedder to one with ``dim`` dimensions."""
        self._embedder.set_dim(dim)

    def advance_clock(self, seconds: float) -> float:
        return self._clock.advance(seconds)

    @staticmethod
    def user_id_for_key(key: str) -> str:
        return user_id_for_key(key)

    def _need_ctx(self) -> Context:
        if self._ctx is None:
            raise RuntimeError("emulator not running")
        return self._ctx

    def admin_videos(self) -> list[dict[str, Any]]:
        return admin.videos(self._need_ctx())

    def admin_video(self, video_id: str) -> dict[str, Any] | None:
        return admin.video(self._need_ctx(), video_id)

    def admin_video_bytes(self, video_id: str) -> bytes | None:
        ctx = self._need_ctx()
        video = ctx.store.get_video(video_id)
        obj = ctx.store.get_object(video.object_name) if video else None
        return None if obj is None else ctx.store.blob_path(obj).read_bytes()

    def admin_delete_video(self, video_id: str) -> bool:
        return admin.delete_video(self._need_ctx(), video_id)

    def admin_uploads(self) -> list[dict[str, Any]]:
        return admin.uploads(self._need_ctx())

    def admin_collections(self) -> list[dict[str, Any]]:
        return admin.collections(self._need_ctx())

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._requests.since(since)

    def clear_requests(self) -> int:
        return self._requests.clear()

    def set_credits(self, user_id: str, credits: int | None) -> None:
        ctx = self._need_ctx()
        ctx.store.set_credits(user_id, credits, ctx.now())
