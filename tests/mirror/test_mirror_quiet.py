"""A one-shot `syncd sync` over an unchanged, mirrored library skips the mirror's check
of every video's rows and sidecars (issue 15): the catalog records the generation at
which the mirror was last complete. Counted, not timed: SQL statements through SQLite's
trace callback, requests in the emulator's log."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.config import Config
from syncd.emulator.mikshi import Emulator
from syncd.mirror.sidecars import SidecarLayout
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions, SyncOutcome
from tests.conftest import FAST_RETRY, KEY, clear_requests
from tests.sync.test_scale import synced_tree

DETAILS = "/api/backend/v1/developer/videos/get-video-details"


def fresh_sync(config: Config, emu: Emulator, *, check_deletions: bool = False,
               seen: Counter[str] | None = None) -> SyncOutcome:
    """What one `syncd sync` process does: a new catalog connection, remote and engine."""
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        if seen is not None:
            catalog.db.conn.set_trace_callback(lambda sql: seen.update([" ".join(sql.split())[:80]]))
        return Engine(EngineOptions.from_config(config), catalog, remote).sync(check_deletions=check_deletions)


def requests_to(admin: httpx.Client, path: str) -> int:
    return sum(1 for r in admin.get("/requests").json() if r["path"] == path)


def test_an_unchanged_sync_skips_the_mirror_check_whatever_the_library_size(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    counts = []
    for files in (200, 400):
        config = synced_tree(tmp_path / str(files), emu, admin, files)  # mirrored once, listing read
        clear_requests(admin)
        seen: Counter[str] = Counter()
        outcome = fresh_sync(config, emu, seen=seen)
        assert outcome.overview.counts == Counter(done=files) and not outcome.not_done
        assert outcome.reports[-1].mirror is not None and outcome.reports[-1].mirror.written == []
        assert requests_to(admin, DETAILS) == 0
        assert not [sql for sql in seen if "FROM mirror_files" in sql or "FROM mirror_videos" in sql], sorted(seen.items())
        counts.append(sum(seen.values()))
    assert counts[0] == counts[1] and counts[0] < 60, counts


def test_a_deleted_sidecar_comes_back_with_the_next_complete_listing(tmp_path: Path, emu: Emulator,
                                                                     admin: httpx.Client) -> None:
    config = synced_tree(tmp_path, emu, admin, 20)
    sidecar = SidecarLayout().paths(config.folders[0].path / "cam00" / "clip00003.mp4").json
    assert sidecar.exists()
    sidecar.unlink()
    fresh_sync(config, emu)  # the catalog did not change: no sidecar is looked at
    assert not sidecar.exists()
    clear_requests(admin)
    outcome = fresh_sync(config, emu, check_deletions=True)  # a complete listing: every sidecar checked
    assert sidecar.exists()
    assert outcome.reports[-1].mirror is not None and str(sidecar) in outcome.reports[-1].mirror.written
    assert requests_to(admin, DETAILS) == 0  # rewritten from the stored details


def test_a_catalog_change_brings_the_check_back(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """Any change a decision reads (here: a file the user deleted) means a full check."""
    config = synced_tree(tmp_path, emu, admin, 20)
    drop = config.folders[0].path
    edited = SidecarLayout().paths(drop / "cam00" / "clip00004.mp4").json
    edited.write_text("{}")
    (drop / "cam00" / "clip00005.mp4").unlink()
    fresh_sync(config, emu)
    assert edited.read_text() != "{}"  # repaired by the check the change brought back


def mirror_run_cost(config: Config, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, int]:
    """In one process (a daemon's engine): its first run checks every sidecar; then one new
    clip is uploaded, which changes the catalog, and the mirror runs again. That run's cost:
    (SQLite VM instructions, i.e. rows visited; mirror rows and file statuses read; sidecars
    stat'ed)."""
    from syncd.mirror import mirror as mirror_module
    drop = config.folders[0].path
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(EngineOptions.from_config(config), catalog, remote)
        engine.run_pass()  # as a daemon starts: the listing read, every sidecar checked
        (drop / "cam00" / "new.mp4").write_bytes(b"one new clip among many\n")
        vm, read, stats = [0], [0], [0]
        real_run, real_stat = engine.mirror.run, os.stat
        real_files, real_videos = Catalog.mirror_files, Catalog.mirror_videos

        def tick() -> int:
            vm[0] += 1
            return 0

        def counted_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            stats[0] += 1
            return real_stat(path, *args, **kwargs)

        def counted_files(self: Catalog, *args: Any, **kwargs: Any) -> Any:
            rows = real_files(self, *args, **kwargs)
            read[0] += len(rows)
            return rows

        def counted_videos(self: Catalog, *args: Any, **kwargs: Any) -> Any:
            rows = real_videos(self, *args, **kwargs)
            read[0] += len(rows)
            return rows

        def run(*args: Any, **kwargs: Any) -> Any:
            catalog.db.conn.set_progress_handler(tick, 1)
            with monkeypatch.context() as counting:
                counting.setattr(mirror_module.os, "stat", counted_stat)
                counting.setattr(Catalog, "mirror_files", counted_files)
                counting.setattr(Catalog, "mirror_videos", counted_videos)
                try:
                    return real_run(*args, **kwargs)
                finally:
                    catalog.db.conn.set_progress_handler(None, 1)

        monkeypatch.setattr(engine.mirror, "run", run)
        report = engine.run_pass(with_listing=False)
        assert [type(a).__name__ for a in report.plan.actions] == ["Upload"]
        assert vm[0] > 0, "the mirror ran"
    return vm[0], read[0], stats[0]


def test_a_mirror_run_after_one_change_reads_that_change_not_the_library(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon's mirror run after a change covers the contents it changed (``mirror_dirty``,
    kept by triggers) and the videos waiting for a retry: it read every file, content,
    status and mirror row and stat'ed every sidecar (at 2,000 videos: 0.54 CPU-s a run)."""
    few = mirror_run_cost(synced_tree(tmp_path / "few", emu, admin, 100), emu, monkeypatch)
    many = mirror_run_cost(synced_tree(tmp_path / "many", emu, admin, 400), emu, monkeypatch)
    assert few == many, (few, many)
    assert many[2] == 0 and many[1] < 10, many  # the new clip is not processed yet: nothing to write
