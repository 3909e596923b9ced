"""A move is never a deletion (issue 11): against the emulator, with real files, both for
one-shot `syncd sync` run at once after the change and for the daemon.

Each scenario syncs a small tree first (settle 0, `sync --wait`), then switches to a
settle time longer than the time since the change (so the changed files are not
settled yet when the pass runs, which is what made today's code delete and re-upload),
changes the tree, and checks the emulator's request log: no `videos/delete` and no
upload initiation where the content did not change, the same video ids, collections
right; where the content changed, one upload of the final content and the superseded
video deleted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from syncd.emulator.mikshi import Emulator
from tests.conftest import (
    FAST_RETRY,
    KEY,
    MiB,
    admin_videos,
    clear_requests,
    collections,
    emulator_config,
    run_syncd,
    set_faults,
    syncd_env,
    wait_for,
    write_config,
    write_random,
)
from syncd.store.catalog import Catalog
from syncd.config import load_config
from syncd.sync.engine import Engine, EngineOptions, file_statuses
from syncd.remote.mikshi import MikshiClient
from syncd.sync.report import FileStatus
from tests.service.test_daemon import SyncdDaemon

KiB = 1024


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    """Quick processing and pipelines: these tests are about what syncd asks for, not when."""
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=0.05, pipeline_seconds=0.05)) as e:
        yield e


# ----------------------------------------------------------------------------- helpers
def requests(admin: httpx.Client) -> list[dict[str, Any]]:
    return list(admin.get("/requests").json())


def deletes(admin: httpx.Client) -> int:
    return sum(1 for r in requests(admin) if r["path"].endswith("/videos/delete"))


def initiations(admin: httpx.Client) -> int:
    return sum(1 for r in requests(admin)
               if r["path"].endswith("/multipart/initiate") or r["path"].endswith("/uploads/direct"))


def pipeline_starts(admin: httpx.Client) -> int:
    return sum(1 for r in requests(admin) if "/videos/" in r["path"] and r["path"].endswith("/initiate"))


def statuses(config: Path) -> list[FileStatus]:
    """What `syncd status --json` shows, read in-process (a subprocess per poll is slow)."""
    cfg = load_config(config, syncd_env(), require_key=False)
    with Catalog.open(cfg.state_dir) as catalog:
        return file_statuses(cfg, catalog)


def ids_by_path(config: Path) -> dict[str, str | None]:
    return {s.path: s.video_id for s in statuses(config)}


def set_config(config: Path, **upload_and_safety: Any) -> None:
    """Change settle/grace/wait in place, as a user editing config.yaml would."""
    data = yaml.safe_load(config.read_text())
    for key, value in upload_and_safety.items():
        section = "upload" if key == "settle_seconds" else "safety" if key in ("delete_grace", "delete_wait") \
            else "schedule"
        data.setdefault(section, {})[key] = value
    config.write_text(yaml.safe_dump(data))


def write_slowly(path: Path, data: bytes, chunks: int, pause: float, before_each: Callable[[int], None] = lambda i: None
                 ) -> None:
    """Write ``data`` in ``chunks`` pieces with ``pause`` seconds between them (a slow copy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // chunks)
    with open(path, "wb") as fh:
        for i in range(chunks):
            before_each(i)
            fh.write(data[i * step:(i + 1) * step])
            fh.flush()
            if i < chunks - 1:
                time.sleep(pause)


# ---------------------------------------------------------------------------- scenarios
@dataclass
class Scenario:
    name: str
    change: Callable[[Path, Path], None]  # (drop, other)
    moved: dict[str, str]  # new path (relative to tmp_path) → old path whose video it keeps
    collections: dict[str, list[str]] | None = None  # expected remote collections, if checked
    settle: float = 30.0  # settle_seconds while the change happens: longer than any `syncd sync` takes to start
    daemon_settle: float = 3.0  # the daemon's pass after the change runs 0.5 s later (debounce)
    files: dict[str, int] = field(default_factory=lambda: {"drop/cam1/a.mp4": 1, "drop/cam1/b.mp4": 2,
                                                            "drop/cam2/c.mp4": 3})
    new_content: str | None = None  # a path that ends with new bytes: one upload, old video deleted


def _rename(drop: Path, other: Path) -> None:
    os.rename(drop / "cam1" / "a.mp4", drop / "cam1" / "a-renamed.mp4")


def _rename_storm(drop: Path, other: Path) -> None:
    """Renames one after another, each landing while the previous ones are being looked at."""
    steps = [("cam1/a.mp4", "cam1/x.mp4"), ("cam1/b.mp4", "cam2/y.mp4"), ("cam2/c.mp4", "cam1/z.mp4"),
             ("cam1/x.mp4", "cam2/a2.mp4"), ("cam2/y.mp4", "cam1/b2.mp4")]
    for old, new in steps:
        os.rename(drop / old, drop / new)
        time.sleep(0.3)


def _across_subfolders(drop: Path, other: Path) -> None:
    os.rename(drop / "cam1" / "a.mp4", drop / "cam2" / "a.mp4")


def _across_folders(drop: Path, other: Path) -> None:
    (other / "cam1").mkdir(parents=True, exist_ok=True)
    os.rename(drop / "cam1" / "a.mp4", other / "cam1" / "a.mp4")


def _subfolder_rename(drop: Path, other: Path) -> None:
    os.rename(drop / "cam2", drop / "cam2-renamed")


def _copy_then_delete(drop: Path, other: Path) -> None:
    """What a file manager does across devices: copy (here over 3 s), then delete."""
    data = (drop / "cam1" / "a.mp4").read_bytes()
    write_slowly(other / "cam1" / "a.mp4", data, chunks=7, pause=0.5)
    (drop / "cam1" / "a.mp4").unlink()


def _delete_while_copying(drop: Path, other: Path) -> None:
    """The original goes while its copy is still being written."""
    source = drop / "cam1" / "a.mp4"
    data = source.read_bytes()
    write_slowly(other / "cam1" / "a.mp4", data, chunks=7, pause=0.5,
                 before_each=lambda i: source.unlink() if i == 1 else None)


def _delete_and_recreate(drop: Path, other: Path) -> None:
    path = drop / "cam1" / "a.mp4"
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)


def _touch(drop: Path, other: Path) -> None:
    os.utime(drop / "cam1" / "a.mp4")


def _rewrite_same(drop: Path, other: Path) -> None:
    path = drop / "cam1" / "a.mp4"
    data = path.read_bytes()
    with open(path, "r+b") as fh:
        fh.write(data)


def _rewrite_different(drop: Path, other: Path) -> None:
    path = drop / "cam1" / "a.mp4"
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # in place: same inode, same size, other bytes
        fh.write(os.urandom(size))


CAM2_50 = {f"drop/cam2/c{i:02d}.mp4": 100 + i for i in range(50)}
SCENARIOS = [
    Scenario("rename", _rename, {"drop/cam1/a-renamed.mp4": "drop/cam1/a.mp4"},
             {"cam1": ["cam1/a.mp4", "cam1/b.mp4"], "cam2": ["cam2/c.mp4"]}),
    Scenario("rename-storm", _rename_storm,
             {"drop/cam2/a2.mp4": "drop/cam1/a.mp4", "drop/cam1/b2.mp4": "drop/cam1/b.mp4",
              "drop/cam1/z.mp4": "drop/cam2/c.mp4"},
             {"cam1": ["cam1/b.mp4", "cam2/c.mp4"], "cam2": ["cam1/a.mp4"]}),
    Scenario("move-across-subfolders", _across_subfolders, {"drop/cam2/a.mp4": "drop/cam1/a.mp4"},
             {"cam1": ["cam1/b.mp4"], "cam2": ["cam1/a.mp4", "cam2/c.mp4"]}),
    Scenario("move-across-folders", _across_folders, {"other/cam1/a.mp4": "drop/cam1/a.mp4"},
             {"cam1": ["cam1/a.mp4", "cam1/b.mp4"], "cam2": ["cam2/c.mp4"]}),
    # The files themselves did not change: only a settle time longer than their age shows it.
    Scenario("subfolder-rename-50-files", _subfolder_rename,
             {p.replace("cam2/", "cam2-renamed/"): p for p in CAM2_50},
             {"cam1": ["cam1/a.mp4"], "cam2-renamed": sorted(p.removeprefix("drop/") for p in CAM2_50)},
             settle=30, daemon_settle=30, files={"drop/cam1/a.mp4": 1, **CAM2_50}),
    Scenario("copy-then-delete", _copy_then_delete, {"other/cam1/a.mp4": "drop/cam1/a.mp4"},
             {"cam1": ["cam1/a.mp4", "cam1/b.mp4"], "cam2": ["cam2/c.mp4"]}),
    Scenario("delete-while-copying", _delete_while_copying, {"other/cam1/a.mp4": "drop/cam1/a.mp4"}),
    Scenario("delete-then-recreate", _delete_and_recreate, {"drop/cam1/a.mp4": "drop/cam1/a.mp4"}),
    Scenario("touch", _touch, {"drop/cam1/a.mp4": "drop/cam1/a.mp4"}),
    Scenario("rewrite-same-bytes", _rewrite_same, {"drop/cam1/a.mp4": "drop/cam1/a.mp4"}),
    Scenario("rewrite-different-bytes", _rewrite_different, {}, {"cam1": ["cam1/a.mp4", "cam1/b.mp4"],
                                                                "cam2": ["cam2/c.mp4"]},
             new_content="drop/cam1/a.mp4"),
]


def setup_tree(tmp_path: Path, base_url: str, scenario: Scenario) -> tuple[Path, dict[str, str | None]]:
    """The scenario's files synced to done; returns the config and each file's video id."""
    for rel, seed in scenario.files.items():
        write_random(tmp_path / rel, 64 * KiB + seed, seed=seed)
    folders = [{"path": str(tmp_path / "drop")}, {"path": str(tmp_path / "other")}]
    config = write_config(tmp_path, base_url, folders, upload={"settle_seconds": 0},
                          safety={"delete_grace": 0},
                          # deletion_check as often as polls: each daemon poll then reads the listing,
                          # which is how the daemon tests count passes after a change.
                          schedule={"rescan": "5s", "remote_poll": "1s", "deletion_check": "1s"})
    result = run_syncd(config, "sync", "--wait", "--timeout", "120")
    assert result.returncode == 0, result.stdout + result.stderr
    ids = {str(Path(p).relative_to(tmp_path)): v for p, v in ids_by_path(config).items()}
    assert len(ids) == len(scenario.files) and all(ids.values())
    return config, ids


def check_outcome(tmp_path: Path, config: Path, admin: httpx.Client, scenario: Scenario,
                  before: dict[str, str | None]) -> None:
    after = {str(Path(p).relative_to(tmp_path)): v for p, v in ids_by_path(config).items()}
    for new, old in scenario.moved.items():
        assert after.get(new) == before[old], f"{new} keeps the video of {old}: {after}"
    if scenario.new_content is None:
        assert deletes(admin) == 0, "nothing was deleted"
        assert initiations(admin) == 0, "nothing was uploaded"
        assert sorted(v["video_id"] for v in admin_videos(admin)) == sorted(v for v in before.values() if v)
    else:
        new_id = after[scenario.new_content]
        assert new_id != before[scenario.new_content]
        assert deletes(admin) == 1 and initiations(admin) == 1, "one upload of the new bytes, old video deleted"
        videos = {v["video_id"]: v for v in admin_videos(admin)}
        assert before[scenario.new_content] not in videos
        data = (tmp_path / scenario.new_content).read_bytes()
        assert videos[new_id]["sha256"] == hashlib.sha256(data).hexdigest()
    if scenario.collections is not None:
        assert collections(admin) == scenario.collections


# ------------------------------------------------------------------------------- one-shot
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_one_shot_sync_right_after_the_change(tmp_path: Path, emu: Emulator, admin: httpx.Client,
                                              scenario: Scenario) -> None:
    config, before = setup_tree(tmp_path, emu.base_url, scenario)
    collection_ids = {c["name"]: c["collection_id"] for c in admin.get("/collections").json()}
    set_config(config, settle_seconds=scenario.settle)
    clear_requests(admin)
    scenario.change(tmp_path / "drop", tmp_path / "other")

    now = run_syncd(config, "sync")  # at once: changed files are not settled yet
    assert now.returncode == 0, now.stdout + now.stderr
    assert deletes(admin) == 0, f"a pass right after the change deleted a video:\n{now.stdout}"
    assert initiations(admin) == 0, f"a pass right after the change uploaded:\n{now.stdout}"

    set_config(config, settle_seconds=0)  # (only to spare the test the wait: the files settle)
    done = run_syncd(config, "sync", "--wait", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    check_outcome(tmp_path, config, admin, scenario, before)
    if scenario.name == "subfolder-rename-50-files":
        renamed = {c["name"]: c["collection_id"] for c in admin.get("/collections").json()}
        assert renamed["cam2-renamed"] == collection_ids["cam2"], "the collection was renamed, not re-made"


# --------------------------------------------------------------------------------- daemon
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_daemon_at_any_timing(tmp_path: Path, emu: Emulator, admin: httpx.Client, scenario: Scenario) -> None:
    """No delete grace; a second event right after the change makes a pass run before the
    changed files settle (what a rename storm or a busy folder does)."""
    config, before = setup_tree(tmp_path, emu.base_url, scenario)
    set_config(config, settle_seconds=scenario.daemon_settle)
    drop = tmp_path / "drop"
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: all(s.state == "done" for s in statuses(config)), 60, "the first pass", daemon.log)
        clear_requests(admin)
        scenario.change(drop, tmp_path / "other")
        (drop / "noise").mkdir()  # an event that makes a pass run at once

        def settled() -> bool:
            after = {str(Path(s.path).relative_to(tmp_path)): s for s in statuses(config)}
            if any(new not in after or after[new].video_id != before[old] for new, old in scenario.moved.items()):
                return False
            if scenario.new_content is not None:
                row = after.get(scenario.new_content)
                if row is None or row.video_id in (None, before[scenario.new_content]) or row.state != "done":
                    return False
                if any(v["video_id"] == before[scenario.new_content] for v in admin_videos(admin)):
                    return False
            if scenario.collections is not None and collections(admin) != scenario.collections:
                return False
            return all(s.state == "done" for s in after.values())

        # Two remote polls since the change: a pass began after the change's first pass was due.
        def polled_twice() -> bool:
            return sum(1 for r in requests(admin) if r["path"].endswith("/videos/list")) >= 2

        wait_for(lambda: settled() and polled_twice(), 90, f"{scenario.name} to settle",
                 lambda: f"{statuses(config)}\n{daemon.log()}")
        check_outcome(tmp_path, config, admin, scenario, before)
        assert daemon.stop() == 0


# ----------------------------------------------------------------------------- slow writer
SLOW_SETTLE, SLOW_PAUSE = 1.0, 1.3  # pauses longer than settle_seconds


def test_slowly_written_file_one_shot_uploads_final_content_once(tmp_path: Path, emu: Emulator,
                                                                 admin: httpx.Client) -> None:
    """Five chunks, a `syncd sync` in each pause (a cron job): partial uploads never linger,
    no pipeline starts on a content no longer on disk, the final content goes up once."""
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop)}],
                          upload={"settle_seconds": SLOW_SETTLE}, safety={"delete_grace": 0})
    chunks = [os.urandom(200 * KiB) for _ in range(5)]
    path = drop / "slow" / "four.mp4"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
            fh.flush()
            time.sleep(SLOW_PAUSE)
            result = run_syncd(config, "sync")
            assert result.returncode == 0, result.stdout + result.stderr
    done = run_syncd(config, "sync", "--wait", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    (video,) = admin_videos(admin)
    assert admin.get(f"/videos/{video['video_id']}/bytes").content == b"".join(chunks)
    partials = initiations(admin) - 1
    assert deletes(admin) == partials, "every partial upload was deleted"
    assert pipeline_starts(admin) == 2, "pipelines ran only for the final content"
    assert collections(admin) == {"slow": ["slow/four.mp4"]}


def test_slowly_written_file_daemon_uploads_final_content_once(tmp_path: Path, emu: Emulator,
                                                               admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop)}],
                          upload={"settle_seconds": SLOW_SETTLE}, safety={"delete_grace": 0},
                          schedule={"rescan": "5s", "remote_poll": "2s"})
    chunks = [os.urandom(200 * KiB) for _ in range(5)]
    with SyncdDaemon(config) as daemon:
        write_slowly(drop / "slow" / "four.mp4", b"".join(chunks), chunks=5, pause=SLOW_PAUSE)

        def final() -> bool:
            videos = admin_videos(admin)
            return len(videos) == 1 and videos[0]["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()

        wait_for(final, 90, "only the final content on the remote", daemon.log)
        wait_for(lambda: collections(admin) == {"slow": ["slow/four.mp4"]}, 60, "its collection", daemon.log)
        partials = initiations(admin) - 1
        assert deletes(admin) == partials, "every partial upload was deleted"
        assert daemon.stop() == 0


class Clock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_a_path_that_changed_after_settling_settles_longer(tmp_path: Path, emu: Emulator,
                                                          admin: httpx.Client) -> None:
    """settle_seconds doubles for a path each time it changes after it had counted as
    settled: the engine in-process, its clock moved past the settle times."""
    drop = tmp_path / "drop"
    cfg = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}],
                       upload={"settle_seconds": 10}, safety={"delete_grace": 0})
    config = load_config(cfg, {"SYNCD_TEST_KEY": KEY})
    clock = Clock()
    path = drop / "slow.mp4"
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(EngineOptions.from_config(config), catalog, remote, clock=clock)
        path.write_bytes(os.urandom(1000))
        clock.offset = 11  # held still 10 s: settled
        assert [a.kind for a in engine.run_pass().plan.actions] == ["Upload"]
        for settle in (20, 40):  # each change after settling: twice as long
            with open(path, "ab") as fh:
                fh.write(os.urandom(1000))
            clock.offset = settle - 1
            report = engine.run_pass()
            assert report.plan.actions == [] and [u.rel_path for s in report.scans for u in s.unknown] == ["slow.mp4"]
            clock.offset = settle + 1
            report = engine.run_pass()
            assert sorted(a.kind for a in report.plan.actions) == ["DeleteRemote", "Upload"]
        (video,) = admin_videos(admin)
        assert admin.get(f"/videos/{video['video_id']}/bytes").content == path.read_bytes()



# ------------------------------------------------------------------ what waits, and for how long
def test_dry_run_and_status_show_what_waits(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    scenario = SCENARIOS[0]
    config, before = setup_tree(tmp_path, emu.base_url, scenario)
    set_config(config, settle_seconds=30)
    write_random(tmp_path / "drop" / "cam1" / "new.mp4", 10 * KiB, seed=99)  # could still grow into a.mp4
    shutil.copyfile(tmp_path / "drop" / "cam1" / "a.mp4", tmp_path / "other" / "a-copy.mp4")
    (tmp_path / "drop" / "cam1" / "a.mp4").unlink()
    clear_requests(admin)

    dry = run_syncd(config, "sync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would upload {tmp_path / 'drop' / 'cam1' / 'new.mp4'} once settled" in dry.stdout
    assert f"would upload {tmp_path / 'other' / 'a-copy.mp4'} once settled" in dry.stdout
    assert "would wait: deletion of" in dry.stdout and "waits for 2 unsettled files" in dry.stdout
    assert "would delete" not in dry.stdout

    real = run_syncd(config, "sync")
    assert real.returncode == 0, real.stderr
    assert "1 deletion waits for 2 unsettled files" in real.stdout
    status = run_syncd(config, "status")
    assert "WAITING: 1 deletion waits for 2 unsettled files" in status.stdout
    assert deletes(admin) == 0 and initiations(admin) == 0

    set_config(config, settle_seconds=0)
    assert run_syncd(config, "sync", "--wait", "--timeout", "120").returncode == 0
    assert deletes(admin) == 0 and initiations(admin) == 1  # new.mp4 only
    assert ids_by_path(config)[str(tmp_path / "other" / "a-copy.mp4")] == before["drop/cam1/a.mp4"]
    assert "WAITING" not in run_syncd(config, "status").stdout


def test_a_file_that_never_settles_holds_a_deletion_back_only_so_long(tmp_path: Path, emu: Emulator,
                                                                      admin: httpx.Client) -> None:
    scenario = SCENARIOS[0]
    config, before = setup_tree(tmp_path, emu.base_url, scenario)
    set_config(config, settle_seconds=3600, delete_wait="1s")
    write_random(tmp_path / "drop" / "live.mp4", 10 * KiB, seed=7)  # smaller: it could still grow into a.mp4
    (tmp_path / "drop" / "cam1" / "a.mp4").unlink()
    clear_requests(admin)
    first = run_syncd(config, "sync")
    assert "1 deletion waits for 1 unsettled file" in first.stdout and deletes(admin) == 0
    time.sleep(1.1)  # safety.delete_wait runs out
    second = run_syncd(config, "sync")
    assert second.returncode == 0, second.stderr
    assert deletes(admin) == 1 and "waited safety.delete_wait" in second.stdout
    assert before["drop/cam1/a.mp4"] not in {v["video_id"] for v in admin_videos(admin)}


def test_an_upload_whose_file_changes_midway_registers_no_video(tmp_path: Path, emu: Emulator,
                                                                admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    big = write_random(drop / "big.mp4", 12 * MiB, seed=5)  # three parts
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}],
                          upload={"concurrency": 1})
    set_faults(admin, latency_ms=300, path_glob="/s3/*")
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(config), "sync"], env=syncd_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(u["parts"] for u in admin.get("/uploads").json()), 60, "a part uploaded")
        with open(big, "r+b") as fh:  # rewritten in place: same size, other bytes
            fh.write(os.urandom(12 * MiB))
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    set_faults(admin)
    assert "changed during upload" in out + err
    assert admin_videos(admin) == [], "no video holds bytes no file holds"
    assert admin.get("/uploads").json() == [], "the upload was aborted"
    assert run_syncd(config, "sync", "--wait", "--timeout", "120").returncode == 0
    (video,) = admin_videos(admin)
    assert admin.get(f"/videos/{video['video_id']}/bytes").content == big.read_bytes()
