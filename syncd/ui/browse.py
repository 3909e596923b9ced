"""The grid: tracked files, a page at a time, with their sync state.

Pages are keyset pages over (folder, relative path): the cursor is the last key shown,
so page 1,000 costs what page 1 does, whatever the number of videos. A state filter
narrows the SQL by content state first, then keeps the files whose derived state
(``report.file_status``) matches.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.store.catalog import Catalog
from syncd.config import Config
from syncd.sync.engine import folder_policy
from syncd.remote import backend_facts
from syncd.sync.report import FileStatus, file_status

PAGE_SIZE = 60
SCAN_CHUNK = 500  # rows read per query while a state filter skips files
STATES = ("new", "uploading", "processing", "pipelines", "collecting", "done", "failed", "remote-deleted")
# Which catalog content states can end up as each shown state (file_status narrows further).
_CONTENT_STATES: dict[str, frozenset[str]] = {
    "new": frozenset({"new", "deleted"}),
    "uploading": frozenset({"uploading", "failed"}),
    "failed": frozenset({"uploading", "failed", "uploaded"}),
    "remote-deleted": frozenset({"remote_deleted"}),
    **{s: frozenset({"uploaded"}) for s in ("processing", "pipelines", "collecting", "done")},
}


@dataclass(frozen=True)
class Card:
    folder_index: int
    rel_path: str
    status: FileStatus
    size: int
    captured_at: float  # the file's modification time: when the camera wrote it
    duration: float | None  # from the remote's details, once mirrored
    upload_percent: float | None  # while uploading

    @property
    def name(self) -> str:
        return self.rel_path.rsplit("/", 1)[-1]

    @property
    def sha256(self) -> str | None:
        return self.status.sha256

    def as_json(self) -> dict[str, Any]:
        return {
            **self.status.as_json(), "folder_index": self.folder_index, "rel_path": self.rel_path,
            "size": self.size, "captured_at": self.captured_at, "duration": self.duration,
            "upload_percent": self.upload_percent,
        }


@dataclass(frozen=True)
class Page:
    cards: list[Card]
    next_cursor: str | None  # None: this is the last page


def encode_cursor(folder: Path, rel_path: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(folder), rel_path]).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[str, str] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None


def browse(config: Config, catalog: Catalog, *, folder: int | None = None, collection: str | None = None,
           state: str | None = None, cursor: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """One page of cards. ``folder``: an index into ``config.folders``; ``collection``: a
    first-level subfolder name (a collection of folders that make them)."""
    folders = config.folders if folder is None else config.folders[folder:folder + 1]
    facts = backend_facts(config.remote.backend)
    if collection is not None:
        folders = tuple(f for f in folders if folder_policy(f, facts).collections)
    policies = {f.path: folder_policy(f, facts) for f in folders}
    index = {f.path: n for n, f in enumerate(config.folders)}
    after = decode_cursor(cursor) if cursor else None
    prefix = f"{collection}/" if collection else None
    content_states = _CONTENT_STATES.get(state) if state else None
    cards: list[Card] = []
    more = False
    while len(cards) <= limit:
        rows = catalog.files_page(after=after, limit=SCAN_CHUNK if state else limit + 1,
                                  folders=[str(p) for p in policies], rel_prefix=prefix,
                                  content_states=content_states)
        if not rows:
            break
        memberships = catalog.memberships_of(c.sha256 for _, c in rows if c is not None)
        details = catalog.mirror_details_of(c.video_id for _, c in rows if c is not None and c.video_id)
        for file, content in rows:
            after = (str(file.folder), file.rel_path)
            status = file_status(file, content, policies[file.folder], memberships, config.upload.max_attempts)
            if state and status.state != state:
                continue
            if len(cards) == limit:
                more = True
                break
            facts = json.loads(details.get(content.video_id or "", "") or "{}") if content else {}
            cards.append(Card(
                index[file.folder], file.rel_path, status, file.size, file.mtime_ns / 1e9,
                facts.get("duration_seconds"),
                _upload_percent(catalog, content.sha256, content.size) if status.state == "uploading" and content
                else None,
            ))
        if more or len(rows) < (SCAN_CHUNK if state else limit + 1):
            break
    last = cards[-1] if cards else None
    next_cursor = encode_cursor(config.folders[last.folder_index].path, last.rel_path) if more and last else None
    return Page(cards, next_cursor)


def _upload_percent(catalog: Catalog, sha256: str, size: int) -> float | None:
    upload = catalog.upload_for(sha256)
    if upload is None or size <= 0:
        return None
    return min(100.0, 100.0 * len(upload.parts) * upload.part_size / size)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_time(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else ""
