"""`syncd sync` / `syncd status` against the emulator, with real files: issue 3."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from syncd.emulator.mikshi import Emulator
from tests.conftest import (
    KEY,
    OTHER_KEY,
    MiB,
    admin_videos,
    emulator_config,
    run_syncd,
    set_faults,
    syncd_env,
    write_config,
    write_random,
)

NO_COLLECTIONS = [{"collections": "none", "pipelines": []}]


def folder_cfg(tmp_path: Path, **kw: object) -> list[dict[str, object]]:
    return [{"path": str(tmp_path / "drop"), "collections": "none", "pipelines": [], **kw}]


def uploads_started(admin: httpx.Client) -> int:
    return sum(1 for r in admin.get("/requests").json() if r["path"].endswith("/multipart/initiate"))


def status_json(config: Path) -> list[dict[str, object]]:
    result = run_syncd(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_new_file_uploaded_once_with_exact_bytes(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    clip = write_random(tmp_path / "drop" / "cam" / "a.mp4", 3 * MiB + 17, seed=1)
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    result = run_syncd(config, "sync", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    (video,) = admin_videos(admin)
    assert video["name"] == "cam/a.mp4"
    assert admin.get(f"/videos/{video['video_id']}/bytes").content == clip.read_bytes()
    (row,) = status_json(config)
    assert row["video_id"] == video["video_id"] and row["state"] == "done" and row["path"] == str(clip)

    # An unchanged rescan uploads and hashes nothing.
    admin.post("/requests/clear")
    again = run_syncd(config, "sync")
    assert again.returncode == 0 and uploads_started(admin) == 0
    assert "uploaded 0 file(s)" in again.stdout


def test_copy_rename_and_move_upload_nothing(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop, other = tmp_path / "drop", tmp_path / "other"
    write_random(drop / "a.mp4", MiB, seed=2)
    folders = folder_cfg(tmp_path) + [{"path": str(other), "collections": "none", "pipelines": []}]
    config = write_config(tmp_path, emu.base_url, folders)
    assert run_syncd(config, "sync", "--wait", "--timeout", "60").returncode == 0
    admin.post("/requests/clear")
    shutil.copy(drop / "a.mp4", drop / "copy.mp4")
    os.rename(drop / "a.mp4", drop / "renamed.mp4")
    shutil.move(str(drop / "copy.mp4"), other / "moved.mp4")
    result = run_syncd(config, "sync", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert uploads_started(admin) == 0 and len(admin_videos(admin)) == 1
    paths = sorted(Path(r["path"]).name for r in status_json(config))  # type: ignore[arg-type]
    assert paths == ["moved.mp4", "renamed.mp4"]


def test_growing_file_waits_until_settled(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    # A settle time no start-up of `syncd sync` can outlast, however loaded the machine.
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path), upload={"settle_seconds": 60})
    growing = write_random(tmp_path / "drop" / "live.mp4", MiB, seed=3)
    assert run_syncd(config, "sync").returncode == 0
    assert admin_videos(admin) == []
    with open(growing, "ab") as fh:
        fh.write(b"more bytes")
    write_config(tmp_path, emu.base_url, folder_cfg(tmp_path), upload={"settle_seconds": 1})
    assert run_syncd(config, "sync", "--wait", "--timeout", "60").returncode == 0
    (video,) = admin_videos(admin)
    assert admin.get(f"/videos/{video['video_id']}/bytes").content == growing.read_bytes()


def test_kill_9_mid_upload_then_rerun_resumes(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    big = write_random(tmp_path / "drop" / "big.mp4", 40 * MiB + 5, seed=4)  # 9 parts of 5 MiB
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path), upload={"concurrency": 1})
    set_faults(admin, latency_ms=150, path_glob="/s3/*")
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(config), "sync"],
                            env=syncd_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        uploads = admin.get("/uploads").json()
        if uploads and len(uploads[0]["parts"]) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert admin_videos(admin) == []
    set_faults(admin)
    admin.post("/requests/clear")
    result = run_syncd(config, "sync", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    (video,) = admin_videos(admin)
    assert admin.get(f"/videos/{video['video_id']}/bytes").content == big.read_bytes()
    puts = [r for r in admin.get("/requests").json() if r["method"] == "PUT"]
    assert 0 < len(puts) < 9, "a resumed upload re-sends only the missing parts"
    assert admin.get("/uploads").json() == [], "no orphaned multipart upload"


def test_faults_still_land_everything_once(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    files = [write_random(tmp_path / "drop" / f"f{i}.mp4", (i + 1) * 700_000, seed=10 + i) for i in range(4)]
    write_random(tmp_path / "drop" / "big.mp4", 11 * MiB, seed=20)
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    set_faults(admin, rate_limit_share=0.15, error_share=0.1, retry_after=0)
    result = run_syncd(config, "sync", "--wait", "--timeout", "90")
    set_faults(admin)
    assert result.returncode == 0, result.stderr
    videos = admin_videos(admin)
    assert sorted(v["name"] for v in videos) == sorted(["big.mp4"] + [f.name for f in files])
    assert admin.get("/uploads").json() == []


def test_wrong_key_stops_with_a_clear_message(tmp_path: Path, emu: Emulator) -> None:
    write_random(tmp_path / "drop" / "a.mp4", 1000, seed=5)
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    result = run_syncd(config, "sync", key="sk_wrong_key_123456")
    assert result.returncode == 1
    assert "rejected the API key from $SYNCD_TEST_KEY" in result.stderr
    assert "Traceback" not in result.stderr and "sk_wrong_key_123456" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "API key" in line]
    assert line.endswith("stopping (`syncd doctor` checks the whole setup)"), line


def test_another_accounts_key_stops_and_touches_nothing(tmp_path: Path, emu: Emulator,
                                                        admin: httpx.Client) -> None:
    """A valid key of another account: syncd's videos are not in its listing and answer
    403, not 404. That is no proof of a remote deletion: stop, and trash nothing."""
    drop = tmp_path / "drop"
    write_random(drop / "a.mp4", 1000, seed=5)
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    assert run_syncd(config, "sync").returncode == 0
    result = run_syncd(config, "sync", key=OTHER_KEY)
    assert result.returncode == 1
    assert "may not use the videos and collections syncd made" in result.stderr
    assert "another account's key" in result.stderr and "Traceback" not in result.stderr
    assert (drop / "a.mp4").exists() and not (drop / ".syncd-trash").exists()
    assert [v["name"] for v in admin_videos(admin)] == ["a.mp4"]


class KeyEchoingServer(ThreadingHTTPServer):
    """A remote that answers every request with ``status`` and echoes the API key it was
    sent in the error message (as careless servers do)."""

    def __init__(self, status: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                body = json.dumps({"detail": f"Invalid API key '{self.headers.get('X-API-Key')}'"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.mark.parametrize("status", [400, 401])
def test_a_key_echoed_by_the_remote_is_redacted_everywhere(tmp_path: Path, status: int) -> None:
    write_random(tmp_path / "drop" / "a.mp4", 1000, seed=5)
    server = KeyEchoingServer(status)
    try:
        config = write_config(tmp_path, f"http://127.0.0.1:{server.server_address[1]}", folder_cfg(tmp_path),
                              upload={"direct_upload_below": "1MiB"})
        result = run_syncd(config, "sync")  # asserts the key is not in its output
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1 and "Invalid API key '[API key]'" in result.stderr
    for stored in (tmp_path / "state").iterdir():
        assert KEY.encode() not in stored.read_bytes(), stored


def test_a_name_that_is_not_utf8_is_skipped_with_one_line(tmp_path: Path, emu: Emulator,
                                                          admin: httpx.Client) -> None:
    """A file copied from an old camera or a Windows share with a Latin-1 name: the
    others still sync, and the user is told which file was left out and why."""
    drop = tmp_path / "drop"
    write_random(drop / "good.mp4", 1000, seed=1)
    write_random(Path(os.fsdecode(bytes(drop) + b"/bad\xff.mp4")), 1000, seed=2)
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    result = run_syncd(config, "sync", "--wait", "--timeout", "60")
    assert [v["name"] for v in admin_videos(admin)] == ["good.mp4"]
    assert "bad\ufffd.mp4: skipped: its name is not valid UTF-8" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr


def test_bad_config_exits_2_naming_the_key(tmp_path: Path, emu: Emulator) -> None:
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path), upload={"concurency": 3})
    result = run_syncd(config, "sync")
    assert result.returncode == 2
    assert "upload.concurency" in result.stderr and "config.yaml:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "state").exists()


@pytest.mark.parametrize("case", ["older-than", "empty-query", "empty-question", "history-dir", "nul-path",
                                  "non-ascii-key", "corrupt-catalog"])
def test_bad_input_gets_one_line_and_changes_nothing(tmp_path: Path, emu: Emulator, admin: httpx.Client,
                                                     case: str) -> None:
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    key, args, code, said = KEY, ["sync"], 2, ""
    if case == "older-than":
        args, said = ["trash", "empty", "--older-than", "banana"], "--older-than: invalid duration"
    elif case == "empty-query":
        args, said = ["search", " "], "the query is empty"
    elif case == "empty-question":
        args, said = ["ask", str(tmp_path / "drop" / "a.mp4"), ""], "the question is empty"
    elif case == "history-dir":
        args = ["ask", str(tmp_path / "drop" / "a.mp4"), "what happens?", "--history", str(tmp_path / "no" / "h.json")]
        said = "--history: cannot write in"
    elif case == "nul-path":
        raw = yaml.safe_load(config.read_text())
        raw["folders"][0]["path"] = str(tmp_path / "dr\0op")
        config.write_text(yaml.safe_dump(raw))
        said = "must not contain a NUL character"
    elif case == "non-ascii-key":
        key, said = "sk_lo\u00e7al_KEY9", "non-ASCII characters"
    else:
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "catalog.db").write_bytes(b"not a database, whatever it was" * 100)
        code, said = 1, "cannot read catalog"
    admin.post("/requests/clear")
    result = run_syncd(config, *args, key=key)
    assert result.returncode == code, result.stderr
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert "al_KEY9" not in result.stderr, "no part of the key"
    assert admin.get("/requests").json() == [], "nothing asked of the remote"


def test_deleted_catalog_relinks_instead_of_uploading(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    for i in range(3):
        write_random(tmp_path / "drop" / f"v{i}.mp4", 200_000 + i, seed=30 + i)
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    assert run_syncd(config, "sync", "--wait", "--timeout", "60").returncode == 0
    before = {v["video_id"] for v in admin_videos(admin)}
    shutil.rmtree(tmp_path / "state")
    admin.post("/requests/clear")
    result = run_syncd(config, "sync", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert uploads_started(admin) == 0
    assert {v["video_id"] for v in admin_videos(admin)} == before
    assert result.stdout.count("linked to existing remote video") == 3
    assert {r["video_id"] for r in status_json(config)} == before


def test_status_lists_state_counts_and_pending_files(tmp_path: Path, emu: Emulator) -> None:
    write_random(tmp_path / "drop" / "a.mp4", 1000, seed=6)
    config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
    assert run_syncd(config, "sync").returncode == 0
    table = run_syncd(config, "status")
    assert table.returncode == 0 and "1 tracked file(s)" in table.stdout
    assert "processing" in table.stdout and "a.mp4" in table.stdout


def test_over_the_servers_direct_cap_switches_to_multipart(tmp_path: Path) -> None:
    """The direct-upload cap is the server's (per environment): a 413 means multipart,
    in the same pass, and no more direct tries for files as large."""
    for i in range(2):
        write_random(tmp_path / "drop" / f"f{i}.mp4", 300_000, seed=30 + i)
    with Emulator(emulator_config(tmp_path / "emu", direct_upload_max_bytes=200_000)) as emu:
        config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path),
                              upload={"direct_upload_below": "1MiB", "concurrency": 1})
        result = run_syncd(config, "sync")
        assert result.returncode == 0, result.stdout + result.stderr
        with httpx.Client(base_url=f"{emu.base_url}/_admin") as admin:
            assert sorted(v["name"] for v in admin_videos(admin)) == ["f0.mp4", "f1.mp4"]
            log = admin.get("/requests").json()
    direct = [r["status"] for r in log if r["path"].endswith("/uploads/direct")]
    assert direct == [413], "one direct try, then multipart for both"
    assert sum(1 for r in log if r["path"].endswith("/multipart/initiate")) == 2


def test_second_emulator_restart_keeps_state(tmp_path: Path) -> None:
    data = tmp_path / "emu"
    write_random(tmp_path / "drop" / "a.mp4", 1000, seed=7)
    with Emulator(emulator_config(data)) as emu:
        config = write_config(tmp_path, emu.base_url, folder_cfg(tmp_path))
        assert run_syncd(config, "sync", "--wait", "--timeout", "60").returncode == 0
        port = emu.base_url.rsplit(":", 1)[1]
    with Emulator(emulator_config(data, port=int(port))) as emu:
        with httpx.Client(base_url=f"{emu.base_url}/_admin") as admin:
            assert len(admin_videos(admin)) == 1
        assert run_syncd(config, "sync").returncode == 0
    assert KEY not in (tmp_path / "state" / "catalog.db").read_bytes().decode("latin-1")
