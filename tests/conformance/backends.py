"""One small driver per backend, so a single suite can exercise both at client level.

Until the backend seam (issue #12) gives every backend the same ``Remote`` interface, each
driver here maps the suite's few operations onto its client's own methods. When the seam
lands, these drivers shrink to "build the client" and the suite calls ``Remote`` directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.emulator import Emulator, Faults
from syncd.emulator.memories import MemoriesEmulator
from syncd.errors import NotFoundError
from syncd.remote.http import RetryPolicy
from syncd.remote.memories import MemoriesClient
from syncd.remote.mikshi import MikshiClient
from syncd.remote.multipart import upload_file
from syncd.remote.base import UploadSession
from tests.conftest import FAST_RETRY, KEY, MiB, emulator_config
from tests.memories_support import NO_LIMITS, memories_config

NO_RETRY = RetryPolicy(max_retries=0)


class NullJournal:
    """The multipart driver's journal, unused here (the catalog keeps it in syncd)."""

    def session_started(self, session: UploadSession, part_size: int) -> None: ...

    def part_done(self, session: UploadSession, part_number: int, etag: str, size: int) -> None: ...

    def upload_completed(self, session: UploadSession) -> None: ...

    def session_ended(self, session: UploadSession, outcome: str) -> None: ...


@dataclass
class Driver:
    name: str
    #: Largest file uploaded in one piece (Mikshi's direct upload); above it, chunks if any.
    chunked_from: int | None
    upload: Callable[[Path], str]
    list_ids: Callable[[int], list[str]]  # page size -> every video id
    details: Callable[[str], tuple[bool, int | None]]  # (known, size in bytes if reported)
    delete: Callable[[str], None]
    download_sha256: Callable[[str, Path], str]
    set_faults: Callable[[Faults], None]
    client_with: Callable[..., Any]  # (key=..., retry=...) -> a client context manager
    list_with: Callable[[Any], object]  # one listing through a given client
    missing_id: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def mikshi_driver(tmp: Path) -> Iterator[Driver]:
    with Emulator(emulator_config(tmp / "mikshi", min_part_size=1 * MiB,
                                  direct_upload_max_bytes=2 * MiB)) as emu, \
            MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as client:

        def upload(path: Path) -> str:
            if path.stat().st_size <= 2 * MiB:
                return client.direct_upload(path, path.name)
            return upload_file(client, path, name=path.name, part_size=1 * MiB,
                               concurrency=2, journal=NullJournal()).video_id

        def details(video_id: str) -> tuple[bool, int | None]:
            try:
                found = client.video_details(video_id)
            except NotFoundError:
                return False, None
            return True, found.size_bytes

        def download(video_id: str, dest: Path) -> str:
            with open(dest, "wb") as fh:
                client.download_video(video_id, fh)
            return _sha256(dest)

        yield Driver(
            name="mikshi", chunked_from=2 * MiB, upload=upload,
            list_ids=lambda size: [v.video_id for v in client.iter_videos(page_size=size)],
            details=details, delete=client.delete_video, download_sha256=download,
            set_faults=emu.set_faults,
            client_with=lambda key=KEY, retry=FAST_RETRY: MikshiClient(emu.base_url, key,
                                                                       retry=retry),
            list_with=lambda c: c.list_videos(),
            missing_id="00000000-0000-4000-8000-000000000000")


@contextmanager
def memories_driver(tmp: Path) -> Iterator[Driver]:
    with MemoriesEmulator(memories_config(tmp / "memories")) as emu, \
            MemoriesClient(emu.v1_url, KEY, v2_base_url=emu.v2_url, rate_limits=NO_LIMITS,
                           retry=FAST_RETRY) as client:

        def upload(path: Path) -> str:
            return client.upload(path).video_no

        def details(video_no: str) -> tuple[bool, int | None]:
            meta = client.get_metadata(video_no)
            return (False, None) if meta is None else (True, meta.size)

        def download(video_no: str, dest: Path) -> str:
            meta = client.get_metadata(video_no)
            assert meta is not None and meta.bucket and meta.blob
            return client.download(meta.bucket, meta.blob, dest).sha256

        yield Driver(
            name="memories", chunked_from=None, upload=upload,
            list_ids=lambda size: [v.video_no for v in client.list_videos(page_size=size)],
            details=details, delete=lambda vno: client.delete_videos([vno]),
            download_sha256=download, set_faults=emu.set_faults,
            client_with=lambda key=KEY, retry=FAST_RETRY: MemoriesClient(
                emu.v1_url, key, v2_base_url=emu.v2_url, rate_limits=NO_LIMITS, retry=retry),
            list_with=lambda c: c.list_videos(),
            missing_id="VI000000000000000000")


DRIVERS = {"mikshi": mikshi_driver, "memories": memories_driver}
