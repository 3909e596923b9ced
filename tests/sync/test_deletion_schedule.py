"""A one-shot `syncd sync` reads the complete remote listing (what proves remote
deletions) on the `schedule.deletion_check` schedule, as the daemon does, and says
when it skipped it; `--check-deletions` reads it now (issue 15). Real CLI against the
emulators, the request log as evidence."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx

from syncd.emulator.memories import MemoriesEmulator
from syncd.emulator.mikshi import Emulator
from syncd.media.clips import make_clip
from syncd.store.catalog import Catalog
from syncd.sync.deletion_check import CHECK_NOW, listing_due
from tests.conftest import admin_videos, clear_requests, run_syncd, write_config, write_random
from tests.memories_support import V1
from tests.sync.test_memories_sync import calls, mem_config, memu  # noqa: F401 - memu: the fixture

LISTING = "/api/backend/v1/developer/videos/list"


def listings(admin: httpx.Client) -> int:
    """Complete-listing requests (page reads of videos/list) since the log was cleared."""
    return sum(1 for r in admin.get("/requests").json() if r["path"] == LISTING)


def synced(tmp_path: Path, emu: Emulator, **sections: object) -> tuple[Path, Path]:
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 20_000, seed=1)
    write_random(drop / "b.mp4", 20_000, seed=2)
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}],
                          **sections)
    first = run_syncd(config, "sync", "--wait", "--timeout", "60")
    assert first.returncode == 0, first.stdout + first.stderr
    return config, drop


def test_a_second_sync_reads_no_listing_and_says_when_deletions_are_checked(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    config, drop = synced(tmp_path, emu)
    victim = next(v for v in admin_videos(admin) if v["name"] == "a.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    clear_requests(admin)

    again = run_syncd(config, "sync")
    assert again.returncode == 0, again.stdout + again.stderr
    assert listings(admin) == 0
    assert (drop / "a.mp4").exists()  # not known to be deleted yet: nothing happens to it
    note = next(line for line in again.stdout.splitlines() if line.startswith("note: remote deletions"))
    assert "last checked" in note and "ago" in note and "next check in" in note and CHECK_NOW in note, note
    assert "every 1h: schedule.deletion_check" in note
    status = run_syncd(config, "status").stdout
    assert "remote deletions: last checked" in status and CHECK_NOW in status

    clear_requests(admin)
    checked = run_syncd(config, "sync", "--check-deletions")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert listings(admin) >= 1
    assert not (drop / "a.mp4").exists() and (drop / ".syncd-trash" / "a.mp4").exists()
    assert (drop / "b.mp4").exists()
    assert "note: remote deletions" not in checked.stdout  # it read the listing: nothing to say


def test_the_listing_is_read_again_once_deletion_check_has_passed(tmp_path: Path, emu: Emulator,
                                                                  admin: httpx.Client) -> None:
    config, drop = synced(tmp_path, emu)
    victim = next(v for v in admin_videos(admin) if v["name"] == "b.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    with Catalog.open(tmp_path / "state") as catalog:  # the last check, two hours ago
        read_at = catalog.listing_read_at()
        assert read_at is not None
        catalog.listing_read(read_at - 7200)
    clear_requests(admin)

    due = run_syncd(config, "sync")
    assert due.returncode == 0, due.stdout + due.stderr
    assert listings(admin) >= 1
    assert (drop / ".syncd-trash" / "b.mp4").exists() and (drop / "a.mp4").exists()
    with Catalog.open(tmp_path / "state") as catalog:
        read_again = catalog.listing_read_at()
    assert read_again is not None and read_again > time.time() - 600


def test_a_short_deletion_check_reads_the_listing_every_sync(tmp_path: Path, emu: Emulator,
                                                             admin: httpx.Client) -> None:
    config, _drop = synced(tmp_path, emu, schedule={"deletion_check": "1ms"})
    clear_requests(admin)
    again = run_syncd(config, "sync")
    assert again.returncode == 0 and listings(admin) >= 1
    assert "note: remote deletions" not in again.stdout


def test_a_dry_run_reads_the_listing_when_due_but_leaves_it_due(tmp_path: Path, emu: Emulator,
                                                                admin: httpx.Client) -> None:
    """A dry run acts on no deletion, so it does not count as a check: the next sync still makes it."""
    config, drop = synced(tmp_path, emu)
    victim = next(v for v in admin_videos(admin) if v["name"] == "a.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    clear_requests(admin)
    quiet = run_syncd(config, "sync", "--dry-run")
    assert quiet.returncode == 0 and listings(admin) == 0 and "0 change(s) planned" in quiet.stdout

    checked = run_syncd(config, "sync", "--dry-run", "--check-deletions")
    assert checked.returncode == 0 and listings(admin) >= 1
    assert f"would remote video {victim['video_id']} was deleted: move to trash" in checked.stdout, checked.stdout
    assert (drop / "a.mp4").exists()
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.listing_read((catalog.listing_read_at() or 0) - 7200)
    clear_requests(admin)
    assert run_syncd(config, "sync").returncode == 0 and listings(admin) >= 1
    assert (drop / ".syncd-trash" / "a.mp4").exists()


def test_memories_a_second_sync_lists_nothing_until_asked(tmp_path: Path,
                                                          memu: MemoriesEmulator) -> None:  # noqa: F811
    drop = tmp_path / "drop"
    make_clip(drop / "cam1" / "gate.mp4", seed=1)
    make_clip(drop / "cam1" / "yard.mp4", seed=2)
    config = mem_config(tmp_path, memu)
    first = run_syncd(config, "sync", "--wait", "--timeout", "60")
    assert first.returncode == 0, first.stdout + first.stderr
    before = len(calls(memu, "list_videos"))

    again = run_syncd(config, "sync")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(calls(memu, "list_videos")) == before  # no listing page at all, not even for the marks
    assert "note: remote deletions last checked" in again.stdout

    gate = next(v for v in memu.admin_videos() if v["filename"] == "gate.mp4")
    memu.admin_delete_video(gate["video_no"])
    checked = run_syncd(config, "sync", "--check-deletions")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(calls(memu, "list_videos")) > before
    assert not (drop / "cam1" / "gate.mp4").exists() and (drop / "cam1" / "yard.mp4").exists()
    kinds = Counter(r["path"].rsplit("/", 1)[-1] for r in memu.requests())
    assert kinds["delete_videos"] == 0  # the remote deleted it; syncd only followed


def test_one_rule_says_when_the_listing_is_due_for_sync_and_the_daemon() -> None:
    """``sync`` asks with the catalog's wall-clock time (None: never read); the daemon with
    its monotonic time of the last listing (-inf: none yet this run)."""
    assert listing_due(None, 3600, 1e9)
    assert listing_due(float("-inf"), 3600, 12.5)
    assert not listing_due(100.0, 3600, 100.0 + 3599.9)
    assert listing_due(100.0, 3600, 100.0 + 3600)
