"""The daemon's wake-ups (syncd.service.timers), on fake clocks: no sleeps."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from syncd.models import FolderScan, LocalFile, UnknownFile
from syncd.service.timers import Timers
from syncd.service.watcher import SETTLE_MARGIN


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def timers(mono: float = 1000.0, wall: float = 1_700_000_000.0, **kwargs: float) -> Timers:
    return Timers(clock=Clock(mono), wall=Clock(wall), **kwargs)  # type: ignore[arg-type]


def test_fired_timers_are_cleared_except_the_probe() -> None:
    t = timers()
    t.set_due("retry", 10.0)
    t.set_due("probe", 5.0)
    t.set_due("grace", 50.0)
    assert t.earliest() == 5.0
    assert t.fire(20.0) == {"retry", "probe"}
    assert "retry" not in t and "probe" in t and "grace" in t
    t.cancel("probe")
    t.set_due("grace", None)
    assert t.earliest() is None and t.fire(1e9) == set()


def test_followup_slows_down_while_idle_and_resets_on_progress() -> None:
    t = timers(mono=0.0, followup_start=1.0, followup_cap=3.0)
    dues = []
    for _ in range(5):
        t.schedule_followup(in_flight=True, progressed=False, remote_poll=120.0)
        dues.append(t.earliest())
    assert dues == [1.5, 2.25, 3.0, 3.0, 3.0]  # 1.5x a pass, capped
    t.schedule_followup(in_flight=True, progressed=True, remote_poll=120.0)
    assert t.earliest() == 1.0
    t.schedule_followup(in_flight=True, progressed=False, remote_poll=2.0)  # never beyond the poll
    assert t.earliest() == 1.5
    t.schedule_followup(in_flight=True, progressed=False, remote_poll=2.0)
    assert t.earliest() == 2.0
    t.schedule_followup(in_flight=False, progressed=False, remote_poll=2.0)
    assert "followup" not in t


def test_grace_and_revisit_wake_for_the_earliest_time_still_ahead() -> None:
    wall = 1_700_000_000.0
    t = timers(mono=100.0, wall=wall)
    t.schedule_grace([wall - 100, wall - 20, wall - 5], grace=30.0)  # the first has run out already
    assert t.earliest() == pytest.approx(100.0 + 10 + SETTLE_MARGIN)
    t.schedule_grace([wall - 100], grace=30.0)
    assert "grace" not in t
    t.schedule_revisit(wall + 7)
    assert t.earliest() == pytest.approx(100.0 + 7 + SETTLE_MARGIN)
    t.schedule_revisit(wall - 1)
    assert "revisit" not in t


def test_settle_looks_only_at_folders_with_unknown_files(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "new.mp4").write_bytes(b"still being written")
    st = os.stat(folder / "new.mp4")
    changed = max(st.st_mtime, st.st_ctime)
    unsettled = LocalFile(folder, "new.mp4", st.st_size, st.st_mtime_ns, st.st_ino, settled=False,
                          changed=changed, settle=5.0)
    t = timers(mono=500.0, wall=changed)
    # A scan that knows every file's content (a complete one, kept by the engine) is not looked at.
    t.schedule_settle([FolderScan(folder, True, files=(unsettled,))], settle=5.0)
    assert "settle" not in t
    unknown = UnknownFile(folder, "new.mp4", st.st_size, st.st_ino, settling=True)
    t.schedule_settle([FolderScan(folder, True, files=(unsettled,), unknown=(unknown,))], settle=5.0)
    assert t.earliest() == pytest.approx(500.0 + 5.0 + SETTLE_MARGIN)
    # A path that changed after it had settled waits its own, longer settle time.
    longer = LocalFile(folder, "new.mp4", st.st_size, st.st_mtime_ns, st.st_ino, settled=False,
                       changed=changed, settle=10.0)
    t.schedule_settle([FolderScan(folder, True, files=(longer,), unknown=(unknown,))], settle=5.0)
    assert t.earliest() == pytest.approx(500.0 + 10.0 + SETTLE_MARGIN)


def test_sleep_returns_when_due_and_when_interrupted() -> None:
    clock = Clock(0.0)
    t = Timers(clock=clock)
    wake = threading.Event()
    asked: list[float] = []

    def next_due(now: float) -> float | None:
        asked.append(now)
        return 0.0

    t.sleep_until_due(wake, next_due, interrupted=lambda: False)  # due now: no wait at all
    assert asked == [0.0]
    t.sleep_until_due(wake, lambda now: None, interrupted=lambda: True)  # stopping: no wait
    waits: list[float | None] = []

    class Woken(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            clock.now = 4.0  # time passes while asleep
            return True

    t.sleep_until_due(Woken(), lambda now: 4.0, interrupted=lambda: False)
    assert waits == [4.0]
