"""memories.ai emulator: per-account rate limits (0429 / HTTP 429), credits (0402 / 402) and
``syncd emulator --backend memories``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from syncd.emulator.memories import MemoriesEmulator
from tests.conftest import KEY, OTHER_KEY, free_port, wait_for
from tests.memories_support import (V1, V2, logged, memories_config, ok_data, refused,
                                    upload_raw, uploaded)


def test_published_upload_limit_is_one_per_minute_per_account(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "m", rate_limits={})) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}) as a, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": OTHER_KEY}) as b:
        assert emu.config.rate_limits["upload"] == "1/min"
        uploaded(a)
        refused(upload_raw(a), "0429")
        refused(a.post(V1 + "/scraper_url",
                       json={"video_urls": ["https://youtu.be/x"]}), "0429")  # same group
        uploaded(b)  # another account has its own window
        emu.advance_clock(60)
        uploaded(a)
        assert len(emu.admin_videos()) == 3
        assert [e["code"] for e in logged(emu, 5)] == ["0000", "0429", "0429", "0000", "0000"]


def test_list_limit_and_v2_download_limit(tmp_path: Path) -> None:
    cfg = memories_config(tmp_path / "m", rate_limits={"list": "5/min", "download": "2/min"})
    with MemoriesEmulator(cfg) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}) as a:
        codes = [a.post(V1 + "/list_videos", json={"page": 1}).json()["code"] for _ in range(6)]
        assert codes == ["0000"] * 5 + ["0429"]
        emu.advance_clock(60)
        ok_data(a.post(V1 + "/list_videos", json={"page": 1}))
        video_no = uploaded(a)
        meta = ok_data(a.get(V1 + "/get_metadata", params={"video_no": video_no}))
        params = {"bucket": meta["bucket"], "blob": meta["blob"]}
        assert [a.get(V2 + "/download", params=params).status_code for _ in range(3)] \
            == [200, 200, 429]
        assert a.get(V2 + "/download", params=params).json()["code"] == 429


def test_rate_limits_can_be_changed_at_runtime(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "m")) as emu, \
            httpx.Client(base_url=emu.base_url) as admin, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}) as a:
        admin.post("/_admin/rate_limits", json={"search": "1/min"}).raise_for_status()
        assert admin.get("/_admin/rate_limits").json()["search"] == "1/min"
        ok_data(a.post(V1 + "/search", json={"search_param": "x"}))
        refused(a.post(V1 + "/search", json={"search_param": "x"}), "0429")
        assert admin.post("/_admin/rate_limits", json={"nope": "1/s"}).status_code == 400


def test_credits_run_out_with_0402_and_402(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "m", credits=2)) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}) as a:
        video_no = uploaded(a)
        meta = ok_data(a.get(V1 + "/get_metadata", params={"video_no": video_no}))
        params = {"bucket": meta["bucket"], "blob": meta["blob"]}
        assert a.get(V2 + "/download", params=params).status_code == 200
        msg = refused(upload_raw(a), "0402")
        assert "balance" in msg
        resp = a.get(V2 + "/download", params=params)
        assert resp.status_code == 402 and "Insufficient balance" in resp.json()["msg"]
        assert len(emu.admin_videos()) == 1


def test_cli_serves_v1_and_v2_on_one_port(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SYNCD_EMULATOR_API_KEYS": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "emulator", "--backend", "memories", "--port", str(port),
         "--data-dir", str(tmp_path / "d"), "--rate-limit", "list=off",
         "--parse-seconds", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(base + "/_admin/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=30, what="the memories emulator to listen")
        with httpx.Client(base_url=base, headers={"Authorization": KEY}) as c:
            ok_data(c.post(V1 + "/list_videos", json={"page": 1}))
            resp = c.get(V2 + "/download", params={"bucket": "mavi-resource", "blob": "x"})
            assert resp.status_code == 400 and resp.json()["msg"] == "Resource does not exist"
            assert httpx.get(base + "/_admin/rate_limits").json()["list"] is None
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "emulator listening on" in out


def test_cli_refuses_a_bad_rate_limit(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "emulator", "--backend", "memories", "--api-key", "k",
         "--data-dir", str(tmp_path), "--rate-limit", "upload=fast"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "bad rate 'fast'" in result.stderr and "Traceback" not in result.stderr


def test_keys_of_one_account_share_its_limits(tmp_path: Path) -> None:
    cfg = memories_config(tmp_path / "m", rate_limits={"upload": "1/min"},
                          key_accounts={KEY: "acme", OTHER_KEY: "acme"})
    with MemoriesEmulator(cfg) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}) as a, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": OTHER_KEY}) as b:
        uploaded(a)
        refused(upload_raw(b), "0429")  # the second key of the account: same window
        video_no = emu.admin_videos()[0]["video_no"]
        assert ok_data(b.get(V1 + "/get_metadata", params={"video_no": video_no})) is not None
