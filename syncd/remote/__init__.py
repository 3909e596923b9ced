"""Backends. The engine sees only ``Remote`` (base.py); ``open_remote`` picks one."""

from __future__ import annotations

from syncd.config import RemoteConfig
from syncd.remote.base import Remote
from syncd.remote.http import RetryPolicy
from syncd.remote.mikshi import MikshiClient

__all__ = ["Remote", "open_remote"]


def open_remote(config: RemoteConfig, direct_upload_max_bytes: int = 0) -> Remote:
    if config.backend == "mikshi":
        return MikshiClient(
            config.base_url,
            config.api_key.reveal(),
            timeout=config.timeout,
            retry=RetryPolicy(max_retries=config.max_retries),
            direct_upload_max_bytes=direct_upload_max_bytes,
        )
    raise ValueError(f"unknown backend {config.backend!r}")
