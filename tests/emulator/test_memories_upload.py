"""memories.ai emulator: upload strictness, tags, capture metadata and namespaces (raw HTTP)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from syncd.emulator.memories import MemoriesEmulator
from tests.conftest import KEY
from tests.memories_support import (V1, advance_past_parsing, mem, mem_admin, memories_config,  # noqa: F401
                                    memories_emu, ok_data, refused, upload_raw, uploaded)


def test_upload_answers_the_documented_shape_and_stores_the_bytes(
        memories_emu: MemoriesEmulator, mem: httpx.Client) -> None:
    content = bytes(range(256)) * 40
    data = ok_data(upload_raw(mem, content, filename="gate cam.mp4"))
    assert data["videoNo"].startswith("VI")
    assert data["videoName"] == "gate cam"
    assert data["videoStatus"] == "UNPARSE"
    assert isinstance(data["uploadTime"], str) and data["uploadTime"].isdigit()
    assert memories_emu.admin_video_bytes(data["videoNo"]) == content
    # The body went to disk, then into place: nothing left behind in the temp folder.
    assert list((memories_emu.config.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize("filename,ctype,needle", [
    ("notes.txt", "video/mp4", "unsupported file type"),
    ("clip.webm", "video/webm", "unsupported file type"),
    ("clip.mp4", "application/octet-stream", "video/*"),
    ("clip", "video/mp4", "unsupported file type"),
])
def test_upload_refuses_wrong_extension_or_part_type(
        memories_emu: MemoriesEmulator, mem: httpx.Client, filename: str, ctype: str,
        needle: str) -> None:
    assert needle in refused(upload_raw(mem, filename=filename, ctype=ctype), "0001")
    assert memories_emu.admin_videos() == []


def test_upload_accepts_each_documented_extension_in_any_case(mem: httpx.Client) -> None:
    for name in ("a.mp4", "b.AVI", "c.mkv", "d.MoV"):
        ok_data(upload_raw(mem, filename=name, ctype="video/x-anything"))


def test_upload_refuses_non_multipart_empty_and_missing_file(
        memories_emu: MemoriesEmulator, mem: httpx.Client) -> None:
    refused(mem.post(V1 + "/upload", json={"file": "x"}), "0001")
    refused(upload_raw(mem, b""), "0001")
    refused(mem.post(V1 + "/upload", files={"other": ("a.mp4", b"x", "video/mp4")}), "0001")
    refused(mem.post(V1 + "/upload", data={"unique_id": "default"},
                     files={"unique_id2": (None, "x")}), "0001")
    assert memories_emu.admin_videos() == []


def test_upload_over_the_cap_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "m", max_upload_bytes=4096)) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}) as c:
        msg = refused(upload_raw(c, b"\x01" * 5000), "0001")
        assert "size exceeded" in msg
        ok_data(upload_raw(c, b"\x01" * 4096))
        assert len(emu.admin_videos()) == 1
        assert list((emu.config.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize("fields,needle", [
    ({"datetime_taken": "2024-05-01T10:00:00"}, "yyyy-MM-dd HH:mm:ss"),
    ({"datetime_taken": "2024-05-01 10:00"}, "yyyy-MM-dd HH:mm:ss"),
    ({"datetime_taken": "2024-02-30 10:00:00"}, "not a valid date"),
    ({"latitude": "48.1"}, "must be provided together"),
    ({"longitude": "11.5"}, "must be provided together"),
    ({"latitude": "91", "longitude": "11.5"}, "between"),
    ({"latitude": "north", "longitude": "11.5"}, "decimal"),
    ({"retain_original_video": "yes"}, "true or false"),
    ({"callback": "ftp://x"}, "http(s)"),
    ({"unique_id": ""}, "must not be empty"),
    ({"tags": ""}, "tags must not be empty"),
])
def test_upload_refuses_bad_optional_fields(memories_emu: MemoriesEmulator, mem: httpx.Client,
                                            fields: dict[str, str], needle: str) -> None:
    assert needle in refused(upload_raw(mem, data=fields), "0001")
    assert memories_emu.admin_videos() == []


def test_capture_metadata_and_tags_in_both_forms_come_back(
        memories_emu: MemoriesEmulator, mem: httpx.Client) -> None:
    sha = "sha256:" + "ab" * 32
    repeated = uploaded(mem, data={"tags": [sha, "syncd-instance:home"],
                                   "datetime_taken": "2024-05-01 10:00:00",
                                   "camera_model": "GoPro HERO12", "latitude": "48.137",
                                   "longitude": "11.575"})
    indexed = uploaded(mem, data={"tags[0]": sha, "tags[1]": "syncd-instance:home"})
    for video_no in (repeated, indexed):
        meta = ok_data(mem.get(V1 + "/get_metadata", params={"video_no": video_no}))
        assert meta["tags"][:2] == [sha, "syncd-instance:home"]
        assert "api" in meta["tags"]  # the service tags every API upload
    meta = ok_data(mem.get(V1 + "/get_metadata", params={"video_no": repeated}))
    assert meta["datetime_taken"] == 1714557600000  # JSON numbers here, ms since epoch
    assert meta["camera_model"] == "GoPro HERO12"
    assert (meta["latitude"], meta["longitude"]) == (48.137, 11.575)
    # list_videos shows tags and capture metadata only once the video is parsed.
    listed = ok_data(mem.post(V1 + "/list_videos", json={"page": 1}))["videos"]
    assert all("tags" not in v and "datetime_taken" not in v for v in listed)
    advance_past_parsing(memories_emu)
    listed = {v["video_no"]: v for v in
              ok_data(mem.post(V1 + "/list_videos", json={"page": 1}))["videos"]}
    assert listed[repeated]["tags"][:2] == [sha, "syncd-instance:home"]
    assert listed[repeated]["datetime_taken"] == "1714557600000"
    assert listed[repeated]["camera_model"] == "GoPro HERO12"


def test_unique_id_namespaces_are_separate(mem: httpx.Client) -> None:
    video_no = uploaded(mem, data={"unique_id": "cams"})
    assert ok_data(mem.get(V1 + "/get_metadata", params={"video_no": video_no})) is None
    assert ok_data(mem.get(V1 + "/get_metadata",
                           params={"video_no": video_no, "unique_id": "cams"}))["video_no"] \
        == video_no
    assert ok_data(mem.post(V1 + "/list_videos", json={"page": 1}))["total_count"] == "0"
    assert ok_data(mem.post(V1 + "/list_videos",
                            json={"page": 1, "unique_id": "cams"}))["total_count"] == "1"
    # A delete in the wrong namespace is a success that deletes nothing.
    ok_data(mem.post(V1 + "/delete_videos", json=[video_no]))
    assert ok_data(mem.post(V1 + "/list_videos",
                            json={"page": 1, "unique_id": "cams"}))["total_count"] == "1"
