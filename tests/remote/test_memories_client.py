"""The memories.ai client against the memories.ai emulator over loopback HTTP."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.emulator.config import Faults
from syncd.emulator.memories import MemoriesEmulator
from syncd.errors import (AccessDeniedError, AuthError, BadRequestError, IncompleteListingError,
                          KeyRejectedError, NotFoundError, OutOfCreditsError, RateLimitedError,
                          ServerError, TooLargeError, TransientError, TransportError)
from syncd.remote.memories import ListFilters, MemoriesClient, MemoriesRemote
from syncd.remote.ratelimit import RateLimiter
from tests.conftest import KEY, MiB, wait_for, write_random
from tests.traced import traced
from tests.memories_support import (NO_LIMITS, advance_past_parsing, make_client,  # noqa: F401
                                    mclient, memories_config, memories_emu)

SHA_TAG = "sha256:" + "cd" * 32


def _file(tmp_path: Path, name: str = "clip.mp4", size: int = 4096, seed: int = 0) -> Path:
    return write_random(tmp_path / name, size, seed=seed)


def _codes(emu: MemoriesEmulator, path_end: str = "", at_least: int = 0) -> list[str | None]:
    """Business codes of the logged requests to ``path_end``. The emulator logs a request
    just after answering it, so wait until the ``at_least`` expected entries are there."""
    def codes() -> list[str | None]:
        return [e["code"] for e in emu.requests() if e["path"].endswith(path_end)]

    wait_for(lambda: len(codes()) >= at_least, timeout=10, what="request log entries")
    return codes()


def test_key_goes_bare_in_authorization_never_bearer(mclient: MemoriesClient) -> None:
    for http in (mclient.v1, mclient.v2):
        sent = http._api.headers  # what every request carries
        assert sent["Authorization"] == KEY and "X-API-Key" not in sent
        assert "bearer" not in sent["Authorization"].lower()
    assert mclient.check() == 0  # and the emulator, which refuses Bearer, accepts it


def test_upload_metadata_and_tags_round_trip(tmp_path: Path, memories_emu: MemoriesEmulator,
                                             mclient: MemoriesClient) -> None:
    path = _file(tmp_path)
    taken = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    result = mclient.upload(path, tags=[SHA_TAG, "syncd-instance:home"], datetime_taken=taken,
                            camera_model="GoPro", latitude=48.1, longitude=11.5)
    assert result.status == "UNPARSE" and result.name == "clip"
    meta = mclient.get_metadata(result.video_no)
    assert meta is not None and meta.size == path.stat().st_size
    assert meta.tags[:2] == (SHA_TAG, "syncd-instance:home")
    assert meta.datetime_taken_ms == int(taken.timestamp() * 1000)
    assert (meta.latitude, meta.longitude, meta.camera_model) == (48.1, 11.5, "GoPro")
    advance_past_parsing(memories_emu)
    (listed,) = mclient.list_videos()
    assert listed.parsed and listed.size == meta.size and listed.cause is None
    assert SHA_TAG in listed.tags and "syncd-instance:home" in listed.tags
    assert mclient.list_videos(filters=ListFilters(tag=SHA_TAG))[0].video_no == result.video_no
    assert memories_emu.admin_video_bytes(result.video_no) == path.read_bytes()


def test_unknown_video_is_none(mclient: MemoriesClient) -> None:
    assert mclient.get_metadata("VI000") is None


def test_listing_is_complete_across_pages(tmp_path: Path, mclient: MemoriesClient,
                                          memories_emu: MemoriesEmulator) -> None:
    made = {mclient.upload(_file(tmp_path, f"v{i}.mp4", 1000 + i)).video_no for i in range(7)}
    videos = mclient.list_videos(page_size=3)
    assert {v.video_no for v in videos} == made and len(videos) == 7
    assert len(_codes(memories_emu, "/list_videos", 3)) == 3  # pages 1-3, no extra page
    page = mclient.list_videos_page(3, 3)
    assert page.total == 7 and len(page.videos) == 1


def test_a_listing_that_changes_while_read_restarts_or_fails(
        tmp_path: Path, memories_emu: MemoriesEmulator, mclient: MemoriesClient) -> None:
    """An upload between two pages moves the total: the listing starts over (and is then
    complete); a library that changes between every pair of pages is never returned short."""
    for i in range(3):
        mclient.upload(_file(tmp_path, f"v{i}.mp4", 1000 + i))
    other = make_client(memories_emu)
    extra = _file(tmp_path, "extra.mp4")
    uploads_left = [1]

    def after_answer(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/list_videos") and uploads_left[0] > 0:
            uploads_left[0] -= 1
            other.upload(extra)  # another client, between two pages of this listing

    mclient.v1._api.event_hooks["response"].append(after_answer)
    try:
        assert len(mclient.list_videos(page_size=2)) == 4
        uploads_left[0] = 100
        with pytest.raises(IncompleteListingError):
            mclient.list_videos(page_size=2)
    finally:
        other.close()


def test_delete_batches_of_100_and_repeats_are_fine(tmp_path: Path, mclient: MemoriesClient,
                                                    memories_emu: MemoriesEmulator) -> None:
    video_no = mclient.upload(_file(tmp_path)).video_no
    ids = [video_no] + [f"VI{i}" for i in range(149)]
    mclient.delete_videos(ids)
    assert _codes(memories_emu, "/delete_videos", 2) == ["0000", "0000"]
    assert mclient.get_metadata(video_no) is None
    mclient.delete_videos([video_no])  # answered 0409: also means gone
    assert _codes(memories_emu, "/delete_videos", 3)[-1] == "0409"


def test_download_round_trip_by_sha256(tmp_path: Path, mclient: MemoriesClient) -> None:
    path = _file(tmp_path, size=3 * MiB + 17)
    meta = mclient.get_metadata(mclient.upload(path).video_no)
    assert meta is not None and meta.bucket and meta.blob
    got = mclient.download(meta.bucket, meta.blob, tmp_path / "back.mp4")
    assert got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (tmp_path / "back.mp4").read_bytes() == path.read_bytes() and got.size == meta.size


def test_cut_download_leaves_nothing(tmp_path: Path, memories_emu: MemoriesEmulator,
                                     mclient: MemoriesClient) -> None:
    meta = mclient.get_metadata(mclient.upload(_file(tmp_path, size=2 * MiB)).video_no)
    assert meta is not None and meta.bucket and meta.blob
    memories_emu.set_faults(Faults(stream_error_share=1.0))
    with pytest.raises(TransportError):
        mclient.download(meta.bucket, meta.blob, tmp_path / "back.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "memories"]


def test_error_mapping(tmp_path: Path, memories_emu: MemoriesEmulator,
                       mclient: MemoriesClient) -> None:
    with make_client(memories_emu, key="sk-not-a-key") as bad, pytest.raises(AuthError) as auth:
        bad.list_videos()
    assert isinstance(auth.value, KeyRejectedError)
    assert auth.value.code == "0401" and auth.value.status == 200
    assert str(auth.value).startswith("memories.ai 0401 (/list_videos)")
    with pytest.raises(NotFoundError):
        mclient.download("mavi-resource", "VI-missing.mp4", tmp_path / "x.mp4")
    with pytest.raises(NotFoundError):
        mclient.stream_stop("no-such-task")
    with pytest.raises(BadRequestError) as bad_type:
        mclient.search("x", search_type="BY_SMELL")
    assert bad_type.value.code == "0003"
    with pytest.raises(ValueError):
        ListFilters(status="FAILED").body()  # refused before asking the service
    account = memories_emu.account_for_key(KEY)
    memories_emu.update_account(account, streams_enabled=False)
    with pytest.raises(AccessDeniedError):
        mclient.stream_start("rtsp://cam/1")
    memories_emu.update_account(account, credits=0)
    with pytest.raises(OutOfCreditsError) as credits:
        mclient.upload(_file(tmp_path))
    assert credits.value.code == "0402"
    memories_emu.update_account(account, disabled=True)
    with pytest.raises(AccessDeniedError):
        mclient.list_videos()
    assert _codes(memories_emu, "/upload", 1) == ["0402"]  # refusals are never retried


def test_too_large_refused_locally_or_by_the_service(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "m", max_upload_bytes=10_000)) as emu, \
            make_client(emu) as client:
        with pytest.raises(TooLargeError):
            client.upload(_file(tmp_path, size=5000), max_bytes=4000)
        assert emu.requests() == []  # refused before sending anything
        with pytest.raises(TooLargeError):
            client.upload(_file(tmp_path, "big.mp4", size=20_000))
        with pytest.raises(BadRequestError):
            client.upload(_file(tmp_path, "notes.txt"))


def test_rate_limited_and_transient_answers_are_retried(tmp_path: Path,
                                                        memories_emu: MemoriesEmulator,
                                                        mclient: MemoriesClient) -> None:
    memories_emu.set_faults(Faults(rate_limit_share=0.5, retry_after=0))
    for _ in range(6):
        assert mclient.list_videos() == []
    assert "0429" in _codes(memories_emu, "/list_videos", 6)
    memories_emu.set_faults(Faults(error_share=0.5))
    for _ in range(6):
        assert mclient.list_videos() == []
    memories_emu.set_faults(Faults(error_share=1.0, path_glob="*/upload"))
    with pytest.raises(ServerError) as exc:  # an upload is not repeated after a 500
        mclient.upload(_file(tmp_path))
    assert isinstance(exc.value, TransientError)
    assert len(_codes(memories_emu, "/upload", 1)) == 1


def test_pacing_keeps_0429s_to_a_handful(tmp_path: Path) -> None:
    """The emulator enforces the limits strictly; the client paces itself to them."""
    limits: dict[str, str | None] = {**NO_LIMITS, "list": "8/s", "upload": "4/s"}
    with MemoriesEmulator(memories_config(tmp_path / "m", rate_limits=limits)) as emu, \
            make_client(emu, rate_limits=limits) as client:
        path = _file(tmp_path)
        for _ in range(6):
            client.upload(path)
        threads = [threading.Thread(target=client.list_videos) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_for(lambda: _codes(emu).count("0000") == 18, timeout=10, what="18 logged successes")
        # Unpaced, the same calls draw dozens of 0429s; paced, none but for scheduling
        # hiccups on a busy machine (a thread delayed between its slot and its send).
        assert _codes(emu).count("0429") <= 4


def test_paced_too_fast_the_client_backs_off_on_0429_and_goes_on(tmp_path: Path) -> None:
    """Limits configured twice as loose as the service's: refusals come, and each one holds
    the group back at least one interval, so every call still succeeds."""
    limits: dict[str, str | None] = {**NO_LIMITS, "list": "5/s"}
    with MemoriesEmulator(memories_config(tmp_path / "m", rate_limits=limits)) as emu, \
            make_client(emu, rate_limits={**NO_LIMITS, "list": "10/s"}) as client:
        for _ in range(8):
            client.list_videos()
        wait_for(lambda: _codes(emu).count("0000") == 8, timeout=10, what="8 logged successes")
        assert _codes(emu).count("0429") >= 1


def test_shared_limiter_paces_two_clients_of_one_account(tmp_path: Path) -> None:
    limits: dict[str, str | None] = {**NO_LIMITS, "list": "6/s"}
    shared = RateLimiter(limits)
    with MemoriesEmulator(memories_config(tmp_path / "m", rate_limits=limits)) as emu, \
            make_client(emu, limiter=shared) as a, make_client(emu, limiter=shared) as b:
        for _ in range(5):
            a.list_videos()
            b.list_videos()
        wait_for(lambda: _codes(emu).count("0000") == 10, timeout=10, what="10 logged successes")
        assert _codes(emu).count("0429") <= 3


def test_upload_streams_from_disk(tmp_path: Path, mclient: MemoriesClient) -> None:
    path = write_random(tmp_path / "big.mp4", 24 * MiB, seed=3)
    _, _, peak = traced(lambda: mclient.upload(path))
    assert peak < 8 * MiB  # client and emulator both stream: far below the file's size


def test_social_import_and_streams(memories_emu: MemoriesEmulator,
                                   mclient: MemoriesClient) -> None:
    task_id = mclient.scraper_url(["https://www.tiktok.com/@a/video/7"], quality="720")
    assert mclient.get_video_ids_by_task_id(task_id) == []
    advance_past_parsing(memories_emu)
    (video,) = mclient.get_video_ids_by_task_id(task_id)
    assert video.parsed and video.duration_seconds and video.bucket and video.blob
    assert mclient.get_video_ids_by_task_id("unknown") == []
    stream = mclient.stream_start("rtsp://cam.local/1", fps=2)
    mclient.stream_stop(stream)
    mclient.stream_stop(stream)
    assert memories_emu.admin_streams()[0]["stopped_at"] is not None


def test_client_errors_never_carry_the_key(memories_emu: MemoriesEmulator) -> None:
    secret = "sk-mavi-secret-123456"
    with MemoriesClient(memories_emu.v1_url, secret, v2_base_url=memories_emu.v2_url) as c:
        with pytest.raises(AuthError) as exc:
            c.check()
        assert secret not in str(exc.value) and secret not in repr(c)


def test_http_200_business_codes_are_errors_even_on_v2_shapes() -> None:
    from syncd.remote.memories import decode_error

    def answer(status: int, body: object) -> httpx.Response:
        return httpx.Response(status, json=body)

    assert decode_error(answer(200, {"code": "0000", "data": None}), "/x", str) is None
    assert decode_error(answer(200, {"code": 200, "data": {}}), "/x", str) is None
    limited = decode_error(answer(200, {"code": "0429", "msg": "slow"}), "/x", str)
    assert isinstance(limited, RateLimitedError) and limited.status == 200
    assert isinstance(decode_error(answer(200, {"code": 402, "msg": "m"}), "/x", str),
                      OutOfCreditsError)
    assert isinstance(decode_error(answer(503, {"error": "Service Unavailable"}), "/x", str),
                      TransientError)


# ---------------------------------------------------------- instance marks at library scale
def _register(emu: MemoriesEmulator, first: int, count: int, tags_of: Any = None) -> list[str]:
    """``count`` parsed videos (no files, no uploads): the emulator's admin ``videos/register``."""
    tags_of = tags_of or (lambda i: [f"sha256:{i:064x}", "syncd-instance:home"])
    numbers: list[str] = []
    with httpx.Client(base_url=f"{emu.base_url}/_admin", timeout=60) as admin:
        for start in range(first, first + count, 2000):
            videos = [{"name": f"clip{i:06d}.mp4", "size": 1000 + i, "sha256": f"{i:064x}", "tags": tags_of(i)}
                      for i in range(start, min(first + count, start + 2000))]
            answer = admin.post("/videos/register", json={"videos": videos})
            answer.raise_for_status()
            numbers += answer.json()["video_nos"]
    return numbers


def test_read_marks_reads_each_videos_holders_page_by_page(tmp_path: Path, memories_emu: MemoriesEmulator) -> None:
    """Over several pages: parsed videos' tags from the listing, an unparsed one's from
    get_metadata; one holder set per combination, shared (as Mikshi's)."""
    combos = [["syncd-instance:home"], ["syncd-instance:home", "syncd-instance:cabin"], [], ["cam1"]]
    numbers = _register(memories_emu, 0, 250, lambda i: combos[i % 4])
    with make_client(memories_emu) as client:
        unparsed = client.upload(_file(tmp_path), tags=["syncd-instance:barn"]).video_no
        remote = MemoriesRemote(client)
        remote.page_size = 40
        marks = remote.read_marks()
    expected = {n: {t.split(":", 1)[1] for t in combos[i % 4] if t.startswith("syncd-instance:")}
                for i, n in enumerate(numbers)}
    assert {v: set(h) for v, h in marks.videos.items()} == {
        **{n: h for n, h in expected.items() if h}, unparsed: {"barn"}}
    assert marks.instances == {"home", "cabin", "barn"}
    assert len({id(h) for h in marks.videos.values()}) == 3


def traced_marks(emu: MemoriesEmulator) -> tuple[int, int, int]:
    """(videos marked, bytes held by the result, peak above it) of one ``read_marks``,
    traced by tracemalloc, the emulator's own allocations included."""
    with make_client(emu) as client:
        remote = MemoriesRemote(client)
        remote.read_marks()  # warm: connections, the first page's imports
        marks, held, peak = traced(remote.read_marks)
    return len(marks.videos), held, peak - held


def test_read_marks_holds_the_marks_not_the_listing(memories_emu: MemoriesEmulator) -> None:
    """Counted (bytes, not time): ``read_marks`` holds its result (a dict entry a video, one
    holder set shared by all) and, above it, a page or so; not the listing. Reading the
    whole listing first held ~1.9 KB more a video at its peak (the 3,000 more videos here:
    5.8 MB more), and a holder set a video (400 bytes a video held)."""
    _register(memories_emu, 0, 1000)
    few, held_few, above_few = traced_marks(memories_emu)
    _register(memories_emu, 1000, 3000)
    many, held_many, above_many = traced_marks(memories_emu)
    assert (few, many) == (1000, 4000)
    assert held_many - held_few < 3000 * 200, (held_few, held_many)
    # What still grows above the result is the result's own dict resizing (~170 bytes a video).
    assert above_many - above_few < 3000 * 400, (above_few, above_many)


def test_read_marks_keeps_no_id_of_a_video_without_a_mark() -> None:
    """Videos without a syncd mark (uploaded by other tools) are in no result; ``read_marks``
    kept each one's id (a str and a set slot, ~110 bytes) for the listing's distinct count
    until the end of the read. Now a 64-bit digest each (8–32 bytes in an ``array``).
    Counted with tracemalloc on the reader itself (the emulator's own allocations, its
    request log and page queries, would blur it): pages of 100 fresh videos, 10,000 then
    40,000 videos, what the reader holds at the end."""
    from syncd.remote.memories import MemoriesVideo, _MarksOfPages

    def held(count: int) -> int:
        def read() -> _MarksOfPages:
            pages = _MarksOfPages(lambda video_no: ())
            for first in range(0, count, 100):
                pages.add([MemoriesVideo(f"VI{600_000_000_000_000_000 + i}", f"clip{i}", "PARSE", tags=("cam1",))
                           for i in range(first, first + 100)])
            return pages

        pages, kept, _ = traced(read)
        assert pages.videos == {}
        return kept

    few, many = held(10_000), held(40_000)
    assert many - few < 30_000 * 40, (few, many)  # before: ~110 bytes a video more


def test_read_marks_counts_a_video_listed_twice_once() -> None:
    """Pages that shift list a video twice: it counts once, marked or not (the listing's
    distinct count), and its tags are not asked for again."""
    from syncd.remote.memories import MemoriesVideo, _MarksOfPages

    asked: list[str] = []

    def tags_of(video_no: str) -> tuple[str, ...]:
        asked.append(video_no)
        return ("syncd-instance:home",) if video_no == "VI1" else ()

    pages = _MarksOfPages(tags_of)
    first = [MemoriesVideo(f"VI{i}", f"c{i}", "UNPARSE") for i in range(4)]
    assert pages.add(first) == 4 and pages.add(first[1:]) == 0 and len(asked) == 4
    assert pages.videos == {"VI1": frozenset({"home"})}
    pages.restart()
    assert pages.add(first[:1]) == 1 and pages.videos == {}
