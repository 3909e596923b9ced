"""Shared constants and helpers for the emulator tests (imported by conftest and tests)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from syncd.emulator.mikshi import Emulator, EmulatorConfig

KEY_A = "sk_test_key-a_0123456789"
KEY_B = "sk_test_key-b_9876543210"
KIB = 1024
MIN_PART = 64 * KIB

UP = "/api/backend/v1/developer/uploads"
VID = "/api/backend/v1/developer/videos"
COL = "/api/backend/v1/developer/collections"
CHAT = "/api/chat/v1/developer"


def make_config(data_dir: Path, **overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = dict(
        data_dir=data_dir, api_keys=[KEY_A, KEY_B], processing_seconds=0.5,
        pipeline_seconds=0.5, min_part_size=MIN_PART, collections_cache_seconds=0,
        direct_upload_max_bytes=256 * KIB, segment_seconds=5.0)
    values.update(overrides)
    return EmulatorConfig(**values)


def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send a hand-written request to the URL's host and return everything read back."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
            if b"</Error>" in b"".join(chunks):
                break
    return b"".join(chunks)


class Api:
    """Multi-step flows over raw HTTP, for tests that need a video in some state."""

    def __init__(self, emu: Emulator, client: httpx.Client, s3: httpx.Client) -> None:
        self.emu = emu
        self.client = client
        self.s3 = s3

    def initiate(self, filename: str = "clip.mp4") -> dict[str, Any]:
        r = self.client.post(f"{UP}/multipart/initiate",
                             json={"filename": filename, "content_type": "video/mp4"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def part_url(self, init: dict[str, Any], number: int) -> str:
        r = self.client.post(f"{UP}/multipart/part-url", json={
            "s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"],
            "part_number": number})
        assert r.status_code == 200, r.text
        assert r.json()["part_number"] == number
        return str(r.json()["url"])

    def put_part(self, init: dict[str, Any], number: int, data: bytes) -> str:
        r = self.s3.put(self.part_url(init, number), content=data)
        assert r.status_code == 200, r.text
        return r.headers["ETag"]

    def complete(self, init: dict[str, Any], parts: list[tuple[int, str]]) -> httpx.Response:
        return self.client.post(f"{UP}/multipart/complete", json={
            "s3_object_name": init["s3_object_name"], "upload_id": init["upload_id"],
            "parts": [{"part_number": n, "etag": e} for n, e in parts]})

    def upload(self, data: bytes, name: str = "clip", part_size: int = MIN_PART,
               filename: str = "clip.mp4") -> str:
        """Multipart-upload ``data`` and preprocess it; returns the video id."""
        init = self.initiate(filename)
        parts = []
        for i in range(0, max(len(data), 1), part_size):
            number = i // part_size + 1
            parts.append((number, self.put_part(init, number, data[i:i + part_size])))
        r = self.complete(init, parts)
        assert r.status_code == 200, r.text
        r = self.client.post(f"{UP}/preprocess", json={
            "s3_object_name": init["s3_object_name"], "video_id": init["video_id"],
            "name": name, "use_dynamic_hls": False})
        assert r.status_code == 202, r.text
        return str(init["video_id"])

    def upload_status(self, video_id: str) -> dict[str, Any]:
        r = self.client.get(f"{UP}/status/{video_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def skip(self, seconds: float = 1.0) -> None:
        """Jump the emulator clock past the short test timings."""
        self.emu.advance_clock(seconds)

    def pipeline(self, video_id: str, pipeline: str) -> dict[str, Any]:
        r = self.client.get(f"{VID}/{pipeline}/status/{video_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def initiate_pipeline(self, video_id: str, pipeline: str) -> httpx.Response:
        return self.client.post(f"{VID}/{pipeline}/initiate", json={"video_id": video_id})

    def processed_video(self, name: str = "clip", size: int = 20 * KIB) -> str:
        """A video with upload processing, analyse and search-process all done."""
        video_id = self.upload(os.urandom(size), name=name)
        self.skip()
        for pipeline in ("analyse", "search-process"):
            assert self.initiate_pipeline(video_id, pipeline).status_code == 200
        self.skip()
        assert self.pipeline(video_id, "analyse")["status"] == "done"
        assert self.pipeline(video_id, "search-process")["status"] == "done"
        return video_id


def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)

