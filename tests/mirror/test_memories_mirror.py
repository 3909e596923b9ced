"""The local mirror on the memories.ai backend (issue 13, Deliver 3), against its emulator
over loopback: sidecars from get_metadata, full-text search over them, the service's own
search mapped to local files, remote-only videos pulled by bucket/blob, and no
get_metadata on a pass that has nothing new to learn."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.emulator.memories import MemoriesEmulator
from syncd.media.clips import make_clip
from syncd.remote.memories import MemoriesClient, MemoriesRemote
from syncd.store.catalog import Catalog
from tests.conftest import run_syncd, write_config
from tests.memories_support import NO_LIMITS, V1, V2, logged, make_client, memories_config

WAIT = ("sync", "--wait", "--timeout", "60")
CLIPS = {"cam1/forklift-loading-gate.mp4": 6, "cam2/car-at-barrier.mp4": 4}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[MemoriesEmulator]:
    """Parsing takes a fraction of a second, so ``sync --wait`` sees it finish."""
    with MemoriesEmulator(memories_config(tmp_path / "memories", parse_seconds=0.3,
                                          task_seconds=0.3)) as emulator:
        yield emulator


@pytest.fixture
def client(emu: MemoriesEmulator) -> Iterator[MemoriesClient]:
    """Another client of the same account: it adds videos this syncd did not upload."""
    with make_client(emu) as c:
        yield c


def config_for(tmp_path: Path, emu: MemoriesEmulator, rate_limits: dict[str, str | None] | None = None,
               **mirror: Any) -> Path:
    remote = {"backend": "memories", "base_url": emu.v1_url, "v2_base_url": emu.v2_url,
              "rate_limits": {**NO_LIMITS, **(rate_limits or {})}}
    return write_config(tmp_path, emu.v1_url, remote=remote, mirror={"interval": "1s", **mirror})


def make_tree(tmp_path: Path, clips: dict[str, int] = CLIPS) -> Path:
    drop = tmp_path / "drop"
    for i, (rel, seconds) in enumerate(clips.items()):
        make_clip(drop / rel, seconds=seconds, seed=60 + i)
    return drop


def synced(config: Path, *args: str) -> str:
    result = run_syncd(config, *WAIT, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def sidecar(video: Path) -> dict[str, Any]:
    return json.loads(video.with_name(video.name + ".syncd.json").read_text())


def search(config: Path, *args: str) -> list[dict[str, Any]]:
    result = run_syncd(config, "search", *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    hits: list[dict[str, Any]] = json.loads(result.stdout)
    return hits


def calls(emu: MemoriesEmulator, path: str, since: int = 0) -> list[dict[str, Any]]:
    """The logged requests to ``path`` (after ``since``), once the log is quiet: the emulator
    logs a request just after answering it, so a finished client can be ahead of it."""
    seen, since_change = -1, time.monotonic()
    while time.monotonic() - since_change < 0.2:
        count = len(emu.requests())
        if count != seen:
            seen, since_change = count, time.monotonic()
        time.sleep(0.02)
    return [r for r in emu.requests(since) if r["path"] == path]


def last_seq(emu: MemoriesEmulator) -> int:
    calls(emu, "")  # once every request so far is logged
    return max((r["seq"] for r in emu.requests()), default=0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def by_name(emu: MemoriesEmulator) -> dict[str, dict[str, Any]]:
    return {v["filename"]: v for v in emu.admin_videos()}


def test_sidecars_hold_what_get_metadata_says(tmp_path: Path, emu: MemoriesEmulator) -> None:
    drop = make_tree(tmp_path)
    config = config_for(tmp_path, emu)
    synced(config)
    remote = by_name(emu)
    for rel in CLIPS:
        video = drop / rel
        info = remote[video.name]
        meta = sidecar(video)
        # The neutral fields the mirror itself reads...
        assert (meta["format"], meta["version"], meta["video_id"]) == ("syncd-video", 1, info["video_no"])
        assert meta["name"] == info["name"] and meta["statuses"] == {"parse": "PARSE"}
        assert meta["duration_seconds"] >= CLIPS[rel] - 1 and meta["size_bytes"] == info["size"]
        assert (meta["width"], meta["height"]) == (info["width"], info["height"])
        assert meta["hls_playlist_url"] is None and meta["collection"] is None
        assert meta["local"]["sha256"] == sha256(video.read_bytes())
        # ...and beside them, get_metadata's answer as the service sent it.
        reported = meta["remote"]
        assert reported["video_no"] == info["video_no"] and reported["video_name"] == info["name"]
        assert reported["tags"] == info["all_tags"] and reported["status"] == "PARSE"
        assert (reported["bucket"], reported["blob"]) == (info["bucket"], info["blob"])
        assert (reported["width"], reported["height"], reported["fps"]) == (info["width"], info["height"], info["fps"])
        assert reported["resolution_label"] == f"{info['height']}p"
        assert reported["cover_url"].endswith("/frame_0032.jpg")  # from the listing: a stable CDN URL
        assert "video_url" not in reported
        assert {"datetime_taken", "camera_model", "latitude", "longitude", "duration", "size",
                "create_time"} <= set(reported)
        # No segment embeddings on this backend: skipped, not failed.
        assert meta["embeddings"] is None
        assert not video.with_name(video.name + ".syncd.emb").exists()
    assert not [r for r in emu.requests() if "embed" in r["path"]]


def test_offline_search_finds_videos_by_their_tags(tmp_path: Path, emu: MemoriesEmulator) -> None:
    drop = make_tree(tmp_path)
    config = config_for(tmp_path, emu)
    synced(config)
    remote = by_name(emu)
    videos = {remote[Path(rel).name]["video_no"]: (rel, remote[Path(rel).name]["all_tags"]) for rel in CLIPS}
    for video_no, (rel, tags) in videos.items():
        for tag in tags:  # the service's scene tags, its "api" tag, the subfolder's tag
            if tag.startswith(("sha256:", "syncd-instance:")):
                continue  # syncd's bookkeeping: not indexed
            # Found by the tag: exactly the videos with that tag, or that word in their path.
            expected = {no for no, (other, its) in videos.items()
                        if tag in its or tag in re.findall(r"[a-z0-9]+", str(drop / other))}
            hits = search(config, tag, "--offline")
            assert {h["video_id"] for h in hits} == expected and video_no in expected
            assert str(drop / rel) in {h["path"] for h in hits}


def test_remote_only_videos_are_pulled_by_bucket_and_blob(tmp_path: Path, emu: MemoriesEmulator,
                                                          client: MemoriesClient) -> None:
    drop = tmp_path / "drop"
    clips = tmp_path / "elsewhere"
    make_clip(clips / "dock.mp4", seconds=3, seed=71)
    # A name from another client is never trusted: a leading dot, a bidi override.
    hostile = clips / ".\u202edock-east.mp4"
    make_clip(hostile, seconds=2, seed=72)
    dock = client.upload(clips / "dock.mp4", tags=["quayside"], camera_model="AXIS-Q1615",
                         latitude=52.52, longitude=13.405).video_no
    odd = client.upload(hostile).video_no
    config = config_for(tmp_path, emu, pull_remote=True)
    out = synced(config)
    files = {p.name: p for p in drop.rglob("*") if p.is_file() and not p.name.endswith(".syncd.json")}
    assert set(files) == {"dock.mp4", "dock-east.mp4"}, out
    for name, video_no in (("dock.mp4", dock), ("dock-east.mp4", odd)):
        assert sha256(files[name].read_bytes()) == sha256(emu.admin_video_bytes(video_no) or b"")
        meta = sidecar(files[name])
        assert meta["video_id"] == video_no and meta["local"]["sha256"] == sha256(files[name].read_bytes())
    # Pulled through the v2 download, once each; never uploaded back, now or on a later pass.
    assert len(calls(emu, V2 + "/download")) == 2
    synced(config)
    assert len(calls(emu, V1 + "/upload")) == 2  # the other client's two, no more
    assert len(calls(emu, V2 + "/download")) == 2
    assert {v["video_no"] for v in emu.admin_videos()} == {dock, odd}
    with Catalog.open(tmp_path / "state") as catalog:
        assert {c.video_id for c in catalog.contents()} == {dock, odd}
    # Its tags and capture metadata are in the sidecar and found by the local full-text search.
    reported = sidecar(files["dock.mp4"])["remote"]
    assert "quayside" in reported["tags"] and reported["camera_model"] == "AXIS-Q1615"
    assert (reported["latitude"], reported["longitude"]) == (52.52, 13.405)
    for query in ("quayside", "AXIS-Q1615"):
        assert [h["path"] for h in search(config, query, "--offline")] == [str(files["dock.mp4"])]


def test_pulls_keep_to_the_download_rate_limit(tmp_path: Path, emu: MemoriesEmulator,
                                               client: MemoriesClient) -> None:
    emu.set_rate_limits({"download": "1/s"})  # the service refuses faster downloads with 0429
    for i in range(3):
        make_clip(tmp_path / "elsewhere" / f"clip-{i}.mp4", seconds=2, seed=80 + i)
        client.upload(tmp_path / "elsewhere" / f"clip-{i}.mp4")
    config = config_for(tmp_path, emu, rate_limits={"download": "1/s"}, pull_remote=True)
    synced(config)
    downloads = calls(emu, V2 + "/download")
    assert [d["status"] for d in downloads] == [200] * 3  # none refused: paced before
    assert downloads[2]["time"] - downloads[0]["time"] >= 1.9  # at most one per second
    assert len(list((tmp_path / "drop").glob("clip-*.mp4"))) == 3


def test_remote_search_maps_hits_to_local_files(tmp_path: Path, emu: MemoriesEmulator,
                                                client: MemoriesClient) -> None:
    # The emulator's search scores a video by the words of its name (and of made-up captions):
    # every name holds the query's word, so every video is a hit.
    clips = {"cam1/forklift-loading-gate.mp4": 6, "cam2/truck-gate.mp4": 4}
    drop = make_tree(tmp_path, clips)
    config = config_for(tmp_path, emu)
    synced(config)
    make_clip(tmp_path / "elsewhere" / "yard-gate.mp4", seconds=4, seed=90)
    yard = client.upload(tmp_path / "elsewhere" / "yard-gate.mp4").video_no  # on the remote only
    emu.advance_clock(1)
    remote = by_name(emu)
    local = {remote[Path(rel).name]["video_no"]: str(drop / rel) for rel in clips}
    query = "gate"
    expected = client.search(query, top_k=50, filtering_level="low")
    assert {h.video_no for h in expected} == {*local, yard}
    before = last_seq(emu)
    hits = search(config, query, "--remote", "--top-k", "50")
    assert len(calls(emu, V1 + "/search", before)) == 1  # the whole namespace in one search
    assert [(h["video_id"], h["start"], h["end"]) for h in hits] == \
        [(h.video_no, h.start_seconds, h.end_seconds) for h in expected]
    for hit in hits:
        assert hit["score"] is None
        if hit["video_id"] == yard:
            assert hit["path"] is None and hit["paths"] == []
        else:
            assert hit["path"] == local[hit["video_id"]]
    table = run_syncd(config, "search", query, "--remote", "--top-k", "50")
    assert table.returncode == 0, table.stderr
    assert f"(remote only: video {yard})" in table.stdout
    assert str(drop / "cam1/forklift-loading-gate.mp4") in table.stdout
    # With a folder filter, only the videos there are searched, and found at their paths.
    only = search(config, query, "--remote", "--folder", str(drop / "cam2"), "--top-k", "50")
    assert only and {h["path"] for h in only} == {str(drop / "cam2/truck-gate.mp4")}


def test_an_unchanged_pass_asks_no_metadata(tmp_path: Path, emu: MemoriesEmulator) -> None:
    clips = {f"cam{i % 2}/clip-{i}.mp4": 2 for i in range(4)}
    drop = make_tree(tmp_path, clips)
    emu.set_rate_limits({"metadata": "2/s"})  # the service refuses faster get_metadata with 0429
    config = config_for(tmp_path, emu, rate_limits={"metadata": "2/s"})
    synced(config)
    assert all(sidecar(drop / rel)["statuses"] == {"parse": "PARSE"} for rel in clips)
    asked = calls(emu, V1 + "/get_metadata")
    # Paced before the service refuses: the emulator enforces 2/s on arrival, so its 0429s
    # count what the pacing let through (counted; arrival gaps are timings, which a loaded
    # machine's scheduling stretches or squeezes).
    assert len(asked) >= len(clips)
    assert sum(r["code"] == "0429" for r in asked) <= 1, asked
    before = last_seq(emu)
    synced(config)
    synced(config)
    assert calls(emu, V1 + "/get_metadata", before) == []
    # A sidecar deleted by hand is written again from what the catalog holds, by the next
    # pass that reads the complete listing (a quiet sync looks at no sidecar): no request either.
    lost = drop / "cam0/clip-0.mp4"
    expected = sidecar(lost)
    lost.with_name(lost.name + ".syncd.json").unlink()
    synced(config)
    assert not lost.with_name(lost.name + ".syncd.json").exists()
    synced(config, "--check-deletions")
    assert {k: v for k, v in sidecar(lost).items() if k != "pulled_at"} == \
        {k: v for k, v in expected.items() if k != "pulled_at"}
    assert calls(emu, V1 + "/get_metadata", before) == []


def test_vector_search_says_the_backend_has_no_embeddings(tmp_path: Path, emu: MemoriesEmulator) -> None:
    make_tree(tmp_path, {"cam1/a.mp4": 2})
    config = config_for(tmp_path, emu)
    synced(config)
    result = run_syncd(config, "search", "forklift")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--offline" in lines[0] and "--remote" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_remote_search_over_many_videos_goes_in_batches(tmp_path: Path, emu: MemoriesEmulator,
                                                        client: MemoriesClient) -> None:
    make_clip(tmp_path / "gate.mp4", seconds=4, seed=95)
    video_no = client.upload(tmp_path / "gate.mp4").video_no
    emu.advance_clock(1)
    remote = MemoriesRemote(make_client(emu))
    try:
        ids = [f"VI{n:018d}" for n in range(150)] + [video_no]  # the service takes 100 per search
        hits = remote.search("gate", ids, top_k=3)
        logged(emu, 3)  # the upload and two searches
        assert len(calls(emu, V1 + "/search")) == 2
        assert hits and {h.video_id for h in hits} == {video_no} and [h.rank for h in hits] == [1, 2, 3][:len(hits)]
    finally:
        remote.close()
