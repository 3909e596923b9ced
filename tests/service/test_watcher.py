"""The watcher's bookkeeping (``Pending``) and its event filter, without a daemon (issue 6)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from syncd.config import FolderConfig
from syncd.service.watcher import SETTLE_MARGIN, Pending, Watcher, _Rules


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pending(max_paths: int = 100) -> tuple[Pending, Clock]:
    clock = Clock()
    return Pending(settle=5.0, debounce=0.5, max_paths=max_paths, clock=clock), clock


def test_a_path_is_due_after_its_latest_event() -> None:
    p, clock = pending()
    p.touch("/d/a.mp4", settling=True)
    assert p.next_due() == 105.0 + SETTLE_MARGIN
    clock.now = 104.0
    p.touch("/d/a.mp4", settling=True)  # still being written: due moves out
    assert p.next_due() == 109.0 + SETTLE_MARGIN and p.depth == 1
    assert p.take(108.0) == 0
    assert p.take(110.0) == 1 and p.next_due() is None and p.depth == 0


def test_deletions_are_due_after_the_debounce_and_win_over_settling() -> None:
    p, clock = pending()
    p.touch("/d/a.mp4", settling=True)
    clock.now = 101.0
    p.touch("/d/b.mp4", settling=False)
    assert p.next_due() == 101.5
    p.touch("/d/a.mp4", settling=False)  # written, then deleted: the latest event decides
    assert p.depth == 2 and p.take(101.5) == 2


def test_wake_is_set_only_when_the_earliest_due_moves_earlier() -> None:
    p, clock = pending()
    p.touch("/d/a.mp4", settling=True)
    assert p.wake.is_set()
    p.wake.clear()
    clock.now = 101.0
    p.touch("/d/b.mp4", settling=True)  # later than a's: nothing to re-plan
    assert not p.wake.is_set()
    p.touch("/d/c.mp4", settling=False)  # sooner than a's
    assert p.wake.is_set()


def test_bounded_past_max_paths_but_nothing_is_lost() -> None:
    p, clock = pending(max_paths=10)
    for i in range(1000):
        clock.now = 100.0 + i / 1000
        p.touch(f"/d/{i}.mp4", settling=True)
    assert p.depth == 1000
    assert len(p._queues[0]) == 10, "only max_paths names are remembered"
    assert p.take(200.0) == 1000 and p.next_due() is None


def test_rules_skip_hidden_trash_excluded_and_other_extensions() -> None:
    rules = _Rules("/d", ("*.mp4", "*.mov"), (".*", "*.part"))
    assert rules.relevant("/d/cam/A.MP4", is_dir=False)
    assert rules.relevant("/d/cam", is_dir=True)
    assert rules.relevant("/d", is_dir=True)
    assert rules.relevant("/d/.syncd-folder", is_dir=False)
    assert not rules.relevant("/d/cam/notes.txt", is_dir=False)
    assert not rules.relevant("/d/.syncd-trash/a.mp4", is_dir=False)
    assert not rules.relevant("/d/cam/.a.mp4.tmp", is_dir=False)
    assert not rules.relevant("/d/cam/a.mp4.part", is_dir=False)
    assert not rules.relevant("/elsewhere/a.mp4", is_dir=False)


def folder(path: Path) -> FolderConfig:
    return FolderConfig(path=path, include=("*.mp4",), exclude=(".*",), collections="none", pipelines=(),
                        delete_remote=True, on_remote_delete="trash", require_marker=False,
                        remove_empty_collections=False)


def test_real_events_land_in_pending_and_reading_does_not(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "old.mp4").write_bytes(b"x" * 1000)
    p = Pending(settle=0.2, debounce=0.1)
    watcher = Watcher(p)
    watcher.start([folder(drop), folder(tmp_path / "not-there-yet")])
    try:
        assert watcher.watched == [drop]
        (drop / "old.mp4").read_bytes()  # syncd's own hashing must not wake it
        time.sleep(0.3)
        assert p.depth == 0
        (drop / "new.mp4").write_bytes(b"y" * 1000)
        os.rename(drop / "old.mp4", drop / "moved.mp4")
        deadline = time.monotonic() + 10
        while p.depth < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # new.mp4, and both ends of the rename: a pass may walk only the paths named.
        assert sorted(p.waiting().paths) == [str(drop / n) for n in ("moved.mp4", "new.mp4", "old.mp4")]
        (tmp_path / "not-there-yet").mkdir()  # a disk mounted later gets watched on the next ensure()
        # ... which names it as watched from now on: the daemon walks it again, since
        # whatever happened there before its watch raised no event.
        assert watcher.ensure([folder(drop), folder(tmp_path / "not-there-yet")]) == {tmp_path / "not-there-yet"}
        assert watcher.watched == [drop, tmp_path / "not-there-yet"]
        assert watcher.ensure([folder(drop), folder(tmp_path / "not-there-yet")]) == frozenset()
    finally:
        watcher.stop()


def test_intact_names_live_watches_and_a_rules_change_rewatches(tmp_path: Path) -> None:
    drop, card = tmp_path / "drop", tmp_path / "card"
    drop.mkdir()
    card.mkdir()
    p = Pending(settle=0.2, debounce=0.1)
    watcher = Watcher(p)
    watcher.start([folder(drop), folder(card)])
    try:
        assert watcher.intact() == {drop, card}
        # A card swapped for another (same path, another directory): not vouched for any more.
        card.rmdir()
        card.mkdir()  # the kernel may hand out the same inode: the dead watch tells then
        deadline = time.monotonic() + 10
        while watcher.intact() != {drop} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.intact() == {drop}
        # A reload that widens include re-schedules the watch: the new extension wakes it.
        wider = replace(folder(drop), include=("*.mp4", "*.mkv"))
        assert watcher.ensure([wider, folder(card)]) == {drop, card}
        assert watcher.intact() == {drop, card}
        time.sleep(0.3)
        p.clear()  # the card's own events
        (drop / "clip.mkv").write_bytes(b"z" * 1000)
        deadline = time.monotonic() + 10
        while p.depth < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.depth == 1
    finally:
        watcher.stop()
    assert watcher.intact() == frozenset()  # no observer: nothing is vouched for
