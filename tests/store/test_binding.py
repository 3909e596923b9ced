"""A catalog belongs to one remote (issue #12): the backend and address it syncs with are
recorded; a config pointing elsewhere is refused with one line and exit 2, nothing touched,
unless the user re-binds it explicitly."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from syncd.emulator.mikshi import Emulator
from tests.conftest import admin_videos, run_syncd, syncd_env, wait_for, write_config, write_random


def _point_at(config: Path, base_url: str) -> None:
    data = yaml.safe_load(config.read_text())
    data["remote"]["base_url"] = base_url
    config.write_text(yaml.safe_dump(data))


def _journal(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "state" / "catalog.db") as db:
        return list(db.execute("SELECT action, outcome FROM journal ORDER BY id"))


def test_a_catalog_refuses_another_remote_until_rebound(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    config = write_config(tmp_path, emu.base_url)
    write_random(tmp_path / "drop" / "a.mp4", 4096)
    assert run_syncd(config, "sync").returncode == 0  # a new catalog adopts the config silently
    status = run_syncd(config, "status")
    assert f"backend: mikshi at {emu.base_url}" in status.stdout and "belongs to" not in status.stdout

    elsewhere = "http://127.0.0.1:9"  # nothing listens: any request would fail loudly
    _point_at(config, elsewhere)
    journal = _journal(tmp_path)
    write_random(tmp_path / "drop" / "b.mp4", 4096, seed=2)
    refused = run_syncd(config, "sync")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and f"mikshi at {emu.base_url}" in lines[0] and elsewhere in lines[0]
    assert "--rebind" in lines[0] and "Traceback" not in refused.stderr
    assert _journal(tmp_path) == journal  # nothing touched
    assert f"catalog: belongs to mikshi at {emu.base_url}" in run_syncd(config, "status").stdout

    _point_at(config, emu.base_url)  # back home: fine again, and b.mp4 goes up there
    assert run_syncd(config, "sync").returncode == 0
    assert len(admin_videos(admin)) == 2

    _point_at(config, emu.base_url.replace("127.0.0.1", "localhost"))  # same server, new address
    assert run_syncd(config, "sync").returncode == 2
    rebound = run_syncd(config, "sync", "--rebind")
    assert rebound.returncode == 0, rebound.stderr
    assert ("rebind", "ok") in _journal(tmp_path)
    assert run_syncd(config, "sync").returncode == 0  # bound to the new address now
    assert len(admin_videos(admin)) == 2  # and nothing was uploaded twice


def test_an_existing_catalog_without_a_record_adopts_the_config(tmp_path: Path, emu: Emulator) -> None:
    config = write_config(tmp_path, emu.base_url)
    assert run_syncd(config, "sync").returncode == 0
    with sqlite3.connect(tmp_path / "state" / "catalog.db") as db:  # as syncd before this record
        db.execute("DELETE FROM meta WHERE key = 'remote'")
    _point_at(config, emu.base_url.replace("127.0.0.1", "localhost"))
    assert run_syncd(config, "sync").returncode == 0
    assert "belongs to" not in run_syncd(config, "status").stdout


def test_the_daemon_refuses_another_remote_until_run_with_rebind(tmp_path: Path, emu: Emulator,
                                                                 admin: httpx.Client) -> None:
    config = write_config(tmp_path, emu.base_url, schedule={"rescan": "5s", "remote_poll": "2s"})
    write_random(tmp_path / "drop" / "a.mp4", 4096)
    assert run_syncd(config, "sync").returncode == 0
    _point_at(config, emu.base_url.replace("127.0.0.1", "localhost"))  # same server, new address
    journal = _journal(tmp_path)

    refused = run_syncd(config, "run", timeout=60)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "`syncd run --rebind`" in lines[0] and "Traceback" not in refused.stderr
    assert _journal(tmp_path) == journal  # nothing touched

    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(config), "run", "--rebind"],
                                  env=syncd_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "running: watching" in log_path.read_text() or daemon.poll() is not None, 60,
                 "the daemon running", log_path.read_text)
        assert daemon.poll() is None, log_path.read_text()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert ("rebind", "ok") in _journal(tmp_path)
    assert run_syncd(config, "sync").returncode == 0  # bound to the new address now
    assert len(admin_videos(admin)) == 1  # and nothing was uploaded twice
