"""The Mikshi client against the emulator over loopback: issue 2."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from syncd.emulator.mikshi import Emulator
from syncd.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    HTTPStatusError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RemoteError,
    TransportError,
    UnavailableError,
    ValidationError,
)
from syncd.remote.base import ChatMessage, UploadSession
from syncd.remote.http import RetryPolicy
from syncd.remote.mikshi import MikshiClient
from syncd.remote.multipart import ResumeState, UploadLost, upload_file
from syncd.remote.mikshi import _video_id
from tests.conftest import (
    FAST_RETRY,
    KEY,
    OTHER_KEY,
    MiB,
    admin_videos,
    clear_requests,
    emulator_config,
    set_faults,
    write_random,
)

NO_RETRY = RetryPolicy(max_retries=0)


class MemoryJournal:
    """Records what the multipart driver journals (the catalog does this in syncd)."""

    def __init__(self) -> None:
        self.sessions: list[tuple[UploadSession, int]] = []
        self.parts: dict[int, str] = {}
        self.completed = False
        self.ended: list[str] = []
        self.lock = threading.Lock()

    def session_started(self, session: UploadSession, part_size: int) -> None:
        self.sessions.append((session, part_size))

    def part_done(self, session: UploadSession, part_number: int, etag: str, size: int) -> None:
        with self.lock:
            self.parts[part_number] = etag

    def upload_completed(self, session: UploadSession) -> None:
        self.completed = True

    def session_ended(self, session: UploadSession, outcome: str) -> None:
        self.ended.append(outcome)


def wait_processed(client: MikshiClient, video_id: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while client.upload_status(video_id).state != "done":
        assert time.time() < deadline, "processing did not finish"
        time.sleep(0.1)


def upload(client: MikshiClient, path: Path, name: str | None = None, concurrency: int = 4) -> str:
    result = upload_file(client, path, name=name or path.name, part_size=5 * MiB, concurrency=concurrency,
                         journal=MemoryJournal())
    return result.video_id


def fully_process(client: MikshiClient, video_id: str) -> None:
    wait_processed(client, video_id)
    client.analyse_initiate(video_id)
    client.search_process_initiate(video_id)
    deadline = time.time() + 20
    while not (client.analyse_status(video_id).state == client.search_process_status(video_id).state == "done"):
        assert time.time() < deadline
        time.sleep(0.1)


# ------------------------------------------------------------------ upload
def test_40mib_multipart_to_processed_holds_exact_bytes(tmp_path: Path, client: MikshiClient, admin: httpx.Client) -> None:
    source = write_random(tmp_path / "big.mp4", 40 * MiB, seed=1)
    journal = MemoryJournal()
    result = upload_file(client, source, name="big.mp4", part_size=5 * MiB, concurrency=4, journal=journal)
    assert result.parts_sent == 8 and result.bytes_sent == 40 * MiB
    assert all(etag.startswith('"') and etag.endswith('"') for etag in journal.parts.values())
    assert journal.parts[1] == f'"{hashlib.md5(source.read_bytes()[: 5 * MiB]).hexdigest()}"'
    wait_processed(client, result.video_id)
    assert admin.get(f"/videos/{result.video_id}/bytes").content == source.read_bytes()
    details = client.get_video_details(result.video_id)
    assert details.name == "big.mp4" and details.statuses["transcoding"] == "completed"
    assert admin.get("/uploads").json() == []


def test_resume_sends_only_missing_parts(tmp_path: Path, client: MikshiClient, admin: httpx.Client) -> None:
    source = write_random(tmp_path / "r.mp4", 16 * MiB, seed=2)
    session = client.start_upload("r.mp4", "video/mp4")
    with open(source, "rb") as fh:
        first = client.put_part(session, 1, fh, 0, 5 * MiB)
    clear_requests(admin)  # the first PUT's log entry may land just after its answer
    resume = ResumeState(session, 5 * MiB, {1: first})
    result = upload_file(client, source, name="r.mp4", part_size=5 * MiB, concurrency=2,
                         journal=MemoryJournal(), resume=resume)
    assert result.parts_sent == 3 and result.resumed
    assert sum(1 for r in admin.get("/requests").json() if r["method"] == "PUT") == 3
    assert admin.get(f"/videos/{result.video_id}/bytes").content == source.read_bytes()


def test_resume_after_completion_answer_was_lost(tmp_path: Path, client: MikshiClient, admin: httpx.Client) -> None:
    source = write_random(tmp_path / "c.mp4", 1000, seed=3)
    session = client.start_upload("c.mp4", "video/mp4")
    with open(source, "rb") as fh:
        etag = client.put_part(session, 1, fh, 0, 1000)
    client.complete_upload(session, [(1, etag)])
    # The driver did not hear back; on resume list-parts says 404, registration settles it.
    result = upload_file(client, source, name="c.mp4", part_size=5 * MiB, concurrency=1,
                         journal=MemoryJournal(), resume=ResumeState(session, 5 * MiB, {1: etag}))
    assert result.video_id == _video_id(session)
    assert [v["video_id"] for v in admin_videos(admin)] == [_video_id(session)]


def test_a_part_url_expired_before_its_put_is_signed_again(tmp_path: Path, emu: Emulator,
                                                            admin: httpx.Client) -> None:
    """A stall between signing a part URL and sending it (a suspended machine): S3
    answers 403; the driver signs again instead of aborting the upload."""

    class Stalling(MikshiClient):
        stalled = False

        def put_part_bytes(self, url: str, source: BinaryIO, offset: int, length: int) -> str:
            if not Stalling.stalled:
                Stalling.stalled = True
                admin.post("/clock/advance", json={"seconds": 3600}).raise_for_status()  # past the URL's TTL
            return super().put_part_bytes(url, source, offset, length)

    source = write_random(tmp_path / "e.mp4", 6 * MiB, seed=6)
    journal = MemoryJournal()
    with Stalling(emu.base_url, KEY, retry=FAST_RETRY) as stalling:
        result = upload_file(stalling, source, name="e.mp4", part_size=5 * MiB, concurrency=1, journal=journal)
    assert Stalling.stalled and journal.ended == ["registered"]
    puts = [r["status"] for r in admin.get("/requests").json() if r["method"] == "PUT"]
    assert puts == [403, 200, 200], "the refused part is sent again with a new URL"
    assert admin.get(f"/videos/{result.video_id}/bytes").content == source.read_bytes()


def test_an_upload_gone_mid_part_is_lost_not_failed(tmp_path: Path, client: MikshiClient,
                                                     admin: httpx.Client) -> None:
    """The upload is aborted elsewhere while a part is on its way: NoSuchUpload (404)
    ends the session as lost, so the next attempt starts a new upload."""

    class Aborting(MikshiClient):
        def put_part_bytes(self, url: str, source: BinaryIO, offset: int, length: int) -> str:
            [open_upload] = admin.get("/uploads").json()
            client.multipart_abort(open_upload["object_name"], open_upload["upload_id"])
            return super().put_part_bytes(url, source, offset, length)

    source = write_random(tmp_path / "g.mp4", 1000, seed=7)
    journal = MemoryJournal()
    with Aborting(client.http.base_url, KEY, retry=FAST_RETRY) as aborting, pytest.raises(UploadLost):
        upload_file(aborting, source, name="g.mp4", part_size=5 * MiB, concurrency=1, journal=journal)
    assert journal.ended == ["lost"] and admin.get("/uploads").json() == []


def test_permanent_failure_aborts_the_upload(tmp_path: Path, client: MikshiClient, admin: httpx.Client) -> None:
    source = write_random(tmp_path / "p.mp4", 3 * MiB, seed=4)
    session = client.start_upload("p.mp4", "video/mp4")
    journal = MemoryJournal()
    # Resuming with 1 MiB parts: the remote refuses the completion (EntityTooSmall).
    with pytest.raises(BadRequestError, match="EntityTooSmall"):
        upload_file(client, source, name="p.mp4", part_size=5 * MiB, concurrency=2, journal=journal,
                    resume=ResumeState(session, 1 * MiB, {}))
    assert journal.ended and journal.ended[0].startswith("aborted")
    assert admin.get("/uploads").json() == [], "no orphaned parts"


def test_direct_upload_and_youtube_codes(tmp_path: Path, client: MikshiClient) -> None:
    small = write_random(tmp_path / "s.mp4", 2000, seed=5)
    video_id = client.upload_direct(small, "small clip")
    assert client.get_video_details(video_id).name == "small clip"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(BadRequestError, match="Uploaded file is empty"):
        client.upload_direct(empty)
    with pytest.raises(BadRequestError) as err:
        client.youtube_import("https://www.youtube.com/watch?v=private123")
    assert err.value.code == "YOUTUBE_VIDEO_PRIVATE"
    assert client.youtube_import("https://www.youtube.com/watch?v=dQw4w9WgXcQ", name="yt")


def test_direct_upload_over_the_cap_is_413(tmp_path: Path) -> None:
    with Emulator(emulator_config(tmp_path / "e", direct_upload_max_bytes=1000)) as emu:
        with MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as c:
            with pytest.raises(PayloadTooLargeError):
                c.upload_direct(write_random(tmp_path / "x.mp4", 5000, seed=6))


# ---------------------------------------------------------- error statuses
def test_documented_error_statuses(tmp_path: Path) -> None:
    # Processing takes an hour of emulator time, and the clock is moved by hand: "not done yet"
    # must not depend on how fast this machine runs the requests before it.
    slow = emulator_config(tmp_path / "emulator", processing_seconds=3600, pipeline_seconds=3600)
    with Emulator(slow) as emu, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as client:
        _documented_error_statuses(tmp_path, emu, client)


def _documented_error_statuses(tmp_path: Path, emu: Emulator, client: MikshiClient) -> None:
    with MikshiClient(emu.base_url, "sk_not_a_key", retry=NO_RETRY) as bad:
        with pytest.raises(AuthError):
            bad.videos_list()
    video_id = upload(client, write_random(tmp_path / "a.mp4", 3000, seed=7))
    with MikshiClient(emu.base_url, OTHER_KEY, retry=NO_RETRY) as other:
        with pytest.raises(ForbiddenError, match="Not authorized for this video"):
            other.upload_status(video_id)
        with pytest.raises(NotFoundError):  # 403 → 404 for embeddings, as documented
            other.embeddings_video(video_id)
    with pytest.raises(NotFoundError, match="Video not found"):
        client.upload_status(str(uuid.uuid4()))
    with pytest.raises(ConflictError):  # transcoding not completed yet
        client.analyse_initiate(video_id)
    emu.advance_clock(3600)
    wait_processed(client, video_id)
    with pytest.raises(ConflictError):  # search-process not done
        client.embeddings_video(video_id)
    collection = client.collections_create("cams")
    with pytest.raises(ConflictError, match="already exists"):
        client.collections_create("cams")
    with pytest.raises(BadRequestError, match="Only fully processed videos"):
        client.collection_add_video(collection.collection_id, video_id)
    with pytest.raises(BadRequestError, match="No fields provided"):
        client.collections_update(collection.collection_id)
    with pytest.raises(ValidationError):
        client.collections_list(page_size=101)
    with pytest.raises(ValidationError):
        client.embeddings_text("")
    with pytest.raises(HTTPStatusError) as err:
        client.preprocess("uploads/none", str(uuid.uuid4()), "x")
    assert err.value.status in (400, 404)


def test_no_retry_on_4xx(tmp_path: Path, client: MikshiClient, admin: httpx.Client) -> None:
    client.collections_create("once")
    admin.post("/requests/clear")
    with pytest.raises(ConflictError):
        client.collections_create("once")
    assert len(admin.get("/requests").json()) == 1


# ----------------------------------------------------------------- retries
def test_20_percent_429_503_full_upload_and_every_read(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    retry = RetryPolicy(max_retries=12, backoff_base=0.01, backoff_cap=0.05)
    with MikshiClient(emu.base_url, KEY, retry=retry) as client:
        clean = upload(client, write_random(tmp_path / "warehouse gate.mp4", 2 * MiB, seed=8))
        fully_process(client, clean)
        # 429 and 503 only: those are repeated for every request; a 500 is rightly not for a
        # POST such as multipart/complete, so which request drew one decided the outcome.
        set_faults(admin, rate_limit_share=0.1, error_share=0.1, retry_after=1, error_statuses=(503,))
        admin.post("/requests/clear")
        # One part at a time: with parallel parts, the next part-url request after a 429 may
        # be another part's, and the log could not tell the retry apart.
        video_id = upload(client, write_random(tmp_path / "f.mp4", 12 * MiB, seed=9), concurrency=1)
        fully_process(client, video_id)
        collection = client.collections_create("faulty")
        client.collection_add_video(collection.collection_id, video_id)
        assert [v.video_id for v in client.iter_videos()]
        assert client.get_video_details(video_id).video_id == video_id
        assert client.list_collections() and client.collection_video_ids(collection.collection_id) == [video_id]
        assert client.pipeline_status(video_id, "analyse").state == "done"
        assert len(client.embeddings_video(video_id)) >= 1
        assert len(client.embeddings_text("warehouse gate")) == 1024
        assert client.hls_playlist(video_id).startswith("#EXTM3U")
        assert client.visualize([video_id, clean]).points
        log = admin.get("/requests").json()
        set_faults(admin)
    limited = [r for r in log if r["status"] == 429]
    assert limited, "the fault injection produced 429s"
    for answer in limited:
        nxt = next(r for r in log if r["seq"] > answer["seq"] and r["path"] == answer["path"])
        assert nxt["time"] - answer["time"] >= 0.99, "Retry-After was honoured"


def test_what_is_repeated_after_an_error_follows_the_doc() -> None:
    """A credit-taking POST is repeated after 429/503 (never processed) and, for chat and
    search, after 502 (the doc: auth service unreachable, nothing charged), but not after
    a 500; an idempotent request is repeated after any of them."""
    from syncd.errors import error_for_status
    from syncd.remote.http import HttpClient
    from syncd.remote.mikshi import CREDIT_NOT_TAKEN

    http = HttpClient("http://127.0.0.1:9", KEY)
    try:
        def repeats(status: int, idempotent: bool, transient: frozenset[int] = frozenset()) -> bool:
            return http._should_retry(error_for_status(status, "x", endpoint="/x"), 1, idempotent, transient)

        assert repeats(502, False, CREDIT_NOT_TAKEN) and repeats(503, False) and repeats(429, False)
        assert not repeats(502, False) and not repeats(500, False, CREDIT_NOT_TAKEN)
        assert all(repeats(s, True) for s in (500, 502, 503, 504, 429))
        assert not repeats(400, True) and not repeats(409, True)
    finally:
        http.close()


def test_dropped_connection_retries_only_idempotent_requests(emu: Emulator, client: MikshiClient, admin: httpx.Client) -> None:
    set_faults(admin, drop_share=1.0, path_glob="*/collections/create")
    with pytest.raises(TransportError):
        client.collections_create("dropped")
    assert sum(1 for r in admin.get("/requests").json() if r["path"].endswith("/create")) == 1
    set_faults(admin, drop_share=0.5, path_glob="*/videos/list")
    assert client.videos_list() == []  # retried until answered
    set_faults(admin)


def test_retry_gives_up_with_the_right_error(emu: Emulator, admin: httpx.Client) -> None:
    set_faults(admin, error_share=1.0)
    with MikshiClient(emu.base_url, KEY, retry=RetryPolicy(max_retries=2, backoff_base=0.01)) as c:
        with pytest.raises((UnavailableError, HTTPStatusError)) as err:
            c.videos_list()
    assert err.value.status in (500, 503)
    set_faults(admin, rate_limit_share=1.0, retry_after=3)
    with MikshiClient(emu.base_url, KEY, retry=RetryPolicy(max_retries=0)) as c:
        with pytest.raises(RateLimitedError) as limited:
            c.videos_list()
    assert limited.value.retry_after == 3
    set_faults(admin)


# ---------------------------------------------------- pagination, chat, AI
def test_pagination_walks_every_page(tmp_path: Path, client: MikshiClient) -> None:
    ids = [client.upload_direct(write_random(tmp_path / f"{i}.mp4", 1000 + i, seed=i)) for i in range(5)]
    assert [v.video_id for v in client.iter_videos(page_size=2)] == ids
    names = [f"c{i:03d}" for i in range(105)]
    for name in names:
        client.collections_create(name)
    assert sorted(c.name for c in client.list_collections()) == names
    first = client.collections_list(page=1, page_size=100)
    assert (len(first.data), first.total) == (100, 105)


def test_chat_plain_stream_history_and_error_event(tmp_path: Path, client: MikshiClient, admin: httpx.Client) -> None:
    video_id = upload(client, write_random(tmp_path / "forklift.mp4", 3000, seed=11))
    fully_process(client, video_id)
    answer = client.chat_ask(video_id, "What happens?")
    tokens = list(client.chat_ask_stream(video_id, "What happens?"))
    assert len(tokens) > 1 and "".join(tokens) == answer
    history = [ChatMessage("user", "What happens?"), ChatMessage("assistant", answer)]
    assert client.chat_ask(video_id, "And then?", history) != client.chat_ask(video_id, "And then?")
    set_faults(admin, stream_error_share=1.0)
    with pytest.raises(RemoteError, match="chat stream failed"):
        list(client.chat_ask_stream(video_id, "What happens?"))
    set_faults(admin)


def test_search_embeddings_and_collections(tmp_path: Path, client: MikshiClient) -> None:
    a = upload(client, write_random(tmp_path / "a.mp4", 3000, seed=12), name="loading dock north")
    b = upload(client, write_random(tmp_path / "b.mp4", 3000, seed=13), name="parking lot south")
    for v in (a, b):
        fully_process(client, v)
    vec = client.embeddings_text("loading dock")
    assert vec == client.embeddings_text("loading dock") and len(vec) == 1024
    # Captions are drawn from video IDs, so b's may say "loading dock" too; the full
    # name gives a a margin no caption can close.
    hits = client.search_segments("loading dock north", [a, b], top_k=3)
    assert hits[0].video_id == a and hits[0].rank == 1 and hits[0].end >= hits[0].start
    col = client.collections_create("docks")
    client.collection_add_video(col.collection_id, a)
    with pytest.raises(ConflictError, match="already in this collection"):
        client.collection_add_video(col.collection_id, a)
    assert client.search_segments("dock", collection_id=col.collection_id)[0].video_id == a
    renamed = client.collections_update(col.collection_id, name="docks north")
    assert renamed.name == "docks north" and renamed.video_count == 1
    client.collection_remove_video(col.collection_id, a)
    with pytest.raises(NotFoundError, match="not in this collection"):
        client.collection_remove_video(col.collection_id, a)
    client.collections_delete(col.collection_id)
    client.videos_delete(b)
    with pytest.raises(NotFoundError):
        client.get_video_details(b)


# -------------------------------------------------------------- redaction
def test_key_is_never_in_repr_or_errors(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    with MikshiClient(emu.base_url, KEY, retry=NO_RETRY) as c:
        assert KEY not in repr(c) and KEY not in repr(c.http)
        with pytest.raises(NotFoundError) as err:
            c.get_video_details(str(uuid.uuid4()))
        assert KEY not in str(err.value) and KEY not in repr(err.value)
    with MikshiClient("http://127.0.0.1:9", KEY, retry=RetryPolicy(max_retries=1, backoff_base=0.01)) as dead:
        with pytest.raises(TransportError) as down:
            dead.videos_list()
        assert KEY not in str(down.value)
    assert KEY not in caplog.text
