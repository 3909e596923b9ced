"""`syncd restore PATH`: the steps a person means by "put this video back".

PATH may be the file where it was (moved back out of the trash by hand, maybe a
moment ago) or the file inside ``<folder>/.syncd-trash``. Either way the video and
its sidecars end up at the original place, the file settles and is catalogued,
and its tombstone is lifted so the next pass uploads it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.errors import SyncdError
from syncd.mirror.sidecars import SidecarLayout
from syncd.models import TRASH_DIR

if TYPE_CHECKING:
    from syncd.sync.engine import Engine

SETTLE_MARGIN = 0.1  # seconds past the settle time before looking again


def restore(engine: Engine, path: Path, say: Callable[[str], None],
            sleep: Callable[[float], None] = time.sleep) -> Path:
    """Put ``path`` back (see the module's docstring) and lift its tombstone, journalled;
    the engine's next pass uploads it. Returns where the file now is."""
    options = engine.options
    path = bring_back([f.path for f in options.folders], path, options.mirror.layout)
    wait_until_settled(path, options.upload.settle_seconds, say, sleep)
    _scans, problems, _hashed = engine.observe()
    record = engine.catalog.find_file(path)
    if record is None or record.sha256 is None:
        why = "; ".join(problems) or "is it in a watched folder, a video the include patterns match, not empty?"
        raise SyncdError(f"{path}: not a tracked file ({why})")
    content = engine.catalog.content(record.sha256)
    if content is None or content.state != "remote_deleted":
        raise SyncdError(f"{path}: nothing to restore; its video was not deleted on the remote")
    engine.catalog.restore_content(record.sha256)
    engine.catalog.log("restore", str(path), "ok", "tombstone lifted; uploading again")
    return path


def in_trash(folders: Sequence[Path], path: Path) -> tuple[Path, str] | None:
    """(watched folder, path relative to it once restored) for a path inside a trash."""
    for folder in folders:
        try:
            rel = path.relative_to(folder / TRASH_DIR)
        except ValueError:
            continue
        return folder, rel.as_posix()
    return None


def bring_back(folders: Sequence[Path], path: Path, layout: SidecarLayout) -> Path:
    """The file where restore should find it: moved out of the trash (sidecars too) if
    PATH is in one. A file moved back by hand gets the sidecars it left in the trash."""
    trashed = in_trash(folders, path)
    if trashed is None:
        folder = next((f for f in folders if path.is_relative_to(f)), None)
        if folder is not None:
            left_behind = folder / TRASH_DIR / path.relative_to(folder)
            if not left_behind.exists():  # the video came out by hand; its sidecars did not
                layout.move(left_behind, path)
        return path
    folder, rel = trashed
    if not path.is_file():
        raise SyncdError(f"{path}: no such file in the trash (`syncd trash list` shows what is there)")
    target = folder / rel
    if target.exists():
        raise SyncdError(f"{target}: a file is already there; move or rename it first, then restore {path}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(path, target)
    layout.move(path, target)
    return target


def settles_at(path: Path, settle_seconds: float) -> float:
    """When (wall clock) the file at ``path`` counts as settled, as the scan decides it."""
    st = os.stat(path, follow_symlinks=False)
    return max(st.st_mtime, st.st_ctime) + settle_seconds


def wait_until_settled(path: Path, settle_seconds: float, say: Callable[[str], None],
                       sleep: Callable[[float], None] = time.sleep) -> None:
    """A file just moved back has a fresh ctime: wait out its settle time (once said)."""
    try:
        due = settles_at(path, settle_seconds)
    except FileNotFoundError as exc:
        raise SyncdError(f"{path}: no such file") from exc
    left = due - time.time()
    if left > 0:
        say(f"{path}: waiting {left:.0f}s for it to settle (upload.settle_seconds)")
        sleep(left + SETTLE_MARGIN)
