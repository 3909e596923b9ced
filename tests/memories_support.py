"""Fixtures and helpers for memories.ai tests: import the fixtures into a test module
(``from tests.memories_support import memories_emu, ...``) to use them.

Keys are conftest's KEY / OTHER_KEY, so the autouse check that no key reaches a log or the
captured output covers these tests too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import FAST_RETRY, KEY, OTHER_KEY, wait_for

from syncd.emulator.memories import MemoriesConfig, MemoriesEmulator
from syncd.remote.memories import MemoriesClient

V1 = "/serve/api/v1"
V2 = "/serve/api/v2"
#: Every published limit lifted: tests about other things must not wait for a minute.
NO_LIMITS: dict[str, str | None] = {g: None for g in (
    "upload", "list", "delete", "search", "metadata", "task_status", "download", "stream")}


def memories_config(data_dir: Path, **overrides: Any) -> MemoriesConfig:
    """Parsing and tasks take 30 s of emulator time: tests see the states before and, after
    ``advance_past_parsing``, after them, whatever the machine's speed."""
    settings: dict[str, Any] = dict(data_dir=data_dir, api_keys=[KEY, OTHER_KEY],
                                    parse_seconds=30, task_seconds=30,
                                    rate_limits=dict(NO_LIMITS))
    settings.update(overrides)
    return MemoriesConfig(**settings)


def make_client(emu: MemoriesEmulator, key: str = KEY, **kwargs: Any) -> MemoriesClient:
    kwargs.setdefault("rate_limits", NO_LIMITS)
    kwargs.setdefault("retry", FAST_RETRY)
    return MemoriesClient(emu.v1_url, key, v2_base_url=emu.v2_url, **kwargs)


@pytest.fixture
def memories_emu(tmp_path: Path) -> Iterator[MemoriesEmulator]:
    with MemoriesEmulator(memories_config(tmp_path / "memories")) as emu:
        yield emu


@pytest.fixture
def mem(memories_emu: MemoriesEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP with the key sent the documented way."""
    with httpx.Client(base_url=memories_emu.base_url, headers={"Authorization": KEY},
                      timeout=10) as c:
        yield c


@pytest.fixture
def mem_admin(memories_emu: MemoriesEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=memories_emu.base_url, timeout=10) as c:
        yield c


@pytest.fixture
def mclient(memories_emu: MemoriesEmulator) -> Iterator[MemoriesClient]:
    with make_client(memories_emu) as c:
        yield c


def upload_raw(c: httpx.Client, content: bytes = b"\x00" * 2048, filename: str = "clip.mp4",
               ctype: str = "video/mp4", data: Any = None) -> httpx.Response:
    return c.post(V1 + "/upload", files={"file": (filename, content, ctype)}, data=data or {})


def ok_data(resp: httpx.Response) -> Any:
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == "0000", body
    assert body["success"] is True and body["failed"] is False
    return body["data"]


def refused(resp: httpx.Response, code: str) -> str:
    """A v1 refusal: HTTP 200, the business code in the body; returns the message."""
    body = resp.json()
    assert resp.status_code == 200, resp.status_code
    assert body["code"] == code, body
    assert body["success"] is False and body["failed"] is True and body["data"] is None
    return str(body["msg"])


def uploaded(c: httpx.Client, **kwargs: Any) -> str:
    return str(ok_data(upload_raw(c, **kwargs))["videoNo"])


def advance_past_parsing(emu: MemoriesEmulator) -> None:
    emu.advance_clock(emu.config.parse_seconds + emu.config.task_seconds + 1)


def logged(emu: MemoriesEmulator, count: int) -> list[dict[str, Any]]:
    """The request log once it holds ``count`` entries: the emulator logs a request just
    after answering it, so the last answer can reach the client first."""
    wait_for(lambda: len(emu.requests()) >= count, timeout=10, what=f"{count} logged requests")
    return emu.requests()
