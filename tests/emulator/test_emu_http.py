"""Auth, routing and validation shapes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
from emu_helpers import CHAT, COL, KEY_A, UP, VID, make_config, raw_request

from syncd.emulator.mikshi import Emulator


def test_missing_and_wrong_key_are_401_with_message(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.base_url) as c:
        r = c.get(f"{VID}/list")
        assert r.status_code == 401
        assert "message" in r.json()
        r = c.get(f"{VID}/list", headers={"X-API-Key": KEY_A + "x"})
        assert r.status_code == 401
        assert r.json()["message"]
        r = c.post(f"{CHAT}/embeddings/text", json={"text": "hi"}, headers={"X-API-Key": ""})
        assert r.status_code == 401


def test_each_key_is_its_own_stable_user(emu: Emulator, client: httpx.Client,
                                         client_b: httpx.Client, admin: httpx.Client) -> None:
    a = client.post(f"{COL}/create", json={"name": "same"}).json()
    b = client_b.post(f"{COL}/create", json={"name": "same"}).json()
    assert a["parent_id"] == Emulator.user_id_for_key(KEY_A)
    assert a["parent_id"] != b["parent_id"]
    users = {u["user_id"] for u in admin.get("/_admin/users").json()}
    assert {a["parent_id"], b["parent_id"]} <= users


def test_unknown_route_404_and_wrong_method_405(client: httpx.Client) -> None:
    assert client.get("/api/backend/v1/developer/nope").status_code == 404
    r = client.get(f"{UP}/multipart/initiate")
    assert r.status_code == 405
    assert r.json() == {"detail": "Method Not Allowed"}


def test_validation_errors_are_fastapi_shaped(client: httpx.Client) -> None:
    r = client.post(f"{UP}/multipart/initiate", json={})
    assert r.status_code == 422
    err = r.json()["detail"][0]
    assert err["loc"] == ["body", "filename"] and err["type"] == "missing" and err["msg"]
    r = client.get(f"{VID}/get-video-details", params={"video_id": "not-a-uuid"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "video_id"]
    r = client.get(f"{UP}/status/not-a-uuid")
    assert r.status_code == 422
    r = client.post(f"{UP}/multipart/initiate", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"
    r = client.post(f"{UP}/multipart/initiate", content=b'{"filename": "a"}',
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 422


def test_chunked_json_body_is_accepted_on_the_api(client: httpx.Client) -> None:
    def gen():  # type: ignore[no-untyped-def]
        yield b'{"filename": '
        yield b'"a.mp4"}'

    r = client.post(f"{UP}/multipart/initiate", content=gen(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_keep_alive_reuses_one_connection(emu: Emulator, client: httpx.Client,
                                          admin: httpx.Client) -> None:
    for _ in range(5):
        assert client.get(f"{VID}/list").status_code == 200
    # One client, one pooled connection: the server kept it open between requests.
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert len(pool.connections) == 1


def test_idle_keepalive_connection_is_closed(tmp_path: Path) -> None:
    with Emulator(make_config(tmp_path / "d", keepalive_seconds=0.3)) as emu:
        head = (f"GET {VID}/list HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY_A}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
            sock.sendall(head)
            first = b""
            while not first.endswith(b"\r\n\r\n[]"):
                first += sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")
            time.sleep(0.6)
            assert sock.recv(65536) == b""  # the server hung up on the idle connection


def test_bad_content_length_is_400(emu: Emulator) -> None:
    out = raw_request(emu.base_url, f"POST {COL}/create HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Length: abc\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
