"""A process's verification of every sidecar goes a slice of contents at a time, and the
mirror's listing check covers the videos whose entry differs (issue 15: a whole run over
1,000,000 videos is ~5 minutes a file would wait behind). Counted, not timed: sidecars
stat'ed by the mirror, rows the catalog's readers return, requests in the emulator's log."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.config import Config
from syncd.emulator.mikshi import Emulator
from syncd.mirror import mirror as mirror_module
from syncd.mirror.sidecars import SidecarLayout
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions, PassReport
from tests.conftest import FAST_RETRY, KEY, clear_requests
from tests.mirror.test_mirror_quiet import DETAILS, requests_to
from tests.sync.test_scale import synced_tree

SLICE = 25


def options(config: Config, slice_size: int = SLICE) -> EngineOptions:
    base = EngineOptions.from_config(config)
    return dataclasses.replace(base, mirror=dataclasses.replace(base.mirror, slice=slice_size))


@dataclasses.dataclass
class Cost:
    stats: int = 0  # sidecars stat'ed by the mirror
    rows: int = 0  # file statuses, file and content rows, mirror rows read
    compared: int = 0  # SQLite VM instructions of comparing the listing with the details


def counted_runs(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Cost]:
    """Count each of the engine's mirror runs from now on: one ``Cost`` a run."""
    costs: list[Cost] = []
    real_run, real_stat = engine.mirror.run, os.stat

    def counted(name: str, cost: Cost) -> Callable[..., Any]:
        real = getattr(Catalog, name)

        def reader(self: Catalog, *args: Any, **kwargs: Any) -> Any:
            result = real(self, *args, **kwargs)
            if name == "iter_present":
                def rows() -> Iterator[Any]:
                    for row in result:
                        cost.rows += 1
                        yield row
                return rows()
            cost.rows += len(result)
            return result
        return reader

    def run(*args: Any, **kwargs: Any) -> Any:
        cost = Cost()
        costs.append(cost)

        def stat(path: Any, *a: Any, **k: Any) -> os.stat_result:
            cost.stats += 1
            return real_stat(path, *a, **k)

        real_differ = Catalog.listing_differs_from_details_of

        def differ(self: Catalog, *a: Any, **k: Any) -> Any:
            def tick() -> int:
                cost.compared += 1
                return 0
            self.db.conn.set_progress_handler(tick, 1)
            try:
                return real_differ(self, *a, **k)
            finally:
                self.db.conn.set_progress_handler(None, 1)

        with monkeypatch.context() as patch:
            patch.setattr(Catalog, "listing_differs_from_details_of", differ)
            patch.setattr(mirror_module.os, "stat", stat)
            for name in ("iter_present", "files", "contents", "files_of_contents", "contents_of",
                         "mirror_files", "mirror_videos"):
                patch.setattr(Catalog, name, counted(name, cost))
            return real_run(*args, **kwargs)

    monkeypatch.setattr(engine.mirror, "run", run)
    return costs


def last_in_order(config: Config) -> Path:
    """The sidecar of the content the verification reaches last (sha256 order)."""
    with Catalog.open(config.state_dir) as catalog:
        file = max(catalog.files(), key=lambda f: f.sha256 or "")
    return SidecarLayout().paths(file.path).json


def test_the_first_runs_check_of_every_sidecar_goes_a_slice_at_a_time(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon's process: each mirror run that yields (the daemon has work) checks one
    slice of sidecars; run after run they cover every one, and a sidecar edited by hand
    in the last slice is repaired by the last run, not before. No run stats more than a
    slice's sidecars, whatever the library size."""
    files = 120
    config = synced_tree(tmp_path, emu, admin, files)
    edited = last_in_order(config)
    right = edited.read_text()
    edited.write_text("{}")
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(options(config), catalog, remote)
        costs = counted_runs(engine, monkeypatch)
        report: PassReport | None = None
        for n in range(files // SLICE + 3):
            # The first pass reads the listing (a mirror run is due); the rest: the verification goes on.
            report = engine.run_pass(with_listing=n == 0, mirror_yield=lambda: True)
            assert report.mirror is not None
            if not report.mirror.unfinished:
                break
            assert edited.read_text() == "{}"
        assert report is not None and report.mirror is not None and not report.mirror.unfinished
        assert catalog.mirror_complete() is not None  # every sidecar checked: complete
    assert edited.read_text() == right
    assert len(costs) == -(-files // SLICE), [(c.stats, c.rows) for c in costs]  # five slices of 25
    # A slice's sidecars (a stat each) and its rows: files, statuses and contents, mirror
    # and sidecar rows (each read twice), mirror rows again for the retry times: 7 a video.
    assert max(c.stats for c in costs) <= SLICE + 2, [c.stats for c in costs]
    assert max(c.rows for c in costs) <= 7 * SLICE, [c.rows for c in costs]


def test_a_one_shot_sync_checks_every_slice_and_a_quiet_one_after_it_skips_the_mirror(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    config = synced_tree(tmp_path, emu, admin, 60)
    edited = last_in_order(config)
    edited.write_text("{}")
    (config.folders[0].path / "cam00" / "clip00005.mp4").unlink()  # a catalog change: the mirror runs
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        outcome = Engine(options(config, 7), catalog, remote).sync()
        assert outcome.reports[-1].mirror is not None and not outcome.reports[-1].mirror.unfinished
        assert catalog.mirror_complete() is not None
    assert edited.read_text() != "{}"
    seen: Counter[str] = Counter()
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        catalog.db.conn.set_trace_callback(lambda sql: seen.update([" ".join(sql.split())[:80]]))
        Engine(options(config, 7), catalog, remote).sync()
    assert not [sql for sql in seen if "FROM mirror_files" in sql or "FROM mirror_videos" in sql], sorted(seen)


def listing_check_cost(config: Config, emu: Emulator, admin: httpx.Client,
                       monkeypatch: pytest.MonkeyPatch) -> Cost:
    """In one process, once every sidecar is checked: one video renamed on the remote, then
    a pass that reads the listing with the mirror's check due. That run's cost."""
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(options(config), catalog, remote)
        engine.run_pass()  # the listing read, every sidecar checked
        video_id = next(iter(catalog.mirror_videos()))
        admin.patch(f"/videos/{video_id}", json={"name": "renamed on the remote"})
        engine.mirror._next_check = 0.0  # mirror.interval has passed
        clear_requests(admin)
        costs = counted_runs(engine, monkeypatch)
        report = engine.run_pass()
        assert len(costs) == 1
        cost = costs[0]
        assert report.listing_ok and report.mirror is not None and report.mirror.written
        assert requests_to(admin, DETAILS) == 1  # that video's details, pulled again
        sidecars = [p for p in report.mirror.written if p.endswith(".syncd.json")]
        assert len(sidecars) == 1 and "renamed on the remote" in Path(sidecars[0]).read_text()
    return cost


def test_a_listing_check_reads_the_rows_of_the_videos_that_differ(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check against the listing (every mirror.interval) read every file, status and
    mirror row and stat'ed every sidecar; now the videos whose entry differs, found among
    those whose entry changed since the last check (``mirror_listing_dirty``), not by
    comparing every listing row with its details."""
    few = listing_check_cost(synced_tree(tmp_path / "few", emu, admin, 50), emu, admin, monkeypatch)
    many = listing_check_cost(synced_tree(tmp_path / "many", emu, admin, 200), emu, admin, monkeypatch)
    assert few == many, (few, many)
    assert many.stats <= 2 and many.rows <= 10 and many.compared > 0, many


def test_the_first_mirror_run_after_a_first_sync_takes_the_changed_contents_a_slice_at_a_time(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a first sync every content is changed and none mirrored (at 1,000,000 files
    the whole set in memory was 4.1 GB). A run covers them a slice at a time, each slice
    done with once covered: a run stopped part way (here: it gives way before a pull)
    leaves the rest to the next, which pulls no video twice."""
    files = 120
    config = synced_tree(tmp_path, emu, admin, files, mirrored=False)
    scopes: list[int] = []
    real_cover = mirror_module.Mirror._cover

    def cover(self: mirror_module.Mirror, scope: Any, *args: Any) -> None:
        scopes.append(len(scope))
        real_cover(self, scope, *args)

    monkeypatch.setattr(mirror_module.Mirror, "_cover", cover)
    clear_requests(admin)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        assert len(catalog.mirror_changed_slice("", 1000)) == files
        engine = Engine(options(config), catalog, remote)
        pulls = 0

        def busy() -> bool:  # the daemon has work after the 40th pull
            nonlocal pulls
            pulls += 1
            return pulls > 40 + 1  # asked before each pull, and once between two slices

        first = engine.run_pass(mirror_yield=busy).mirror
        assert first is not None and first.unfinished
        left = len(catalog.mirror_changed_slice("", 1000))
        assert left == files - SLICE  # the first slice is done with; the second, cut short, is not
        second = engine.run_pass(mirror_yield=lambda: False).mirror
        assert second is not None and not second.unfinished
        assert catalog.mirror_changed_slice("", 1000) == []
    # Every video's details asked for once; every file has its sidecar.
    assert requests_to(admin, DETAILS) == files
    assert all(SidecarLayout().paths(path).json.is_file()
               for path in (config.folders[0].path).rglob("*.mp4"))
    # No run read more than a slice of contents (and a verification slice beside it).
    assert max(scopes) <= 2 * SLICE, scopes


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_a_listing_check_with_many_entries_changed_covers_them_a_slice_at_a_time(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch, busy: bool) -> None:
    """Half the videos renamed on the remote at once: the check against the listing pulls
    each one's details again and rewrites its sidecar, a slice of differing entries at a
    time (they were all covered in the run's first slice: a million at once, if the remote
    changed a million entries). A busy daemon's run gives way after a slice, and the runs
    after it, with no listing read, go on with the check."""
    files, renamed = 120, 60
    config = synced_tree(tmp_path, emu, admin, files)
    scopes: list[int] = []
    real_cover = mirror_module.Mirror._cover

    def cover(self: mirror_module.Mirror, scope: Any, *args: Any) -> None:
        scopes.append(len(scope))
        real_cover(self, scope, *args)

    written: list[str] = []
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(options(config), catalog, remote)
        engine.run_pass()  # the listing read, every sidecar checked
        for video_id in sorted(catalog.mirror_videos())[:renamed]:
            admin.patch(f"/videos/{video_id}", json={"name": f"renamed {video_id}"})
        engine.mirror._next_check = 0.0  # mirror.interval has passed
        clear_requests(admin)
        monkeypatch.setattr(mirror_module.Mirror, "_cover", cover)
        asked = 0

        def daemon_has_work() -> bool:  # asked before each pull, and once between two slices
            nonlocal asked
            asked += 1
            return busy and asked > SLICE  # a slice's pulls, then it gives way

        for n in range(renamed // SLICE + 3):
            asked = 0
            report = engine.run_pass(with_listing=n == 0, mirror_yield=daemon_has_work)
            assert report.mirror is not None
            written += [p for p in report.mirror.written if p.endswith(".syncd.json")]
            if len(written) >= renamed:
                break
        assert n == (renamed // SLICE if busy else 0)  # one run, or one a slice
    assert requests_to(admin, DETAILS) == renamed
    sidecars = [Path(p).read_text() for p in written]
    assert len(sidecars) == renamed and all('"renamed ' in text for text in sidecars)
    assert len(scopes) >= renamed // SLICE and max(scopes) <= SLICE, scopes
