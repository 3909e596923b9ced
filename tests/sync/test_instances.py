"""Issue 14: several syncd hosts on one account, and linking only on proof of content.

Two instances are two state dirs and configs with different ``instance`` names, run
through the real CLI against one emulator account.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.emulator.mikshi import Emulator
from syncd.remote.mikshi import MikshiClient, _object_name, _video_id
from tests.conftest import (
    FAST_RETRY,
    KEY,
    MiB,
    admin_videos,
    clear_requests,
    emulator_config,
    run_syncd,
    write_config,
    write_random,
)

CLIP = "cam1/2026-11-20_10-00.mp4"
SIZE = 300_000


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    """Quick processing and pipelines: each `sync --wait` waits them out, and these tests
    are about which videos are linked, uploaded and deleted, not when."""
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=0.05, pipeline_seconds=0.05)) as e:
        yield e


def host(tmp_path: Path, name: str, base_url: str, *, instance: str | None = None,
         folder: dict[str, Any] | None = None, **sections: Any) -> Path:
    """One syncd host: ``<tmp>/<name>/{drop,state,config.yaml}``. Both pipelines run, so
    every video gets fully processed and can carry the instance's marker."""
    root = tmp_path / name
    folders = [{"path": str(root / "drop"), "collections": "none",
                "pipelines": ["analyse", "search-process"], **(folder or {})}]
    return write_config(root, base_url, folders, instance=instance or name, **sections)


def drop(config: Path) -> Path:
    return config.parent / "drop"


def sync(config: Path, *args: str, stdout_only: bool = False) -> str:
    result = run_syncd(config, "sync", "--wait", "--timeout", "60", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout if stdout_only else result.stdout + result.stderr


def remote_bytes(admin: httpx.Client) -> dict[str, str]:
    """video id → sha256 of its original object, as the emulator stores it."""
    objects = {o["video_id"]: o["sha256"] for o in admin.get("/objects").json()}
    return {v["video_id"]: objects[v["video_id"]] for v in admin_videos(admin)}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def linked_ids(config: Path) -> set[str]:
    result = run_syncd(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return {str(r["video_id"]) for r in json.loads(result.stdout) if r.get("video_id")}


def video_of(config: Path, rel_path: str) -> str:
    result = run_syncd(config, "status", "--json")
    return next(str(r["video_id"]) for r in json.loads(result.stdout) if str(r["path"]).endswith(rel_path))


def requests_to(admin: httpx.Client, suffix: str) -> int:
    return sum(1 for r in admin.get("/requests").json() if r["path"].endswith(suffix))


# ------------------------------------------------------------------ the "Why"
def test_same_name_other_footage_on_a_second_host_is_uploaded_and_never_deleted_by_it(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    """1. A syncs its clip. 2. B, new catalog, same name and size, other footage: uploaded,
    not linked. 3. B deletes its clip: only B's video goes; A's footage stays."""
    a, b = host(tmp_path, "host-a", emu.base_url), host(tmp_path, "host-b", emu.base_url)
    a_clip = write_random(drop(a) / CLIP, SIZE, seed=1)
    b_clip = write_random(drop(b) / CLIP, SIZE, seed=2)
    sync(a)
    out = sync(b)
    assert "linked to existing remote video" not in out
    assert sorted(remote_bytes(admin).values()) == sorted([sha(a_clip), sha(b_clip)]), "both footages on the remote"

    b_clip.unlink()
    sync(b)
    assert list(remote_bytes(admin).values()) == [sha(a_clip)], "B deleted its own video, not A's"
    a_clip.unlink()
    sync(a)
    assert remote_bytes(admin) == {}, "A deletes its own"


def test_same_content_on_two_hosts_is_one_video_that_neither_deletion_removes_while_the_other_holds_it(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    a, b = host(tmp_path, "host-a", emu.base_url), host(tmp_path, "host-b", emu.base_url)
    a_clip = write_random(drop(a) / CLIP, SIZE, seed=3)
    b_clip = drop(b) / CLIP
    b_clip.parent.mkdir(parents=True)
    shutil.copy(a_clip, b_clip)
    sync(a)
    (video_id,) = remote_bytes(admin)
    clear_requests(admin)
    out = sync(b)
    assert "of another syncd instance" in out and requests_to(admin, "/multipart/initiate") == 0
    assert linked_ids(b) == {video_id} and len(remote_bytes(admin)) == 1, "one video, held by both"

    a_clip.unlink()
    out = sync(a)
    assert list(remote_bytes(admin)) == [video_id], "A's deletion keeps the video B holds"
    assert "host-b holds it too" in out
    b_clip.unlink()
    sync(b)
    assert list(remote_bytes(admin)) == [video_id], "B never deletes what A uploaded"
    assert requests_to(admin, "/videos/delete") == 0


def test_same_content_that_cannot_be_marked_yet_is_uploaded_again_rather_than_held_unmarked(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    """A runs no pipelines, so its video is never fully processed and cannot carry B's
    marker: B uploads its own copy instead of holding a video A could delete under it."""
    a = host(tmp_path, "host-a", emu.base_url, folder={"pipelines": []})
    b = host(tmp_path, "host-b", emu.base_url, folder={"pipelines": []})
    a_clip = write_random(drop(a) / CLIP, SIZE, seed=16)
    b_clip = drop(b) / CLIP
    b_clip.parent.mkdir(parents=True)
    shutil.copy(a_clip, b_clip)
    sync(a)
    (a_video,) = remote_bytes(admin)
    out = sync(b)
    assert "cannot be marked as ours yet" in out and "uploading a copy of our own instead" in out
    assert len(remote_bytes(admin)) == 2 and a_video not in linked_ids(b)
    b_clip.unlink()
    sync(b)
    assert list(remote_bytes(admin)) == [a_video], "B deleted its own copy only"


def test_catalog_loss_relinks_own_videos_by_proof_and_none_of_the_others(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    a, b = host(tmp_path, "host-a", emu.base_url), host(tmp_path, "host-b", emu.base_url)
    write_random(drop(a) / CLIP, SIZE, seed=4)
    write_random(drop(a) / "cam2/other.mp4", SIZE + 1, seed=5)
    write_random(drop(b) / CLIP, SIZE, seed=6)  # B's footage under A's name, same size
    sync(a)
    sync(b)
    a_videos, b_videos = linked_ids(a), linked_ids(b)
    assert len(a_videos) == 2 and len(b_videos) == 1

    shutil.rmtree(a.parent / "state")
    clear_requests(admin)
    out = sync(a, stdout_only=True)
    assert requests_to(admin, "/multipart/initiate") == 0 and requests_to(admin, "/uploads/direct") == 0
    assert out.count("linked to existing remote video") == 2 and "of another syncd instance" not in out
    assert linked_ids(a) == a_videos, "its own videos, none of B's"

    mine = video_of(a, CLIP)
    (drop(a) / CLIP).unlink()
    sync(a)
    assert set(remote_bytes(admin)) == (a_videos | b_videos) - {mine}, "A deleted its own clip, not B's"


def test_a_file_replaced_by_other_footage_while_the_catalog_was_lost_is_uploaded_not_linked(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    a = host(tmp_path, "host-a", emu.base_url)
    clip = write_random(drop(a) / CLIP, SIZE, seed=7)
    sync(a)
    (old,) = remote_bytes(admin)
    shutil.rmtree(a.parent / "state")
    write_random(clip, SIZE, seed=8)  # other footage, same name and size
    out = sync(a)
    assert "linked to existing remote video" not in out
    videos = remote_bytes(admin)
    assert len(videos) == 2 and videos[old] != sha(clip) and sha(clip) in videos.values()


def test_a_multipart_etag_of_another_part_size_is_settled_by_hashing_the_download_within_the_limit(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    """Uploaded in 5 MiB parts; after a catalog loss the config says 6 MiB, so the ETag
    cannot decide: under safety.max_proof_download the original is downloaded and
    hashed (linked), over it the file is uploaded and the output says why."""
    a = host(tmp_path, "host-a", emu.base_url, folder={"pipelines": []})
    write_random(drop(a) / "big.mp4", 11 * MiB, seed=9)
    sync(a)
    shutil.rmtree(a.parent / "state")
    sync_out = sync(host(tmp_path, "host-a", emu.base_url, folder={"pipelines": []}, upload={"part_size": "6MiB"}))
    assert "same bytes by downloaded and hashed" in sync_out and len(remote_bytes(admin)) == 1

    shutil.rmtree(a.parent / "state")
    small = host(tmp_path, "host-a", emu.base_url, folder={"pipelines": []}, upload={"part_size": "6MiB"},
                 safety={"max_proof_download": "1MiB"})
    out = sync(small)
    assert "safety.max_proof_download" in out and "uploading instead" in out
    assert len(remote_bytes(admin)) == 2


def test_deleting_a_pulled_copy_of_another_instances_video_never_deletes_it(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    a = host(tmp_path, "host-a", emu.base_url)
    b = host(tmp_path, "host-b", emu.base_url, mirror={"pull_remote": True})
    write_random(drop(a) / "gate.mp4", SIZE, seed=10)
    sync(a)
    (video_id,) = remote_bytes(admin)
    sync(b)
    pulled = [p for p in drop(b).rglob("*.mp4")]
    assert len(pulled) == 1
    pulled[0].unlink()
    sync(b)
    assert list(remote_bytes(admin)) == [video_id], "the original stays"


def test_status_shows_the_instance_and_other_instances_videos(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    a, b = host(tmp_path, "host-a", emu.base_url), host(tmp_path, "host-b", emu.base_url)
    write_random(drop(a) / "a.mp4", SIZE, seed=11)
    write_random(drop(b) / "b1.mp4", SIZE, seed=12)
    write_random(drop(b) / "b2.mp4", SIZE, seed=13)
    sync(b)
    sync(a)
    status = run_syncd(a, "status")
    assert status.returncode == 0, status.stderr
    assert "instance: host-a; 2 remote video(s) belong to other syncd instances (host-b;" in status.stdout


def test_doctor_warns_when_two_syncds_share_an_instance_name(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    first = host(tmp_path, "first", emu.base_url, instance="site")
    second = host(tmp_path, "second", emu.base_url, instance="site")
    sync(first)
    doctor = run_syncd(first, "doctor")
    assert doctor.returncode == 0 and "instance 'site': no other syncd uses this name" in doctor.stdout
    doctor = run_syncd(second, "doctor")
    assert doctor.returncode == 1 and "two syncds share one instance name" in doctor.stdout
    assert "Traceback" not in doctor.stdout + doctor.stderr

    out = sync(second)  # writing over the other's fresh note is seen, and remembered
    assert "two syncds share one instance name" in out
    for config in (first, second):  # now each sees the other's key
        assert "two syncds share one instance name" in run_syncd(config, "doctor").stdout


def test_the_emulator_answers_a_ranged_get_with_the_whole_objects_etag_like_s3(
    tmp_path: Path, emu: Emulator, admin: httpx.Client
) -> None:
    """Single request: the plain MD5. Multipart: md5 of the parts' md5s, dash, count."""
    small = write_random(tmp_path / "small.mp4", 1000, seed=14)
    big = write_random(tmp_path / "big.mp4", 11 * MiB, seed=15)
    with MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as client:
        direct = client.upload_direct(small, "small.mp4")
        session = client.multipart_initiate("big.mp4")
        etags = []
        with open(big, "rb") as fh:
            for number, (offset, length) in enumerate(((0, 5 * MiB), (5 * MiB, 5 * MiB), (10 * MiB, MiB)), 1):
                url = client.multipart_part_url(_object_name(session), session.upload_id, number)
                etags.append((number, client.put_part_bytes(url, fh, offset, length)))
        client.multipart_complete(_object_name(session), session.upload_id, etags)
        client.preprocess(_object_name(session), _video_id(session), "big.mp4")
        small_proof = client.content_evidence(direct)
        big_proof = client.content_evidence(_video_id(session))
    data = big.read_bytes()
    parts = b"".join(hashlib.md5(data[o:o + 5 * MiB]).digest() for o in (0, 5 * MiB, 10 * MiB))
    assert small_proof.etag == hashlib.md5(small.read_bytes()).hexdigest() and small_proof.size == 1000
    assert big_proof.etag == f"{hashlib.md5(parts).hexdigest()}-3" and big_proof.size == 11 * MiB
    gets = [r for r in admin.get("/requests").json() if r["method"] == "GET" and r["path"].startswith("/s3/")]
    assert len(gets) == 2 and all(r["status"] == 206 for r in gets), "one byte each, not the whole object"
