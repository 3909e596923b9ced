"""Fault injection: rate limits, errors, dropped connections, latency, stream errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from emu_helpers import CHAT, COL, KEY_A, VID, Api, make_config

from syncd.emulator.mikshi import Emulator, Faults


def test_rate_limit_carries_retry_after(emu: Emulator, client: httpx.Client,
                                        admin: httpx.Client, api: Api) -> None:
    init = api.initiate()
    url = api.part_url(init, 1)
    emu.set_faults(Faults(rate_limit_share=1.0, retry_after=0.05))
    r = client.get(f"{VID}/list")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"  # whole seconds, rounded up
    assert r.json()["detail"]
    # The object store never says 429: it throttles with 503 SlowDown.
    r = api.s3.put(url, content=b"x")
    assert r.status_code == 503 and "<Code>SlowDown</Code>" in r.text
    assert "Retry-After" not in r.headers  # S3 sends none
    # The admin API is never faulted.
    assert admin.get("/_admin/videos").status_code == 200
    emu.set_faults(Faults(rate_limit_share=1.0, retry_after=2))
    assert client.get(f"{VID}/list").headers["Retry-After"] == "2"
    log = admin.get("/_admin/requests").json()
    assert log[-1]["status"] == 429 and log[-1]["retry_after"] == "2"
    assert log[-1]["fault"] == "rate_limit"
    assert all(not e["path"].startswith("/_admin") for e in log)


def test_faults_via_admin_api_and_shares(emu: Emulator, client: httpx.Client,
                                         admin: httpx.Client) -> None:
    r = admin.post("/_admin/faults", json={"rate_limit_share": 0.5})
    assert r.status_code == 200 and r.json()["rate_limit_share"] == 0.5
    assert admin.get("/_admin/faults").json() == Faults(rate_limit_share=0.5).to_dict()
    codes = [client.get(f"{VID}/list").status_code for _ in range(200)]
    assert 60 < codes.count(429) < 140 and codes.count(200) == 200 - codes.count(429)
    assert admin.post("/_admin/faults", json={"bogus": 1}).status_code == 400
    assert admin.post("/_admin/faults", json={"drop_share": 2}).status_code == 400


def test_error_share_alternates_500_and_503(emu: Emulator, client: httpx.Client) -> None:
    emu.set_faults(Faults(error_share=1.0))
    codes = {client.get(f"{VID}/list").status_code for _ in range(4)}
    assert codes == {500, 503}


def test_drop_closes_connection_without_acting(emu: Emulator, client: httpx.Client,
                                               admin: httpx.Client) -> None:
    emu.set_faults(Faults(drop_share=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{COL}/create", json={"name": "never"})
    emu.set_faults(Faults())
    assert admin.get("/_admin/collections").json() == []
    entry = admin.get("/_admin/requests").json()[-1]
    assert entry["fault"] == "drop" and entry["status"] is None and entry["bytes_in"] > 0
    # The client recovers on a fresh connection.
    assert client.post(f"{COL}/create", json={"name": "now"}).status_code == 201


def test_latency_is_added(emu: Emulator, client: httpx.Client, admin: httpx.Client) -> None:
    emu.set_faults(Faults(latency_ms=200))
    start = time.monotonic()
    assert client.get(f"{VID}/list").status_code == 200
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    admin.get("/_admin/videos")
    assert time.monotonic() - start < 0.2


def test_path_glob_limits_faults(emu: Emulator, client: httpx.Client, api: Api) -> None:
    init = api.initiate()
    url = api.part_url(init, 1)
    emu.set_faults(Faults(error_share=1.0, path_glob="/s3/*"))
    assert client.get(f"{VID}/list").status_code == 200
    r = api.s3.put(url, content=b"x")
    assert r.status_code in (500, 503) and "<Error>" in r.text


def test_stream_error_event_refunds_credit(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", credits=5,
                      faults=Faults(stream_error_share=1.0))
    with Emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                            headers={"X-API-Key": KEY_A}) as c, \
            httpx.Client(base_url=emu.base_url) as admin, httpx.Client() as s3:
        vid = Api(emu, c, s3).processed_video("cam", size=2_500_000)
        text = c.post(f"{CHAT}/chat/ask", json={"question": "what?", "video_id": vid,
                                                "stream": True}).text
        blocks = text.strip("\n").split("\n\n")
        assert blocks[0].startswith("event: token\n")
        assert blocks[-1].startswith("event: error\ndata: {\"detail\": ")
        assert not any(b.startswith("event: done") for b in blocks)
        user = Emulator.user_id_for_key(KEY_A)
        credits = {u["user_id"]: u["credits"] for u in admin.get("/_admin/users").json()}
        assert credits[user] == 5
