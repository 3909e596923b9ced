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
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from syncd.folders import folder_problem
from syncd.models import MARKER_FILE, TRASH_DIR, FolderScan, LocalFile


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
    longer = settle_for or {}
    problem = folder_problem(folder, rules.require_marker)
    if problem:
        return FolderScan(folder, ok=False, error=problem)
    files: list[LocalFile] = []
    skipped: list[str] = []
    # Plain strings, not Path objects, on the way down: a rescan visits every file.
    stack = [""]  # relative directories, POSIX, "" for the folder itself
    unreadable: list[str] = []
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
            if not _is_utf8(name):
                shown = os.fsencode(os.path.join(folder, rel_dir, name)).decode(errors="replace")
                skipped.append(f"{shown}: skipped: its name is not valid UTF-8 (rename it to sync it)")
                continue
            if name == TRASH_DIR or name == MARKER_FILE or name.startswith(".") or rules.excluded(name):
                continue
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(prefix + name)
                    continue
                if not entry.is_file(follow_symlinks=False) or not rules.included(name):
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished between listing and stat
            except OSError as exc:
                return FolderScan(folder, ok=False, error=f"{folder / rel_dir / name}: {exc.strerror or exc}")
            rel_path = prefix + name
            changed = max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
            settle = longer.get(rel_path, rules.settle_seconds) if longer else rules.settle_seconds
            settled = st.st_size > 0 and now - changed >= settle
            files.append(LocalFile(folder, rel_path, st.st_size, st.st_mtime_ns, st.st_ino, settled, changed, settle))
    files.sort(key=lambda f: f.rel_path)
    return FolderScan(folder, ok=True, files=tuple(files), skipped=tuple(skipped), unreadable=tuple(sorted(unreadable)))


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
