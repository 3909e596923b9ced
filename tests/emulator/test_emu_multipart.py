"""Multipart upload and the pre-signed object store."""

from __future__ import annotations

import base64
import hashlib
import os
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from emu_helpers import KEY_A, MIN_PART, UP, Api, raw_request

from syncd.emulator.mikshi import Emulator


def _with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_full_flow_assembles_exact_bytes_with_quoted_md5_etags(s3: httpx.Client,
        api: Api, client: httpx.Client, admin: httpx.Client) -> None:
    data = os.urandom(MIN_PART * 2 + 1234)
    init = api.initiate("movie file.mp4")
    assert set(init) == {"upload_id", "s3_object_name", "video_id"}
    chunks = [data[:MIN_PART], data[MIN_PART:2 * MIN_PART], data[2 * MIN_PART:]]
    etags = []
    for n, chunk in enumerate(chunks, start=1):
        url = api.part_url(init, n)
        assert "X-Amz-Signature=" in url and KEY_A not in url
        r = s3.put(url, content=chunk)
        assert r.status_code == 200
        assert r.headers["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"'
        etags.append(r.headers["ETag"])
    listed = client.post(f"{UP}/multipart/list-parts", json={
        "s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"]}).json()
    assert listed == {"parts": [{"part_number": n, "etag": e}
                                for n, e in enumerate(etags, start=1)]}
    # Clients may send etags with or without quotes.
    r = api.complete(init, [(1, etags[0]), (2, etags[1].strip('"')), (3, etags[2])])
    assert r.status_code == 200, r.text
    r = client.post(f"{UP}/preprocess", json={
        "s3_object_name": init["s3_object_name"], "video_id": init["video_id"],
        "name": "Movie", "use_dynamic_hls": False})
    assert r.status_code == 202
    assert r.json() == {"video_id": init["video_id"]}
    assert admin.get(f"/_admin/videos/{init['video_id']}/bytes").content == data
    info = admin.get(f"/_admin/videos/{init['video_id']}").json()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["size_bytes"] == len(data)
    assert admin.get("/_admin/uploads").json() == []


def test_part_reput_replaces_and_list_is_sorted(api: Api, client: httpx.Client) -> None:
    init = api.initiate()
    api.put_part(init, 3, b"c" * 10)
    api.put_part(init, 1, b"a" * 10)
    new = api.put_part(init, 1, b"A" * 20)
    parts = client.post(f"{UP}/multipart/list-parts", json={
        "s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"]}).json()["parts"]
    assert [p["part_number"] for p in parts] == [1, 3]
    assert parts[0]["etag"] == new


def test_tampered_and_expired_urls_are_403_access_denied(s3: httpx.Client, emu: Emulator,
                                                          api: Api) -> None:
    init = api.initiate()
    url = api.part_url(init, 1)
    sig = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    tampered = _with_param(url, **{"X-Amz-Signature": ("0" if sig[0] != "0" else "1") + sig[1:]})
    r = s3.put(tampered, content=b"x")
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text
    assert s3.put(_with_param(url, **{"X-Amz-Expires": "999999"}), content=b"x") \
        .status_code == 403
    other_upload = _with_param(url, uploadId="someone-elses")
    assert s3.put(other_upload, content=b"x").status_code == 403
    emu.advance_clock(emu.config.url_ttl_seconds + 5)
    r = s3.put(url, content=b"x")
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text and "expired" in r.text


def test_chunked_put_is_501_and_missing_length_is_411(api: Api) -> None:
    init = api.initiate()
    url = api.part_url(init, 1)
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}"
    host = f"{parts.hostname}:{parts.port}"
    out = raw_request(url, f"PUT {target} HTTP/1.1\r\nHost: {host}\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 501")
    assert b"<Code>NotImplemented</Code>" in out
    out = raw_request(url, f"PUT {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411")
    assert b"<Code>MissingContentLength</Code>" in out


def test_content_md5_is_checked(s3: httpx.Client, api: Api) -> None:
    init = api.initiate()
    url = api.part_url(init, 1)
    good = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    assert s3.put(url, content=b"hello", headers={"Content-MD5": good}).status_code == 200
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    r = s3.put(url, content=b"hello", headers={"Content-MD5": bad})
    assert r.status_code == 400 and "BadDigest" in r.text


def test_small_non_last_part_is_entity_too_small(api: Api) -> None:
    init = api.initiate()
    e1 = api.put_part(init, 1, b"a" * (MIN_PART - 1))
    e2 = api.put_part(init, 2, b"b" * 10)
    r = api.complete(init, [(1, e1), (2, e2)])
    assert r.status_code == 400
    assert "(EntityTooSmall)" in r.json()["detail"]
    # A small *last* part is fine, and so is a single small part.
    init2 = api.initiate()
    r = api.complete(init2, [(1, api.put_part(init2, 1, b"tiny"))])
    assert r.status_code == 200, r.text


def test_wrong_etag_missing_part_and_order(api: Api) -> None:
    init = api.initiate()
    e1 = api.put_part(init, 1, b"a" * MIN_PART)
    e2 = api.put_part(init, 2, b"b" * 10)
    r = api.complete(init, [(1, e1), (2, '"' + "0" * 32 + '"')])
    assert r.status_code == 400 and "(InvalidPart)" in r.json()["detail"]
    r = api.complete(init, [(1, e1), (3, e2)])
    assert r.status_code == 400 and "(InvalidPart)" in r.json()["detail"]
    r = api.complete(init, [(2, e2), (1, e1)])
    assert r.status_code == 400 and "(InvalidPartOrder)" in r.json()["detail"]
    r = api.complete(init, [(1, e1), (1, e1)])
    assert r.status_code == 400 and "(InvalidPartOrder)" in r.json()["detail"]
    r = api.complete(init, [])
    assert r.status_code == 400
    r = api.client.post(f"{UP}/multipart/complete", json={
        "s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"],
        "parts": [{"part_number": "1", "etag": e1}]})
    assert r.status_code == 422
    assert api.complete(init, [(1, e1), (2, e2)]).status_code == 200


def test_completed_upload_id_is_gone_everywhere(s3: httpx.Client, api: Api,
                                                client: httpx.Client) -> None:
    init = api.initiate()
    url = api.part_url(init, 1)
    etag = s3.put(url, content=b"data").headers["ETag"]
    assert api.complete(init, [(1, etag)]).status_code == 200
    r = s3.put(url, content=b"data")
    assert r.status_code == 404 and "<Code>NoSuchUpload</Code>" in r.text
    body = {"s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"]}
    for path in ("list-parts", "abort", "part-url"):
        extra = {"part_number": 1} if path == "part-url" else {}
        assert client.post(f"{UP}/multipart/{path}", json={**body, **extra}).status_code == 404
    r = api.complete(init, [(1, etag)])
    assert r.status_code == 404 and "(NoSuchUpload)" in r.json()["detail"]


def test_abort_removes_parts(api: Api, client: httpx.Client, admin: httpx.Client,
                             emu: Emulator) -> None:
    init = api.initiate()
    api.put_part(init, 1, b"x" * 100)
    uploads = admin.get("/_admin/uploads").json()
    assert uploads[0]["parts"] == [{"part_number": 1, "size": 100,
                                    "etag": f'"{hashlib.md5(b"x" * 100).hexdigest()}"'}]
    body = {"s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"]}
    assert client.post(f"{UP}/multipart/abort", json=body).status_code == 200
    assert admin.get("/_admin/uploads").json() == []
    assert not (emu.config.data_dir / "blobs" / "parts" / init["upload_id"]).exists()
    assert client.post(f"{UP}/multipart/abort", json=body).status_code == 404
    assert client.post(f"{UP}/multipart/list-parts", json=body).status_code == 404


@pytest.mark.parametrize("number", [0, 10001, -1])
def test_part_number_out_of_range(s3: httpx.Client, api: Api, client: httpx.Client,
                                  number: int) -> None:
    init = api.initiate()
    r = client.post(f"{UP}/multipart/part-url", json={
        "s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"],
        "part_number": number})
    assert r.status_code == 422
    url = _with_param(api.part_url(init, 1), partNumber=str(number))
    r = s3.put(url, content=b"x")
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text


def test_part_number_bounds_are_inclusive(api: Api) -> None:
    init = api.initiate()
    api.put_part(init, 10000, b"last")


def test_other_users_upload_is_403(api: Api, client_b: httpx.Client) -> None:
    init = api.initiate()
    body = {"s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"]}
    assert client_b.post(f"{UP}/multipart/list-parts", json=body).status_code == 403
    assert client_b.post(f"{UP}/multipart/part-url",
                         json={**body, "part_number": 1}).status_code == 403


def test_signed_get_serves_ranges(s3: httpx.Client, api: Api, client: httpx.Client) -> None:
    data = os.urandom(5000)
    video_id = api.upload(data)
    details = client.get("/api/backend/v1/developer/videos/get-video-details",
                         params={"video_id": video_id}).json()
    url = details["video_path"]
    assert s3.get(url).content == data
    r = s3.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["Content-Range"] == "bytes 100-199/5000"
    assert s3.get(url, headers={"Range": "bytes=-10"}).content == data[-10:]
    assert s3.get(url, headers={"Range": "bytes=9000-"}).status_code == 416
    # Signed for GET only, like S3.
    assert s3.put(url, content=b"x").status_code in (403, 501)
