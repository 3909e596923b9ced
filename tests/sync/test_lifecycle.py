"""Pipelines, collections and deletions both ways, against the emulator: issue 4."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.emulator.mikshi import Emulator
from syncd.models import SIDECAR_SUFFIXES
from tests.conftest import (
    admin_videos,
    collections,
    emulator_config,
    run_syncd,
    set_faults,
    write_config,
    write_random,
)

WAIT = ("sync", "--wait", "--timeout", "60")


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    """Quick processing and pipelines: each `sync --wait` waits them out, and these tests
    check where files and videos end up, not when."""
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=0.05, pipeline_seconds=0.05)) as e:
        yield e


def status(config: Path) -> list[dict[str, Any]]:
    result = run_syncd(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def synced(config: Path, *extra: str) -> str:
    result = run_syncd(config, *WAIT, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def tree(tmp_path: Path, spec: dict[str, int]) -> Path:
    """Files under drop/ with distinct content: {relative path: seed}."""
    drop = tmp_path / "drop"
    for rel, seed in spec.items():
        write_random(drop / rel, 50_000 + seed, seed=seed)
    return drop


def test_two_subfolders_become_two_collections_with_pipelines_done(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    tree(tmp_path, {"cam1/a.mp4": 1, "cam1/b.mp4": 2, "cam2/c.mp4": 3, "loose.mp4": 4})
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    assert collections(admin) == {"cam1": ["cam1/a.mp4", "cam1/b.mp4"], "cam2": ["cam2/c.mp4"]}
    videos = admin_videos(admin)
    assert len(videos) == 4
    assert all(v["analyse_status"] == v["search_process_status"] == "done" for v in videos)
    rows = {Path(r["path"]).name: r for r in status(config)}
    assert rows["a.mp4"]["collection"] == "cam1" and rows["loose.mp4"]["collection"] is None
    assert {r["state"] for r in rows.values()} == {"done"}
    assert rows["a.mp4"]["steps"]["analyse"]["state"] == "done"


def test_move_copy_and_subfolder_rename(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {"cam1/a.mp4": 1, "cam1/b.mp4": 2, "cam2/c.mp4": 3})
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    ids = {c["name"]: c["collection_id"] for c in admin.get("/collections").json()}
    admin.post("/requests/clear")

    shutil.move(str(drop / "cam1/a.mp4"), drop / "cam2/a.mp4")  # move between subfolders
    shutil.copy(drop / "cam2/c.mp4", drop / "cam1/c-copy.mp4")  # same content, second subfolder
    synced(config)
    assert collections(admin) == {"cam1": ["cam1/b.mp4", "cam2/c.mp4"], "cam2": ["cam1/a.mp4", "cam2/c.mp4"]}
    assert len(admin_videos(admin)) == 3

    os.rename(drop / "cam2", drop / "yard")  # rename a subfolder → rename its collection
    synced(config)
    after = {c["name"]: c["collection_id"] for c in admin.get("/collections").json()
             if not c["name"].startswith("syncd-instance:")}  # not the instance marker
    assert after == {"cam1": ids["cam1"], "yard": ids["cam2"]}
    uploads = [r for r in admin.get("/requests").json() if r["path"].endswith("/multipart/initiate")]
    assert uploads == [], "moves, copies and renames upload nothing"


def test_local_delete_deletes_remote_and_journal_keeps_it(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {"a.mp4": 1, "b.mp4": 2, "c.mp4": 3})
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    (drop / "a.mp4").unlink()
    synced(config)
    assert sorted(v["name"] for v in admin_videos(admin)) == ["b.mp4", "c.mp4"]
    journal = run_syncd(config, "log").stdout
    assert "delete-remote" in journal and "a.mp4" in journal


def test_remote_delete_moves_local_file_to_trash(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {"cam1/a.mp4": 1, "cam1/b.mp4": 2, "c.mp4": 3})
    original = (drop / "cam1/a.mp4").read_bytes()
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    victim = next(v for v in admin_videos(admin) if v["name"] == "cam1/a.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    synced(config, "--check-deletions")  # remote deletions: checked now, not on the schedule
    assert not (drop / "cam1/a.mp4").exists()
    assert (drop / ".syncd-trash/cam1/a.mp4").read_bytes() == original
    assert "cam1/a.mp4" in run_syncd(config, "trash", "list").stdout
    # Files in the trash are never scanned or uploaded.
    synced(config)
    assert sorted(v["name"] for v in admin_videos(admin)) == ["c.mp4", "cam1/b.mp4"]
    # A second trashing of the same path never overwrites the first.
    write_random(drop / "cam1/a.mp4", 60_000, seed=9)
    synced(config)
    again = next(v for v in admin_videos(admin) if v["name"] == "cam1/a.mp4")
    admin.delete(f"/videos/{again['video_id']}").raise_for_status()
    synced(config, "--check-deletions")
    assert (drop / ".syncd-trash/cam1/a.mp4").read_bytes() == original
    assert (drop / ".syncd-trash/cam1/a.1.mp4").exists()
    emptied = run_syncd(config, "trash", "empty")
    assert emptied.returncode == 0 and "removed 2 file(s)" in emptied.stdout


def test_keep_policy_tombstones_until_restore(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {"a.mp4": 1, "b.mp4": 2, "c.mp4": 3})
    folders = [{"path": str(drop), "on_remote_delete": "keep", "collections": "none"}]
    config = write_config(tmp_path, emu.base_url, folders)
    synced(config)
    victim = next(v for v in admin_videos(admin) if v["name"] == "a.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    synced(config, "--check-deletions")
    synced(config)
    assert (drop / "a.mp4").exists()
    assert sorted(v["name"] for v in admin_videos(admin)) == ["b.mp4", "c.mp4"], "never silently re-uploaded"
    row = next(r for r in status(config) if r["path"].endswith("a.mp4"))
    assert row["state"] == "remote-deleted"
    assert "syncd restore" in run_syncd(config, "status").stdout
    restored = run_syncd(config, "restore", str(drop / "a.mp4"))
    assert restored.returncode == 0, restored.stderr
    synced(config)
    assert sorted(v["name"] for v in admin_videos(admin)) == ["a.mp4", "b.mp4", "c.mp4"]


def test_remote_delete_applies_each_folders_policy_to_its_own_copy(tmp_path: Path, emu: Emulator,
                                                                    admin: httpx.Client) -> None:
    """One content in two folders: the trashing folder's copy goes to its trash, and the
    keeping folder's copy stays tracked (shown as remote-deleted) from the same pass on."""
    keep, trash = tmp_path / "keep", tmp_path / "trash"
    write_random(keep / "a.mp4", 50_000, seed=1)
    trash.mkdir()
    shutil.copyfile(keep / "a.mp4", trash / "a.mp4")
    folders = [{"path": str(keep), "on_remote_delete": "keep", "collections": "none"},
               {"path": str(trash), "on_remote_delete": "trash", "collections": "none"}]
    config = write_config(tmp_path, emu.base_url, folders)
    synced(config)
    [video] = admin_videos(admin)
    admin.delete(f"/videos/{video['video_id']}").raise_for_status()
    one_pass = run_syncd(config, "sync", "--check-deletions")
    assert one_pass.returncode == 0, one_pass.stdout + one_pass.stderr
    assert (trash / ".syncd-trash/a.mp4").exists() and not (trash / "a.mp4").exists()
    assert (keep / "a.mp4").exists()
    assert [(r["path"], r["state"]) for r in status(config)] == [(str(keep / "a.mp4"), "remote-deleted")]
    assert admin_videos(admin) == [], "never silently re-uploaded"


def test_mass_local_delete_is_refused_until_allowed(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {f"v{i}.mp4": i for i in range(5)})
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}])
    synced(config)
    for i in range(4):
        (drop / f"v{i}.mp4").unlink()
    refused = run_syncd(config, "sync")
    assert refused.returncode == 1 and "refusing to delete 4 of 5" in refused.stderr
    assert len(admin_videos(admin)) == 5
    assert "BLOCKED" in run_syncd(config, "status").stdout
    synced(config, "--allow-mass-delete")
    assert [v["name"] for v in admin_videos(admin)] == ["v4.mp4"]


def test_missing_or_unmarked_folder_deletes_nothing(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {"a.mp4": 1, "b.mp4": 2})
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}])
    synced(config)
    shutil.move(str(drop), tmp_path / "unmounted")
    result = run_syncd(config, "sync")
    assert result.returncode == 1 and "folder is missing" in result.stderr
    assert len(admin_videos(admin)) == 2
    assert len(status(config)) == 2

    # require_marker: an empty mount point without the marker is not "everything deleted".
    drop.mkdir()
    marked = write_config(tmp_path, emu.base_url, [{"path": str(drop), "require_marker": True,
                                                    "collections": "none", "pipelines": []}])
    result = run_syncd(marked, "sync")
    assert result.returncode == 1 and ".syncd-folder" in result.stderr
    assert len(admin_videos(admin)) == 2
    assert run_syncd(marked, "init-folder", str(drop)).returncode == 0
    assert (drop / ".syncd-folder").exists()


def test_failing_remote_listing_deletes_nothing(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {"a.mp4": 1, "b.mp4": 2, "c.mp4": 3})
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}],
                          remote={"max_retries": 1})
    synced(config)
    victim = next(v for v in admin_videos(admin) if v["name"] == "a.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    set_faults(admin, error_share=1.0, path_glob="*/videos/list")
    result = run_syncd(config, "sync", "--check-deletions")
    set_faults(admin)
    # The pass could not confirm the remote: exit 1, and one line says why.
    assert result.returncode == 1, result.stderr
    assert "no remote deletions this pass" in result.stderr
    videos = sorted(p.name for p in drop.iterdir() if not p.name.endswith(SIDECAR_SUFFIXES))
    assert videos == ["a.mp4", "b.mp4", "c.mp4"]
    assert not (drop / ".syncd-trash").exists()
    # Once the listing answers in full, the deletion is honoured.
    synced(config, "--check-deletions")
    assert (drop / ".syncd-trash" / "a.mp4").exists()


def test_dry_run_prints_every_change_and_makes_none(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tree(tmp_path, {"cam1/a.mp4": 1, "b.mp4": 2, "c.mp4": 3, "d.mp4": 4, "e.mp4": 5})
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    (drop / "b.mp4").unlink()
    write_random(drop / "cam2/new.mp4", 70_000, seed=7)
    victim = next(v for v in admin_videos(admin) if v["name"] == "c.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    before_videos = sorted(v["video_id"] for v in admin_videos(admin))
    admin.post("/requests/clear")
    result = run_syncd(config, "sync", "--dry-run", "--check-deletions")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "would upload" in out and "cam2/new.mp4" in out
    assert "would create collection 'cam2'" in out
    assert "would delete remote video" in out and "b.mp4" in out
    assert "move to trash" in out and "c.mp4" in out
    assert sorted(v["video_id"] for v in admin_videos(admin)) == before_videos
    assert (drop / "c.mp4").exists()
    changing = [r for r in admin.get("/requests").json() if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
                and not r["path"].endswith("/embeddings/text")]
    assert changing == [], "a dry run changes nothing on the remote"


def test_failed_pipeline_is_reported_and_wait_exits_non_zero(tmp_path: Path) -> None:
    cfg = emulator_config(tmp_path / "emu", fail_name_glob="*broken*", fail_pipeline="analyse")
    with Emulator(cfg) as emu:
        tree(tmp_path, {"cam/broken.mp4": 1, "cam/fine.mp4": 2})
        config = write_config(tmp_path, emu.base_url, upload={"max_attempts": 2, "retry_backoff": "0.5s"})
        result = run_syncd(config, *WAIT)
        assert result.returncode == 1
        assert "broken.mp4" in result.stderr and "analyse" in result.stderr
        rows = {Path(r["path"]).name: r for r in status(config)}
        assert rows["broken.mp4"]["state"] == "failed" and rows["fine.mp4"]["state"] == "done"
        assert "analyse" in run_syncd(config, "status").stdout
