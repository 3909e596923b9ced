"""memories.ai emulator: auth, metadata, listing, parsing, delete, search, tasks, download,
streams and unknown paths, over loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from syncd.emulator.config import Faults
from syncd.emulator.memories import MemoriesEmulator
from tests.conftest import KEY, OTHER_KEY
from tests.memories_support import (V1, V2, advance_past_parsing, logged, mem,  # noqa: F401
                                    mem_admin, memories_config, memories_emu, ok_data, refused,
                                    upload_raw, uploaded)


def _list(c: httpx.Client, **body: object) -> dict:  # type: ignore[type-arg]
    return ok_data(c.post(V1 + "/list_videos", json={"page": 1, **body}))  # type: ignore[no-any-return]


# -- auth -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": f"Bearer {KEY}"},
                                     {"Authorization": "sk-unknown"}, {"X-API-Key": KEY}])
def test_v1_refuses_missing_bearer_or_unknown_keys_with_0401_at_http_200(
        memories_emu: MemoriesEmulator, headers: dict[str, str]) -> None:
    resp = httpx.post(memories_emu.v1_url + "/list_videos", json={"page": 1}, headers=headers)
    refused(resp, "0401")
    entry = logged(memories_emu, 1)[-1]
    assert entry["user_id"] is None and entry["code"] == "0401"


def test_v2_refuses_bearer_with_http_401(memories_emu: MemoriesEmulator) -> None:
    resp = httpx.get(memories_emu.v2_url + "/download", params={"bucket": "b", "blob": "x"},
                     headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 401
    assert resp.json()["code"] == 401 and resp.json()["failed"] is True


def test_disabled_account_gets_0403(memories_emu: MemoriesEmulator, mem: httpx.Client,
                                    mem_admin: httpx.Client) -> None:
    account = memories_emu.account_for_key(KEY)
    mem_admin.post(f"/_admin/users/{account}", json={"disabled": True}).raise_for_status()
    refused(mem.post(V1 + "/list_videos", json={"page": 1}), "0403")


# -- get_metadata / list_videos -----------------------------------------------------------


def test_get_metadata_unknown_is_data_null_and_missing_id_is_0001(mem: httpx.Client) -> None:
    assert ok_data(mem.get(V1 + "/get_metadata", params={"video_no": "VI1"})) is None
    refused(mem.get(V1 + "/get_metadata"), "0001")


def test_other_accounts_video_is_unknown(memories_emu: MemoriesEmulator,
                                         mem: httpx.Client) -> None:
    video_no = uploaded(mem)
    with httpx.Client(base_url=memories_emu.base_url, headers={"Authorization": OTHER_KEY}) as b:
        assert ok_data(b.get(V1 + "/get_metadata", params={"video_no": video_no})) is None
        assert _list(b)["total_count"] == "0"


def test_list_pages_with_numbers_as_strings(mem: httpx.Client) -> None:
    made = {uploaded(mem, content=b"\x00" * (1000 + i)) for i in range(5)}
    seen: list[str] = []
    for page in (1, 2, 3, 4):
        data = _list(mem, page=page, size=2)
        assert data["current_page"] == page and data["page_size"] == 2
        assert data["total_count"] == "5"
        for v in data["videos"]:
            assert isinstance(v["size"], str) and isinstance(v["duration"], str)
            assert isinstance(v["create_time"], str) and v["cause"] == "null"
            seen.append(v["video_no"])
    assert sorted(seen) == sorted(made)  # pages 1-3 cover all, page 4 is empty
    assert _list(mem)["page_size"] == 20  # the documented default size


def test_plain_pages_answer_what_a_filtered_listing_does(mem: httpx.Client) -> None:
    """The unfiltered listing is counted and sliced in SQL; a ``video_nos`` filter naming
    every video takes the filtering path: both answer the same pages, deleted videos left out."""
    made = [uploaded(mem, content=b"\x01" * (1000 + i)) for i in range(7)]
    ok_data(mem.post(V1 + "/delete_videos", json=[made[3]]))
    for page in (1, 2, 3, 4):
        plain = _list(mem, page=page, size=2)
        filtered = _list(mem, page=page, size=2, video_nos=made)
        assert plain == filtered and plain["total_count"] == "6"
    assert made[3] not in {v["video_no"] for p in (1, 2, 3) for v in _list(mem, page=p, size=2)["videos"]}


@pytest.mark.parametrize("body,needle", [
    ({"page": 0}, ">= 1"),
    ({"page": 1, "size": 0}, ">= 1"),
    ({"page": "1"}, "integer"),
    ({"size": 10}, "page is required"),
    ({"page": 1, "status": "FAILED"}, "[UNPARSE, PARSE, FAIL]"),
    ({"page": 1, "status": "parse"}, "[UNPARSE, PARSE, FAIL]"),
    ({"page": 1, "latitude": 1.0}, "must be provided together"),
    ({"page": 1, "unique_id": ""}, "must not be empty"),
])
def test_list_refuses_bad_parameters(mem: httpx.Client, body: dict[str, object],
                                     needle: str) -> None:
    assert needle in refused(mem.post(V1 + "/list_videos", json=body), "0001")


def test_list_wants_json_not_form_data(mem: httpx.Client) -> None:
    refused(mem.post(V1 + "/list_videos", data={"page": "1"}), "0001")


def test_parsing_takes_time_and_can_fail(tmp_path: Path) -> None:
    cfg = memories_config(tmp_path / "m", parse_seconds=30, fail_name_glob="broken*")
    with MemoriesEmulator(cfg) as emu, \
            httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}) as c:
        good = uploaded(c, filename="fine.mp4")
        bad = uploaded(c, filename="broken.mp4")
        assert {v["status"] for v in _list(c)["videos"]} == {"UNPARSE"}
        assert _list(c, status="UNPARSE")["total_count"] == "2"
        emu.advance_clock(31)
        by_no = {v["video_no"]: v for v in _list(c)["videos"]}
        assert by_no[good]["status"] == "PARSE" and by_no[good]["cause"] == "null"
        assert by_no[bad]["status"] == "FAIL" and "simulated" in by_no[bad]["cause"]
        assert [v["video_no"] for v in _list(c, status="FAIL")["videos"]] == [bad]
        meta = ok_data(c.get(V1 + "/get_metadata", params={"video_no": bad}))
        assert meta["status"] == "FAIL"


def test_metadata_filters_match_only_parsed_videos(memories_emu: MemoriesEmulator,
                                                   mem: httpx.Client) -> None:
    tagged = uploaded(mem, data={"tags": ["holiday"], "camera_model": "X1",
                                 "latitude": "39.9042", "longitude": "116.4074",
                                 "datetime_taken": "2024-10-20 02:00:00"})
    uploaded(mem, data={"tags": ["work"]})
    assert _list(mem, tag="holiday")["total_count"] == "0"  # no summary row yet
    advance_past_parsing(memories_emu)
    assert [v["video_no"] for v in _list(mem, tag="holiday")["videos"]] == [tagged]
    assert _list(mem, camera_model="X1")["total_count"] == "1"
    assert _list(mem, latitude=39.95, longitude=116.45)["total_count"] == "1"  # ~6 km off
    assert _list(mem, latitude=31.2, longitude=121.5)["total_count"] == "0"  # Shanghai
    assert _list(mem, datetime_taken=1729389600000)["total_count"] == "1"
    assert _list(mem, datetime_taken=1729389600001)["total_count"] == "0"
    assert _list(mem, video_nos=[tagged, "VI0"])["total_count"] == "1"


# -- delete ---------------------------------------------------------------------------------


def test_delete_takes_a_raw_array_of_at_most_100(memories_emu: MemoriesEmulator,
                                                 mem: httpx.Client) -> None:
    video_no = uploaded(mem)
    refused(mem.post(V1 + "/delete_videos", json=[video_no] + [f"VI{i}" for i in range(100)]),
            "0001")
    refused(mem.post(V1 + "/delete_videos", json={"video_nos": [video_no]}), "0001")
    refused(mem.post(V1 + "/delete_videos", json=[]), "0001")
    refused(mem.post(V1 + "/delete_videos", json=[1, 2]), "0001")
    assert len(memories_emu.admin_videos()) == 1  # nothing deleted by a refused request
    ok_data(mem.post(V1 + "/delete_videos", json=[video_no] + [f"VI{i}" for i in range(99)]))
    assert memories_emu.admin_videos() == []
    assert ok_data(mem.get(V1 + "/get_metadata", params={"video_no": video_no})) is None
    # Repeating the delete answers 0409 ("duplicate request"); an unknown id alone is 0000.
    refused(mem.post(V1 + "/delete_videos", json=[video_no]), "0409")
    ok_data(mem.post(V1 + "/delete_videos", json=["VI404"]))


# -- search ---------------------------------------------------------------------------------


def test_search_hits_parsed_videos_with_seconds_as_strings(memories_emu: MemoriesEmulator,
                                                           mem: httpx.Client) -> None:
    video_no = uploaded(mem, filename="forklift loading dock.mp4")
    assert ok_data(mem.post(V1 + "/search", json={"search_param": "forklift"})) == []
    advance_past_parsing(memories_emu)
    hits = ok_data(mem.post(V1 + "/search", json={"search_param": "forklift loading",
                                                  "top_k": 3}))
    assert hits and len(hits) <= 3
    hit = hits[0]
    assert hit["videoNo"] == video_no
    assert isinstance(hit["startTime"], str) and isinstance(hit["endTime"], str)
    assert {"video_bucket", "video_blob", "keyframe_bucket", "keyframe_blob", "score"} <= set(hit)


@pytest.mark.parametrize("body,code", [
    ({}, "0001"),
    ({"search_param": "x", "search_type": "BY_SMELL"}, "0003"),
    ({"search_param": "x", "top_k": 0}, "0001"),
    ({"search_param": "x", "top_k": 1001}, "0001"),
    ({"search_param": "x", "search_type": "BY_CAPTION", "top_k": 201}, "0001"),
    ({"search_param": "x", "filtering_level": "extreme"}, "0003"),
    ({"search_param": "x", "latitude": 1.0}, "0001"),
    ({"search_param": "x", "video_nos": [f"VI{i}" for i in range(101)]}, "0001"),
])
def test_search_refuses_bad_parameters(mem: httpx.Client, body: dict[str, object],
                                       code: str) -> None:
    refused(mem.post(V1 + "/search", json=body), code)


# -- social-media import --------------------------------------------------------------------


def test_scraper_task_produces_videos_over_time(memories_emu: MemoriesEmulator,
                                                mem: httpx.Client) -> None:
    urls = ["https://www.tiktok.com/@a/video/1", "https://www.tiktok.com/@a/video/private-2",
            "https://www.tiktok.com/@a/video/notfound-3"]
    task_id = ok_data(mem.post(V1 + "/scraper_url", json={"video_urls": urls}))["taskId"]
    status = V1 + "/get_video_ids_by_task_id"
    assert ok_data(mem.get(status, params={"task_id": task_id}))["videos"] == []
    memories_emu.advance_clock(memories_emu.config.task_seconds)
    videos = ok_data(mem.get(status, params={"task_id": task_id}))["videos"]
    assert len(videos) == 2 and {v["status"] for v in videos} == {"UNPARSE"}
    assert all(isinstance(v["duration"], str) and v["bucket"] and v["blob"] for v in videos)
    advance_past_parsing(memories_emu)
    statuses = {v["video_name"]: v["status"]
                for v in ok_data(mem.get(status, params={"task_id": task_id}))["videos"]}
    assert statuses == {"1": "PARSE", "private-2": "FAIL"}
    # The task's videos are ordinary library videos.
    assert _list(mem)["total_count"] == "2"
    # Unknown task, or the right task in another namespace: the same empty answer.
    assert ok_data(mem.get(status, params={"task_id": "nope"}))["videos"] == []
    assert ok_data(mem.get(status, params={"task_id": task_id, "unique_id": "x"}))["videos"] \
        == []
    refused(mem.get(status), "0001")


@pytest.mark.parametrize("body,code", [
    ({"video_urls": []}, "0001"),
    ({"video_urls": ["https://www.tiktok.com/@a/video/1", "https://youtu.be/abc"]}, "0001"),
    ({"video_urls": [f"https://www.tiktok.com/@a/video/{i}" for i in range(51)]}, "0001"),
    ({"video_urls": ["https://example.com/v/1"]}, "0001"),
    ({"video_urls": ["https://youtu.be/abc"], "quality": "999"}, "0003"),
])
def test_scraper_refuses_bad_requests(mem: httpx.Client, body: dict[str, object],
                                      code: str) -> None:
    refused(mem.post(V1 + "/scraper_url", json=body), code)


# -- v2 download ----------------------------------------------------------------------------


def test_download_by_bucket_and_blob(memories_emu: MemoriesEmulator, mem: httpx.Client) -> None:
    content = b"video bytes " * 1000
    video_no = uploaded(mem, content=content, filename="yard.mov", ctype="video/quicktime")
    meta = ok_data(mem.get(V1 + "/get_metadata", params={"video_no": video_no}))
    resp = mem.get(V2 + "/download", params={"bucket": meta["bucket"], "blob": meta["blob"]})
    assert resp.status_code == 200 and resp.content == content
    assert resp.headers["Content-Type"] == "video/quicktime"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="yard.mov"'
    assert resp.headers["Content-Length"] == str(len(content))
    with httpx.Client(base_url=memories_emu.base_url, headers={"Authorization": OTHER_KEY}) as b:
        other = b.get(V2 + "/download", params={"bucket": meta["bucket"], "blob": meta["blob"]})
    assert other.status_code == 400 and other.json()["msg"] == "Resource does not exist"


@pytest.mark.parametrize("params,msg", [
    ({"blob": "x.mp4"}, "Bucket cannot be null or empty"),
    ({"bucket": "", "blob": "x.mp4"}, "Bucket cannot be null or empty"),
    ({"bucket": "mavi-resource"}, "Blob cannot be null or empty"),
    ({"bucket": "mavi-resource", "blob": "nope.mp4"}, "Resource does not exist"),
])
def test_download_errors_are_documented_json(mem: httpx.Client, params: dict[str, str],
                                             msg: str) -> None:
    resp = mem.get(V2 + "/download", params=params)
    body = resp.json()
    assert resp.status_code == 400 and body["code"] == 400
    assert body["msg"] == msg and body["success"] is False and body["failed"] is True


# -- v2 streams -----------------------------------------------------------------------------


def test_stream_start_and_repeatable_stop(memories_emu: MemoriesEmulator,
                                          mem: httpx.Client) -> None:
    start = mem.post(V2 + "/stream/start", json={"url": "rtsp://cam.local/1", "fps": 2})
    assert start.status_code == 200 and start.json()["code"] == 200
    task_id = start.json()["data"]["task_id"]
    for _ in range(2):  # "safe to call even if the stream has already ended"
        stop = mem.post(V2 + "/stream/stop", json={"task_id": task_id})
        assert stop.status_code == 200 and stop.json()["data"]["task_id"] == task_id
    assert memories_emu.admin_streams()[0]["stopped_at"] is not None
    assert mem.post(V2 + "/stream/stop", json={"task_id": "nope"}).status_code == 400


@pytest.mark.parametrize("body", [
    {"url": "file:///etc/passwd"}, {"url": "rtsp://c/1", "max_logos": 51},
    {"url": "rtsp://c/1", "fps": 0}, {"url": "rtsp://c/1", "enable_logo_detection": "yes"},
])
def test_stream_start_refuses_bad_options(mem: httpx.Client, body: dict[str, object]) -> None:
    resp = mem.post(V2 + "/stream/start", json=body)
    assert resp.status_code == 400 and resp.json()["code"] == 400


def test_streams_need_per_account_access(memories_emu: MemoriesEmulator,
                                         mem: httpx.Client) -> None:
    memories_emu.update_account(memories_emu.account_for_key(KEY), streams_enabled=False)
    resp = mem.post(V2 + "/stream/start", json={"url": "rtsp://c/1"})
    assert resp.status_code == 403 and resp.json()["code"] == 403


# -- plumbing --------------------------------------------------------------------------------


def test_unknown_path_and_method_answer_like_spring(mem: httpx.Client) -> None:
    resp = mem.get(V1 + "/nothing")
    assert resp.status_code == 404 and resp.json()["error"] == "Not Found"
    assert mem.get(V1 + "/list_videos").status_code == 405


def test_faults_on_v1_are_business_codes_and_spring_errors(memories_emu: MemoriesEmulator,
                                                           mem: httpx.Client,
                                                           mem_admin: httpx.Client) -> None:
    mem_admin.post("/_admin/faults", json={"rate_limit_share": 1.0}).raise_for_status()
    refused(mem.post(V1 + "/list_videos", json={"page": 1}), "0429")
    mem_admin.post("/_admin/faults", json={"error_share": 1.0}).raise_for_status()
    codes = {mem.post(V1 + "/list_videos", json={"page": 1}).status_code for _ in range(2)}
    assert codes == {500, 503}
    mem_admin.post("/_admin/faults", json={}).raise_for_status()
    ok_data(mem.post(V1 + "/list_videos", json={"page": 1}))
    log = logged(memories_emu, 4)
    assert [e["fault"] for e in log[-4:]] == ["rate_limit", "error_500", "error_503", None]


def test_cut_download_stream(memories_emu: MemoriesEmulator, mem: httpx.Client,
                             mem_admin: httpx.Client) -> None:
    video_no = uploaded(mem, content=b"\x02" * 300_000)
    meta = ok_data(mem.get(V1 + "/get_metadata", params={"video_no": video_no}))
    mem_admin.post("/_admin/faults", json={"stream_error_share": 1.0}).raise_for_status()
    with pytest.raises(httpx.RemoteProtocolError):
        mem.get(V2 + "/download", params={"bucket": meta["bucket"], "blob": meta["blob"]})


def test_dropped_connections_and_latency_knobs(memories_emu: MemoriesEmulator,
                                               mem: httpx.Client) -> None:
    memories_emu.set_faults(Faults(drop_share=1.0, path_glob="*/list_videos"))
    with pytest.raises(httpx.TransportError):
        mem.post(V1 + "/list_videos", json={"page": 1})
    ok_data(mem.get(V1 + "/get_metadata", params={"video_no": "VI1"}))  # other paths untouched
    memories_emu.set_faults(Faults(latency_ms=1))
    ok_data(mem.post(V1 + "/list_videos", json={"page": 1}))
    assert [e["fault"] for e in logged(memories_emu, 3)] == ["drop", None, None]
    assert logged(memories_emu, 3)[0]["status"] is None
