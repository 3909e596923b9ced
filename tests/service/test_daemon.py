"""`syncd run` as a subprocess against the emulator: issue 6.

Short timings (settle 0.5 s, rescan 5 s, remote poll 2 s) keep the file quick;
nothing here asserts a duration, the waits are generous timeouts only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest

from syncd.emulator.mikshi import Emulator
from tests.conftest import (
    KEY,
    OTHER_KEY,
    REPO,
    MiB,
    admin_videos,
    collections,
    free_port,
    run_syncd,
    set_faults,
    syncd_env,
    wait_for,
    write_config,
    write_random,
)

FAST = {
    "upload": {"settle_seconds": "500ms"},
    "safety": {"delete_grace": "2s"},
    "schedule": {"rescan": "5s", "remote_poll": "2s"},
}


def daemon_config(tmp_path: Path, base_url: str, folders: list[dict[str, Any]] | None = None,
                  **sections: dict[str, Any]) -> Path:
    merged = {name: {**FAST.get(name, {}), **sections.get(name, {})} for name in {*FAST, *sections}}
    return write_config(tmp_path, base_url, folders, **merged)


def plain_folders(*paths: Path) -> list[dict[str, Any]]:
    """Folders without collections or pipelines: the quickest way to "done"."""
    return [{"path": str(p), "collections": "none", "pipelines": []} for p in paths]


class SyncdDaemon:
    """``syncd run`` in a subprocess, its log in a file (a pipe could fill up and block it)."""

    count = 0

    def __init__(self, config: Path, *, env: dict[str, str] | None = None) -> None:
        SyncdDaemon.count += 1
        self.config = config
        self.log_path = config.parent / f"daemon-{SyncdDaemon.count}.log"
        self.env = {**syncd_env(), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.check_log()

    def start(self) -> Self:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(self.config), "run"],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_log("running: watching")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 60) -> None:
        wait_for(lambda: text in self.log() or not self.alive, timeout, repr(text), self.log)
        assert text in self.log(), f"daemon exited before logging {text!r}:\n{self.log()}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.check_log()
        return code

    def check_log(self) -> None:
        text = self.log()
        for secret in (KEY, OTHER_KEY):
            assert secret not in text, "API key in the daemon's log"
        assert "Traceback" not in text, text


def uploads_started(admin: httpx.Client) -> int:
    return sum(1 for r in admin.get("/requests").json() if r["path"].endswith("/multipart/initiate"))


def names(admin: httpx.Client) -> list[str]:
    return sorted(v["name"] for v in admin_videos(admin))


def all_processed(admin: httpx.Client, count: int) -> bool:
    videos = admin_videos(admin)
    return len(videos) == count and all(v["transcoding_status"] == "completed" for v in videos)


def status_json(config: Path) -> list[dict[str, Any]]:
    result = run_syncd(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


# ------------------------------------------------------------------------------- tests
def test_slowly_written_file_is_uploaded_once_when_complete(tmp_path: Path, emu: Emulator,
                                                            admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop), upload={"settle_seconds": "1500ms"})
    chunks = [os.urandom(100_000) for _ in range(12)]
    with SyncdDaemon(config) as daemon:
        with open(drop / "slow.mp4", "wb") as fh:  # ~3.6 s of writing, never 1.5 s still
            for chunk in chunks:
                fh.write(chunk)
                fh.flush()
                time.sleep(0.3)
        wait_for(lambda: len(admin_videos(admin)) == 1, 60, "the upload", daemon.log)
        (video,) = admin_videos(admin)
        assert admin.get(f"/videos/{video['video_id']}/bytes").content == b"".join(chunks)
        wait_for(lambda: status_json(config)[0]["state"] == "done", 60, "processing", daemon.log)
        assert uploads_started(admin) == 1
        assert daemon.stop() == 0


def test_files_changed_while_down_are_picked_up_at_start(tmp_path: Path, emu: Emulator,
                                                        admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 300_000, seed=1)
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop))
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: names(admin) == ["a.mp4"], 60, "a.mp4 uploaded", daemon.log)
        assert daemon.stop() == 0
    write_random(drop / "sub" / "b.mp4", 200_000, seed=2)
    (drop / "a.mp4").unlink()
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: names(admin) == ["sub/b.mp4"], 60, "b uploaded and a deleted remotely", daemon.log)
        assert daemon.stop() == 0


def test_a_folder_mounted_while_running_is_walked_and_watched(tmp_path: Path, emu: Emulator,
                                                              admin: httpx.Client) -> None:
    """A camera card plugged in after start: no rescan is due for 10 minutes, yet what is
    on it lands (walked once its watch exists), and so does what is copied on later."""
    drop, card = tmp_path / "drop", tmp_path / "card"
    write_random(drop / "a.mp4", 100_000, seed=1)
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop, card), schedule={"rescan": "10m"})
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: names(admin) == ["a.mp4"], 60, "a.mp4 uploaded", daemon.log)
        write_random(card / "b.mp4", 110_000, seed=2)
        wait_for(lambda: names(admin) == ["a.mp4", "b.mp4"], 60, "the card's file uploaded", daemon.log)
        write_random(card / "c.mp4", 120_000, seed=3)
        wait_for(lambda: names(admin) == ["a.mp4", "b.mp4", "c.mp4"], 60, "a later copy uploaded", daemon.log)
        assert daemon.stop() == 0


def test_move_copy_and_delete_while_running_propagate(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    for seed, rel in enumerate(["cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4"]):
        write_random(drop / rel, 150_000 + seed, seed=10 + seed)
    config = daemon_config(tmp_path, emu.base_url)  # collections per subfolder, both pipelines
    with SyncdDaemon(config) as daemon:
        before = {"cam1": ["cam1/a.mp4", "cam1/b.mp4"], "cam2": ["cam2/c.mp4"]}
        wait_for(lambda: collections(admin) == before, 60, "first sync", daemon.log)
        admin.post("/requests/clear")
        os.rename(drop / "cam1" / "a.mp4", drop / "cam2" / "a.mp4")
        shutil.copy(drop / "cam1" / "b.mp4", drop / "cam2" / "b-copy.mp4")
        (drop / "cam2" / "c.mp4").unlink()
        after = {"cam1": ["cam1/b.mp4"], "cam2": ["cam1/a.mp4", "cam1/b.mp4"]}
        wait_for(lambda: collections(admin) == after and len(admin_videos(admin)) == 2, 60,
                 "move, copy and delete on the remote", lambda: f"{collections(admin)}\n{daemon.log()}")
        assert uploads_started(admin) == 0, "a move or a copy uploads nothing"
        assert daemon.stop() == 0


def test_sigterm_mid_upload_then_restart_resumes(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    big = write_random(drop / "big.mp4", 40 * MiB + 5, seed=4)  # 9 parts of 5 MiB
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop), upload={"concurrency": 1})
    set_faults(admin, latency_ms=150, path_glob="/s3/*")
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: any(len(u["parts"]) >= 3 for u in admin.get("/uploads").json()), 60,
                 "three parts uploaded", daemon.log)
        assert daemon.stop() == 0
        assert "stopped" in daemon.log()
    assert admin_videos(admin) == []
    (upload,) = admin.get("/uploads").json()
    assert 3 <= len(upload["parts"]) < 9, "left resumable: some parts there, not all"
    set_faults(admin)
    admin.post("/requests/clear")
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: len(admin_videos(admin)) == 1, 60, "the resumed upload", daemon.log)
        (video,) = admin_videos(admin)
        assert admin.get(f"/videos/{video['video_id']}/bytes").content == big.read_bytes()
        puts = [r for r in admin.get("/requests").json() if r["method"] == "PUT"]
        assert 0 < len(puts) < 9, "only the missing parts were sent again"
        assert admin.get("/uploads").json() == []
        assert daemon.stop() == 0


def test_sighup_with_a_broken_config_keeps_the_old_one(tmp_path: Path, emu: Emulator,
                                                       admin: httpx.Client) -> None:
    drop, other = tmp_path / "drop", tmp_path / "other"
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop))
    good = config.read_text()
    with SyncdDaemon(config) as daemon:
        config.write_text(good + "upload_speed: 3\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("config reload refused")
        assert "upload_speed: unknown key" in daemon.log()
        write_random(drop / "a.mp4", 100_000, seed=5)
        wait_for(lambda: names(admin) == ["a.mp4"], 60, "upload under the old config", daemon.log)

        daemon_config(tmp_path, emu.base_url, plain_folders(drop, other))  # now valid, with a second folder
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("config reloaded")
        write_random(other / "b.mp4", 100_000, seed=6)
        wait_for(lambda: names(admin) == ["a.mp4", "b.mp4"], 60, "upload from the new folder", daemon.log)
        assert daemon.alive and daemon.stop() == 0


class EmulatorProcess:
    """The emulator as a subprocess on a fixed port, so it can go away and come back."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {**syncd_env(), "SYNCD_EMULATOR_API_KEYS": KEY}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "emulator", "--data-dir", str(self.data_dir), "--port", str(self.port),
             "--processing-seconds", "0.4", "--pipeline-seconds", "0.4", "--collections-cache-seconds", "0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
        )
        assert self.proc.stdout is not None
        assert "listening" in self.proc.stdout.readline()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def test_remote_down_then_back_everything_lands(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    emulator = EmulatorProcess(tmp_path / "emu", free_port())
    emulator.start()
    try:
        config = daemon_config(tmp_path, emulator.base_url, plain_folders(drop), remote={"max_retries": 1})
        # An explicit timeout (httpx's default is 5 s): the admin routes take no fault and no
        # lock beyond single statements, but a restarted emulator process on a loaded 2-core
        # machine once answered later than 5 s.
        with SyncdDaemon(config) as daemon, httpx.Client(base_url=f"{emulator.base_url}/_admin",
                                                         timeout=30) as admin:
            write_random(drop / "a.mp4", 200_000, seed=7)
            wait_for(lambda: names(admin) == ["a.mp4"], 60, "a.mp4 uploaded", daemon.log)
            emulator.stop()
            write_random(drop / "b.mp4", 200_000, seed=8)
            daemon.wait_log("remote unreachable")  # noticed by the next pass or poll
            write_random(drop / "c.mp4", 200_000, seed=9)

            def catalogued() -> bool:
                rows = {Path(r["path"]).name: r for r in status_json(config)}
                return all(rows.get(n, {}).get("sha256") for n in ("b.mp4", "c.mp4"))

            wait_for(catalogued, 60, "b and c catalogued while the remote is down", daemon.log)
            time.sleep(3)  # a few failed probes (not an assertion on time)
            assert daemon.alive and daemon.log().count("remote unreachable") == 1, "one line per outage"
            emulator.start()
            wait_for(lambda: names(admin) == ["a.mp4", "b.mp4", "c.mp4"], 60, "catch-up", daemon.log)
            daemon.wait_log("reachable again after")
            assert daemon.stop() == 0
    finally:
        emulator.stop()


def test_second_instance_refuses_to_start(tmp_path: Path, emu: Emulator) -> None:
    config = daemon_config(tmp_path, emu.base_url, plain_folders(tmp_path / "drop"))
    with SyncdDaemon(config) as daemon:
        second = run_syncd(config, "run", timeout=60)
        assert second.returncode == 3
        assert "another syncd" in second.stderr and "stop it first" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert daemon.alive and daemon.stop() == 0


def test_notify_socket_gets_ready_watchdog_and_stopping(tmp_path: Path, emu: Emulator) -> None:
    config = daemon_config(tmp_path, emu.base_url, plain_folders(tmp_path / "drop"))
    # AF_UNIX paths are short (108 bytes): bind in a short temporary directory.
    sock_dir = Path(tempfile.mkdtemp(prefix="sdn"))
    sock_path = sock_dir / "notify"
    received: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(0.5)

        def got(field: str) -> bool:
            try:
                received.extend(sock.recv(4096).decode().splitlines())
            except TimeoutError:
                pass
            return field in received

        env = {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
        with SyncdDaemon(config, env=env) as daemon:
            wait_for(lambda: got("READY=1"), 60, "READY=1", lambda: f"{received}\n{daemon.log()}")
            wait_for(lambda: got("WATCHDOG=1"), 60, "WATCHDOG=1", lambda: str(received))
            assert any(line.startswith("STATUS=") for line in received)
            daemon.signal(signal.SIGTERM)
            wait_for(lambda: got("STOPPING=1"), 60, "STOPPING=1", lambda: str(received))
            assert daemon.stop() == 0  # a second SIGTERM while stopping: still a clean stop
    shutil.rmtree(sock_dir)


def test_sigterm_again_and_again_while_stopping_is_still_a_clean_stop(tmp_path: Path, emu: Emulator,
                                                                     admin: httpx.Client) -> None:
    """systemd and impatient users send SIGTERM more than once. Every one of them, at any
    moment of the shutdown (also after the worker is done, just before the process exits),
    asks for the same clean stop: exit status 0, never death by the signal."""
    drop = tmp_path / "drop"
    write_random(drop / "big.mp4", 12 * MiB, seed=4)
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop), upload={"concurrency": 1})
    set_faults(admin, latency_ms=100, path_glob="/s3/*")
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: any(u["parts"] for u in admin.get("/uploads").json()), 60, "a part uploaded", daemon.log)
        assert daemon.proc is not None
        while daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGTERM)
            time.sleep(0.005)
        assert daemon.proc.returncode == 0, daemon.log()
        assert "stopped" in daemon.log()
    set_faults(admin)


def test_metrics_endpoint(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 123_456, seed=12)
    port = free_port()
    config = daemon_config(tmp_path, emu.base_url, plain_folders(drop), metrics={"listen": f"127.0.0.1:{port}"})

    def metrics() -> str:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    with SyncdDaemon(config) as daemon:
        wait_for(lambda: 'syncd_files{state="done"} 1.0' in metrics(), 60, "done in metrics", daemon.log)
        text = metrics()
        assert "syncd_uploaded_files_total 1.0" in text
        assert "syncd_uploaded_bytes_total 123456.0" in text
        assert "syncd_queue_depth" in text and 'syncd_errors_total{kind="action"} 0.0' in text
        assert f'syncd_last_successful_pass_timestamp_seconds{{folder="{drop}"}}' in text
        assert daemon.stop() == 0


@pytest.mark.parametrize("problem", ["bad-config", "no-key"])
def test_run_refuses_a_bad_start_clearly(tmp_path: Path, emu: Emulator, problem: str) -> None:
    config = daemon_config(tmp_path, emu.base_url, plain_folders(tmp_path / "drop"))
    if problem == "bad-config":
        config.write_text(config.read_text() + "schedule_x: 1\n")
        result = run_syncd(config, "run", timeout=60)
        assert result.returncode == 2 and "schedule_x: unknown key" in result.stderr
    else:
        result = subprocess.run([sys.executable, "-m", "syncd", "-c", str(config), "run"], capture_output=True,
                                check=False, text=True, timeout=60, env={**syncd_env(), "SYNCD_TEST_KEY": ""})
        assert result.returncode == 2 and "no API key" in result.stderr
    assert "Traceback" not in result.stderr
