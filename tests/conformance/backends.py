"""One factory per backend: its emulator, and a ``Remote`` built the way syncd builds it.

A new backend adds one factory here (a dozen lines); the suite in ``test_conformance.py``
then runs against it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from syncd.emulator.mikshi import Emulator, Faults
from syncd.emulator.memories import MemoriesEmulator
from syncd.remote.base import Remote
from syncd.remote.http import RetryPolicy
from syncd.remote.memories import MemoriesClient, MemoriesRemote
from syncd.remote.mikshi import MikshiClient
from tests.conftest import FAST_RETRY, KEY, MiB, emulator_config
from tests.memories_support import NO_LIMITS, memories_config

NO_RETRY = RetryPolicy(max_retries=0)


class AnEmulator(Protocol):
    def set_faults(self, faults: Faults) -> None: ...

    def requests(self, since: int = 0) -> list[dict[str, Any]]: ...


@dataclass
class Backend:
    name: str
    remote: Remote  # built with the test key and quick retries
    emulator: AnEmulator
    #: Another Remote on the same emulator: ``(key=..., retry=...)``.
    make: Callable[..., Remote]
    #: A well-formed id the remote does not know.
    missing_id: str
    #: A file this large is sent in parts by ``Remote.upload`` (None: never in parts).
    chunked_from: int | None
    #: One listing page's size, to make listings span pages with few videos.
    page_size: Callable[[int], None]


@contextmanager
def mikshi(tmp: Path) -> Iterator[Backend]:
    cap = 2 * MiB  # the emulator's direct-upload cap; above it, parts
    with Emulator(emulator_config(tmp / "mikshi", min_part_size=1 * MiB,
                                  direct_upload_max_bytes=cap)) as emu:
        def make(key: str = KEY, retry: RetryPolicy = FAST_RETRY) -> Remote:
            return MikshiClient(emu.base_url, key, retry=retry, direct_upload_max_bytes=cap)

        remote = MikshiClient(emu.base_url, KEY, retry=FAST_RETRY, direct_upload_max_bytes=cap)
        remote.part_size = 5 * MiB  # the S3 minimum
        try:
            yield Backend("mikshi", remote, emu, make, "00000000-0000-4000-8000-000000000000",
                          cap + 1, lambda n: setattr(remote, "page_size", n))
        finally:
            remote.close()


@contextmanager
def memories(tmp: Path) -> Iterator[Backend]:
    with MemoriesEmulator(memories_config(tmp / "memories")) as emu:
        def make(key: str = KEY, retry: RetryPolicy = FAST_RETRY) -> Remote:
            return MemoriesRemote(MemoriesClient(emu.v1_url, key, v2_base_url=emu.v2_url,
                                                 rate_limits=NO_LIMITS, retry=retry))

        remote = MemoriesRemote(MemoriesClient(emu.v1_url, KEY, v2_base_url=emu.v2_url,
                                               rate_limits=NO_LIMITS, retry=FAST_RETRY))
        try:
            yield Backend("memories", remote, emu, make, "VI000000000000000000", None,
                          lambda n: setattr(remote, "page_size", n))
        finally:
            remote.close()


BACKENDS: dict[str, Callable[[Path], Any]] = {"mikshi": mikshi, "memories": memories}
