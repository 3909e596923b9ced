"""The local mirror against the emulator (issue 5): sidecars, their lifecycle with the
video, the retry rules, and pulling remote-only videos down."""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from syncd.store.catalog import Catalog
from syncd.media.clips import make_clip
from syncd.config import load_config
from syncd.emulator.mikshi import Emulator
from syncd.sync.engine import Engine, EngineOptions
from syncd.mirror.sidecars import read_embeddings
from syncd.models import SIDECAR_SUFFIXES, TRASH_DIR
from syncd.remote.base import parse_timestamp
from syncd.remote.mikshi import MikshiClient
from tests.conftest import (
    FAST_RETRY,
    KEY,
    admin_videos,
    clear_requests,
    emulator_config,
    run_syncd,
    syncd_env,
    wait_for,
    write_config,
)

CLIPS = {"cam1/forklift-loading-gate.mp4": 12, "cam2/car-at-barrier.mp4": 8}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    """The shared fixture's emulator, with processing and pipelines quicker still."""
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=0.1, pipeline_seconds=0.1)) as emulator:
        yield emulator
WAIT = ("sync", "--wait", "--timeout", "60")


def make_tree(tmp_path: Path, clips: dict[str, int] = CLIPS) -> Path:
    drop = tmp_path / "drop"
    for i, (rel, seconds) in enumerate(clips.items()):
        make_clip(drop / rel, seconds=seconds, seed=40 + i)
    return drop


def synced(config: Path, *extra: str) -> str:
    result = run_syncd(config, *WAIT, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def json_sidecar(video: Path) -> dict[str, Any]:
    return json.loads(video.with_name(video.name + ".syncd.json").read_text())


def emb_sidecar(video: Path) -> Path:
    return video.with_name(video.name + ".syncd.emb")


def sidecars_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith(SIDECAR_SUFFIXES))


def requests(admin: httpx.Client, fragment: str) -> list[dict[str, Any]]:
    return [r for r in admin.get("/requests").json() if fragment in r["path"]]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sidecars_appear_with_the_right_content(tmp_path: Path, emu: Emulator, admin: httpx.Client,
                                                client: MikshiClient) -> None:
    started = time.time()
    drop = make_tree(tmp_path)
    # Details are checked against the complete listing, read every schedule.deletion_check.
    config = write_config(tmp_path, emu.base_url, mirror={"interval": "1s"}, schedule={"deletion_check": "1s"})
    synced(config)
    remote = {v["name"]: v["video_id"] for v in admin_videos(admin)}
    for rel in CLIPS:
        video = drop / rel
        info = admin.get(f"/videos/{remote[rel]}").json()
        meta = json_sidecar(video)
        assert meta["format"] == "syncd-video" and meta["version"] == 1
        assert (meta["video_id"], meta["name"], meta["collection"]) == (info["video_id"], rel, rel.split("/")[0])
        assert meta["statuses"] == {"thumbnail": "completed", "transcoding": "completed", "hls": "completed",
                                    "analyse": "done", "search-process": "done"}
        assert meta["duration_seconds"] == info["duration_seconds"]
        assert (meta["width"], meta["height"]) == (info["width"], info["height"])
        assert meta["size_bytes"] == info["size_bytes"]
        # The backend's own details as it reported them, less the URLs that expire.
        assert meta["remote"]["video_id"] == info["video_id"] and meta["remote"]["name"] == rel
        assert meta["remote"]["transcoding_status"] == "completed"
        assert "video_path" not in meta["remote"] and "thumbnail_path" not in meta["remote"]
        assert meta["local"] == {"path": str(video), "folder": str(drop), "rel_path": rel,
                                 "sha256": sha256(video), "size_bytes": video.stat().st_size}
        pulled = calendar.timegm(time.strptime(meta["pulled_at"], "%Y-%m-%dT%H:%M:%SZ"))
        assert started - 2 <= pulled <= time.time() + 1
        emb = read_embeddings(emb_sidecar(video))
        api = client.embeddings_video(info["video_id"])
        expected_spans = [(parse_timestamp(s["start"]), parse_timestamp(s["end"])) for s in info["segments"]]
        assert [(s.start, s.end) for s in emb.segments] == expected_spans
        assert {(s.option, s.scope) for s in emb.segments} == {("visual", "clip")}
        assert emb.video_id == info["video_id"] and emb.vectors.shape == (len(info["segments"]), 1024)
        assert np.allclose(emb.vectors, np.array([s.vector for s in api]), atol=1e-6)
        assert meta["embeddings"] == {"file": emb_sidecar(video).name, "segments": len(info["segments"]), "dim": 1024}

    # Every mirror.interval the details are checked against the listing. Nothing changed:
    # no details are pulled, no sidecar is rewritten, no embeddings are paid for twice.
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sidecars_under(drop)}
    assert len(stamps) == 4
    time.sleep(1.1)
    clear_requests(admin)
    synced(config)
    assert requests(admin, "/videos/list") and requests(admin, "/get-video-details") == []
    assert requests(admin, "/embeddings/") == []
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sidecars_under(drop)} == stamps
    # Renamed on the remote (in the web app, say): that video's details alone are pulled
    # again, and its sidecar says so.
    renamed, other = drop / "cam1/forklift-loading-gate.mp4", drop / "cam2/car-at-barrier.mp4"
    admin.patch(f"/videos/{remote['cam1/forklift-loading-gate.mp4']}", json={"name": "Gate, morning"})
    time.sleep(1.1)
    clear_requests(admin)
    synced(config)
    assert len(requests(admin, "/get-video-details")) == 1
    assert json_sidecar(renamed)["name"] == "Gate, morning"
    assert json_sidecar(other)["name"] == "cam2/car-at-barrier.mp4"
    assert requests(admin, "/embeddings/") == []


def test_a_move_carries_its_sidecars(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = make_tree(tmp_path)
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    old = drop / "cam1/forklift-loading-gate.mp4"
    emb_before = emb_sidecar(old).read_bytes()
    new = drop / "cam2/forklift-loading-gate.mp4"
    os.rename(old, new)  # the video alone, as a user would
    clear_requests(admin)
    synced(config)
    assert not any(p.exists() for p in (emb_sidecar(old), old.with_name(old.name + ".syncd.json")))
    meta = json_sidecar(new)
    assert meta["local"]["path"] == str(new) and meta["local"]["rel_path"] == "cam2/forklift-loading-gate.mp4"
    assert meta["collection"] == "cam2"
    assert emb_sidecar(new).read_bytes() == emb_before
    assert requests(admin, "/embeddings/") == [], "a moved video's embeddings are not pulled again"
    assert requests(admin, "/multipart/initiate") == []


def test_a_remote_deletion_trashes_the_sidecars_with_the_video(tmp_path: Path, emu: Emulator,
                                                                admin: httpx.Client) -> None:
    drop = make_tree(tmp_path)
    config = write_config(tmp_path, emu.base_url)
    synced(config)
    victim = next(v for v in admin_videos(admin) if v["name"] == "cam1/forklift-loading-gate.mp4")
    admin.delete(f"/videos/{victim['video_id']}").raise_for_status()
    synced(config, "--check-deletions")  # not waiting for schedule.deletion_check
    trashed = drop / TRASH_DIR / "cam1/forklift-loading-gate.mp4"
    assert trashed.exists() and json_sidecar(trashed)["video_id"] == victim["video_id"]
    assert read_embeddings(emb_sidecar(trashed)).video_id == victim["video_id"]
    assert sidecars_under(drop / "cam1") == []
    listed = run_syncd(config, "trash", "list").stdout
    assert "1 file(s) in the trash" in listed and ".syncd." not in listed
    emptied = run_syncd(config, "trash", "empty")
    assert "removed 1 file(s)" in emptied.stdout
    assert sidecars_under(drop / TRASH_DIR) == []

    # A local deletion deletes the remote video, and the sidecars go with it.
    gone = drop / "cam2/car-at-barrier.mp4"
    gone.unlink()
    synced(config)
    assert sidecars_under(drop) == []
    assert admin_videos(admin) == []


def test_directory_mode_without_embeddings(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = make_tree(tmp_path, {"cam1/a.mp4": 6})
    side = tmp_path / "sidecars"
    config = write_config(tmp_path, emu.base_url, mirror={"sidecars": str(side), "embeddings": False})
    synced(config)
    assert sidecars_under(drop) == [], "a read-only drop folder stays untouched"
    video = drop / "cam1/a.mp4"
    mirrored = side / video.relative_to("/")
    meta = json_sidecar(mirrored)
    assert meta["local"]["path"] == str(video) and meta["embeddings"] is None
    assert not emb_sidecar(mirrored).exists()
    assert requests(admin, "/embeddings/") == []
    # The trash is mirrored too.
    admin.delete(f"/videos/{meta['video_id']}").raise_for_status()
    synced(config, "--check-deletions")
    assert json_sidecar(side / (drop / TRASH_DIR / "cam1/a.mp4").relative_to("/"))["video_id"] == meta["video_id"]
    assert not mirrored.with_name(mirrored.name + ".syncd.json").exists()


class _Clock:
    """Wall time plus an offset the test moves forward (mirror.interval, retry delays)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self.offset


def test_409_is_retried_404_waits_for_the_listing_and_wait_covers_sidecars(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, client: MikshiClient) -> None:
    drop = make_tree(tmp_path, {"a.mp4": 6})
    path = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}])
    config = load_config(path, {"SYNCD_TEST_KEY": KEY})
    clock = _Clock()
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(EngineOptions.from_config(config), catalog, remote, clock=clock)
        engine.sync(wait=True, timeout=60)
        video = drop / "a.mp4"
        assert json_sidecar(video)["embeddings"] is None and not emb_sidecar(video).exists()
        (content,) = catalog.contents()
        assert content.video_id is not None
        # The catalog believes search-process is done but the remote is not there yet: 409.
        catalog.set_step(content.sha256, "search-process", "done")
        clock.offset += config.mirror.interval
        report = engine.run_pass()
        assert report.mirror is not None and report.mirror.pending == 1
        assert "409" in (catalog.mirror_video(content.video_id).error or "")  # type: ignore[union-attr]
        client.search_process_initiate(content.video_id)
        wait_for(lambda: client.search_process_status(content.video_id).state == "done", 30, "search-process")
        outcome = engine.sync(wait=True, timeout=60)
        assert not outcome.timed_out and outcome.reports[-1].mirror.pending == 0  # type: ignore[union-attr]
        assert read_embeddings(emb_sidecar(video)).video_id == content.video_id

        # Renamed remotely, listed, then deleted before its details are pulled again: the
        # 404 is reported and nothing is touched...
        admin.patch(f"/videos/{content.video_id}", json={"name": "renamed"}).raise_for_status()
        listing = engine.executor.read_listing()
        admin.delete(f"/videos/{content.video_id}").raise_for_status()
        clock.offset += config.mirror.interval
        mirrored = engine.mirror.run(engine.statuses(), listing)
        assert mirrored.gone == [content.video_id]
        assert video.exists() and emb_sidecar(video).exists()
        # ...until a complete listing confirms it: then the video and its sidecars go to the trash.
        engine.sync(wait=True, timeout=60, check_deletions=True)
        trashed = drop / TRASH_DIR / "a.mp4"
        assert trashed.exists() and emb_sidecar(trashed).exists() and not emb_sidecar(video).exists()


def test_pull_remote_downloads_other_clients_videos_safely(tmp_path: Path, emu: Emulator, admin: httpx.Client,
                                                           client: MikshiClient) -> None:
    src = tmp_path / "elsewhere"
    clips = {name: make_clip(src / f"{i}.mp4", seconds=3, seed=70 + i)
             for i, name in enumerate(["../../etc/x.mp4", "cam/evil\x00name.mp4", ".."])}
    ids = {name: client.upload_direct(path, name) for name, path in clips.items()}
    # The first one goes in a collection with a hostile name too (collections need both pipelines).
    first = ids["../../etc/x.mp4"]
    wait_for(lambda: client.upload_status(first).state == "done", 30, "processing")
    for pipeline in ("analyse", "search-process"):
        client.pipeline_initiate(pipeline, first)  # type: ignore[arg-type]
    wait_for(lambda: all(client.pipeline_status(first, p).state == "done"  # type: ignore[arg-type]
                         for p in ("analyse", "search-process")), 30, "pipelines")
    collection = client.collections_create("../../yard")
    client.collection_add_video(collection.collection_id, first)

    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}],
                          mirror={"pull_remote": True})
    clear_requests(admin)
    out = synced(config)
    expected = {
        "../../etc/x.mp4": drop / "x.mp4",  # its collection "../../yard" is no folder name
        "cam/evil\x00name.mp4": drop / "evilname.mp4",
        "..": drop / f"video-{ids['..'][:8]}.mp4",
    }
    for name, path in expected.items():
        assert path.read_bytes() == clips[name].read_bytes(), name
        assert json_sidecar(path)["video_id"] == ids[name], "pulled videos are mirrored like any other"
    assert out.count("pulled remote video") == 3
    downloads = [r for r in admin.get("/requests").json() if r["method"] == "GET" and r["path"].startswith("/s3/")]
    assert len(downloads) == 3
    everything = {p for p in tmp_path.rglob("*") if p.is_file()}
    outside = {p for p in everything if not p.is_relative_to(drop) and not p.is_relative_to(src)
               and not p.is_relative_to(tmp_path / "state") and not p.is_relative_to(tmp_path / "emulator")}
    assert outside == {tmp_path / "config.yaml"}, "nothing written outside the folder"
    assert not (tmp_path / "etc").exists()
    status = json.loads(run_syncd(config, "status", "--json").stdout)
    assert {(Path(s["path"]), s["video_id"], s["state"]) for s in status} == {
        (expected[name], ids[name], "done") for name in ids}
    # Recorded as synced: never uploaded back, never downloaded twice.
    assert requests(admin, "/multipart/initiate") == [] and requests(admin, "/uploads/direct") == []
    clear_requests(admin)
    synced(config)
    assert [r for r in admin.get("/requests").json() if r["path"].startswith("/s3/")] == []
    assert len(admin_videos(admin)) == 3


@pytest.mark.parametrize("collection", ["clips.tmp", "a/b"])
def test_a_pulled_video_whose_collection_is_no_folder_name_lands_at_the_top(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, client: MikshiClient, collection: str) -> None:
    """"clips.tmp" is skipped by the default exclude: a file under it would look deleted
    to the next scan (and its remote video be deleted). "a/b" would be cleaned to "b", a
    subfolder that becomes a new remote collection. Both go to the top of the folder,
    and nothing is deleted or created on the remote."""
    clip = make_clip(tmp_path / "elsewhere" / "gate.mp4", seconds=2, seed=90)
    video_id = client.upload_direct(clip, "gate.mp4")
    wait_for(lambda: client.upload_status(video_id).state == "done", 30, "processing")
    for pipeline in ("analyse", "search-process"):
        client.pipeline_initiate(pipeline, video_id)  # type: ignore[arg-type]
    wait_for(lambda: all(client.pipeline_status(video_id, p).state == "done"  # type: ignore[arg-type]
                         for p in ("analyse", "search-process")), 30, "pipelines")
    client.collection_add_video(client.collections_create(collection).collection_id, video_id)
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop)}], mirror={"pull_remote": True})
    synced(config)
    synced(config)
    assert (drop / "gate.mp4").read_bytes() == clip.read_bytes()
    assert [v["video_id"] for v in admin_videos(admin)] == [video_id], "nothing deleted, nothing uploaded"
    assert [c["name"] for c in admin.get("/collections").json()
            if not c["name"].startswith("syncd-instance:")] == [collection], "no new collection"


KILLED_AROUND_PLACING = """
import os, signal, sys
import syncd.mirror.pull as pull
from syncd.cli.main import main
placed = pull._place
def die_around_placing(tmp, target):
    if sys.argv[1] == "after":
        placed(tmp, target)
    os.kill(os.getpid(), signal.SIGKILL)  # the file placed or not, but not recorded
pull._place = die_around_placing
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_pull_killed_around_placing_its_file_ends_pulled_once(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, client: MikshiClient, when: str) -> None:
    """kill -9 just before or just after the pulled file is linked into place: the
    next sync pulls it again, or records the file it finds; never uploads it back."""
    clip = make_clip(tmp_path / "elsewhere" / "gate.mp4", seconds=2, seed=91)
    video_id = client.upload_direct(clip, "gate.mp4")
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": []}],
                          mirror={"pull_remote": True})
    killed = subprocess.run([sys.executable, "-c", KILLED_AROUND_PLACING, when, "-c", str(config), "sync"],
                            env=syncd_env(), capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (drop / "gate.mp4").exists() == (when == "after")
    synced(config)
    assert (drop / "gate.mp4").read_bytes() == clip.read_bytes()
    assert [v["video_id"] for v in admin_videos(admin)] == [video_id], "pulled once, never uploaded back"
    status = json.loads(run_syncd(config, "status", "--json").stdout)
    assert [(Path(s["path"]), s["video_id"]) for s in status] == [(drop / "gate.mp4", video_id)]


def test_the_remotes_embedding_dimension_changes(tmp_path: Path, emu: Emulator) -> None:
    """The service switches embedding backends (1024 → 512 dimensions): one sync rebuilds
    the index and every video's vectors and sidecars, and a query cached under the old
    embedder is embedded again rather than failing."""
    drop = make_tree(tmp_path, {"cam1/forklift-gate.mp4": 6})
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop)}])
    synced(config)
    assert run_syncd(config, "search", "forklift").returncode == 0  # caches the query's vector
    emu.set_embedding_dim(512)
    make_clip(drop / "cam1" / "truck-dock.mp4", seconds=6, seed=2)
    synced(config)
    for name in ("forklift-gate.mp4", "truck-dock.mp4"):
        assert json_sidecar(drop / "cam1" / name)["embeddings"]["dim"] == 512, name
    found = run_syncd(config, "search", "forklift", "--json")
    assert found.returncode == 0, found.stderr
    assert {Path(h["path"]).name for h in json.loads(found.stdout)} == {"forklift-gate.mp4", "truck-dock.mp4"}


def test_sidecars_that_cannot_be_written_fail_the_sync_without_hanging_it(tmp_path: Path, emu: Emulator) -> None:
    make_tree(tmp_path, {"a.mp4": 6})
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the sidecar directory should be")
    config = write_config(tmp_path, emu.base_url, [{"path": str(tmp_path / "drop"), "collections": "none",
                                                     "pipelines": []}],
                          mirror={"sidecars": str(blocker)}, upload={"max_attempts": 1})
    result = run_syncd(config, *WAIT)
    assert result.returncode == 1
    assert "cannot write sidecars" in result.stderr and "Traceback" not in result.stderr
