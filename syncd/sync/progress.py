"""What the engine tells a progress display, as a small interface.

The engine and executor call these methods; they never draw anything. The CLI
plugs in a display (``syncd.cli.console``: a live bar on a terminal, plain periodic
lines otherwise); the daemon and the tests use ``NullProgress``. Calls may come
from upload worker threads, so a display must be thread-safe.

Order within a pass: ``phase`` for the steps before uploading, ``uploads_planned`` once (every upload of the pass, with its
size), then per file ``file_started`` → ``file_bytes``… → ``file_finished``; while
``sync --wait`` waits for the remote, ``waiting`` with the files not yet done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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
