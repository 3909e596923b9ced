"""Embeddings, search, visualize, chat (plain + SSE) and credits."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from emu_helpers import CHAT, COL, KEY_A, Api, make_config

from syncd.emulator.mikshi import Emulator


def _vec(client: httpx.Client, text: str) -> np.ndarray:
    r = client.post(f"{CHAT}/embeddings/text", json={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    return np.array(body["data"][0]["embedding"])


def test_text_embedding_is_deterministic_and_validated(client: httpx.Client,
                                                       client_b: httpx.Client) -> None:
    a = _vec(client, "Forklift near the gate")
    assert a.shape == (1024,)
    assert math.isclose(float(np.linalg.norm(a)), 1.0, rel_tol=1e-4)
    assert np.allclose(a, _vec(client_b, "forklift NEAR the gate!"))
    assert not np.allclose(a, _vec(client, "truck at night"))
    assert client.post(f"{CHAT}/embeddings/text", json={"text": ""}).status_code == 422
    assert client.post(f"{CHAT}/embeddings/text", json={"text": "x" * 4097}).status_code == 422
    assert client.post(f"{CHAT}/embeddings/text", json={"text": "x" * 4096}).status_code == 200
    assert client.post(f"{CHAT}/embeddings/text", json={}).status_code == 422


def test_video_embeddings(api: Api, client: httpx.Client, client_b: httpx.Client) -> None:
    vid = api.upload(os.urandom(3_000_000), name="Loading dock cam")  # 12 s at 2 Mbit/s
    api.skip()
    r = client.get(f"{CHAT}/embeddings/video/{vid}")
    assert r.status_code == 409
    assert api.initiate_pipeline(vid, "search-process").status_code == 200
    api.skip()
    assert client_b.get(f"{CHAT}/embeddings/video/{vid}").status_code == 404
    assert client.get(f"{CHAT}/embeddings/video/not-a-uuid").status_code == 400
    assert client.get(f"{CHAT}/embeddings/video/00000000-0000-4000-8000-000000000000") \
        .status_code == 404
    body = client.get(f"{CHAT}/embeddings/video/{vid}").json()
    assert body["id"] == vid and body["status"] == "ready"
    assert [(d["start"], d["end"]) for d in body["data"]] == [
        ("00:00:00", "00:00:05"), ("00:00:05", "00:00:10"), ("00:00:10", "00:00:12")]
    seg = body["data"][0]
    assert len(seg["embedding"]) == 1024
    assert seg["embedding_option"] == "visual" and seg["embedding_scope"] == "clip"


def _cos(a: np.ndarray, b: list[float]) -> float:
    bb = np.array(b)
    return float(a @ bb / (np.linalg.norm(a) * np.linalg.norm(bb)))


def test_name_words_pull_queries_towards_that_video(api: Api, client: httpx.Client) -> None:
    dock = api.processed_video("harbour crane alpha", size=2_000_000)
    other = api.processed_video("kitchen blender", size=2_000_000)
    q = _vec(client, "harbour crane")
    dock_segs = client.get(f"{CHAT}/embeddings/video/{dock}").json()["data"]
    other_segs = client.get(f"{CHAT}/embeddings/video/{other}").json()["data"]
    assert min(_cos(q, s["embedding"]) for s in dock_segs) > \
        max(_cos(q, s["embedding"]) for s in other_segs)


def test_search_ranks_caption_match_first(api: Api, client: httpx.Client,
                                          admin: httpx.Client) -> None:
    v1 = api.processed_video("yard camera", size=5_000_000)  # 20 s -> 4 segments
    v2 = api.processed_video("lobby camera", size=5_000_000)
    segments = admin.get(f"/_admin/videos/{v2}").json()["segments"]
    assert len(segments) == 4 and all(s["caption"] for s in segments)
    captions = [frozenset(s["caption"].split()) for s in segments]
    target = next(s for s, c in zip(segments, captions, strict=True) if captions.count(c) == 1)
    query = target["caption"] + " lobby"
    r = client.post(f"{CHAT}/search", json={"query": query, "video_ids": [v1, v2], "top_k": 3})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [h["rank"] for h in results] == [1, 2, 3]
    best = results[0]
    assert set(best) == {"rank", "start", "end", "video_id", "thumbnail_url",
                         "hls_playlist_url", "video_url"}
    assert (best["video_id"], best["start"], best["end"]) == (v2, target["start"], target["end"])
    # A collection resolves too.
    cid = client.post(f"{COL}/create", json={"name": "c"}).json()["collection_id"]
    client.post(f"{COL}/{cid}/videos", json={"video_id": v2})
    r = client.post(f"{CHAT}/search", json={"query": "lobby", "collection_id": cid})
    assert r.status_code == 200 and {h["video_id"] for h in r.json()["results"]} == {v2}


def test_search_errors(api: Api, api_b: Api, client: httpx.Client) -> None:
    mine = api.upload(b"m")
    theirs = api_b.upload(b"t")
    r = client.post(f"{CHAT}/search", json={"query": "x"})
    assert r.status_code == 422
    r = client.post(f"{CHAT}/search", json={"query": "x", "video_ids": ["nope"]})
    assert r.status_code == 400
    r = client.post(f"{CHAT}/search", json={"query": "x", "video_ids": [mine, theirs]})
    assert r.status_code == 403
    assert r.json() == {"detail": f"Video(s) not owned by user: {theirs}"}
    empty = client.post(f"{COL}/create", json={"name": "empty"}).json()["collection_id"]
    r = client.post(f"{CHAT}/search", json={"query": "x", "collection_id": empty})
    assert r.status_code == 404
    # Videos without search-process are skipped, not an error.
    r = client.post(f"{CHAT}/search", json={"query": "x", "video_ids": [mine]})
    assert r.status_code == 200 and r.json() == {"results": []}


def test_visualize(api: Api, client: httpx.Client) -> None:
    single = api.processed_video("short", size=100)  # 1 s -> 1 segment
    r = client.post(f"{CHAT}/visualize", json={"video_ids": [single]})
    assert r.status_code == 400
    assert r.json() == {"detail": "Need at least 2 segments across the selected videos for "
                                  "projection."}
    longer = api.processed_video("long", size=2_500_000)
    body = client.post(f"{CHAT}/visualize", json={"video_ids": [single, longer]}).json()
    assert set(body["videos"]) == {single, longer}
    assert body["videos"][single]["color"].startswith("hsl(")
    assert len(body["points"]) == 1 + 2
    for p in body["points"]:
        assert 0.0 <= p["x"] <= 1.0 and 0.0 <= p["y"] <= 1.0
        assert set(p) == {"segment_id", "video_id", "x", "y", "start", "end", "thumbnail_url"}


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    assert text.endswith("\n\n")
    out = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
        out.append((lines[0][7:], json.loads(lines[1][6:])))
    return out


def test_chat_plain_and_stream(api: Api, client: httpx.Client, client_b: httpx.Client) -> None:
    vid = api.processed_video("gate camera", size=2_500_000)
    r = client.post(f"{CHAT}/chat/ask", json={"question": "Who is at the gate?",
                                              "video_id": vid})
    assert r.status_code == 200
    answer = r.json()["answer"]
    assert "gate camera" in answer and "00:00:00" in answer
    again = client.post(f"{CHAT}/chat/ask", json={"question": "Who is at the gate?",
                                                  "video_id": vid}).json()["answer"]
    assert again == answer
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    multi = client.post(f"{CHAT}/chat/ask", json={"question": "Who is at the gate?",
                                                  "video_id": vid, "history": history})
    assert "2 earlier messages" in multi.json()["answer"]

    with client.stream("POST", f"{CHAT}/chat/ask", json={
            "question": "Who is at the gate?", "video_id": vid, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    events = _events(text)
    assert [e for e, _ in events[:-1]] == ["token"] * (len(events) - 1) and len(events) > 2
    assert events[-1] == ("done", {"answer": answer})
    assert "".join(d["content"] for _, d in events[:-1]) == answer

    assert client_b.post(f"{CHAT}/chat/ask", json={"question": "q", "video_id": vid}) \
        .status_code == 403
    assert client.post(f"{CHAT}/chat/ask", json={"question": "q", "video_id": "x"}) \
        .status_code == 422
    assert client.post(f"{CHAT}/chat/ask", json={"video_id": vid}).status_code == 422
    bad_history = [{"role": "system", "content": "x"}]
    assert client.post(f"{CHAT}/chat/ask", json={"question": "q", "video_id": vid,
                                                 "history": bad_history}).status_code == 422


def test_credits_charge_and_refund(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", credits=3)
    with Emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                            headers={"X-API-Key": KEY_A}) as c, \
            httpx.Client(base_url=emu.base_url) as admin, httpx.Client() as s3:
        api = Api(emu, c, s3)
        user = Emulator.user_id_for_key(KEY_A)

        def credits() -> int:
            return next(u["credits"] for u in admin.get("/_admin/users").json()
                        if u["user_id"] == user)

        vid = api.upload(b"v" * 10)
        api.skip()
        assert credits() == 3
        # 404 on video embeddings is refunded; 409 is not.
        assert c.get(f"{CHAT}/embeddings/video/00000000-0000-4000-8000-000000000000") \
            .status_code == 404
        assert credits() == 3
        assert c.get(f"{CHAT}/embeddings/video/{vid}").status_code == 409
        assert credits() == 2
        assert c.post(f"{CHAT}/chat/ask", json={"question": "q", "video_id": vid}) \
            .status_code == 200
        assert credits() == 1
        assert c.post(f"{CHAT}/visualize", json={"video_ids": [vid]}).status_code == 400
        assert credits() == 1  # visualize is free
        assert c.post(f"{CHAT}/embeddings/text", json={"text": "a"}).status_code == 200
        r = c.post(f"{CHAT}/embeddings/text", json={"text": "a"})
        assert r.status_code == 402 and r.json()["detail"]
        admin.post(f"/_admin/users/{user}/credits", json={"credits": 5}).raise_for_status()
        assert c.post(f"{CHAT}/embeddings/text", json={"text": "a"}).status_code == 200
        assert credits() == 4
