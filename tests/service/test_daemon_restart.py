"""A daemon restart, and the remote coming back, read the complete remote listing only
when the deletion check is due (issue 15): at 1,000,000 videos that listing costs about
90 CPU-seconds, which a restart must not pay each time.

The daemon runs in this process (a worker thread) against the emulator over loopback;
its request log is the evidence. Nothing is timed.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import yaml

from syncd.config import Config, load_config
from syncd.emulator.mikshi import Emulator
from syncd.service.daemon import Daemon, Timings
from syncd.store.catalog import Catalog
from tests.conftest import KEY, admin_videos, clear_requests, run_syncd, set_faults, wait_for, write_config, write_random
from tests.sync.test_scale import synced_tree

LISTING = "/api/backend/v1/developer/videos/list"


def listings(admin: httpx.Client) -> int:
    """Complete-listing page reads since the log was cleared."""
    return sum(1 for r in admin.get("/requests").json() if r["path"] == LISTING)


class Running:
    """``syncd run`` in a thread of this process, until the block ends."""

    def __init__(self, config: Config, timings: Timings | None = None) -> None:
        self.daemon = Daemon(config, timings=timings)
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"install_signals": False}, daemon=True)

    def __enter__(self) -> Daemon:
        self.thread.start()
        wait_for(lambda: self.daemon.passes >= 1, 60, "the start-up pass")
        return self.daemon

    def __exit__(self, *exc: object) -> None:
        self.daemon.request_stop()
        self.thread.join(30)
        assert not self.thread.is_alive() and not self.daemon.crashed


def set_listing_read(config: Config, at: float | None) -> None:
    """What the catalog says of the last complete listing: read at ``at``, or never."""
    with Catalog.open(config.state_dir) as catalog:
        if at is None:
            catalog.set_info("listing_read_at", None)
        else:
            catalog.listing_read(at)


def few_retries(config: Config) -> Config:
    """The same config with one HTTP retry (an outage is seen as one at once) and quick upload retries."""
    assert config.source is not None
    data = yaml.safe_load(config.source.read_text())
    data["remote"]["max_retries"] = 1
    data["upload"]["retry_backoff"] = "100ms"  # the failed upload is tried again soon after
    config.source.write_text(yaml.safe_dump(data))
    return load_config(config.source, {"SYNCD_TEST_KEY": KEY})


def listing_read_at(config: Config) -> float | None:
    with Catalog.open_readonly(config.state_dir) as catalog:
        return catalog.listing_read_at()


def test_a_restart_reads_the_complete_listing_only_once_the_deletion_check_is_due(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    config = synced_tree(tmp_path, emu, admin, 30)  # its last pass read the listing just now
    drop = tmp_path / "drop"
    victim = next(v for v in admin_videos(admin) if v["name"] == "cam00/clip00003.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    read_before = listing_read_at(config)
    assert read_before is not None
    clear_requests(admin)

    with Running(config):
        pass
    assert listings(admin) == 0  # read moments ago: the next check is an hour away
    assert listing_read_at(config) == read_before
    assert (drop / "cam00" / "clip00003.mp4").exists()  # not known to be deleted yet
    assert config.source is not None
    status = run_syncd(config.source, "status").stdout
    line = next(line for line in status.splitlines() if line.startswith("remote deletions:"))
    assert "last checked" in line and "ago" in line and "next check in" in line, line

    # The last check two hours ago: due, so the start-up pass makes it, guards and all.
    set_listing_read(config, time.time() - 7200)
    clear_requests(admin)
    with Running(config) as daemon:
        wait_for(lambda: (drop / ".syncd-trash" / "cam00" / "clip00003.mp4").exists(), 60,
                 "the remotely deleted video's file in the trash")
        assert daemon.passes >= 1
    assert listings(admin) >= 1
    read_again = listing_read_at(config)
    assert read_again is not None and read_again > time.time() - 600
    assert (drop / "cam00" / "clip00004.mp4").exists()
    status = run_syncd(config.source, "status").stdout
    assert "remote deletions: last checked" in status and "next check in" in status

    # Never read (a catalog from before the schedule): due at once.
    set_listing_read(config, None)
    clear_requests(admin)
    with Running(config):
        pass
    assert listings(admin) >= 1 and listing_read_at(config) is not None


def test_a_lost_catalog_still_reads_the_listing_at_start_up(tmp_path: Path, emu: Emulator,
                                                            admin: httpx.Client) -> None:
    """A new catalog over files already on the remote (recovery) links them from the
    complete listing, whatever the schedule said before: nothing is uploaded again."""
    for i in range(3):
        write_random(tmp_path / "drop" / f"v{i}.mp4", 50_000 + i, seed=40 + i)
    source = write_config(tmp_path, emu.base_url, [{"path": str(tmp_path / "drop"), "collections": "none",
                                                    "pipelines": []}])
    assert run_syncd(source, "sync", "--wait", "--timeout", "60").returncode == 0
    before = {v["video_id"] for v in admin_videos(admin)}
    shutil.rmtree(tmp_path / "state")
    clear_requests(admin)
    with Running(load_config(source, {"SYNCD_TEST_KEY": KEY})) as daemon:
        wait_for(lambda: daemon.counts.get("done") == 3, 60, "every file linked again", lambda: daemon.counts)
    assert listings(admin) >= 1
    assert {v["video_id"] for v in admin_videos(admin)} == before


def test_the_remote_coming_back_reads_no_listing_before_it_is_due(tmp_path: Path, emu: Emulator,
                                                                  admin: httpx.Client) -> None:
    """An outage proves no deletion: coming back catches up on what waited (the new
    file is uploaded) and leaves the complete listing to its schedule."""
    config = few_retries(synced_tree(tmp_path, emu, admin, 10))
    timings = Timings(backoff_start=0.2, backoff_cap=0.5, debounce=0.1)
    with Running(config, timings) as daemon:
        clear_requests(admin)
        set_faults(admin, error_share=1.0, error_statuses=[503])
        (tmp_path / "drop" / "new.mp4").write_bytes(b"a clip written while the remote is away\n")
        wait_for(lambda: daemon._health.state.value != "up", 60, "the remote seen away")
        set_faults(admin)
        wait_for(lambda: "new.mp4" in {v["name"] for v in admin_videos(admin)}, 60, "the upload after the outage")
        assert daemon._health.state.value == "up"
        assert listings(admin) == 0
