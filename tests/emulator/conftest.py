"""Fixtures: a running emulator with short timings, raw httpx clients and the ``Api`` helper."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from emu_helpers import KEY_A, KEY_B, Api, make_config

from syncd.emulator.mikshi import Emulator


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "emu"


@pytest.fixture
def emu(data_dir: Path) -> Iterator[Emulator]:
    with Emulator(make_config(data_dir)) as e:
        yield e


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"X-API-Key": KEY_A}, timeout=10) as c:
        yield c


@pytest.fixture
def client_b(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"X-API-Key": KEY_B}, timeout=10) as c:
        yield c


@pytest.fixture
def admin(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, timeout=10) as c:
        yield c


@pytest.fixture
def s3(emu: Emulator) -> Iterator[httpx.Client]:
    """A client without API key for pre-signed URLs (one SSL context for the whole test)."""
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.fixture
def api(emu: Emulator, client: httpx.Client, s3: httpx.Client) -> Api:
    return Api(emu, client, s3)


@pytest.fixture
def api_b(emu: Emulator, client_b: httpx.Client, s3: httpx.Client) -> Api:
    return Api(emu, client_b, s3)
