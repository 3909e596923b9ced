"""`syncd doctor`: one plain line per check, exit 0 only when all pass (issue 6)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.cli.doctor import run_checks
from syncd.emulator.mikshi import Emulator
from syncd.store.catalog import Catalog, ScanSummary
from tests.conftest import KEY, free_port, run_syncd, syncd_env, write_config, write_random


def doctor(config: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    if key is not None:
        return run_syncd(config, "doctor", key=key)
    return subprocess.run([sys.executable, "-m", "syncd", "-c", str(config), "doctor"], capture_output=True,
                          check=False, text=True, timeout=60, env={**syncd_env(), "SYNCD_TEST_KEY": ""})


def test_all_good(tmp_path: Path, emu: Emulator) -> None:
    write_random(tmp_path / "drop" / "cam" / "a.mp4", 1000)
    config = write_config(tmp_path, emu.base_url)
    result = run_syncd(config, "doctor")
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert all(line.startswith("✓") for line in lines[:-1]) and lines[-1] == "all checks passed"
    assert f"folder {tmp_path / 'drop'}: readable; not scanned yet" in result.stdout  # no sync yet: no catalog
    assert "API key: found in $SYNCD_TEST_KEY" in result.stdout
    assert "reachable, API key accepted" in result.stdout
    assert not (tmp_path / "state").exists(), "doctor changes nothing"


def test_missing_folder_and_no_key(tmp_path: Path, emu: Emulator) -> None:
    config = write_config(tmp_path, emu.base_url)
    (tmp_path / "drop").rmdir()
    result = doctor(config)
    assert result.returncode == 1
    assert "✗ folder" in result.stdout and "folder is missing" in result.stdout
    assert "✗ API key: no API key: set $SYNCD_TEST_KEY" in result.stdout
    assert "✗ remote: not checked" in result.stdout
    assert "3 problem(s) found" in result.stdout


def test_unreachable_remote(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"http://127.0.0.1:{free_port()}")
    result = run_syncd(config, "doctor")
    assert result.returncode == 1
    assert "✗ remote http://127.0.0.1:" in result.stdout and "cannot reach it" in result.stdout


def test_rejected_key(tmp_path: Path, emu: Emulator) -> None:
    config = write_config(tmp_path, emu.base_url)
    result = doctor(config, key="sk_wrong_key_0000")
    assert result.returncode == 1
    assert "answers, but rejected the API key from $SYNCD_TEST_KEY" in result.stdout
    assert "sk_wrong_key_0000" not in result.stdout + result.stderr


def test_state_dir_not_a_directory(tmp_path: Path, emu: Emulator) -> None:
    config = write_config(tmp_path, emu.base_url)
    (tmp_path / "state").write_text("oops")
    result = run_syncd(config, "doctor")
    assert result.returncode == 1 and "is not a directory" in result.stdout


def test_bad_config_is_one_failed_check(tmp_path: Path, emu: Emulator) -> None:
    config = write_config(tmp_path, emu.base_url, upload={"concurency": 2})
    result = run_syncd(config, "doctor")
    assert result.returncode == 1
    assert result.stdout.startswith("✗ config: ") and "upload.concurency: unknown key" in result.stdout
    assert "Traceback" not in result.stderr


def test_folders_are_not_walked_the_last_scan_says_what_they_hold(
        tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a million files a walk takes minutes: doctor checks each folder's guard live and
    reads the rest from the catalog (tracked files, the last scan and when it ran)."""
    drop = tmp_path / "drop"
    for i in range(3):
        write_random(drop / "cam" / f"{i}.mp4", 1000, seed=i)
    (drop / "cam" / "empty.mp4").write_bytes(b"")
    config = write_config(tmp_path, emu.base_url)
    assert run_syncd(config, "sync").returncode == 0
    for i in range(3, 6):  # written since the last scan: doctor does not see them, it walks nothing
        write_random(drop / "cam" / f"{i}.mp4", 1000, seed=i)

    listed: list[str] = []
    real_scandir, real_listdir = os.scandir, os.listdir

    def scandir(target: str | os.PathLike[str] = ".") -> Iterator[os.DirEntry[str]]:
        listed.append(os.fspath(target))
        return real_scandir(target)

    def listdir(target: str | os.PathLike[str] = ".") -> list[str]:
        listed.append(os.fspath(target))
        return real_listdir(target)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)
    checks = run_checks(config, {"SYNCD_TEST_KEY": KEY})
    monkeypatch.undo()
    assert listed == [], "doctor lists no folder"
    assert all(c.ok for c in checks), [str(c) for c in checks]
    [folder] = [str(c) for c in checks if str(c).startswith(f"✓ folder {drop}")]
    assert re.fullmatch(rf"✓ folder {re.escape(str(drop))}: readable, 3 file\(s\) tracked, 1 empty file\(s\) "
                        rf"skipped; last scanned \d+s ago, at {time.strftime('%Y-%m-%d')} \d\d:\d\d:\d\d", folder), folder


def test_a_subfolder_the_last_scan_could_not_read_is_a_problem_said_with_its_time(
        tmp_path: Path, emu: Emulator) -> None:
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url)
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.record_scan_summary(ScanSummary(drop, time.time() - 7 * 60, empty=0, settling=2,
                                                unreadable=("locked",)))
    result = run_syncd(config, "doctor")
    assert result.returncode == 1, result.stdout
    assert (f"✗ folder {drop}: cannot read {drop / 'locked'}; the rest of the folder syncs, but nothing in it "
            "is treated as deleted until it can be read (last scanned 7m ago, at ") in result.stdout, result.stdout

    with Catalog.open(tmp_path / "state") as catalog:
        catalog.record_scan_summary(ScanSummary(drop, time.time() - 30, empty=0, settling=2))
    result = run_syncd(config, "doctor")
    assert result.returncode == 0, result.stdout
    assert f"✓ folder {drop}: readable, 0 file(s) tracked, 2 still being written; last scanned " in result.stdout
    drop.rename(tmp_path / "unmounted")  # the guard is live, whatever the last scan found
    result = run_syncd(config, "doctor")
    assert result.returncode == 1 and f"✗ folder {drop}: folder is missing" in result.stdout, result.stdout
