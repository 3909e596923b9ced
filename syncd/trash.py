"""The per-folder trash: ``<folder>/.syncd-trash/<relative path>``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from syncd.models import TRASH_DIR


@dataclass(frozen=True)
class TrashEntry:
    folder: Path
    path: Path
    size: int
    trashed_at: float  # ctime: a rename into the trash updates it


def list_trash(folders: list[Path]) -> list[TrashEntry]:
    entries: list[TrashEntry] = []
    for folder in folders:
        root = folder / TRASH_DIR
        if not root.is_dir():
            continue
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                entries.append(TrashEntry(folder, path, st.st_size, st.st_ctime))
    return sorted(entries, key=lambda e: e.trashed_at)


def empty_trash(folders: list[Path], older_than: float, now: float) -> list[TrashEntry]:
    """Delete trashed files older than ``older_than`` seconds; prune empty directories."""
    removed = []
    for entry in list_trash(folders):
        if now - entry.trashed_at >= older_than:
            entry.path.unlink(missing_ok=True)
            removed.append(entry)
    for folder in folders:
        root = folder / TRASH_DIR
        for dirpath, _dirs, _names in sorted(os.walk(root), key=lambda w: -len(w[0])):
            if Path(dirpath) != root:
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
    return removed
