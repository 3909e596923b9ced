"""Scale (issue 15): work in proportion to change, counted, never timed. The engine
in-process against the emulator, real folders; the synced state is reached through
the emulator's ``videos/register`` admin call and ``Catalog.link_finished``."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from syncd.store.catalog import Catalog
from syncd.config import Config, load_config
from syncd.emulator.mikshi import Emulator
from syncd.models import Plan
from syncd.sync import engine as engine_module
from syncd.sync.engine import Engine, EngineOptions, file_statuses
from syncd.sync.planner import Settings, Snapshot, plan
from syncd.sync.report import status_overview
from syncd.ui.app import create_app
from syncd.remote.facts import MIKSHI_PROCESSING_STEPS as PROCESSING_STEPS
from syncd.remote.mikshi import MikshiClient
from syncd.sync.scan import ScanProgress
from tests.conftest import (
    FAST_RETRY,
    KEY,
    admin_videos,
    clear_requests,
    register_videos,
    run_syncd,
    syncd_env,
    wait_for,
    write_config,
    write_random,
)
from tests.service.test_daemon import SyncdDaemon, daemon_config, plain_folders, status_json


def synced_tree(tmp_path: Path, emu: Emulator, admin: httpx.Client, files: int, *, mirrored: bool = True) -> Config:
    """``files`` small files, catalogued, on the remote and finished, in nested folders.
    ``mirrored``: the first pass (its complete listing read and recorded) mirrors every
    video (a details request and sidecars each: most of the set-up's time); without it the
    pass is a dry run, enough for a test whose own passes are dry runs too."""
    drop = tmp_path / "drop"
    for i in range(files):
        path = drop / f"cam{i // 100:02d}" / f"clip{i:05d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"clip {i}\n".encode())
    folders = [{"path": str(drop), "collections": "none", "pipelines": []}]
    config = load_config(write_config(tmp_path, emu.base_url, folders), {"SYNCD_TEST_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        Engine(EngineOptions.from_config(config), catalog, remote).observe()
        records = catalog.files()
        ids = register_videos(admin, [(f.rel_path, f.path.read_bytes()) for f in records])
        catalog.link_finished([(f.sha256 or "", v, f.rel_path) for f, v in zip(records, ids, strict=True)],
                              PROCESSING_STEPS)
        catalog.set_meta("adopt_remote", "0")
        # Planned already, as by the real pass after a recovery: none is changed any more.
        catalog.plan_dirty_done([f.sha256 or "" for f in records])
        # The first pass mirrors every video once (details, sidecars, full text).
        engine = Engine(EngineOptions.from_config(config), catalog, remote, dry_run=not mirrored)
        assert engine.run_pass().plan.actions == []
    return config


def top_level(sql: str, seen: Counter[str]) -> None:
    """Count a statement syncd sent; not what SQLite runs inside one, which it reports with
    a leading ``--`` (a trigger's statements, per row changed; a full-text table's lookups,
    per row read): those are a statement's own rows, not queries."""
    if not sql.startswith("--"):
        seen.update([" ".join(sql.split())[:80]])


def statements(config: Config, emu: Emulator, what: str) -> Counter[str]:
    """SQL statements a fresh process's unchanged pass (or status) sends, by kind."""
    seen: Counter[str] = Counter()
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        catalog.db.conn.set_trace_callback(lambda sql: top_level(sql, seen))
        if what == "pass":
            report = Engine(EngineOptions.from_config(config), catalog, remote).run_pass()
            assert report.plan.actions == [] and report.hashed == 0
        elif what == "status":
            overview = status_overview(config, catalog)
            assert overview.counts == Counter(done=overview.total) and overview.pending == []
        else:
            assert {s.state for s in file_statuses(config, catalog)} == {"done"}
    return seen


def ui_statements(config: Config) -> Counter[str]:
    """SQL statements the web UI's status page (refreshed every 10 s) sends."""
    seen: Counter[str] = Counter()
    app = create_app(config, open_remote=None)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        app.state.ui.catalog.db.conn.set_trace_callback(lambda sql: seen.update([" ".join(sql.split())[:80]]))
        page = client.get("/status.json").json()
        assert page["counts"] == {"done": page["total"]} and page["pending"] == []
    return seen


class Planned:
    """Counts what reaches the planner: the snapshots ``plan`` is called with."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.snapshots: list[Snapshot] = []
        monkeypatch.setattr(engine_module, "plan", self)

    def __call__(self, snap: Snapshot, settings: Settings) -> Plan:
        self.snapshots.append(snap)
        return plan(snap, settings)


def test_unchanged_pass_and_status_issue_no_per_file_queries(tmp_path: Path, emu: Emulator,
                                                              admin: httpx.Client) -> None:
    # Three times the files and subfolders (mirrored in set-up: its cost is per file).
    small = synced_tree(tmp_path / "small", emu, admin, 200)
    large = synced_tree(tmp_path / "large", emu, admin, 600)
    # The emulator is shared: the small tree's catalog keeps a listing read before the large
    # tree's videos existed. Both brought up to date first (and their periodic writes done
    # alike), its listing pass inserts no row either.
    statements(small, emu, "pass"), statements(large, emu, "pass")
    for what in ("pass", "status"):
        few, many = statements(small, emu, what), statements(large, emu, what)
        assert sum(many.values()) == sum(few.values()), (what, many - few)
        assert sum(few.values()) < 150, few.most_common(5)
    few, many = ui_statements(small), ui_statements(large)
    assert sum(many.values()) == sum(few.values()), many - few


def test_the_planner_gets_only_what_changed(tmp_path: Path, emu: Emulator, admin: httpx.Client,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An unchanged pass hands the planner no file and no content; a rewritten file, a
    deleted one and a new one reach it, and nothing else of the 2,000. Dry runs: the
    mirror, which would fetch 2,000 videos' details, is not what is counted."""
    config = synced_tree(tmp_path, emu, admin, 2000, mirrored=False)
    planned = Planned(monkeypatch)
    drop = config.folders[0].path
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        assert Engine(EngineOptions.from_config(config), catalog, remote, dry_run=True).run_pass().plan.actions == []
        snap = planned.snapshots[-1]
        assert (len(snap.files), len(snap.contents)) == (0, 0)
        (drop / "cam03" / "clip00300.mp4").write_bytes(b"other bytes\n")
        (drop / "cam04" / "clip00400.mp4").unlink()
        (drop / "cam05" / "new.mp4").write_bytes(b"a new clip\n")
        report = Engine(EngineOptions.from_config(config), catalog, remote, dry_run=True).run_pass()
        snap = planned.snapshots[-1]
        assert sorted((f.rel_path, f.present) for f in snap.files) == [
            ("cam03/clip00300.mp4", True), ("cam04/clip00400.mp4", False), ("cam05/new.mp4", True)]
        assert len(snap.contents) == 4  # the rewritten file's old and new bytes, the deleted, the new
        kinds = Counter(type(a).__name__ for a in report.plan.actions)
        assert kinds == Counter(Upload=2, DeleteRemote=2), report.plan.actions


def test_status_imports_no_heavy_modules(tmp_path: Path) -> None:
    """``syncd status`` starts fast: it loads no HTTP client, numpy, PyAV, Prometheus
    client, scheduler or engine (they cost most of a start-up)."""
    config = write_config(tmp_path, "http://127.0.0.1:9")
    heavy = ["numpy", "av", "prometheus_client", "apscheduler", "httpx", "watchdog", "sqlite_utils",
             "syncd.sync.engine"]
    script = (f"import sys; from syncd.cli.main import main; code = main(['-c', {str(config)!r}, 'status']); "
              f"print(code, [m for m in {heavy!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", script], env=syncd_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"


def test_an_idle_daemon_polls_no_listing_between_deletion_checks(tmp_path: Path, emu: Emulator,
                                                                 admin: httpx.Client) -> None:
    """Polls read what is in flight (nothing, once every video is done); the complete
    listing waits for ``schedule.deletion_check`` (1 h by default)."""
    drop = tmp_path / "drop"
    for i in range(3):
        write_random(drop / f"clip{i}.mp4", 20_000, seed=i)
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop), schedule={"remote_poll": "1s"})
    config.write_text(config.read_text() + "log_level: debug\n")  # to see each quiet pass
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: [r["state"] for r in status_json(config)] == ["done"] * 3, 60, "done", daemon.log)
        wait_for(lambda: "quiet pass" in daemon.log(), 60, "a quiet pass", daemon.log)
        clear_requests(admin)
        quiet = daemon.log().count("quiet pass")
        wait_for(lambda: daemon.log().count("quiet pass") >= quiet + 4, 60, "four more polls", daemon.log)
        listings = [r for r in admin.get("/requests").json() if "/videos/list" in r["path"]]
        assert listings == []
        assert daemon.stop() == 0
    assert "remote deletion check every 1h" in daemon.log()


def test_remote_deletions_are_found_on_the_deletion_check_schedule(tmp_path: Path, emu: Emulator,
                                                                   admin: httpx.Client) -> None:
    """The guards are those of any complete listing: the deleted video is gone from it and
    answers 404; then its file goes to the trash (the default ``on_remote_delete``)."""
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 20_000, seed=1)
    write_random(drop / "b.mp4", 20_000, seed=2)
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop),
                           schedule={"remote_poll": "1s", "deletion_check": "2s"})
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: [r["state"] for r in status_json(config)] == ["done"] * 2, 60, "done", daemon.log)
        victim = next(v for v in admin_videos(admin) if v["name"] == "a.mp4")
        admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
        wait_for(lambda: not (drop / "a.mp4").exists(), 60, "the remote deletion", daemon.log)
        assert (drop / "b.mp4").exists()
        assert daemon.stop() == 0
    assert "last checked never" not in run_syncd(config, "status").stdout


class Killed(Exception):
    """Stands in for a kill -9 part way through hashing."""


def test_a_long_first_pass_commits_in_batches_and_reports_progress(tmp_path: Path, emu: Emulator) -> None:
    drop = tmp_path / "drop"
    for i in range(2500):
        (drop / f"cam{i // 500}").mkdir(parents=True, exist_ok=True)
        (drop / f"cam{i // 500}" / f"clip{i:05d}.mp4").write_bytes(f"clip {i}\n".encode())
    folders = [{"path": str(drop), "collections": "none", "pipelines": []}]
    config = load_config(write_config(tmp_path, emu.base_url, folders), {"SYNCD_TEST_KEY": KEY})
    seen: list[tuple[int, int, int, int]] = []

    def killed_at_1500(p: ScanProgress) -> None:
        seen.append((p.files_seen, p.to_hash, p.hashed, p.bytes_hashed))
        if p.hashed == 1500:
            raise Killed

    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        with pytest.raises(Killed):
            Engine(EngineOptions.from_config(config), catalog, remote, on_progress=killed_at_1500).observe()
        assert seen[0] == (2500, 2500, 0, 0)
        assert seen[-1][2] == 1500 and seen[-1][3] == sum(len(f"clip {i}\n") for i in range(1500))
        assert len(catalog.files()) == 1000  # one batch committed, the rest lost with the "kill"
        progress: list[ScanProgress] = []
        Engine(EngineOptions.from_config(config), catalog, remote, on_progress=progress.append).observe()
        assert progress[-1].to_hash == 1500 and progress[-1].hashed == 1500  # only what was lost
        assert len(catalog.files()) == 2500
