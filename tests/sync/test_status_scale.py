"""``syncd status`` at a million files (issue 15): the catalog keeps every file's done
state (``files.done``, by triggers, under each folder's rule the engine records) and each
folder's last scan summary, so ``status`` counts an index and walks no folder. Checked
against the state computed afresh, through a realistic life against the emulator."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from syncd.cli.main import main
from syncd.config import Config, load_config
from syncd.emulator.mikshi import Emulator
from syncd.remote.facts import backend_facts
from syncd.remote.mikshi import MikshiClient
from syncd.store import catalog as catalog_module
from syncd.store.catalog import Catalog, stored_rule_matches
from syncd.sync.engine import Engine, EngineOptions
from syncd.sync.report import done_rules, file_statuses, status_overview
from tests.conftest import FAST_RETRY, KEY, emulator_config, wait_for, write_config, write_random
from tests.sync.test_scale import synced_tree


def agree(config: Config, catalog: Catalog) -> Counter[str]:
    """The stored done state is the computed one, file by file, and ``status`` counts (from
    the stored state) what a status built for every file counts. Returns those counts."""
    stored = catalog.done_rules()
    for rule in done_rules(config.folders, backend_facts(config.remote.backend)):
        assert stored_rule_matches(stored, rule), (rule, stored)
        assert catalog.done_disagreements(rule) == []
    every = Counter(s.state for s in file_statuses(config, catalog))
    assert status_overview(config, catalog).counts == every
    return every


def settle(engine: Engine, config: Config, catalog: Catalog, seen: Counter[str]) -> Counter[str]:
    """Passes until every file is done or failed, checking the stored state after each."""
    last: Counter[str] = Counter()

    def one_pass() -> bool:
        engine.run_pass()
        last.clear()
        last.update(agree(config, catalog))
        seen.update(last.keys())
        return set(last) <= {"done", "failed"}

    wait_for(one_pass, 90, "every file done or failed")
    return last


@pytest.fixture
def failing_emu(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(emulator_config(tmp_path / "emu", fail_name_glob="*broken*", fail_pipeline="analyse")) as emu:
        yield emu


def old_fill_slices(self: Catalog, processing: Sequence[str], pipelines: Mapping[str, Sequence[str]], *,
                    marks: Sequence[str] | None, every: bool) -> None:
    """``Catalog.fill_slices`` of a syncd with no ``plan_dirty`` table: every content at work."""
    self._fill_slices_from([("SELECT sha256 FROM contents WHERE state = 'new'", []),
                            *self._at_work(processing, pipelines, marks)])


def test_the_stored_done_state_follows_uploads_steps_collections_rewrites_and_a_migration(
        tmp_path: Path, failing_emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = tmp_path / "drop"
    for rel, seed in {"cam1/a.mp4": 1, "cam1/broken.mp4": 2, "cam2/b.mp4": 3, "loose.mp4": 4}.items():
        write_random(drop / rel, 40_000 + seed, seed=seed)
    path = write_config(tmp_path, failing_emu.base_url, upload={"max_attempts": 2, "retry_backoff": "0.2s"})
    config = load_config(path, {"SYNCD_TEST_KEY": KEY})
    seen: Counter[str] = Counter()

    # An older syncd: no done state kept, no scan summary (the schema before the migration).
    old = catalog_module.MIGRATIONS[:catalog_module.MIGRATIONS.index(catalog_module._m_status_at_scale)]
    # Its listing pass and poll are this syncd's, which keep the listing in a table and when
    # each video was asked in a column (made here; their own migrations find them there):
    # the same number of migrations, so the upgrade runs the rest.
    last = old[-1]
    old = [*old[:-1], lambda db: (last(db), catalog_module._m_listing(db), catalog_module._m_polled_at(db))[0]]
    with monkeypatch.context() as old_syncd:
        old_syncd.setattr(catalog_module, "MIGRATIONS", old)
        old_syncd.setattr(Catalog, "set_done_rules", lambda self, rules: None)
        old_syncd.setattr(Catalog, "set_processing_rule", lambda self, steps: None)
        old_syncd.setattr(Catalog, "set_mark_rule", lambda self, steps: None)
        old_syncd.setattr(Catalog, "mirror_dirty_done", lambda self, shas: None)
        # Nor which listing entries changed since the mirror compared them: it compared all.
        every = Catalog.listing_differs_from_details_of
        old_syncd.setattr(Catalog, "listing_differs_from_details_of",
                          lambda self, changed=False, after="", limit=None: dict(
                              sorted((v, s) for v, s in every(self).items() if v > after)[:limit]))
        old_syncd.setattr(Catalog, "listing_compared", lambda self: None)
        old_syncd.setattr(Catalog, "mirror_changed_slice", lambda self, after, limit: [])  # its pass finishes no video
        old_syncd.setattr(Catalog, "plan_dirty_in", lambda self, folders: None)
        old_syncd.setattr(Catalog, "dirty_leaving", lambda self, folders: set())
        old_syncd.setattr(Catalog, "fill_slices", old_fill_slices)
        old_syncd.setattr(Catalog, "plan_dirty_done", lambda self, shas: None)
        old_syncd.setattr(Catalog, "record_collection_folders", lambda self, folders: None)
        old_syncd.setattr(Catalog, "record_scan_summary", lambda self, summary: None)
        with Catalog.open(config.state_dir) as catalog, MikshiClient(failing_emu.base_url, KEY, retry=FAST_RETRY) as remote:
            Engine(EngineOptions.from_config(config), catalog, remote).run_pass()  # uploads, nothing finished yet
            assert catalog.schema_version == len(old)

    with Catalog.open(config.state_dir) as catalog, MikshiClient(failing_emu.base_url, KEY, retry=FAST_RETRY) as remote:
        assert catalog.schema_version == len(catalog_module.MIGRATIONS)
        # Migrated, no pass yet: no rule recorded, so status tests every file (and agrees).
        assert catalog.done_rules() == {}
        assert status_overview(config, catalog).counts == Counter(s.state for s in file_statuses(config, catalog))
        engine = Engine(EngineOptions.from_config(config), catalog, remote)
        # Processing, pipelines, collection joins; broken.mp4's analyse fails for good.
        final = settle(engine, config, catalog, seen)
        assert final == Counter(done=3, failed=1)
        assert catalog.membership_counts() == {"cam1": 1, "cam2": 1}

        # Rewritten with other bytes: the path is not done until its new content is.
        write_random(drop / "cam1" / "a.mp4", 41_000, seed=9)
        engine.run_pass()
        assert agree(config, catalog)["done"] < 3
        # Moved to another subfolder: done once it joined that collection.
        (drop / "cam1").joinpath("b.mp4").write_bytes((drop / "cam2" / "b.mp4").read_bytes())
        (drop / "cam2" / "b.mp4").unlink()
        final = settle(engine, config, catalog, seen)
        assert final == Counter(done=3, failed=1)
        assert seen["done"] and seen["failed"] and set(seen) - {"done", "failed"}, seen


def test_status_walks_no_folder_and_sends_a_fixed_number_of_statements(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    def status_of(config: Config) -> tuple[list[str], int, list[str]]:
        """``syncd status`` in this process: its lines, its SQL statements, the folders it listed."""
        statements: list[str] = []
        listed: list[str] = []
        real_open, real_scandir = Catalog.open, os.scandir

        def traced(state_dir: Path) -> Catalog:
            catalog = real_open(state_dir)
            catalog.db.conn.set_trace_callback(statements.append)
            return catalog

        def scandir(target: str | os.PathLike[str] = ".") -> Iterator[os.DirEntry[str]]:
            listed.append(os.fspath(target))
            return real_scandir(target)

        with monkeypatch.context() as patched:
            patched.setattr(Catalog, "open", staticmethod(traced))
            patched.setattr(os, "scandir", scandir)
            main(["-c", str(config.state_dir.parent / "config.yaml"), "status"])
        return capfd.readouterr().out.splitlines(), len(statements), listed

    small = synced_tree(tmp_path / "small", emu, admin, 30)
    large = synced_tree(tmp_path / "large", emu, admin, 90)
    for config in (small, large):
        drop = config.folders[0].path
        (drop / "cam00" / "empty.mp4").write_bytes(b"")
        with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
            Engine(EngineOptions.from_config(config), catalog, remote).observe()  # records the scan summary
        # What status shows of the folder is what the last scan found: gone since, or a
        # subfolder that could no longer be read, status reports the recorded scan.
        (drop / "cam00" / "empty.mp4").unlink()
        shutil.rmtree(drop / "cam00")
    (lines, few, listed_small), (lines_large, many, listed_large) = status_of(small), status_of(large)
    assert few == many, "status sends as many statements at 30 files as at 90"
    assert listed_small == listed_large == [], "status lists no folder (the trash is empty)"
    drop = small.folders[0].path
    assert any(line.startswith(f"  ✓ {drop}: 30 file(s) tracked, 1 empty file(s) skipped (as of the last scan, ")
               for line in lines), lines
    assert any(line.startswith(f"  ✓ {large.folders[0].path}: 90 file(s) tracked, 1 empty") for line in lines_large)
