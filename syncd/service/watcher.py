"""File events → "these paths changed; look again at time T". Never does sync work.

A watchdog observer (inotify on Linux) watches every folder recursively. Each
relevant event files its path in ``Pending`` with the earliest time a pass could
do something useful with it:

* a file created, written, closed after writing or moved in: ``settle_seconds``
  later, because the scan will not take it before it has held still that long
  (a rename changes ctime, which the settle clock counts too);
* a file or directory deleted, a directory created or moved: ``debounce`` later.

A path touched again is re-filed under its latest event, so a file written
slowly over minutes costs no pass until it stops changing. The pass walks only
the paths named (and those still pending). ``Pending`` is bounded: past
``max_paths`` it stops remembering names and keeps only the latest due time,
and the pass then walks whole folders, so it still sees everything. Events syncd causes itself (reading a file to hash it) are not
subscribed to at all.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from syncd.config import FolderConfig
from syncd.models import MARKER_FILE, TRASH_DIR

log = logging.getLogger("syncd.service.watcher")

# No opened / closed-without-write / attribute events: hashing reads every new file,
# and those would wake the daemon for its own reads.
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent,
    DirCreatedEvent, DirMovedEvent, DirDeletedEvent,
]
SETTLE_MARGIN = 0.05  # seconds past the settle time, so the scan surely sees the file as settled


@dataclass(frozen=True)
class Taken:
    """Changed paths a pass takes: by name, plus how many past ``max_paths`` were not kept."""

    paths: tuple[str, ...] = ()
    unnamed: int = 0

    @property
    def count(self) -> int:
        return len(self.paths) + self.unnamed

    def __bool__(self) -> bool:
        return self.count > 0

    def folders(self, folders: Iterable[Path]) -> frozenset[Path] | None:
        """The folders these paths are in (a path may be in nested folders), or None when
        some paths are not known by name: any folder may have changed."""
        if self.unnamed:
            return None
        roots = [(folder, str(folder)) for folder in folders]
        return frozenset(folder for folder, root in roots
                         if any(p == root or p.startswith(root.rstrip(os.sep) + os.sep) for p in self.paths))


class Pending:
    """Paths waiting for a pass, each with a due time (monotonic seconds). Thread-safe.

    Two queues, one per delay: within each, due times only grow in insertion order
    (an event's time plus a constant), so the earliest is always first: O(1).
    """

    def __init__(self, settle: float, debounce: float, max_paths: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settle = settle
        self.debounce = debounce
        self.max_paths = max_paths
        self.clock = clock
        self.wake = threading.Event()  # set when the earliest due time moves earlier
        self._lock = threading.Lock()
        self._queues: tuple[OrderedDict[str, float], OrderedDict[str, float]] = (OrderedDict(), OrderedDict())
        self._overflow: float | None = None  # latest due time of paths not remembered by name
        self._overflowed = 0

    def touch(self, path: str, *, settling: bool) -> None:
        """``path`` changed now; a pass is due once it could have settled (or at once, debounced)."""
        now = self.clock()
        due = now + (self.settle + SETTLE_MARGIN if settling else self.debounce)
        mine, other = self._queues if settling else self._queues[::-1]
        with self._lock:
            before = self._earliest()
            other.pop(path, None)
            if path in mine:
                mine.move_to_end(path)
                mine[path] = due
            elif len(mine) + len(other) < self.max_paths:
                mine[path] = due
            else:
                if not self._overflowed:
                    log.info("more than %d changed paths pending; tracking them as one batch", self.max_paths)
                self._overflowed += 1
                self._overflow = due if self._overflow is None else max(self._overflow, due)
            if before is None or due < before:
                self.wake.set()

    def _earliest(self) -> float | None:
        firsts = [next(iter(q.values())) for q in self._queues if q]
        if self._overflow is not None:
            firsts.append(self._overflow)
        return min(firsts) if firsts else None

    def next_due(self) -> float | None:
        with self._lock:
            return self._earliest()

    def take(self, now: float | None = None) -> int:
        """Forget every path due by ``now``; return how many."""
        return self.take_paths(now).count

    def take_paths(self, now: float | None = None) -> Taken:
        """Forget every path due by ``now``; return them (the pass walks only their folders)."""
        now = self.clock() if now is None else now
        paths: list[str] = []
        overflowed = 0
        with self._lock:
            for queue in self._queues:
                while queue and next(iter(queue.values())) <= now:
                    paths.append(queue.popitem(last=False)[0])
            if self._overflow is not None and self._overflow <= now:
                overflowed = self._overflowed
                self._overflow, self._overflowed = None, 0
        return Taken(tuple(paths), overflowed)

    def waiting(self) -> Taken:
        """Every path still pending (not taken), and how many past ``max_paths`` are not
        kept by name. A pass that walks only the changed paths walks these too: a file
        still being written there is then seen as unknown, and holds back the deletion
        of a content it may hold (a copy made before the original is deleted)."""
        with self._lock:
            return Taken(tuple(p for queue in self._queues for p in queue), self._overflowed)

    def clear(self) -> None:
        with self._lock:
            for queue in self._queues:
                queue.clear()
            self._overflow, self._overflowed = None, 0

    @property
    def depth(self) -> int:
        with self._lock:
            return len(self._queues[0]) + len(self._queues[1]) + self._overflowed


@dataclass(frozen=True)
class _Rules:
    """Which names can matter to a scan of one folder: scan.py's rules, loosely."""

    folder: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    def relevant(self, path: str, is_dir: bool) -> bool:
        if path == self.folder:
            return True  # the folder itself vanished or came back
        rel = os.path.relpath(path, self.folder)
        if rel.startswith(".."):
            return False
        parts = rel.split(os.sep)
        if parts[-1] == MARKER_FILE and len(parts) == 1:
            return True  # require_marker: the marker decides whether the folder is synced
        for name in parts:
            lowered = name.lower()
            if name == TRASH_DIR or name.startswith(".") or any(fnmatch.fnmatchcase(lowered, p) for p in self.exclude):
                return False
        return is_dir or any(fnmatch.fnmatchcase(parts[-1].lower(), p) for p in self.include)


class _Handler(FileSystemEventHandler):
    def __init__(self, rules: _Rules, pending: Pending) -> None:
        self.rules = rules
        self.pending = pending

    def on_any_event(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        if event.event_type == "moved":
            # Where it went needs settling (rename sets ctime); where it came from is a
            # deletion. Both are named: a pass may walk only the paths that changed.
            if dest and self.rules.relevant(dest, event.is_directory):
                self.pending.touch(dest, settling=not event.is_directory)
            if self.rules.relevant(src, event.is_directory):
                self.pending.touch(src, settling=False)
            return
        if not self.rules.relevant(src, event.is_directory):
            return
        settling = not event.is_directory and event.event_type in ("created", "modified", "closed")
        self.pending.touch(src, settling=settling)


@dataclass
class _Watch:
    watch: ObservedWatch
    identity: tuple[int, int]  # (st_dev, st_ino) when scheduled: a remount is a new folder
    rules: _Rules  # a reload that changes include/exclude re-schedules the watch


@dataclass
class Watcher:
    """One watchdog observer over every folder; files events into ``pending``."""

    pending: Pending
    _observer: BaseObserver = field(default_factory=Observer)
    _watches: dict[Path, _Watch] = field(default_factory=dict)
    _warned: set[Path] = field(default_factory=set)

    def start(self, folders: Sequence[FolderConfig]) -> None:
        self._observer.daemon = True
        self._observer.start()
        self.ensure(folders)

    def ensure(self, folders: Sequence[FolderConfig]) -> frozenset[Path]:
        """Watch every folder that exists now; drop watches of folders gone or no longer
        configured. Returns the folders watched from now on: what happened in them
        before was seen by no watch, so they must be walked again.

        Called before every pass, so a disk mounted later gets watched (until then the
        periodic rescan covers it, and the scan's folder guard reports it).
        """
        wanted = {f.path: _Rules(str(f.path), tuple(p.lower() for p in f.include), tuple(p.lower() for p in f.exclude))
                  for f in folders}
        live = self._live()
        for path in list(self._watches):
            entry = self._watches[path]
            # A watch also dies with its directory (deleted and made again: maybe the same inode).
            if wanted.get(path) != entry.rules or _identity(path) != entry.identity or entry.watch not in live:
                self._unschedule(path)
        fresh: set[Path] = set()
        for path, rules in wanted.items():
            if path in self._watches:
                continue
            identity = _identity(path)
            if identity is None:
                continue
            try:
                watch = self._observer.schedule(_Handler(rules, self.pending), str(path), recursive=True,
                                                event_filter=EVENTS)
            except OSError as exc:
                if path not in self._warned:
                    self._warned.add(path)
                    hint = " (raise fs.inotify.max_user_watches)" if exc.errno == 28 else ""
                    log.warning("cannot watch %s: %s%s; relying on the periodic rescan", path,
                                exc.strerror or exc, hint)
                continue
            self._warned.discard(path)
            self._watches[path] = _Watch(watch, identity, rules)
            fresh.add(path)
            log.debug("watching %s", path)
        return frozenset(fresh)

    def _unschedule(self, path: Path) -> None:
        entry = self._watches.pop(path)
        try:
            self._observer.unschedule(entry.watch)
        except (KeyError, OSError):
            pass  # its inotify watch died with the unmount

    @property
    def watched(self) -> list[Path]:
        return sorted(self._watches)

    def intact(self) -> frozenset[Path]:
        """Folders whose watch is live and still on the same directory (no remount since):
        for these, no event means nothing changed, up to events the kernel dropped,
        which the periodic rescan catches."""
        live = self._live()
        return frozenset(
            path for path, entry in self._watches.items()
            if entry.watch in live and _identity(path) == entry.identity
        )

    def _live(self) -> set[ObservedWatch]:
        if not self._observer.is_alive():
            return set()
        return {e.watch for e in self._observer.emitters if e.is_alive()}

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
