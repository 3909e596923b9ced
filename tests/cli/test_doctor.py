"""`syncd doctor`: one plain line per check, exit 0 only when all pass (issue 6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from syncd.emulator.mikshi import Emulator
from tests.conftest import free_port, run_syncd, syncd_env, write_config, write_random


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
    assert f"folder {tmp_path / 'drop'}: readable, 1 video file(s)" in result.stdout
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
