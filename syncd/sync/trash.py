"""The per-folder trash: ``<folder>/.syncd-trash/<relative path>``.

A trashed video's sidecars (``syncd.mirror``) travel with it: they are not listed as
entries of their own, and emptying the trash removes them with their video.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncd.models import SIDECAR_SUFFIXES, TRASH_DIR


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
                if name.endswith(SIDECAR_SUFFIXES):
                    continue  # belongs to the video beside it
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                entries.append(TrashEntry(folder, path, st.st_size, st.st_ctime))
    return sorted(entries, key=lambda e: e.trashed_at)


def _remove_beside(path: Path) -> None:
    for suffix in SIDECAR_SUFFIXES:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def empty_trash(
    folders: list[Path], older_than: float, now: float,
    remove_sidecars: Callable[[Path], object] = _remove_beside,
) -> list[TrashEntry]:
    """Delete trashed files older than ``older_than`` seconds with their sidecars
    (``remove_sidecars`` knows where they are); prune empty directories."""
    removed = []
    for entry in list_trash(folders):
        if now - entry.trashed_at >= older_than:
            entry.path.unlink(missing_ok=True)
            remove_sidecars(entry.path)
            removed.append(entry)
    for folder in folders:
        root = folder / TRASH_DIR
        for dirpath, _dirs, names in os.walk(root):
            for name in names:  # sidecars whose video is no longer in the trash
                suffix = next((s for s in SIDECAR_SUFFIXES if name.endswith(s)), None)
                if suffix and not (Path(dirpath) / name[: -len(suffix)]).exists():
                    (Path(dirpath) / name).unlink(missing_ok=True)
        for dirpath, _dirs, _names in sorted(os.walk(root), key=lambda w: -len(w[0])):
            if Path(dirpath) != root:
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
    return removed
