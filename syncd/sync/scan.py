"""Walk a watched folder into LocalFile records (stat only, never reads content).

Rules:
* include globs match the file name case-insensitively (cameras write ``.MP4``);
  exclude globs match the name of every file and directory on the way down;
* symlinks are never followed (nothing outside the folder is ever read);
* the trash folder and hidden entries are skipped;
* a file is *settled* once it has not changed for ``settle_seconds`` (or the
  longer time ``settle_for`` gives a path that changed after it had settled);
  the change clock is max(mtime, ctime), so a copy that preserves an old mtime
  still waits. Settling only decides when a file's content is read: a file not
  settled yet is never taken for a deleted one (see the planner);
* a subdirectory that cannot be read is reported in ``unreadable``: the files
  elsewhere in the folder still count (and upload), but the engine and planner
  take nothing in that folder for deleted while it lasts.

The walk yields paths in the catalog's order, so ``scan_changes`` merges it with the
folder's rows read in that order: nothing is held per unchanged file.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from syncd.folders import folder_problem
from syncd.models import MARKER_FILE, TRASH_DIR, FolderScan, LocalFile, RecordedFile, RecordedRow


@dataclass
class ScanProgress:
    """Counters of one observe (every folder), for a progress display: handed to the
    engine's ``on_progress`` after each walk and each hashed file. A first pass over a
    million files spends most of its time between those calls."""

    files_seen: int = 0  # files the walks found
    to_hash: int = 0  # of them new or changed since recorded
    bytes_to_hash: int = 0
    hashed: int = 0
    bytes_hashed: int = 0
    # A first pass (nothing recorded in any folder it walks): the non-empty files and their
    # bytes of the whole walk, counted ahead of it (``count_files``), once known; all of
    # them are to hash. None: unknown (the ETA then covers the files found so far).
    total: tuple[int, int] | None = None


def count_files(folders: Iterable[tuple[Path, ScanRules]], should_stop: Callable[[], bool] = lambda: False
                ) -> tuple[int, int] | None:
    """The non-empty files the walks of ``folders`` would find, and their bytes: a bare
    ``scandir`` and ``lstat`` under the same rules, no sorting, nothing kept but the
    directories still to list (a first pass's ETA over the whole tree, ~1 % of its cost).
    None if stopped; unreadable directories are left out."""
    files = size = 0
    for folder, rules in folders:
        if folder_problem(folder, rules.require_marker) is not None:
            continue  # its walk fails alike (not mounted, say): nothing to hash there
        pending = [str(folder)]
        while pending:
            if should_stop():
                return None
            for entry in _entries(pending.pop()):
                if not _name_kept(entry.name, rules):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False) and rules.included(entry.name):
                        bytes_ = entry.stat(follow_symlinks=False).st_size
                        files, size = files + (bytes_ > 0), size + bytes_
                except OSError:
                    continue  # vanished between listing and looking
    return files, size


def _entries(path: str) -> Iterator[os.DirEntry[str]]:
    """A directory's entries as listed; none (or no more) if it cannot be read."""
    try:
        with os.scandir(path) as it:
            yield from it
    except OSError:
        return


@dataclass(frozen=True)
class ScanRules:
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    settle_seconds: float
    require_marker: bool = False
    # Each glob list compiled once: a rescan tests every name of a large tree.
    _include: _Globs = field(init=False, repr=False, compare=False)
    _exclude: _Globs = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", _Globs.of(self.include))
        object.__setattr__(self, "_exclude", _Globs.of(self.exclude))

    def included(self, name: str) -> bool:
        return self._include.match(name.lower())

    def excluded(self, name: str) -> bool:
        return self._exclude.match(name.lower())


@dataclass(frozen=True)
class _Globs:
    """Case-insensitive globs (cameras write ``.MP4``), matched against a lower-cased name.
    The usual ones (``*.mp4``, ``.*``, ``Thumbs.db``) are string tests, several times
    cheaper than a regex; the rest are one regex."""

    suffixes: tuple[str, ...] = ()  # "*.mp4"
    prefixes: tuple[str, ...] = ()  # ".*"
    exact: frozenset[str] = frozenset()  # "thumbs.db"
    rest: re.Pattern[str] | None = None

    @classmethod
    def of(cls, patterns: tuple[str, ...]) -> _Globs:
        suffixes, prefixes, exact, rest = [], [], [], []
        for pattern in (p.lower() for p in patterns):
            body = pattern.strip("*")
            if any(c in body for c in "*?[") or pattern.count("*") > 1:
                rest.append(pattern)
            elif pattern.startswith("*"):
                suffixes.append(body)
            elif pattern.endswith("*"):
                prefixes.append(body)
            else:
                exact.append(pattern)
        regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in rest)) if rest else None
        return cls(tuple(suffixes), tuple(prefixes), frozenset(exact), regex)

    def match(self, lower: str) -> bool:
        return (lower.endswith(self.suffixes) or lower.startswith(self.prefixes) or lower in self.exact
                or (self.rest is not None and self.rest.match(lower) is not None))


def scan_folder(folder: Path, rules: ScanRules, now: float,
                settle_for: Mapping[str, float] | None = None) -> FolderScan:
    """Every included file of ``folder``; ``settle_for``: longer settle times by relative path."""
    return _walk(folder, rules, now, settle_for or {}, (), None)


# Handed a batch of a walk's files (and the rows of those that have one); returns those
# of them the scan keeps in ``FolderScan.files`` (the engine: the ones it did not record).
BatchSink = Callable[[list[LocalFile], dict[str, RecordedFile]], list[LocalFile]]


def scan_changes(folder: Path, rules: ScanRules, now: float, settle_for: Mapping[str, float],
                 rows: Iterable[RecordedRow], target: str | None = None,
                 on_batch: BatchSink | None = None, batch: int = 0) -> FolderScan:
    """``scan_folder`` merged with what the catalog records: ``rows`` are the folder's
    (``rel_path``, size, mtime_ns, inode, sha256, present) in ``rel_path`` order, the order
    this walk yields paths in. A file found exactly as recorded (hashed, present, same
    size, mtime and inode) is only counted (``FolderScan.as_recorded``); ``files`` holds
    the others (new, changed, back after vanishing, unsettled, empty), with their rows in
    ``recorded``; present rows the walk did not meet are ``missing`` (those under an
    unreadable subdirectory excepted). A rescan of a million unchanged files thus holds
    no object per file, and compares each ``stat`` with one row.

    ``target``: walk only this relative path (a file, a directory's subtree, or a path
    gone), with the rows of that path and below it only; its parent directories must be
    real ones the rules walk into (see ``target_walkable``).

    ``on_batch``: every ``batch`` files for ``files`` are handed on as the walk goes, and
    the rest at its end (a first pass over a million new files holds a batch, not the
    tree); ``files`` and ``recorded`` then hold only what it returned. The sink may
    write the catalog: ``rows`` must then be read by key (``Catalog.recorded_in_order``),
    since every path it writes is behind the rows already read."""
    return _walk(folder, rules, now, settle_for, rows, target, on_batch, batch)


# A directory entry the walk keeps: (sort key, is a directory, the entry). Sorted by key,
# the walk yields paths in the order SQLite's BINARY collation sorts them (UTF-8 bytes,
# which is Python's ``str`` order for valid UTF-8): a directory sorts as its name plus
# ``/`` (after ``a.b`` and ``a-b``, before ``a0``), so its subtree comes out exactly where
# its paths belong. Plain tuples: a rescan makes one per file.
_Entry = tuple[str, bool, "os.DirEntry[str] | _TargetEntry"]


class _TargetEntry:
    """An ``os.DirEntry`` look-alike for a walk's single target file."""

    def __init__(self, path: str, name: str) -> None:
        self.path, self.name = path, name

    def stat(self, *, follow_symlinks: bool = False) -> os.stat_result:
        return os.lstat(self.path)


def _walk(folder: Path, rules: ScanRules, now: float, longer: Mapping[str, float],
          rows: Iterable[RecordedRow], target: str | None,
          on_batch: BatchSink | None = None, batch: int = 0) -> FolderScan:
    problem = folder_problem(folder, rules.require_marker)
    if problem:
        return FolderScan(folder, ok=False, error=problem)
    files: list[LocalFile] = []
    recorded: dict[str, RecordedFile] = {}  # the rows of ``files`` that have one
    kept: list[LocalFile] = []  # of the batches handed on, what ``on_batch`` kept
    kept_recorded: dict[str, RecordedFile] = {}
    missing: list[str] = []
    same = 0  # files found as recorded
    skipped: list[str] = []
    unreadable: list[str] = []
    # The rules' string tests without a call each: a rescan tests every name.
    ex, inc = rules._exclude, rules._include
    ex_suffixes, ex_prefixes, ex_exact, ex_rest = ex.suffixes, ex.prefixes, ex.exact, ex.rest
    in_suffixes, in_prefixes, in_exact, in_rest = inc.suffixes, inc.prefixes, inc.exact, inc.rest
    root = str(folder)

    def listing(rel_dir: str) -> list[_Entry]:
        """A directory's entries the rules keep, sorted (raises OSError if unreadable)."""
        kept: list[_Entry] = []
        with os.scandir(os.path.join(root, rel_dir)) as it:
            for entry in it:
                name = entry.name
                if not name.isascii() and not _is_utf8(name):
                    shown = os.fsencode(os.path.join(root, rel_dir, name)).decode(errors="replace")
                    skipped.append(f"{shown}: skipped: its name is not valid UTF-8 (rename it to sync it)")
                    continue
                if name == TRASH_DIR or name == MARKER_FILE or name[0] == ".":
                    continue
                lower = name.lower()
                if (lower.endswith(ex_suffixes) or lower.startswith(ex_prefixes) or lower in ex_exact
                        or (ex_rest is not None and ex_rest.match(lower))):
                    continue
                try:
                    # Without following links: a symlink is neither, and is never followed.
                    if entry.is_file(follow_symlinks=False):
                        if (lower.endswith(in_suffixes) or lower.startswith(in_prefixes) or lower in in_exact
                                or (in_rest is not None and in_rest.match(lower))):
                            kept.append((name, False, entry))
                    elif entry.is_dir(follow_symlinks=False):
                        kept.append((name + "/", True, entry))
                except OSError:
                    continue  # vanished between listing and looking
        kept.sort()
        return kept

    # Plain strings, not Path objects, on the way down: a rescan visits every file.
    if target is None:
        try:
            top = listing("")
        except OSError as exc:
            return FolderScan(folder, ok=False, error=f"{folder}: cannot list: {exc.strerror or exc}")
        stack: list[tuple[str, Iterator[_Entry]]] = [("", iter(top))]
    else:
        parent, _, name = target.rpartition("/")
        stack = [(f"{parent}/" if parent else "", iter(_target_entry(root, target, name, rules)))]
    recorded_rows = iter(rows)
    row = next(recorded_rows, None)
    while stack:
        prefix, entries = stack[-1]
        for key, is_dir, entry in entries:
            if is_dir:
                rel_dir = prefix + entry.name
                try:
                    stack.append((rel_dir + "/", iter(listing(rel_dir))))
                except OSError:
                    unreadable.append(rel_dir)
                    # Rows under it stay as recorded; the ones before it were not met.
                    below = rel_dir + "/"
                    while row is not None and row[0] < below:
                        if row[5]:
                            missing.append(row[0])
                        row = next(recorded_rows, None)
                    while row is not None and row[0].startswith(below):
                        row = next(recorded_rows, None)
                    continue
                break  # into it: its paths come before this directory's next entry
            rel_path = prefix + key
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished between listing and stat
            except OSError as exc:
                return FolderScan(folder, ok=False, error=f"{folder / rel_path}: {exc.strerror or exc}")
            while row is not None and row[0] < rel_path:  # recorded, not met: gone
                if row[5]:
                    missing.append(row[0])
                row = next(recorded_rows, None)
            if row is not None and row[0] == rel_path:
                record, row = row, next(recorded_rows, None)
                if (record[4] and record[5] and record[1] == st.st_size and record[2] == st.st_mtime_ns
                        and record[3] == st.st_ino):
                    same += 1
                    continue
                recorded[rel_path] = RecordedFile._make(record[1:])
            changed = max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
            settle = longer.get(rel_path, rules.settle_seconds) if longer else rules.settle_seconds
            settled = st.st_size > 0 and now - changed >= settle
            files.append(LocalFile(folder, rel_path, st.st_size, st.st_mtime_ns, st.st_ino, settled, changed, settle))
            if on_batch is not None and len(files) >= batch:
                _hand_on(on_batch, files, recorded, kept, kept_recorded)
                files, recorded = [], {}
        else:
            stack.pop()
    while row is not None:
        if row[5]:
            missing.append(row[0])
        row = next(recorded_rows, None)
    if on_batch is not None:
        if files:
            _hand_on(on_batch, files, recorded, kept, kept_recorded)
        files, recorded = kept, kept_recorded
    return FolderScan(folder, ok=True, files=tuple(files), skipped=tuple(skipped),
                      unreadable=tuple(sorted(unreadable)), as_recorded=same, recorded=recorded, missing=tuple(missing))


def _hand_on(on_batch: BatchSink, files: list[LocalFile], recorded: dict[str, RecordedFile],
             kept: list[LocalFile], kept_recorded: dict[str, RecordedFile]) -> None:
    """One batch to ``on_batch``; what it returns (and those files' rows) is kept."""
    for local in on_batch(files, recorded):
        kept.append(local)
        if local.rel_path in recorded:
            kept_recorded[local.rel_path] = recorded[local.rel_path]


def _target_entry(root: str, target: str, name: str, rules: ScanRules) -> list[_Entry]:
    """The walk's start for one target path: the file or directory there, if the rules
    keep it; none if it is gone (its rows are then missing)."""
    path = os.path.join(root, target)
    try:
        st = os.lstat(path)
    except OSError:
        return []
    lower = name.lower()
    if not _name_kept(name, rules):
        return []
    if stat.S_ISDIR(st.st_mode):
        return [(name + "/", True, _TargetEntry(path, name))]
    if stat.S_ISREG(st.st_mode) and rules._include.match(lower):
        return [(name, False, _TargetEntry(path, name))]
    return []


def _name_kept(name: str, rules: ScanRules) -> bool:
    """The walk's name rules for one name (valid UTF-8, not hidden, not the trash or the
    marker, not excluded)."""
    return (bool(name) and (name.isascii() or _is_utf8(name)) and name not in (TRASH_DIR, MARKER_FILE)
            and not name.startswith(".") and not rules.excluded(name))


def target_walkable(folder: Path, target: str, rules: ScanRules) -> bool:
    """Whether ``target`` (a relative POSIX path) can be walked on its own: every directory
    above it is one the full walk would go into (a real directory, not a symlink, its name
    kept by the rules). If not, the caller walks the whole folder."""
    parts = target.split("/")
    if not target or any(p in ("", ".", "..") for p in parts):
        return False
    path = str(folder)
    for name in parts[:-1]:
        path = os.path.join(path, name)
        if not _name_kept(name, rules):
            return False
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        except OSError:
            return False
    return True


def unreadable_problem(scan: FolderScan) -> str | None:
    """The one line for a scan's unreadable subdirectories, or None."""
    if not scan.unreadable:
        return None
    shown = ", ".join(str(scan.folder / d) for d in scan.unreadable[:3])
    more = f" and {len(scan.unreadable) - 3} more" if len(scan.unreadable) > 3 else ""
    return (f"{scan.folder}: cannot read {shown}{more}; the rest of the folder syncs, "
            "but nothing in it is treated as deleted until it can be read")


def _is_utf8(name: str) -> bool:
    """False for a name with bytes undecodable as UTF-8 (Python carries them as lone
    surrogates): the catalog, the remote and JSON could not hold it."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True
