"""Backends. The engine sees only ``Remote`` and its ``Features`` (base.py); ``open_remote``
picks one. Clients are imported when a remote is opened, not when this package is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from syncd.remote.base import Features, Remote
from syncd.remote.facts import backend_facts

__all__ = ["Features", "Remote", "RemoteSettings", "backend_facts", "open_remote", "remote_identity"]


class Key(Protocol):
    def reveal(self) -> str: ...


class RemoteSettings(Protocol):
    """What opening a remote needs: ``syncd.config.RemoteConfig`` has this shape. A protocol,
    not that class, because the config sits above the remotes (it checks a folder's pipelines
    against what the backend declares)."""

    @property
    def backend(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def api_key(self) -> Key: ...
    @property
    def timeout(self) -> float: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def v2_base_url(self) -> str | None: ...
    @property
    def unique_id(self) -> str | None: ...
    @property
    def rate_limits(self) -> tuple[tuple[str, str | None], ...]: ...  # (group, rate) overrides


def remote_identity(config: RemoteSettings) -> str:
    """Which remote a catalog belongs to, as recorded in it: backend and address (the account
    behind a key is not something every service can tell)."""
    return f"{config.backend} at {config.base_url}"


def open_remote(
    config: RemoteSettings, direct_upload_max_bytes: int = 0, *, sleep: Callable[[float], None] = time.sleep
) -> Remote:
    """``sleep`` waits between HTTP retries; the daemon passes one that a stop cuts short."""
    # Imported here: commands that never talk to the remote (status, log) skip httpx.
    from syncd.remote.http import HttpClient, RetryPolicy

    retry = RetryPolicy(max_retries=config.max_retries)
    if config.backend == "mikshi":
        from syncd.remote.mikshi import MikshiClient

        http = HttpClient(config.base_url, config.api_key.reveal(), timeout=config.timeout, retry=retry, sleep=sleep)
        return MikshiClient(
            config.base_url,
            config.api_key.reveal(),
            timeout=config.timeout,
            retry=retry,
            http=http,
            direct_upload_max_bytes=direct_upload_max_bytes,
        )
    if config.backend == "memories":
        from syncd.remote.memories import MemoriesClient, MemoriesRemote
        from syncd.remote.memories import DEFAULT_V2_BASE_URL

        return MemoriesRemote(MemoriesClient(
            config.base_url, config.api_key.reveal(), v2_base_url=config.v2_base_url or DEFAULT_V2_BASE_URL,
            unique_id=config.unique_id or "default", rate_limits=dict(config.rate_limits), timeout=config.timeout,
            retry=retry, sleep=sleep))
    raise ValueError(f"unknown backend {config.backend!r}")
