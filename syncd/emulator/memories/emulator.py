"""``MemoriesEmulator``: the memories.ai v1 and v2 hosts on one loopback port."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from types import TracebackType
from typing import Any

from syncd.emulator.auth import KeyRing, user_id_for_key
from syncd.emulator.config import Faults
from syncd.emulator.context import Clock
from syncd.emulator.embeddings import Embedder
from syncd.emulator.faults import FaultInjector
from syncd.emulator.memories import admin, api_tasks, api_v1, api_v2, envelope
from syncd.emulator.memories.config import MemoriesConfig
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.memories.hooks import MemoriesHooks
from syncd.emulator.memories.ratelimit import WindowLimiter
from syncd.emulator.memories.store import MemoriesStore
from syncd.emulator.requestlog import RequestLog
from syncd.emulator.routing import Router
from syncd.emulator.server import (App, HttpServer, base_url_for, serve_in_background,
                                   stop_serving)

log = logging.getLogger("syncd.emulator")


def build_router() -> Router:
    return Router([*api_v1.ROUTES, *api_tasks.ROUTES, *api_v2.ROUTES, *admin.ROUTES])


class MemoriesEmulator:
    """Serves ``/serve/api/v1/...`` and ``/serve/api/v2/...`` (plus ``/_admin/``) on one port.

    Faults, the request log, the clock offset and the rate-limit windows live on this object
    and survive ``stop()``/``start()``; records are re-read from ``data_dir``.
    """

    def __init__(self, config: MemoriesConfig) -> None:
        self.config = config
        self._faults = FaultInjector(config.faults, config.seed)
        self._requests = RequestLog()
        self._clock = Clock()
        self._limiter = WindowLimiter(config.rate_limits)
        self._embedder = Embedder()
        self._ctx: MemoriesContext | None = None
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("emulator already running")
        cfg = self.config
        store = MemoriesStore(cfg.data_dir)
        try:
            server = HttpServer((cfg.host, cfg.port), cfg.keepalive_seconds)
        except BaseException:
            store.close()
            raise
        keys = KeyRing(cfg.api_keys, cfg.key_accounts)
        ctx = MemoriesContext(cfg, store, self._clock, self._embedder, self._faults,
                              self._requests, keys, self._limiter)
        stored_offset = store.get_meta("clock_offset")
        if stored_offset is not None:
            self._clock.set_offset(max(self._clock.offset, float(stored_offset)))
        self._clock.on_change = lambda offset: store.set_meta("clock_offset", repr(offset))
        for account_id in keys.user_ids():
            store.ensure_account(account_id, cfg.credits, cfg.streams_enabled)
        self._server, self._ctx = server, ctx
        server.app = App(ctx, build_router(), self.base_url, MemoriesHooks(ctx))
        self._thread = serve_in_background(server)
        log.info("memories.ai emulator listening on %s (data dir %s)", self.base_url,
                 cfg.data_dir)

    def stop(self) -> None:
        server, thread, ctx = self._server, self._thread, self._ctx
        if server is None:
            return
        assert ctx is not None
        ctx.stopping.set()
        stop_serving(server, thread)
        self._clock.on_change = None
        ctx.store.close()
        self._server = self._thread = self._ctx = None

    def __enter__(self) -> MemoriesEmulator:
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

    @property
    def v1_url(self) -> str:
        return self.base_url + envelope.V1

    @property
    def v2_url(self) -> str:
        return self.base_url + envelope.V2

    # -- runtime control (same as the admin API) -------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults.faults

    def set_faults(self, faults: Faults) -> None:
        self._faults.set(faults)

    def set_rate_limits(self, limits: dict[str, str | None]) -> None:
        self._limiter.set_limits({**self._limiter.limits(), **limits})

    def advance_clock(self, seconds: float) -> float:
        return self._clock.advance(seconds)

    @staticmethod
    def account_for_key(key: str) -> str:
        return user_id_for_key(key)

    def _need_ctx(self) -> MemoriesContext:
        if self._ctx is None:
            raise RuntimeError("emulator not running")
        return self._ctx

    def admin_videos(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        ctx = self._need_ctx()
        return [admin.video_info(ctx, v) for v in ctx.store.videos(include_deleted=include_deleted)]

    def admin_video_bytes(self, video_no: str) -> bytes | None:
        ctx = self._need_ctx()
        video = ctx.store.video(video_no)
        if video is None or video.deleted_at is not None:
            return None
        return ctx.store.file_path(video).read_bytes()

    def admin_delete_video(self, video_no: str) -> None:
        ctx = self._need_ctx()
        ctx.store.delete_video(video_no, ctx.now())

    def update_account(self, account_id: str, **changes: Any) -> None:
        self._need_ctx().store.update_account(account_id, **changes)

    def admin_streams(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self._need_ctx().store.streams()]

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._requests.since(since)

    def clear_requests(self) -> int:
        return self._requests.clear()
