"""What the engine tells a progress display, as a small interface.

The engine and executor call these methods; they never draw anything. The CLI
plugs in a display (``syncd.cli.console``: a live bar on a terminal, plain periodic
lines otherwise); the daemon and the tests use ``NullProgress``. Calls may come
from upload worker threads, so a display must be thread-safe.

Order within a pass: ``scanning`` as the walks and the hashing of new files go
(a first pass over a large tree spends most of its time there), ``phase`` for the steps before uploading, ``uploads_planned`` once (every upload of the pass, with its
size), then per file ``file_started`` → ``file_bytes``… → ``file_finished``; while
``sync --wait`` waits for the remote, ``waiting`` with the files not yet done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from syncd.units import format_duration, format_size

if TYPE_CHECKING:
    from syncd.sync.scan import ScanProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Waiting:
    """One file ``sync --wait`` is waiting on: its path, what it waits for in plain
    words (``report.STATE_WORDS``), and how far along that step is, if known."""

    path: str
    doing: str
    percent: float | None = None


class SyncProgress(Protocol):
    def uploads_planned(self, files: Sequence[tuple[str, int]]) -> None:
        """This pass will upload these (path, size) files."""

    def file_started(self, path: str, size: int) -> None:
        """An upload of ``path`` (``size`` bytes) begins."""

    def file_bytes(self, path: str, n: int) -> None:
        """``n`` more bytes of ``path`` reached the remote."""

    def file_finished(self, path: str, ok: bool) -> None:
        """The upload of ``path`` ended: registered (``ok``) or not."""

    def waiting(self, files: Sequence[Waiting]) -> None:
        """Between passes: every upload is done; these files are still in progress remotely."""

    def phase(self, text: str) -> None:
        """What the pass is busy with before any upload, in words ("hashing 12 new file(s)")."""

    def scanning(self, counts: ScanProgress) -> None:
        """The walks and the hashing so far (called after each folder's walk and each hashed file)."""


class NullProgress:
    """Shows nothing: the daemon, the tests, ``sync -q``."""

    def uploads_planned(self, files: Sequence[tuple[str, int]]) -> None:
        pass

    def file_started(self, path: str, size: int) -> None:
        pass

    def file_bytes(self, path: str, n: int) -> None:
        pass

    def file_finished(self, path: str, ok: bool) -> None:
        pass

    def waiting(self, files: Sequence[Waiting]) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def scanning(self, counts: ScanProgress) -> None:
        pass


class ScanMeter:
    """Rate and time left of one observe's hashing, in one line of words. Fed every
    update; the rate counts from the first update with something to hash, so the walks
    before it do not dilute it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.hashing_since: float | None = None

    def update(self, counts: ScanProgress) -> None:
        if self.hashing_since is None and counts.to_hash:
            self.hashing_since = self.clock()

    def line(self, counts: ScanProgress) -> str:
        seen = f"{counts.files_seen:,} file(s) seen"
        if counts.to_hash == 0:
            return f"scanning: {seen}"
        elapsed = 0.0 if self.hashing_since is None else self.clock() - self.hashing_since
        rate = counts.bytes_hashed / elapsed if elapsed > 0 else 0.0
        files, size = hash_totals(counts)  # a first pass's whole tree, once counted
        left = size - counts.bytes_hashed
        eta = f", about {format_duration(max(1, round(left / rate)))} left" if rate > 0 and left > 0 else ""
        return (f"scanning: {seen}; hashed {counts.hashed:,} of {files:,} new or changed, "
                f"{format_size(counts.bytes_hashed)} of {format_size(size)}, "
                f"{format_size(int(rate))}/s{eta}")


def hash_totals(counts: ScanProgress) -> tuple[int, int]:
    """The files and bytes to hash in all, as far as known: a first pass's counted total
    (``ScanProgress.total``) once it is in, else what the walks found so far."""
    if counts.total is not None:
        files, size = counts.total
        return max(files, counts.to_hash), max(size, counts.bytes_to_hash)
    return counts.to_hash, counts.bytes_to_hash


class ScanLog:
    """The daemon's progress of a long scan (its first pass over a large tree): a log
    line at most once per ``interval``, the first after one interval, so short passes
    say nothing. Under journald this is the only progress there is. Each observe hands
    over a fresh ``ScanProgress``: a new one starts the count again."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.meter = ScanMeter(clock)
        self._counts: ScanProgress | None = None
        self._last = 0.0

    def __call__(self, counts: ScanProgress) -> None:
        now = self.clock()
        if counts is not self._counts:  # another pass
            self._counts, self._last, self.meter = counts, now, ScanMeter(self.clock)
        self.meter.update(counts)
        if now - self._last >= self.interval:
            self._last = now
            log.info("%s", self.meter.line(counts))
