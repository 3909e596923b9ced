"""``MemoriesEmulator``: the memories.ai v1 and v2 hosts on one loopback port."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from syncd.emulator.auth import KeyRing, user_id_for_key
from syncd.emulator.base import EmulatorBase
from syncd.emulator.memories import admin, api_tasks, api_v1, api_v2, envelope
from syncd.emulator.memories.config import MemoriesConfig
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.memories.hooks import MemoriesHooks
from syncd.emulator.memories.ratelimit import WindowLimiter
from syncd.emulator.memories.store import MemoriesStore
from syncd.emulator.routing import Router
from syncd.emulator.server import ServerHooks


def build_router() -> Router:
    return Router([*api_v1.ROUTES, *api_tasks.ROUTES, *api_v2.ROUTES, *admin.ROUTES])


class MemoriesEmulator(EmulatorBase[MemoriesConfig, MemoriesContext]):
    """Serves ``/serve/api/v1/...`` and ``/serve/api/v2/...`` (plus ``/_admin/``) on one port.

    Besides what ``EmulatorBase`` keeps across ``stop()``/``start()``, the rate-limit windows
    live on this object too.
    """

    service = "memories.ai emulator"

    def __init__(self, config: MemoriesConfig) -> None:
        super().__init__(config)
        self._limiter = WindowLimiter(config.rate_limits)

    def _open(self) -> tuple[MemoriesContext, Router, ServerHooks]:
        cfg = self.config
        store = MemoriesStore(cfg.data_dir)
        keys = KeyRing(cfg.api_keys, cfg.key_accounts)
        ctx = MemoriesContext(cfg, store, self._clock, self._embedder, self._faults,
                              self._requests, keys, self._limiter)
        for account_id in keys.user_ids():
            store.ensure_account(account_id, cfg.credits, cfg.streams_enabled)
        return ctx, build_router(), MemoriesHooks(ctx)

    @property
    def v1_url(self) -> str:
        return self.base_url + envelope.V1

    @property
    def v2_url(self) -> str:
        return self.base_url + envelope.V2

    # -- runtime control (same as the admin API) -------------------------------------------

    def set_rate_limits(self, limits: dict[str, str | None]) -> None:
        self._limiter.set_limits({**self._limiter.limits(), **limits})

    @staticmethod
    def account_for_key(key: str) -> str:
        return user_id_for_key(key)

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
