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
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from syncd.folders import folder_problem
from syncd.models import MARKER_FILE, TRASH_DIR, FolderScan, LocalFile, RecordedFile


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


@dataclass(frozen=True)
class ScanRules:
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    settle_seconds: float
    require_marker: bool = False
    # Each glob list as one compiled regex: a rescan tests every name of a large tree.
    _include: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _exclude: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", _compile(self.include))
        object.__setattr__(self, "_exclude", _compile(self.exclude))

    def included(self, name: str) -> bool:
        return self._include.match(name.lower()) is not None

    def excluded(self, name: str) -> bool:
        return self._exclude.match(name.lower()) is not None


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """Case-insensitive globs (cameras write ``.MP4``) as one regex; none matches nothing."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{fnmatch.translate(p.lower())})" for p in patterns))


def scan_folder(folder: Path, rules: ScanRules, now: float,
                settle_for: Mapping[str, float] | None = None) -> FolderScan:
    """Every included file of ``folder``; ``settle_for``: longer settle times by relative path."""
    return _walk(folder, rules, now, settle_for or {}, None)


def scan_changes(folder: Path, rules: ScanRules, now: float, settle_for: Mapping[str, float],
                 known: Mapping[str, RecordedFile]) -> FolderScan:
    """``scan_folder`` against what the catalog records (``known``, by relative path): a
    file found exactly as recorded (hashed, present, same size, mtime and inode) is only
    named in ``FolderScan.as_recorded``; ``files`` holds the others (new, changed, back
    after vanishing, unsettled, empty). A rescan of a million unchanged files then builds
    no object per file, only compares the ``stat`` with the recorded tuple."""
    return _walk(folder, rules, now, settle_for, known)


def _walk(folder: Path, rules: ScanRules, now: float, longer: Mapping[str, float],
          known: Mapping[str, RecordedFile] | None) -> FolderScan:
    problem = folder_problem(folder, rules.require_marker)
    if problem:
        return FolderScan(folder, ok=False, error=problem)
    files: list[LocalFile] = []
    same: list[str] = []  # with ``known``: paths found as recorded
    skipped: list[str] = []
    # Plain strings, not Path objects, on the way down: a rescan visits every file.
    stack = [""]  # relative directories, POSIX, "" for the folder itself
    unreadable: list[str] = []
    # ``ScanRules.excluded`` / ``included`` without a call each: a rescan tests every name.
    excluded, included = rules._exclude.match, rules._include.match
    while stack:
        rel_dir = stack.pop()
        prefix = f"{rel_dir}/" if rel_dir else ""
        try:
            entries = list(os.scandir(os.path.join(folder, rel_dir)))
        except OSError as exc:
            if not rel_dir:
                return FolderScan(folder, ok=False, error=f"{folder}: cannot list: {exc.strerror or exc}")
            unreadable.append(rel_dir)
            continue
        for entry in entries:
            name = entry.name
            if not name.isascii() and not _is_utf8(name):
                shown = os.fsencode(os.path.join(folder, rel_dir, name)).decode(errors="replace")
                skipped.append(f"{shown}: skipped: its name is not valid UTF-8 (rename it to sync it)")
                continue
            if name == TRASH_DIR or name == MARKER_FILE or name.startswith("."):
                continue
            lower = name.lower()
            if excluded(lower):
                continue
            try:
                # Without following links: a symlink is neither, and is never followed.
                if entry.is_file(follow_symlinks=False):
                    if not included(lower):
                        continue
                    st = entry.stat(follow_symlinks=False)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(prefix + name)
                    continue
                else:
                    continue  # a symlink, a socket, a device
            except FileNotFoundError:
                continue  # vanished between listing and stat
            except OSError as exc:
                return FolderScan(folder, ok=False, error=f"{folder / rel_dir / name}: {exc.strerror or exc}")
            rel_path = prefix + name
            if known is not None:
                record = known.get(rel_path)
                if (record is not None and record[3] and record[4] and record[0] == st.st_size
                        and record[1] == st.st_mtime_ns and record[2] == st.st_ino):
                    same.append(rel_path)
                    continue
            changed = max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
            settle = longer.get(rel_path, rules.settle_seconds) if longer else rules.settle_seconds
            settled = st.st_size > 0 and now - changed >= settle
            files.append(LocalFile(folder, rel_path, st.st_size, st.st_mtime_ns, st.st_ino, settled, changed, settle))
    files.sort(key=lambda f: f.rel_path)
    return FolderScan(folder, ok=True, files=tuple(files), skipped=tuple(skipped),
                      unreadable=tuple(sorted(unreadable)), as_recorded=tuple(same))


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
