"""The complete remote listing is streamed page by page into the catalog (issue 15, a
million videos): a listing that fails part way is no listing and leaves the last one
whole; the pass holds nothing per video; the questions asked of the listing (deletions,
pulls, details to pull again, names for recovery) are answered from the catalog. Real
engine and client against the emulator; the request log and the catalog as evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from syncd.emulator.config import Faults
from syncd.emulator.mikshi import Emulator
from syncd.models import Listing, RemoteDeleted
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions
from syncd.sync.executor import ExecOptions, Executor
from tests.conftest import FAST_RETRY, KEY, register_videos
from tests.sync.test_scale import synced_tree
from tests.traced import traced

LISTING = "/api/backend/v1/developer/videos/list"


class FailsOnPage(MikshiClient):
    """The client, with the emulator told to fail every listing request from page
    ``page`` (one-based) on: the fault is the emulator's, the pages before are real."""

    def __init__(self, emu: Emulator, page: int) -> None:
        super().__init__(emu.base_url, KEY, retry=FAST_RETRY)
        self.emu = emu
        self.fail_from = page

    def videos_list(self, *, skip: int = 0, limit: int = 100, **kwargs: Any) -> Any:
        if kwargs.get("sort_order", "asc") == "asc" and skip == (self.fail_from - 1) * self.page_size:
            self.emu.set_faults(Faults(error_share=1.0, path_glob=LISTING))
        return super().videos_list(skip=skip, limit=limit, **kwargs)


def listed(catalog: Catalog, ids: list[str]) -> set[str]:
    return catalog.listed_among(ids)


def test_a_listing_failing_on_page_k_deletes_nothing_and_keeps_the_last_listing(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    config = synced_tree(tmp_path, emu, admin, 9)  # its first pass read (and stored) the listing
    with Catalog.open(config.state_dir) as catalog:
        linked = {c.video_id: c.sha256 for c in catalog.contents() if c.video_id}
        ids = sorted(linked)
        generation = catalog.listing_generation()
        assert listed(catalog, ids) == set(ids)
    victim = ids[0]
    admin.delete(f"/videos/{victim}").raise_for_status()
    emu.clear_requests()

    remote = FailsOnPage(emu, page=3)
    remote.page_size = 2  # 8 videos: pages of 2, the third fails after two were written
    try:
        with Catalog.open(config.state_dir) as catalog:
            report = Engine(EngineOptions.from_config(config), catalog, remote).run_pass(with_listing=True)
            assert not report.listing_ok
            assert report.plan.of(RemoteDeleted) == []
            served = [r for r in emu.requests() if r["path"] == LISTING]
            assert sum(1 for r in served if r["status"] == 200) == 2 and (served[-1]["status"] or 0) >= 500
            # The last complete listing stands whole, the victim in it: the pages read are no listing.
            assert listed(catalog, ids) == set(ids) and catalog.listing_generation() == generation
            content = catalog.content(linked[victim])
            assert content is not None and content.state == "uploaded"
    finally:
        remote.close()
    assert all(p.exists() for p in (config.folders[0].path).rglob("*.mp4"))

    emu.set_faults(Faults())  # the remote answers again: the next complete listing proves it
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as client:
        client.page_size = 2
        report = Engine(EngineOptions.from_config(config), catalog, client).run_pass(with_listing=True)
        assert report.listing_ok
        assert [a.video_id for a in report.plan.of(RemoteDeleted)] == [victim]  # type: ignore[attr-defined]
        assert listed(catalog, ids) == set(ids) - {victim}
        assert catalog.listing_generation() == generation + 1


def test_a_restarted_listing_keeps_only_what_was_read_after_the_restart(tmp_path: Path) -> None:
    with Catalog.open(tmp_path) as catalog:
        with catalog.listing_writer() as writer:
            assert writer.add([("v1", "a.mp4", None, None, "{}"), ("v2", "b.mp4", None, None, "{}")]) == 2
            writer.commit()
        changes = catalog.changes
        with catalog.listing_writer() as writer:
            writer.add([("v1", "a.mp4", None, None, "{}"), ("v3", "c.mp4", None, None, "{}")])
            writer.restart()  # the library changed while it was being read: from the start
            assert writer.add([("v2", "b.mp4", None, None, "{}"), ("v2", "b.mp4", None, None, "{}")]) == 1
            assert writer.add([("v4", "d.mp4", None, None, "{}")]) == 1
            handle = writer.commit()
        assert handle == Listing(2, 2) and handle.videos == 2
        assert catalog.listed_among(["v1", "v2", "v3", "v4"]) == {"v2", "v4"}
        assert catalog.listed_named(["b.mp4", "a.mp4"]) == {"b.mp4": ("v2",)}
        # Rows of the listing are no change of what plans are made from (it has its own generation).
        assert catalog.changes == changes
        with catalog.listing_writer() as writer:  # the same listing again: the same handle
            writer.add([("v4", "d.mp4", None, None, "{}"), ("v2", "b.mp4", None, None, "{}")])
            assert writer.commit() == handle
        with catalog.listing_writer() as writer:  # closed without commit: no listing
            writer.add([("v9", "z.mp4", None, None, "{}")])
        assert catalog.listed_among(["v2", "v4", "v9"]) == {"v2", "v4"} and catalog.listing_generation() == 2


def test_details_are_pulled_again_only_for_entries_that_differ(tmp_path: Path) -> None:
    """``listing_differs_from_details``: name, creation time, playlist, an upload-side
    step's status (a missing one and a null one are the same)."""
    stored = {"name": "a.mp4", "created_at": "2026-01-01T00:00:00", "hls_playlist_url": None,
              "statuses": {"hls": "completed", "search-process": "done"}}
    listing = {
        "same": ("a.mp4", "2026-01-01T00:00:00", None, {"hls": "completed", "thumbnail": None}),
        "renamed": ("b.mp4", "2026-01-01T00:00:00", None, {"hls": "completed"}),
        "created": ("a.mp4", "2026-01-02T00:00:00", None, {}),
        "playlist": ("a.mp4", "2026-01-01T00:00:00", "https://x/p.m3u8", {}),
        "step": ("a.mp4", "2026-01-01T00:00:00", None, {"hls": "processing"}),
        "dashed": ("a.mp4", "2026-01-01T00:00:00", None, {"search-process": "running"}),
        "unstored": ("z.mp4", None, None, {}),  # no details stored: pulled anyway, not asked here
    }
    with Catalog.open(tmp_path) as catalog:
        for video_id in listing:
            if video_id != "unstored":
                catalog.mirror_details_pulled(video_id, "sha-" + video_id, json.dumps(stored, sort_keys=True), 1.0)
        with catalog.listing_writer() as writer:
            writer.add([(v, n, c, h, json.dumps(s)) for v, (n, c, h, s) in listing.items()])
            writer.commit()
        assert catalog.listing_differs_from_details() == {"renamed", "created", "playlist", "step", "dashed"}


def traced_listing(emu: Emulator, catalog: Catalog, videos: int) -> tuple[int, int]:
    """(bytes held after, peak above the start) of one complete listing of ``videos``
    read into the catalog, traced by tracemalloc."""
    with MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        executor = Executor(remote, catalog, ExecOptions(part_size=8 << 20, concurrency=1))
        executor.read_listing()  # warm: connections, statements, the first page's imports
        handle, held, peak = traced(executor.read_listing)
    assert handle is not None and handle.videos == videos
    return held, peak


def register(admin: httpx.Client, first: int, count: int) -> None:
    """``count`` finished videos on the remote, 2,000 a request (the admin body limit)."""
    for start in range(first, first + count, 2000):
        register_videos(admin, [(f"cam/clip{i:06d}.mp4", f"clip {i}\n".encode())
                                for i in range(start, min(first + count, start + 2000))])


def test_the_listing_pass_holds_nothing_per_video(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """Counted with tracemalloc (bytes, not time), in-process, the emulator's own
    allocations included: four times the videos, not four times the memory."""
    with Catalog.open(tmp_path / "state") as catalog:
        register(admin, 0, 2000)
        held_few, peak_few = traced_listing(emu, catalog, 2000)
        register(admin, 2000, 6000)
        held_many, peak_many = traced_listing(emu, catalog, 8000)
    # Held after the pass: nothing per video (the old in-memory view kept ~1.9 KB a video,
    # 11 MB more here); what grows is per request (the emulator's request log, 60 pages more).
    assert held_many - held_few < 6000 * 64, (held_few, held_many)
    # The peak is a page or so and the statements' state, not the listing.
    assert peak_many < 1.5 * peak_few, (peak_few, peak_many)


def test_instance_marks_share_one_holder_set_per_combination(emu: Emulator, admin: httpx.Client) -> None:
    """Read along with every complete listing: a video's holders are not a set of its own."""
    register(admin, 0, 5)
    with MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        ids = sorted(v.video_id for v in remote.list_videos())
        for video_id in ids:
            assert remote.add_mark("a", video_id)
        assert remote.add_mark("b", ids[0])
        marks = remote.read_marks()
    assert marks.instances == {"a", "b"}
    assert {v: set(h) for v, h in marks.videos.items()} == {v: {"a", "b"} if v == ids[0] else {"a"} for v in ids}
    assert len({id(h) for h in marks.videos.values()}) == 2
