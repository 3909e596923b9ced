"""When the daemon's worker wakes: its named one-shot timers, and the periodic rescan and
remote-poll timers that only *ask* it for a pass.

``Timers`` holds one due time (monotonic seconds) per name; the worker sleeps until the
earliest of them, a demand from a periodic timer, or a changed path falling due
(``watcher.Pending``). The ``schedule_*`` methods turn what a pass saw into the next
wake-up; each costs in proportion to what is still moving (unsettled files, vanished
files, videos in flight), not to the library, so an idle daemon over 100,000 files
wakes for its timers and nothing else.

Names: ``settle`` (an unsettled file could have settled), ``revisit`` (the plan said
time alone changes it), ``grace`` (a vanished file's ``delete_grace`` runs out),
``followup`` (videos processing remotely), ``retry`` (a pass failed), ``probe`` (the
remote went away: kept set until a probe succeeds), ``imports``, ``streams`` and ``mirror``
(the mirror's verification of every sidecar stopped between two slices for other work).
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable, Iterable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from syncd.config import ScheduleConfig
from syncd.models import FolderScan
from syncd.service.watcher import SETTLE_MARGIN

#: Timers that stay set when they fire (the remote-away probe: cleared when it succeeds).
STICKY = frozenset({"probe"})


class Timers:
    """Named wake-ups of the worker thread. Only the worker touches them."""

    def __init__(self, *, followup_start: float = 1.0, followup_cap: float = 30.0, max_settle_checks: int = 10_000,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.followup_start = followup_start  # videos processing remotely: poll after this...
        self.followup_cap = followup_cap  # ...growing 1.5x per idle pass up to this (and remote_poll)
        self.max_settle_checks = max_settle_checks  # unsettled files stat'ed after a pass to time the next one
        self.clock = clock  # monotonic: the due times
        self.wall = wall  # file times and plan times are wall-clock
        self._due: dict[str, float] = {}
        self._followup = followup_start

    # ------------------------------------------------------------- the table
    def set_due(self, name: str, due: float | None) -> None:
        """Wake at ``due`` (monotonic), or never for this name (None)."""
        if due is None:
            self._due.pop(name, None)
        else:
            self._due[name] = due

    def after(self, name: str, seconds: float) -> None:
        self.set_due(name, self.clock() + seconds)

    def cancel(self, name: str) -> None:
        self._due.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._due

    def earliest(self) -> float | None:
        return min(self._due.values(), default=None)

    def fire(self, now: float) -> set[str]:
        """The names due by ``now``; all but the sticky ones are cleared."""
        fired = {name for name, due in self._due.items() if due <= now}
        for name in fired - STICKY:
            del self._due[name]
        return fired

    # ------------------------------------------------- what a pass left behind
    def schedule_settle(self, scans: Iterable[FolderScan], settle: float) -> None:
        """Wake when the earliest unsettled file could have settled (an event may never come).
        Only folders with files of unknown content are looked at: a settled folder of
        100,000 files costs nothing here."""
        wall, mono = self.wall(), self.clock()
        earliest: float | None = None
        checked = 0
        for scan in scans:
            if not scan.unknown:  # every file settled and known (or an empty file at rest)
                continue
            for file in scan.files:
                if file.settled:
                    continue
                checked += 1
                if checked > self.max_settle_checks:
                    earliest = wall + settle + SETTLE_MARGIN
                    break
                try:
                    st = os.stat(file.path, follow_symlinks=False)
                except OSError:
                    continue
                # A path that changed after it had settled waits longer (file.settle).
                ready = max(st.st_mtime, st.st_ctime) + max(file.settle, settle) + SETTLE_MARGIN
                # Empty files never settle, and ready-but-unsettled means "changed while hashing";
                # waking for those would spin. A later write sends an event anyway.
                if st.st_size > 0 and ready > wall and (earliest is None or ready < earliest):
                    earliest = ready
        self.set_due("settle", None if earliest is None else mono + (earliest - wall))

    def schedule_revisit(self, at: float | None) -> None:
        """Wake when the plan said time alone changes it (a deletion's wait for unsettled
        files running out, a retry falling due), even if no event comes."""
        wall = self.wall()
        self.set_due("revisit", None if at is None or at <= wall else self.clock() + (at - wall) + SETTLE_MARGIN)

    def schedule_grace(self, missing_since: Iterable[float], grace: float) -> None:
        """Wake when a vanished file's delete_grace runs out, so its remote copy goes on time."""
        if grace <= 0:
            return
        wall = self.wall()
        due = min((r for since in missing_since if (r := since + grace + SETTLE_MARGIN) > wall), default=None)
        self.set_due("grace", None if due is None else self.clock() + (due - wall))

    def schedule_followup(self, in_flight: bool, progressed: bool, remote_poll: float) -> None:
        """While videos are uploading or processing remotely, poll again, slowing down while idle."""
        if not in_flight:
            self._followup = self.followup_start
            self.cancel("followup")
            return
        cap = max(self.followup_start, min(self.followup_cap, remote_poll))
        self._followup = self.followup_start if progressed else min(self._followup * 1.5, cap)
        self.after("followup", self._followup)

    # ------------------------------------------------------------------ sleep
    def sleep_until_due(self, wake: threading.Event, next_due: Callable[[float], float | None],
                        interrupted: Callable[[], bool]) -> None:
        """Block until ``next_due(now)`` (the earliest of these timers and the caller's own
        deadlines) has come, or ``interrupted()``. ``wake`` is set by whoever moves a
        deadline earlier (an event, a demand, a stop). No deadline at all: sleep until
        ``wake``; an idle daemon costs nothing between its timers."""
        while not interrupted():
            wake.clear()
            now = self.clock()
            due = next_due(now)
            if due is not None and due <= now:
                return
            wake.wait(None if due is None else due - now)


def rescan_trigger(schedule: ScheduleConfig) -> IntervalTrigger:
    """Every ``rescan``, starting half a poll interval (at most half a rescan) after a
    poll: the poll timer is added at the same moment. While ``rescan`` is a multiple of
    ``remote_poll`` (the defaults: 10m, 2m), every rescan then falls midway between two
    polls, and no minute pays for both the walk and the listing."""
    offset = min(schedule.remote_poll, schedule.rescan) / 2
    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=schedule.rescan + offset)
    return IntervalTrigger(seconds=schedule.rescan, start_date=start, timezone=datetime.UTC)


def start_periodic(schedule: ScheduleConfig, demand: Callable[[str], None],
                   watchdog: tuple[float, Callable[[], None]] | None = None) -> BackgroundScheduler:
    """The periodic timers (APScheduler, ``max_instances=1``, ``coalesce``): the rescan and
    the remote poll call ``demand("scan")`` / ``demand("poll")``; the worker does the work
    (one writer of the catalog). ``watchdog``: (interval, ping) for systemd's watchdog."""
    scheduler = BackgroundScheduler(
        timezone=datetime.UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        daemon=True,
    )
    scheduler.add_job(demand, rescan_trigger(schedule), args=["scan"], id="rescan")
    scheduler.add_job(demand, "interval", args=["poll"], id="remote-poll", seconds=schedule.remote_poll)
    if watchdog is not None:
        interval, ping = watchdog
        scheduler.add_job(ping, "interval", id="watchdog", seconds=interval,
                          next_run_time=datetime.datetime.now(datetime.UTC))
    scheduler.start()
    return scheduler


def reschedule_periodic(scheduler: BackgroundScheduler, schedule: ScheduleConfig) -> None:
    """A reload: the new rescan and poll intervals, phased as at start."""
    scheduler.reschedule_job("rescan", trigger=rescan_trigger(schedule))
    scheduler.reschedule_job("remote-poll", trigger="interval", seconds=schedule.remote_poll)
