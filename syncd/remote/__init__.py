"""Backends. The engine sees only ``Remote`` (base.py); ``open_remote`` picks one."""

from __future__ import annotations

import time
from collections.abc import Callable

from syncd.config import RemoteConfig
from syncd.remote.base import Remote

__all__ = ["Remote", "open_remote"]


def open_remote(
    config: RemoteConfig, direct_upload_max_bytes: int = 0, *, sleep: Callable[[float], None] = time.sleep
) -> Remote:
    """``sleep`` waits between HTTP retries; the daemon passes one that a stop cuts short."""
    # Imported here: commands that never talk to the remote (status, log) skip httpx.
    from syncd.remote.http import HttpClient, RetryPolicy
    from syncd.remote.mikshi import MikshiClient

    if config.backend == "mikshi":
        retry = RetryPolicy(max_retries=config.max_retries)
        http = HttpClient(config.base_url, config.api_key.reveal(), timeout=config.timeout, retry=retry, sleep=sleep)
        return MikshiClient(
            config.base_url,
            config.api_key.reveal(),
            timeout=config.timeout,
            retry=retry,
            http=http,
            direct_upload_max_bytes=direct_upload_max_bytes,
        )
    raise ValueError(f"unknown backend {config.backend!r}")
