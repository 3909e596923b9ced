"""Quiet passes (issue 6, idle cost): what a pass may skip over a settled tree, and
what it must still do. The engine in-process against the emulator, real folders."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import httpx

from syncd.store.catalog import Catalog
from syncd.config import ScheduleConfig, load_config
from syncd.service.timers import rescan_trigger as _rescan_trigger
from syncd.emulator.mikshi import Emulator
from syncd.sync.engine import Engine, EngineOptions
from syncd.remote.mikshi import MikshiClient
from tests.conftest import FAST_RETRY, KEY, admin_videos, write_config, write_random


class Clock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def names(admin: httpx.Client) -> list[str]:
    return sorted(v["name"] for v in admin_videos(admin))


def plain(drop: Path) -> list[dict[str, object]]:
    return [{"path": str(drop), "collections": "none", "pipelines": []}]


def test_delete_grace_runs_out_on_a_pass_that_changes_nothing(tmp_path: Path, emu: Emulator,
                                                               admin: httpx.Client) -> None:
    """The catalog does not change while a vanished file's grace runs: the plan must
    still be made again once the grace is over (the planner's ``revisit_at``)."""
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 50_000, seed=1)
    write_random(drop / "b.mp4", 50_000, seed=2)
    config = load_config(write_config(tmp_path, emu.base_url, plain(drop)), {"SYNCD_TEST_KEY": KEY})
    clock = Clock()
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(EngineOptions.from_config(config), catalog, remote, delete_grace=60, clock=clock)
        assert not engine.sync(wait=True, timeout=60).failures
        assert names(admin) == ["a.mp4", "b.mp4"]
        (drop / "a.mp4").unlink()
        for _ in range(2):  # within the grace: nothing, however often
            report = engine.run_pass()
            assert report.plan.actions == [] and names(admin) == ["a.mp4", "b.mp4"]
        before = catalog.changes
        clock.offset += 61
        report = engine.run_pass()
        assert catalog.changes != before  # the deletion was recorded...
        assert [a.kind for a in report.plan.actions] == ["DeleteRemote"]
        assert names(admin) == ["b.mp4"]  # ...and carried out


def test_unchanged_folder_is_not_walked_but_still_guarded(tmp_path: Path, emu: Emulator,
                                                          admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 50_000, seed=1)
    config = load_config(write_config(tmp_path, emu.base_url, plain(drop)), {"SYNCD_TEST_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(EngineOptions.from_config(config), catalog, remote)
        engine.sync(wait=True, timeout=60)
        # The daemon vouches for a folder only when its watch saw no event; a file that
        # appears without one waits for the next full rescan.
        write_random(drop / "b.mp4", 50_000, seed=2)
        engine.run_pass(unchanged={drop})
        assert names(admin) == ["a.mp4"]
        # Vouched for or not, an unmounted folder is noticed and nothing in it is deleted.
        drop.rename(tmp_path / "unmounted")
        report = engine.run_pass(unchanged={drop})
        assert not report.scans[0].ok and "folder is missing" in report.problems[0]
        assert report.plan.actions == [] and names(admin) == ["a.mp4"]
        assert all(f.present for f in catalog.files())
        # Back, and vouched for again: a failed scan is never reused, so b.mp4 is found.
        (tmp_path / "unmounted").rename(drop)
        engine.run_pass(unchanged={drop})
        assert names(admin) == ["a.mp4", "b.mp4"]


def test_a_folder_with_unsettled_files_is_walked_again(tmp_path: Path, emu: Emulator,
                                                       admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    config = load_config(write_config(tmp_path, emu.base_url, plain(drop), upload={"settle_seconds": "30s"}),
                         {"SYNCD_TEST_KEY": KEY})
    clock = Clock()
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(EngineOptions.from_config(config), catalog, remote, clock=clock)
        write_random(drop / "a.mp4", 50_000, seed=1)
        engine.run_pass()
        assert names(admin) == []  # still settling
        clock.offset += 31  # no event comes when a file merely holds still
        engine.run_pass(unchanged={drop})
        assert names(admin) == ["a.mp4"]


def test_catalog_changes_see_another_connection(tmp_path: Path) -> None:
    with Catalog.open(tmp_path) as mine, Catalog.open(tmp_path) as other:
        before = mine.changes
        assert mine.changes == before
        other.set_meta("touched", "1")  # e.g. `syncd restore` from a shell
        assert mine.changes != before


def test_a_file_back_in_place_is_present_again(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """A rescan that finds exactly the recorded files writes nothing; one that finds a
    file recorded as missing (an unplugged disk's file, back) must record it present."""
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 50_000, seed=1)
    write_random(drop / "b.mp4", 50_000, seed=2)
    config = load_config(write_config(tmp_path, emu.base_url, plain(drop)), {"SYNCD_TEST_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(EngineOptions.from_config(config), catalog, remote, delete_grace=3600)
        engine.sync(wait=True, timeout=60)
        before = catalog.changes
        engine.observe()
        assert catalog.changes == before  # a quiet rescan writes no row
        aside = tmp_path / "b.mp4"
        (drop / "b.mp4").rename(aside)
        engine.observe()
        assert not catalog.file(drop, "b.mp4").present  # type: ignore[union-attr]
        aside.rename(drop / "b.mp4")  # same inode, size and mtime: only "present" differs
        engine.observe()
        assert catalog.file(drop, "b.mp4").present  # type: ignore[union-attr]
        assert names(admin) == ["a.mp4", "b.mp4"]


def test_rescan_is_phased_half_a_poll_away_from_the_polls() -> None:
    """The walk (rescan) and the listing (poll) each cost a few tenths of a CPU-second
    over 10,000 files; the rescan timer keeps them in different minutes."""
    now = datetime.datetime.now(datetime.UTC)
    trigger = _rescan_trigger(ScheduleConfig(rescan=600, remote_poll=120))
    first = trigger.get_next_fire_time(None, now)
    assert first is not None
    assert abs((first - now).total_seconds() - 660) < 5  # polls at 600 and 720: midway
    second = trigger.get_next_fire_time(first, first + datetime.timedelta(seconds=1))
    assert second is not None and (second - first).total_seconds() == 600
    # A poll slower than the rescan: still half a rescan out of step.
    slow = _rescan_trigger(ScheduleConfig(rescan=60, remote_poll=600)).get_next_fire_time(None, now)
    assert slow is not None and abs((slow - now).total_seconds() - 90) < 5
