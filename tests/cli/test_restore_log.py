"""Trash, restore and the journal as a person uses them: the real CLI against the emulator."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx

from syncd.emulator.mikshi import Emulator
from tests.conftest import admin_videos, run_syncd, write_config, write_random


def synced(config: Path, *extra: str) -> str:
    result = run_syncd(config, "sync", "--wait", "--timeout", "60", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def delete_on_remote(admin: httpx.Client, name: str) -> None:
    victim = next(v for v in admin_videos(admin) if v["name"] == name)
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()


def sidecars(video: Path) -> list[str]:
    return sorted(p.name for p in video.parent.glob(video.name + ".syncd.*"))


def test_restore_from_inside_the_trash_brings_video_and_sidecars_back(tmp_path: Path, emu: Emulator,
                                                                      admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    write_random(drop / "cam1" / "a.mp4", 60_000, 1)
    write_random(drop / "cam1" / "b.mp4", 60_000, 2)
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    video, trashed = drop / "cam1" / "a.mp4", drop / ".syncd-trash" / "cam1" / "a.mp4"
    assert sidecars(video) == ["a.mp4.syncd.emb", "a.mp4.syncd.json"]
    delete_on_remote(admin, "cam1/a.mp4")
    out = synced(config, "--check-deletions")  # not waiting for schedule.deletion_check
    # The trash move is reported, once, with the same name `syncd log` uses.
    assert re.search(rf"^trash +ok +{re.escape(str(video))}  \({re.escape(str(trashed))}\)$", out, re.MULTILINE), out
    assert re.search(r"^remote-deleted +ok +", out, re.MULTILINE)
    assert trashed.exists() and sidecars(trashed) == ["a.mp4.syncd.emb", "a.mp4.syncd.json"]

    restored = run_syncd(config, "restore", str(trashed))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith(f"{video}: restored; now ")
    assert video.exists() and not trashed.exists()
    assert sidecars(video) == ["a.mp4.syncd.emb", "a.mp4.syncd.json"] and sidecars(trashed) == []
    synced(config)
    assert sorted(v["name"] for v in admin_videos(admin)) == ["cam1/a.mp4", "cam1/b.mp4"]

    # The journal: one name per action, each started → ok, filterable.
    history = run_syncd(config, "log", "--path", str(video), "-n", "100").stdout
    actions = [line.split()[2:4] for line in history.splitlines()]
    assert ["trash", "ok"] in actions and ["restore", "ok"] in actions and ["upload", "ok"] in actions
    assert ["analyse", "started"] in actions and ["analyse", "ok"] in actions, history
    assert all(name in ("upload", "analyse", "search-process", "add-to-collection", "remote-deleted", "trash", "mark",
                        "restore")
               for name, _ in actions), history
    assert "b.mp4" not in history
    only = json.loads(run_syncd(config, "log", "--action", "restore", "--json").stdout)
    assert [(e["action"], e["outcome"], e["path"]) for e in only] == [("restore", "ok", str(video))]
    assert run_syncd(config, "log", "--since", "1h", "--action", "trash").stdout.count("\n") == 1
    assert run_syncd(config, "log", "--since", "2999-01-01").stdout == ""
    bad = run_syncd(config, "log", "--since", "yesterdayish")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_the_readme_recipe_move_back_sync_restore_works_before_the_file_settles(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    write_random(drop / "cam1" / "a.mp4", 60_000, 1)
    config = write_config(tmp_path, emu.base_url, upload={"settle_seconds": 1})
    synced(config)
    delete_on_remote(admin, "cam1/a.mp4")
    synced(config, "--check-deletions")
    video, trashed = drop / "cam1" / "a.mp4", drop / ".syncd-trash" / "cam1" / "a.mp4"
    assert trashed.exists()
    # mv drop/.syncd-trash/cam1/a.mp4 drop/cam1/ && syncd sync && syncd restore drop/cam1/a.mp4
    os.rename(trashed, video)
    assert run_syncd(config, "sync").returncode == 0
    restored = run_syncd(config, "restore", str(video))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored; now" in restored.stdout
    # The sidecars it left in the trash came along.
    assert sidecars(video) == ["a.mp4.syncd.emb", "a.mp4.syncd.json"] and sidecars(trashed) == []
    synced(config)
    assert [v["name"] for v in admin_videos(admin)] == ["cam1/a.mp4"]
