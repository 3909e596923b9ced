"""Preprocess, direct/YouTube upload, processing status, pipelines, video list/details/delete."""

from __future__ import annotations

import io
import random
import os
import uuid
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
from emu_helpers import COL, KIB, UP, VID, Api, make_config, wait_for

from syncd.emulator.mikshi import Emulator

HLS = "/api/backend/v1/videos/hls-playlist"


def test_preprocess_repeat_is_409_and_needs_completed_object(api: Api,
                                                             client: httpx.Client) -> None:
    init = api.initiate()
    body = {"s3_object_name": init["s3_object_name"], "video_id": init["video_id"],
            "name": "x"}
    r = client.post(f"{UP}/preprocess", json=body)
    assert r.status_code == 400 and r.json()["detail"]
    etag = api.put_part(init, 1, b"bytes")
    assert api.complete(init, [(1, etag)]).status_code == 200
    wrong = client.post(f"{UP}/preprocess", json={**body, "video_id": str(uuid.uuid4())})
    assert wrong.status_code == 400
    assert client.post(f"{UP}/preprocess", json=body).status_code == 202
    r = client.post(f"{UP}/preprocess", json=body)
    assert r.status_code == 409
    assert r.json() == {"detail": "Video already exists."}
    assert client.post(f"{UP}/preprocess", json={**body, "video_id": "nope"}).status_code == 422


def test_status_progresses_to_completed(api: Api) -> None:
    video_id = api.upload(os.urandom(1000))
    first = api.upload_status(video_id)
    assert set(first) == {"video_id", "thumbnail_generation_status", "transcoding_status",
                          "hls_generation_status", "error_message"}
    for key in ("thumbnail_generation_status", "transcoding_status", "hls_generation_status"):
        assert set(first[key]) == {"status", "percentage", "error"}
        assert first[key]["status"] in ("pending", "in_progress")
    seen: set[str] = set()

    def done() -> bool:
        s = api.upload_status(video_id)
        seen.add(s["transcoding_status"]["status"])
        return all(s[k]["status"] == "completed" for k in (
            "thumbnail_generation_status", "transcoding_status", "hls_generation_status"))

    wait_for(done, timeout=5, interval=0.02)
    final = api.upload_status(video_id)
    assert final["transcoding_status"] == {"status": "completed", "percentage": 100,
                                           "error": None}
    assert final["error_message"] is None
    assert "in_progress" in seen


def test_status_of_unknown_and_foreign_video(api: Api, client: httpx.Client,
                                             client_b: httpx.Client) -> None:
    video_id = api.upload(b"abc")
    r = client_b.get(f"{UP}/status/{video_id}")
    assert r.status_code == 403 and r.json() == {"detail": "Not authorized for this video"}
    r = client.get(f"{UP}/status/00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json() == {"detail": "Video not found"}


def test_analyse_409_before_transcoding_then_runs_to_done(api: Api) -> None:
    video_id = api.upload(os.urandom(1000))
    r = api.initiate_pipeline(video_id, "analyse")
    assert r.status_code == 409 and r.json()["detail"]
    assert api.pipeline(video_id, "analyse") == {"video_id": video_id, "status": "pending",
                                                 "percentage": 0, "error": None}
    wait_for(lambda: api.upload_status(video_id)["transcoding_status"]["status"] == "completed")
    r = api.initiate_pipeline(video_id, "analyse")
    assert r.status_code == 200
    assert r.json() == {"video_id": video_id, "status": "enqueued"}
    statuses: set[str] = set()

    def done() -> bool:
        s = api.pipeline(video_id, "analyse")
        statuses.add(s["status"])
        return s["status"] == "done"

    wait_for(done, interval=0.02)
    assert "running" in statuses
    assert api.pipeline(video_id, "analyse")["percentage"] == 100
    # Idempotent once done: no restart.
    assert api.initiate_pipeline(video_id, "analyse").status_code == 200
    assert api.pipeline(video_id, "analyse")["status"] == "done"


def test_fail_name_glob_fails_pipeline_every_attempt(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fail_name_glob="*broken*", fail_pipeline="search-process")
    with Emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                            headers={"X-API-Key": cfg.api_keys[0]}) as c, \
            httpx.Client() as s3:
        api = Api(emu, c, s3)
        bad = api.upload(b"x" * 100, name="cam broken 1")
        good = api.upload(b"y" * 100, name="cam ok 1")
        api.skip()
        for vid in (bad, good):
            assert api.initiate_pipeline(vid, "search-process").status_code == 200
            assert api.initiate_pipeline(vid, "analyse").status_code == 200
        api.skip()
        failed = api.pipeline(bad, "search-process")
        assert failed["status"] == "failed" and failed["error"]
        assert api.pipeline(bad, "analyse")["status"] == "done"
        assert api.pipeline(good, "search-process")["status"] == "done"
        # A re-initiate after failure starts a new attempt (which fails again by name).
        assert api.initiate_pipeline(bad, "search-process").status_code == 200
        assert api.pipeline(bad, "search-process")["status"] in ("pending", "running")
        api.skip()
        assert api.pipeline(bad, "search-process")["status"] == "failed"


def test_fail_share_random_attempts_can_recover(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fail_share=0.5, fail_pipeline="analyse", seed=7)
    with Emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                            headers={"X-API-Key": cfg.api_keys[0]}) as c, \
            httpx.Client() as s3:
        api = Api(emu, c, s3)
        vid = api.upload(b"z" * 10)
        api.skip()
        outcomes = []
        for _ in range(12):
            api.initiate_pipeline(vid, "analyse")
            api.skip()
            outcomes.append(api.pipeline(vid, "analyse")["status"])
            if outcomes[-1] == "done":
                break
        assert outcomes[-1] == "done"


def test_upload_pipeline_failure_sets_error_message(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fail_name_glob="bad*", fail_pipeline="transcoding")
    with Emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                            headers={"X-API-Key": cfg.api_keys[0]}) as c, \
            httpx.Client() as s3:
        api = Api(emu, c, s3)
        vid = api.upload(b"q" * 10, name="bad clip")
        api.skip()
        s = api.upload_status(vid)
        assert s["transcoding_status"]["status"] == "failed"
        assert s["transcoding_status"]["error"] and s["error_message"]
        assert s["hls_generation_status"]["status"] == "pending"
        assert api.initiate_pipeline(vid, "analyse").status_code == 409


def test_direct_upload(api: Api, client: httpx.Client, admin: httpx.Client) -> None:
    data = os.urandom(10 * KIB)
    r = client.post(f"{UP}/direct", files={"file": ("clip one.mp4", data, "video/mp4")},
                    data={"name": "Direct clip", "use_dynamic_hls": "true"})
    assert r.status_code == 202, r.text
    vid = r.json()["video_id"]
    assert admin.get(f"/_admin/videos/{vid}/bytes").content == data
    assert admin.get(f"/_admin/videos/{vid}").json()["name"] == "Direct clip"
    r = client.post(f"{UP}/direct", files={"file": ("fallback.mp4", b"abc", "video/mp4")})
    assert r.status_code == 202
    assert admin.get(f"/_admin/videos/{r.json()['video_id']}").json()["name"] == "fallback.mp4"
    r = client.post(f"{UP}/direct", files={"file": ("empty.mp4", b"", "video/mp4")})
    assert r.status_code == 400 and r.json() == {"detail": "Uploaded file is empty."}
    r = client.post(f"{UP}/direct", files={"file": ("big.mp4", b"x" * (257 * KIB), "video/mp4")})
    assert r.status_code == 413
    r = client.post(f"{UP}/direct", data={"name": "no file"})
    assert r.status_code == 422


@pytest.mark.parametrize(("url", "code"), [
    ("https://www.youtube.com/watch?v=private123", "YOUTUBE_VIDEO_PRIVATE"),
    ("https://youtu.be/age-restricted-1", "YOUTUBE_VIDEO_AGE_RESTRICTED"),
    ("https://www.youtube.com/watch?v=geo_blocked", "YOUTUBE_VIDEO_GEO_BLOCKED"),
    ("https://vimeo.com/123", "YOUTUBE_IMPORT_FAILED"),
    ("not a url", "YOUTUBE_IMPORT_FAILED"),
])
def test_youtube_error_codes(client: httpx.Client, url: str, code: str) -> None:
    r = client.post(f"{UP}/youtube", json={"url": url})
    assert r.status_code == 400
    assert r.json() == {"message": code}


def test_youtube_import_creates_video(api: Api, client: httpx.Client) -> None:
    r = client.post(f"{UP}/youtube", json={"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"})
    assert r.status_code == 202
    vid = r.json()["video_id"]
    api.skip()
    details = client.get(f"{VID}/get-video-details", params={"video_id": vid}).json()
    assert details["name"] == "YouTube video dQw4w9WgXcQ"
    assert details["video_metadata"]["width"] == 1280


def _tiny_mp4(seconds: int = 2) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 5)
        import numpy as np

        for i in range(seconds * 5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, dtype=np.uint8),
                                               format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def test_details_list_and_delete(api: Api, client: httpx.Client, client_b: httpx.Client,
                                 admin: httpx.Client, s3: httpx.Client) -> None:
    mp4 = _tiny_mp4()
    vid = api.upload(mp4, name="Real clip")
    other = api.upload(os.urandom(500_000), name="Random bytes")
    api.skip()
    d = client.get(f"{VID}/get-video-details", params={"video_id": vid}).json()
    assert set(d) >= {"video_id", "name", "video_path", "thumbnail_path", "hls_playlist_path",
                      "transcoding_status", "hls_generation_status",
                      "thumbnail_generation_status", "video_metadata", "created_at"}
    meta = d["video_metadata"]
    assert (meta["width"], meta["height"]) == (64, 48)
    assert 1.5 <= meta["duration_seconds"] <= 2.5
    assert set(meta) == {"duration_seconds", "width", "height"}  # the doc's fields, no more
    assert d["created_at"].endswith("Z")
    assert s3.get(d["video_path"]).content == mp4
    thumb = s3.get(d["thumbnail_path"])
    assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
    assert d["hls_playlist_path"].startswith(client.base_url.scheme + "://")
    m3u8 = client.get(d["hls_playlist_path"])
    assert m3u8.status_code == 200 and m3u8.text.startswith("#EXTM3U")
    # Every manifest and segment the player fetches goes through the key-gated proxy.
    index = client.get(m3u8.text.splitlines()[-1])
    [segment] = [line for line in index.text.splitlines() if line and not line.startswith("#")]
    ts = client.get(segment)
    assert "/videos/hls-playlist?" in segment and ts.headers["content-type"] == "video/mp2t"
    assert ts.content[0] == 0x47 and len(ts.content) % 188 == 0  # MPEG-TS packets, not the MP4
    assert httpx.get(segment).status_code == 401
    assert client_b.get(d["hls_playlist_path"]).status_code == 403
    assert httpx.get(d["hls_playlist_path"]).status_code == 401
    fallback = client.get(f"{VID}/get-video-details", params={"video_id": other}).json()
    assert fallback["video_metadata"]["duration_seconds"] == 2.0  # 500 kB at 2 Mbit/s

    listed = client.get(f"{VID}/list").json()
    assert [v["video_id"] for v in listed] == [other, vid]  # created_at desc
    item = listed[0]
    assert item["status"] == "uploaded" and item["analyse_status"] is None
    assert client.get(f"{VID}/list", params={"sort_order": "asc"}).json()[0]["video_id"] == vid
    assert [v["name"] for v in client.get(f"{VID}/list", params={
        "sort_by": "name", "sort_order": "asc"}).json()] == ["Random bytes", "Real clip"]
    assert len(client.get(f"{VID}/list", params={"limit": 1, "skip": 1}).json()) == 1
    assert client.get(f"{VID}/list", params={"limit": 101}).status_code == 422
    assert client.get(f"{VID}/list", params={"status": "weird"}).status_code == 422
    assert client_b.get(f"{VID}/list").json() == []

    assert client_b.delete(f"{VID}/delete", params={"video_id": vid}).status_code == 403
    r = client.delete(f"{VID}/delete", params={"video_id": vid})
    assert r.status_code == 200 and r.json() == {"message": "Video deleted successfully."}
    assert client.delete(f"{VID}/delete", params={"video_id": vid}).status_code == 404
    assert admin.get(f"/_admin/videos/{vid}").status_code == 404
    assert s3.get(d["video_path"]).status_code == 404
    assert [v["video_id"] for v in client.get(f"{VID}/list").json()] == [other]


def test_hls_serves_mpeg_ts_segments_cut_from_the_video(api: Api, client: httpx.Client,
                                                         data_dir: Path, tmp_path: Path) -> None:
    import av

    from syncd.media.clips import make_clip

    clip = make_clip(tmp_path / "clip.mp4", seconds=12, keyframe_every=20).read_bytes()
    vid = api.upload(clip, name="Real clip")
    # Fixed bytes: some draws of os.urandom probe as a playable stream (ffmpeg guesses formats).
    noise = api.upload(random.Random(7).randbytes(50_000), name="Random bytes")
    api.skip()
    master = client.get(client.get(f"{VID}/get-video-details", params={"video_id": vid})
                        .json()["hls_playlist_path"])
    index = client.get(master.text.splitlines()[-1])
    assert index.headers["content-type"] == "application/vnd.apple.mpegurl"
    lines = index.text.splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-PLAYLIST-TYPE:VOD" in lines and lines[-1] == "#EXT-X-ENDLIST"
    urls = [line for line in lines if line and not line.startswith("#")]
    durations = [float(line[8:].rstrip(",")) for line in lines if line.startswith("#EXTINF:")]
    assert len(urls) == len(durations) >= 4  # cut at keyframes, about 2 s each
    assert abs(sum(durations) - 12) < 0.5
    segments = [client.get(url) for url in urls]
    assert all(s.headers["content-type"] == "video/mp2t" and s.content[0] == 0x47 for s in segments)
    with av.open(io.BytesIO(b"".join(s.content for s in segments)), format="mpegts") as ts:
        frames = sum(1 for p in ts.demux(ts.streams.video[0]) if p.size)
    assert frames == 120  # every frame of the clip, once
    assert httpx.get(urls[0]).status_code == 401  # each segment fetch needs the key
    for name in ("segment-99.ts", "../index.m3u8", "segment-0.mp4"):
        r = client.get(HLS, params={"video_id": vid, "playlist": name})
        assert r.status_code == 404, name
    assert client.get(HLS, params={"video_id": noise, "playlist": "master.m3u8"}).status_code == 200
    assert client.get(HLS, params={"video_id": noise, "playlist": "index.m3u8"}).status_code == 404
    assert (data_dir / "hls" / vid).is_dir()
    assert client.delete(f"{VID}/delete", params={"video_id": vid}).status_code == 200
    assert not (data_dir / "hls" / vid).exists()  # deleting a video removes its HLS segments


def test_list_filters(api: Api, client: httpx.Client) -> None:
    done = api.processed_video("done one")
    # processed_video() moved the emulator clock 2 s on: created_at differs in whole seconds.
    fresh = api.upload(b"abc", name="fresh one")
    api.skip()
    assert api.initiate_pipeline(fresh, "analyse").status_code == 200
    api.skip()
    by = {s: [v["video_id"] for v in client.get(f"{VID}/list", params={"status": s}).json()]
          for s in ("uploaded", "analysed", "search_processed", "processed")}
    assert by["processed"] == [done]
    assert set(by["analysed"]) == {done, fresh}
    assert by["search_processed"] == [done]
    assert by["uploaded"] == []
    listed = client.get(f"{VID}/list").json()
    created = {v["video_id"]: v["created_at"] for v in listed}
    after = client.get(f"{VID}/list", params={"start_time": created[fresh]}).json()
    assert [v["video_id"] for v in after] == [fresh]
    coll = client.post(f"{COL}/create", json={"name": "c"}).json()["collection_id"]
    assert client.post(f"{COL}/{coll}/videos", json={"video_id": done}).status_code == 201
    nic = client.get(f"{VID}/list", params={"not_in_collection": "true"}).json()
    assert [v["video_id"] for v in nic] == [fresh]


def test_finished_run_status_falls_back_to_database(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", fail_name_glob="bad*", status_cache_seconds=60)
    with Emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                            headers={"X-API-Key": cfg.api_keys[0]}) as c, \
            httpx.Client() as s3:
        api = Api(emu, c, s3)
        bad = api.upload(b"b", name="bad one")
        api.skip()
        api.initiate_pipeline(bad, "analyse")
        api.skip()
        fresh = api.pipeline(bad, "analyse")
        assert fresh["status"] == "failed" and fresh["error"] and fresh["percentage"] is not None
        api.skip(120)
        assert api.pipeline(bad, "analyse") == {"video_id": bad, "status": "failed",
                                                "percentage": None, "error": None}
