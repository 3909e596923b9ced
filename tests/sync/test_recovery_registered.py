"""Catalog recovery over videos made by the emulator's admin ``videos/register`` (how the
scale tests and ``bench_scale.py`` reach "everything synced"): they must be what real
uploads of the same bytes leave behind, so a lost catalog is relinked, not uploaded again.

Before: the call recorded a size, sha256 and ETag given by the caller but stored no object,
so the ranged GET of ``video_path`` that proves content answered 404 (NoSuchKey), recovery
could not decide, and every file was uploaded a second time."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from syncd.emulator.mikshi import Emulator
from syncd.remote.mikshi import MikshiClient
from tests.conftest import admin_videos, clear_requests, register_videos, run_syncd
from tests.sync.test_scale import synced_tree

#: Request paths that put bytes on the remote or create a video.
UPLOADS = ("/uploads/direct", "/uploads/multipart/initiate", "/uploads/preprocess")


def test_a_registered_video_proves_its_content_as_a_direct_upload_does(tmp_path: Path, admin: httpx.Client,
                                                                      client: MikshiClient) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"one minute of a parking lot\n")
    uploaded = client.upload_direct(clip, name="a/clip.mp4")
    [registered] = register_videos(admin, [("b/clip.mp4", clip.read_bytes())])
    assert client.content_evidence(registered) == client.content_evidence(uploaded)
    assert client.content_evidence(registered).etag  # the object is there to be asked
    details = {v["video_id"]: v for v in admin_videos(admin)}
    for key in ("size_bytes", "sha256", "duration_seconds", "width", "height", "probed", "source"):
        assert details[registered][key] == details[uploaded][key], key


def test_a_lost_catalog_over_registered_videos_is_relinked_not_uploaded(tmp_path: Path, emu: Emulator,
                                                                         admin: httpx.Client) -> None:
    """The real CLI: after the catalog file is deleted, ``syncd sync --wait`` uploads
    nothing and links every file to the video registered for it, done (the processing
    states of the linked videos are read back by the passes after the link)."""
    config = synced_tree(tmp_path, emu, admin, 40, mirrored=False)
    config_path = tmp_path / "config.yaml"
    before = {row["path"]: row["video_id"] for row in status(config_path)}
    assert len(before) == 40 and all(before.values())
    videos = {v["video_id"] for v in admin_videos(admin)}
    for lost in config.state_dir.glob("catalog*"):
        lost.unlink()
    clear_requests(admin)

    result = run_syncd(config_path, "sync", "--wait", "--timeout", "60")

    assert result.returncode == 0, result.stderr
    sent = [r["path"] for r in admin.get("/requests").json()]
    assert [p for p in sent if p.endswith(UPLOADS) or "/s3/" in p and "uploadId" in p] == []
    assert {v["video_id"] for v in admin_videos(admin)} == videos, "no video made"
    after = status(config_path)
    assert {row["path"]: row["video_id"] for row in after} == before
    assert {row["state"] for row in after} == {"done"}


def status(config_path: Path) -> list[dict[str, object]]:
    result = run_syncd(config_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows
