"""`syncd search` and `syncd ask` against the emulator (issue 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from syncd.media.clips import make_clip
from syncd.emulator.mikshi import Emulator
from syncd.remote.base import parse_timestamp
from syncd.remote.mikshi import MikshiClient
from tests.conftest import (
    FAST_RETRY,
    KEY,
    REPO,
    admin_videos,
    clear_requests,
    emulator_config,
    run_syncd,
    write_config,
)

CLIPS = {
    "warehouse-cam3/forklift-loading-gate.mp4": 12,
    "warehouse-cam3/pallet-stack-night.mp4": 11,
    "parking-north/car-entering-gate.mp4": 8,
    "parking-north/truck-at-barrier.mp4": 7,
}


class World:
    def __init__(self, root: Path, emu: Emulator) -> None:
        self.root, self.emu = root, emu
        self.drop = root / "drop"
        self.config = write_config(root, emu.base_url)
        self.admin = httpx.Client(base_url=f"{emu.base_url}/_admin", timeout=10)
        self.client = MikshiClient(emu.base_url, KEY, retry=FAST_RETRY)

    def search(self, *args: str) -> list[dict[str, Any]]:
        result = run_syncd(self.config, "search", *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def requests(self, fragment: str = "") -> list[dict[str, Any]]:
        return [r for r in self.admin.get("/requests").json() if fragment in r["path"]]


def make_world(root: Path, emu: Emulator) -> World:
    world = World(root, emu)
    for i, (rel, seconds) in enumerate(CLIPS.items()):
        make_clip(world.drop / rel, seconds=seconds, seed=i)
    result = run_syncd(world.config, "sync", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("search")
    with Emulator(emulator_config(root / "emulator", processing_seconds=0.1, pipeline_seconds=0.1)) as emu:
        w = make_world(root, emu)
        yield w
        w.admin.close()
        w.client.close()


def brute_force(world: World, query: str) -> list[tuple[str, float, float, float]]:
    """(video_id, start, end, cosine) of every segment, best first, straight from the API."""
    q = np.array(world.client.embeddings_text(query))
    rows = []
    for video in admin_videos(world.admin):
        for seg in world.client.embeddings_video(video["video_id"]):
            v = np.array(seg.vector)
            rows.append((video["video_id"], seg.start, seg.end, float(v @ q / np.linalg.norm(v) / np.linalg.norm(q))))
    return sorted(rows, key=lambda r: -r[3])


def test_search_finds_the_closest_segment_and_caches_the_query(world: World) -> None:
    pallet = next(v for v in admin_videos(world.admin) if v["name"].endswith("pallet-stack-night.mp4"))
    caption = world.admin.get(f"/videos/{pallet['video_id']}").json()["segments"][1]["caption"]
    query = f"pallet {caption}"
    expected = brute_force(world, query)
    assert expected[0][3] - expected[1][3] > 1e-3, "the test query must have one clear best segment"

    clear_requests(world.admin)
    hits = world.search(query, "--top-k", "5")
    assert len(world.requests("/embeddings/text")) == 1
    assert [(h["video_id"], h["start"], h["end"]) for h in hits] == [r[:3] for r in expected[:5]]
    assert [h["score"] for h in hits] == pytest.approx([r[3] for r in expected[:5]], abs=1e-4)
    best = hits[0]
    assert best["rank"] == 1 and best["path"] == str(world.drop / "warehouse-cam3/pallet-stack-night.mp4")
    assert best["collection"] == "warehouse-cam3"

    clear_requests(world.admin)
    again = world.search(query, "--top-k", "5")
    assert again == hits
    assert world.requests() == [], "a repeated query costs no request at all"

    table = run_syncd(world.config, "search", query, "--top-k", "2")
    lines = table.stdout.splitlines()
    assert len(lines) == 3 and "pallet-stack-night.mp4" in lines[1] and "warehouse-cam3" in lines[1]
    start, end = parse_timestamp(lines[1].split()[2].split("-")[0]), parse_timestamp(lines[1].split()[2].split("-")[1])
    assert (start, end) == (best["start"], best["end"])


def test_search_filters_by_collection_and_folder(world: World) -> None:
    parking = world.search("gate", "--collection", "parking-north", "--top-k", "50")
    assert parking and {h["collection"] for h in parking} == {"parking-north"}
    under = world.drop / "warehouse-cam3"
    warehouse = world.search("gate", "--folder", str(under), "--top-k", "50")
    assert warehouse and all(Path(h["path"]).is_relative_to(under) for h in warehouse)
    assert len(parking) + len(warehouse) == len(world.search("gate", "--top-k", "50"))
    assert world.search("gate", "--collection", "no-such-collection") == []
    told = run_syncd(world.config, "search", "gate", "--collection", "no-such-collection")
    assert told.returncode == 0 and "no hits in that collection or folder" in told.stdout


def test_remote_search_is_there_for_comparison(world: World) -> None:
    query = "forklift loading gate"
    local = world.search(query, "--top-k", "3")
    clear_requests(world.admin)
    remote = world.search(query, "--top-k", "3", "--remote")
    assert len(world.requests("/api/chat/v1/developer/search")) == 1
    assert [h["score"] for h in remote] == [None] * 3
    top = remote[0]
    assert (top["video_id"], top["start"], top["end"], top["path"]) == (
        local[0]["video_id"], local[0]["start"], local[0]["end"], local[0]["path"])


def test_ask_streams_the_answer_and_continues_the_history(world: World) -> None:
    video = world.drop / "warehouse-cam3/forklift-loading-gate.mp4"
    video_id = next(v["video_id"] for v in admin_videos(world.admin) if v["name"].endswith(video.name))
    question = "What happens at the dock?"
    expected = world.client.chat_ask(video_id, question)
    history = world.root / "conversation.json"
    clear_requests(world.admin)
    result = run_syncd(world.config, "ask", str(video), question, "--stream", "--history", str(history))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected + "\n"
    asks = world.requests("/chat/ask")
    assert len(asks) == 1, (asks, result.stderr)
    assert json.loads(history.read_text()) == [
        {"role": "user", "content": question}, {"role": "assistant", "content": expected}]

    follow_up = run_syncd(world.config, "ask", str(video), "And then?", "--history", str(history))
    assert follow_up.returncode == 0, follow_up.stderr
    assert follow_up.stdout.strip().endswith("(Answer takes into account 2 earlier messages.)")
    assert len(json.loads(history.read_text())) == 4

    stranger = world.root / "not-synced.mp4"
    stranger.write_bytes(b"x")
    refused = run_syncd(world.config, "ask", str(stranger), "hello?")
    assert refused.returncode == 1 and "not a tracked video" in refused.stderr and "Traceback" not in refused.stderr


def _without_key(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "syncd", "-c", str(config), *args],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_offline_search_works_with_the_emulator_stopped(tmp_path: Path) -> None:
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=0.1, pipeline_seconds=0.1)) as emu:
        world = make_world(tmp_path, emu)
        cached = world.search("truck barrier", "--top-k", "3")
        base_url = emu.base_url
        world.admin.close()
        world.client.close()
    offline = _without_key(world.config, "search", "--offline", "forklift", "--json")
    assert offline.returncode == 0, offline.stderr
    hits = json.loads(offline.stdout)
    assert hits[0]["path"] == str(tmp_path / "drop/warehouse-cam3/forklift-loading-gate.mp4")
    assert hits[0]["end"] == pytest.approx(12.0, abs=0.5), "a full-text hit is the whole video"
    scores = [h["score"] for h in hits]
    assert scores[0] == 1.0 and all(0 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    table = _without_key(world.config, "search", "--offline", "forklift")
    assert "0.0000" not in table.stdout and "1.0000" in table.stdout, table.stdout
    by_collection = _without_key(world.config, "search", "--offline", "parking-north", "--json")
    assert {Path(h["path"]).parent.name for h in json.loads(by_collection.stdout)} == {"parking-north"}
    # A query embedded before needs no remote either; a new one fails cleanly.
    config = write_config(tmp_path, base_url, remote={"max_retries": 0})
    again = run_syncd(config, "search", "truck barrier", "--top-k", "3", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == cached
    new = run_syncd(config, "search", "something never asked")
    assert new.returncode == 1 and "Traceback" not in new.stderr and "syncd:" in new.stderr
