"""Restarts, secrecy of API keys, shutdown, and the command line."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from emu_helpers import KEY_A, KEY_B, MIN_PART, UP, VID, Api, make_config

from syncd.emulator.mikshi import Emulator

REPO = Path(__file__).resolve().parents[2]


def test_restart_keeps_videos_uploads_and_parts(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    with Emulator(make_config(data_dir)) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"X-API-Key": KEY_A}) as c, \
            httpx.Client() as s3:
        api = Api(emu, c, s3)
        done = api.processed_video("kept")
        init = api.initiate()
        first = os.urandom(MIN_PART)
        etag = api.put_part(init, 1, first)
        url2 = api.part_url(init, 2)
        port = emu.port
    with Emulator(make_config(data_dir, port=port)) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"X-API-Key": KEY_A}) as c, \
            httpx.Client() as s3:
        api = Api(emu, c, s3)
        assert api.pipeline(done, "search-process")["status"] == "done"
        assert api.upload_status(done)["hls_generation_status"]["status"] == "completed"
        parts = c.post(f"{UP}/multipart/list-parts", json={
            "s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"]}).json()
        assert parts == {"parts": [{"part_number": 1, "etag": etag}]}
        # URLs signed before the restart stay valid (the secret lives in the data dir).
        etag2 = s3.put(url2, content=b"second").headers["ETag"]
        assert api.complete(init, [(1, etag), (2, etag2)]).status_code == 200
        r = c.post(f"{UP}/preprocess", json={"s3_object_name": init["s3_object_name"],
                                             "video_id": init["video_id"], "name": "after"})
        assert r.status_code == 202
        assert emu.admin_video_bytes(init["video_id"]) == first + b"second"
        assert {v["video_id"] for v in c.get(f"{VID}/list").json()} == {done, init["video_id"]}


def test_api_key_never_stored_or_logged(tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk_wrong_key_that_must_not_leak"
    data_dir = tmp_path / "d"
    with Emulator(make_config(data_dir)) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"X-API-Key": KEY_A}) as c, \
            httpx.Client() as s3:
        api = Api(emu, c, s3)
        api.processed_video("secret test")
        c.get(f"{VID}/list", headers={"X-API-Key": wrong})
        c.get(f"{VID}/list", headers={"X-API-Key": KEY_B})
        log_text = httpx.get(f"{emu.base_url}/_admin/requests").text
        admin_text = "".join(httpx.get(f"{emu.base_url}/_admin/{p}").text
                             for p in ("videos", "uploads", "users", "collections"))
        assert "X-Amz-Signature" not in log_text
        assert repr(emu.config).find(KEY_A) == -1
    for secret in (KEY_A, KEY_B, wrong):
        assert secret not in log_text and secret not in admin_text
        assert secret not in caplog.text
        for path in data_dir.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_stop_closes_idle_keepalive_connections(tmp_path: Path) -> None:
    emu = Emulator(make_config(tmp_path / "d"))
    emu.start()
    with httpx.Client(base_url=emu.base_url, headers={"X-API-Key": KEY_A}) as c:
        assert c.get(f"{VID}/list").status_code == 200  # leaves a pooled connection open
        emu.stop()
        assert not [t for t in threading.enumerate() if t.name.startswith("emulator-")]
        with pytest.raises(httpx.TransportError):
            c.get(f"{VID}/list")


def test_cli_runs_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "SYNCD_EMULATOR_API_KEYS": f"{KEY_A},{KEY_B}",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd.emulator", "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(tmp_path / "d"), "--processing-seconds", "0.1",
         "--log-level", "DEBUG"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("emulator listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[-1]
        r = httpx.get(f"{base}{VID}/list", headers={"X-API-Key": KEY_B})
        assert r.status_code == 200 and r.json() == []
        assert json.loads(httpx.get(f"{base}/_admin/health").text) == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert KEY_A not in err and KEY_B not in err and KEY_A not in out
