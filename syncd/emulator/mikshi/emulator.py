"""``Emulator``: the Mikshi developer API and its pre-signed object store on one port."""

from __future__ import annotations

from typing import Any

from syncd.emulator.auth import KeyRing, user_id_for_key
from syncd.emulator.base import EmulatorBase
from syncd.emulator.mikshi import admin, api_ai, api_collections, api_uploads, api_videos, s3
from syncd.emulator.mikshi.config import EmulatorConfig
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.hooks import MikshiHooks
from syncd.emulator.mikshi.signing import Signer
from syncd.emulator.mikshi.store import Store
from syncd.emulator.routing import Router
from syncd.emulator.server import ServerHooks


def build_router() -> Router:
    return Router([*api_uploads.ROUTES, *api_videos.ROUTES, *api_collections.ROUTES,
                   *api_ai.ROUTES, *s3.ROUTES, *admin.ROUTES])


class Emulator(EmulatorBase[EmulatorConfig, Context]):
    """A local Mikshi developer API + pre-signed object store on one port (lifecycle, faults,
    clock and request log: ``EmulatorBase``)."""

    def _open(self) -> tuple[Context, Router, ServerHooks]:
        cfg = self.config
        store = Store(cfg.data_dir)
        keys = KeyRing(cfg.api_keys)
        ctx = Context(cfg, store, self._clock, Signer(store.secret, self._clock.now,
                                                      cfg.url_ttl_seconds),
                      self._embedder, self._faults, self._requests, keys)
        for user_id in keys.user_ids():
            store.ensure_user(user_id, cfg.credits, ctx.now())
        return ctx, build_router(), MikshiHooks(keys)

    # -- runtime control (same as the admin API) --------------------------------------

    def set_embedding_dim(self, dim: int) -> None:
        """Switch the server-side embedder to one with ``dim`` dimensions."""
        self._embedder.set_dim(dim)

    @staticmethod
    def user_id_for_key(key: str) -> str:
        return user_id_for_key(key)

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

    def set_credits(self, user_id: str, credits: int | None) -> None:
        ctx = self._need_ctx()
        ctx.store.set_credits(user_id, credits, ctx.now())
