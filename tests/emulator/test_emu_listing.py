"""videos/list at library scale: a walk page by page costs each page its own rows (the
position after a page is remembered), and answers exactly what a plain offset would,
also when videos come and go in the middle of a walk."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import httpx
from emu_helpers import KEY_A, VID

from syncd.emulator.mikshi import Emulator
from syncd.emulator.mikshi.store import ObjectRecord, Store, VideoRecord


def _register(admin: httpx.Client, names: list[str]) -> list[str]:
    videos = [{"name": n, "content": base64.b64encode(n.encode()).decode()} for n in names]
    response = admin.post("/_admin/videos/register",
                          json={"user_id": Emulator.user_id_for_key(KEY_A), "videos": videos})
    response.raise_for_status()
    return list(response.json()["video_ids"])


def _expected(emu: Emulator, descending: bool) -> list[str]:
    """The listing order the doc's skip/limit walks: created_at, then video_id."""
    rows = sorted(emu.admin_videos(), key=lambda v: (v["created_at_epoch"], v["video_id"]), reverse=descending)
    return [v["video_id"] for v in rows]


def _walk(client: httpx.Client, order: str, limit: int, start: int = 0, pages: int | None = None) -> list[str]:
    seen: list[str] = []
    skip = start
    while pages is None or pages > 0:
        page = client.get(f"{VID}/list", params={"skip": skip, "limit": limit, "sort_order": order}).json()
        seen += [v["video_id"] for v in page]
        if len(page) < limit:
            break
        skip += limit
        pages = None if pages is None else pages - 1
    return seen


def test_walks_match_a_plain_offset_while_videos_come_and_go(emu: Emulator, client: httpx.Client,
                                                             admin: httpx.Client) -> None:
    # Registrations: each batch shares one created_at, so ties are broken by video_id.
    _register(admin, [f"a{i}" for i in range(40)])
    emu.advance_clock(1.0)
    _register(admin, [f"b{i}" for i in range(35)])
    for order in ("desc", "asc"):
        assert _walk(client, order, 7) == _expected(emu, order == "desc")
    # Half a walk, then the library changes under it: the rest is what a fresh offset gives.
    first = _walk(client, "desc", 7, pages=3)
    assert client.delete(f"{VID}/delete", params={"video_id": first[2]}).status_code == 200
    _register(admin, [f"c{i}" for i in range(5)])
    expected = _expected(emu, True)
    assert _walk(client, "desc", 7, start=21) == expected[21:]
    # Jumps (not the next page) and a repeated page answer the same as a plain offset.
    for skip in (50, 14, 14, 63, 0):
        page = client.get(f"{VID}/list", params={"skip": skip, "limit": 7}).json()
        assert [v["video_id"] for v in page] == expected[skip:skip + 7]


def _vm_steps(store: Store, skip: int) -> int:
    """SQLite virtual-machine steps (in thousands) one page costs: counted, not timed."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    store._conn.set_progress_handler(tick, 1000)
    try:
        store.page_videos("user", skip=skip, limit=50, descending=True)
    finally:
        store._conn.set_progress_handler(None, 0)
    return steps


def test_the_next_page_of_a_walk_costs_its_rows_not_the_offset(tmp_path: Path) -> None:
    store = Store(tmp_path / "emu")
    try:
        videos = [VideoRecord(f"{i:08d}", "user", f"clip{i}", f"obj{i}", "direct", False, 1000.0 + i // 500,
                              1.0, 64, 48, False, 0.0, 0.0, 2.0, None, None) for i in range(20_000)]
        store.register_videos([(_object(v), v) for v in videos], [])
        first = _vm_steps(store, 0)
        cold = _vm_steps(store, 19_000)  # a jump: counted off row by row
        for skip in range(50, 19_950, 50):
            store.page_videos("user", skip=skip, limit=50, descending=True)
        warm = _vm_steps(store, 19_950)  # the next page of a walk
        assert cold > 10 * first
        assert warm <= 2 * first + 1
    finally:
        store.close()


def _object(video: VideoRecord) -> ObjectRecord:
    return ObjectRecord(video.object_name, video.user_id, video.video_id, 10, "0" * 64, '"etag"', "blob", 0.0)


def test_schema_counts_generations_for_every_connection(tmp_path: Path) -> None:
    """A change made through another connection (an admin tool, a second process) still
    makes remembered positions stale: the generation lives in the database."""
    store = Store(tmp_path / "emu")
    try:
        before = store._conn.execute("SELECT n FROM videos_generation").fetchone()[0]
        other = sqlite3.connect(store.db_path)
        other.execute("INSERT INTO videos VALUES ('v', 'u', 'n', 'o', 'direct', 0, 1.0, 1.0, 1, 1, 0, 0, 0, 2, NULL, NULL)")
        other.commit()
        other.close()
        assert store._conn.execute("SELECT n FROM videos_generation").fetchone()[0] == before + 1
    finally:
        store.close()
