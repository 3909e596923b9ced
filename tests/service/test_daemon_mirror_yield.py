"""A mirror run in the daemon stops between two videos for a file due for a pass (issue
15): the first catch-up of a library that was synced before the mirror existed (or of a
lost state directory) fetches every video's details, hours at 1,000,000 videos, and a
clip written meanwhile must not wait for all of it.

The daemon runs in this process against the emulator over loopback, each details answer
slowed so the catch-up lasts seconds; the emulator's request log (answered in order) is
the evidence. Nothing is timed.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx

from syncd.emulator.mikshi import Emulator
from syncd.config import load_config
from syncd.service.daemon import Daemon, Timings
from tests.conftest import KEY, admin_videos, clear_requests, set_faults, wait_for, write_config
from tests.service.test_daemon_restart import Running
from tests.sync.test_scale import synced_tree

DETAILS = "/api/backend/v1/developer/videos/get-video-details"
VIDEOS = 40


def requests(admin: httpx.Client) -> list[dict[str, str]]:
    return sorted(admin.get("/requests").json(), key=lambda r: int(r["seq"]))


def test_a_new_file_is_uploaded_during_the_mirror_catch_up_not_after_it(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    config = synced_tree(tmp_path, emu, admin, VIDEOS, mirrored=False)  # synced, never mirrored
    drop = tmp_path / "drop"
    set_faults(admin, latency_ms=150, path_glob="*get-video-details")  # the catch-up: 40 × 150 ms
    clear_requests(admin)
    running = Running(config, Timings(debounce=0.1))
    running.thread.start()  # the start-up pass's mirror run catches up every video
    try:
        wait_for(lambda: any(r["path"] == DETAILS for r in requests(admin)), 60, "the mirror's catch-up")
        (drop / "cam00" / "arrived-during-catch-up.mp4").write_bytes(b"a clip written while the mirror catches up\n")

        def finished() -> bool:
            log = requests(admin)
            return (any("upload" in r["path"] for r in log)
                    and sum(r["path"] == DETAILS for r in log) >= VIDEOS + 1)  # and the new video's

        wait_for(finished, 120, "the upload and the whole catch-up")
    finally:
        running.__exit__(None, None, None)
    log = [r["path"] for r in requests(admin)]
    first_upload = next(i for i, path in enumerate(log) if "upload" in path)
    details_before = sum(path == DETAILS for path in log[:first_upload])
    # The run stopped for the clip, a video or a few after it came (not all forty)...
    assert details_before <= VIDEOS // 2, (details_before, log)
    # ...and resumed afterwards where it was: each video's details asked for once.
    assert log.count(DETAILS) == VIDEOS + 1, log
    assert [v["name"] for v in admin_videos(admin)].count("cam00/arrived-during-catch-up.mp4") == 1


def test_a_mirror_run_the_cap_forced_works_a_while_before_it_yields(tmp_path: Path) -> None:
    """Files arriving without pause (ten cameras) keep the mirror deferred; after
    ``mirror_defer_cap`` it runs anyway and does not stop for the next file before
    ``mirror_forced_run``: the stream cannot starve it."""
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"), {"SYNCD_TEST_KEY": KEY})
    daemon = Daemon(config, timings=Timings(debounce=0, mirror_defer_cap=0, mirror_forced_run=3600))
    daemon._engine = SimpleNamespace(settling=lambda: [], in_flight=lambda: [])  # type: ignore[assignment]
    assert not daemon._mirror_should_yield()  # nothing pending
    daemon.pending.touch(str(tmp_path / "drop" / "a.mp4"), settling=False)
    assert daemon._mirror_should_yield()  # a quiet-moment run stops for a file due
    assert not daemon._defer_mirror()  # pending, but deferred for longer than the cap (0 s)
    assert not daemon._mirror_should_yield()  # the forced run goes on for mirror_forced_run
