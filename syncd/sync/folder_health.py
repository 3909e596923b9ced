"""Each watched folder's health as `syncd status`, the web UI's status page and `syncd
doctor` show it, at a cost that does not grow with the files in it.

Checked live, a few system calls a folder: the folder guard (``syncd.folders.folder_problem``:
mounted, a directory, readable, its marker). From the catalog: the files tracked there
(``Catalog.done_counts``, via ``StatusOverview.tracked``) and what the engine's last scan
found (``Catalog.scan_summaries``: empty files, files still being written, subfolders that
could not be listed, and when). No folder is walked: at a million files that walk is the
pass's job, not a status line's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from syncd.folders import folder_problem
from syncd.models import FolderScan

if TYPE_CHECKING:
    from syncd.config import FolderConfig
    from syncd.store.catalog import ScanSummary


@dataclass(frozen=True)
class FolderHealth:
    path: str
    problem: str | None  # None: healthy
    tracked: int = 0
    empty: int = 0  # empty files, skipped
    settling: int = 0  # still being written
    unreadable: tuple[str, ...] = ()  # subfolders that could not be listed
    scanned_at: float | None = None  # when the scan that found the three above ran; None: never
    scanned_ago: float | None = None  # seconds before the health was taken

    @property
    def notes(self) -> list[str]:
        """What the last scan found that is worth a word (not problems: they sync on)."""
        return [n for n in (f"{self.settling} still being written" if self.settling else "",
                            f"{self.empty} empty file(s) skipped" if self.empty else "") if n]


def folder_health(folders: Sequence[FolderConfig], summaries: Mapping[str, ScanSummary],
                  tracked: Mapping[str, int], now: float) -> list[FolderHealth]:
    """Each folder's health: the guard live, the rest as stored. ``summaries``:
    ``Catalog.scan_summaries()``; ``tracked``: present files per folder path."""
    from syncd.sync.scan import unreadable_problem

    out = []
    for folder in folders:
        key = str(folder.path)
        summary = summaries.get(key)
        problem = folder_problem(folder.path, folder.require_marker)
        if problem is None and summary is not None:
            problem = unreadable_problem(FolderScan(folder.path, ok=True, unreadable=summary.unreadable))
        out.append(FolderHealth(
            key, problem, tracked.get(key, 0),
            empty=summary.empty if summary else 0,
            settling=summary.settling if summary else 0,
            unreadable=summary.unreadable if summary else (),
            scanned_at=summary.scanned_at if summary else None,
            scanned_ago=now - summary.scanned_at if summary else None,
        ))
    return out
