"""`syncd status` as text: what a person needs at a glance, in the terminal's width.

1. a header: the backend and where it is, each folder and its health, the
   collections with how many videos each holds;
2. counts by state, in plain words;
3. the files not yet done, in aligned columns (state, progress, path cut in the
   middle to fit), each with its last error;
4. one line of what needs the user's attention.

Pure: ``StatusFacts`` is gathered by the CLI; this module only lays it out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from syncd.cli.messages import middle
from syncd.sync.folder_health import FolderHealth
from syncd.sync.report import STATE_WORDS, FileStatus
from syncd.units import format_size, rough_duration


MOVED_SHOWN = 10  # files listed by name whose remote tag is not their subfolder now


@dataclass
class StatusFacts:
    backend: str
    base_url: str
    key_source: str
    folders: list[FolderHealth]
    collections: dict[str, int]  # name → videos in it
    counts: Counter[str]  # files by state (done ones counted in SQL)
    pending: list[FileStatus]  # the files not done
    sizes: dict[str, int]  # path → size in bytes, of the pending files
    sent: dict[str, int]  # sha256 → bytes the remote holds of an open upload
    blocked: str = ""  # why the last pass held back (the mass-delete guard, a listing that failed)
    trashed: int = 0  # files in the folders' trash (their videos were deleted on the remote)
    # Deletions held while unsettled files could hold their content: a summary line, then one per deletion.
    waiting: str = ""
    # Extra header lines ("instance: …") and attention items ("3 deletion(s) wait for
    # 2 unsettled files") that other parts of syncd add.
    # A backend grouping by tag: videos per remote tag (None: the folders group otherwise), and
    # the files moved to another subfolder since upload (their tag stays).
    tags: Counter[str] | None = None
    moved: list[FileStatus] = field(default_factory=list)
    header_extra: list[str] = field(default_factory=list)
    attention_extra: list[str] = field(default_factory=list)

    @property
    def folders_ok(self) -> bool:
        return all(f.problem is None for f in self.folders)


def render(facts: StatusFacts, width: int) -> list[str]:
    key = f" (API key from {facts.key_source})" if facts.key_source != "none" else ""
    lines = [f"backend: {facts.backend} at {facts.base_url}{key}"]
    lines += facts.header_extra
    lines.append("folders:")
    for f in facts.folders:
        if f.problem is not None:
            lines.append(f"  ✗ {f.problem}")
            continue
        extra = "".join(f", {note}" for note in f.notes)
        if extra and f.scanned_ago is not None:  # the engine's last scan: status walks no folder
            extra += f" (as of the last scan, {rough_duration(f.scanned_ago)} ago)"
        lines.append(f"  ✓ {f.path}: {f.tracked} file(s) tracked{extra}")
    if facts.tags is not None:
        shown = ", ".join(f"{name} ({n})" for name, n in sorted(facts.tags.items())) or "none yet"
        lines.append(f"tags (subfolders when uploaded; the remote cannot change them): {shown}")
        moved = facts.moved
        if moved:
            lines.append(f"{len(moved)} file(s) moved since upload keep their remote tag:")
            for s in moved[:MOVED_SHOWN]:
                lines.append(f"  {middle(s.path, max(12, width - 40))}: remote tag {s.remote_tag or '(none)'}, "
                             f"now in {s.current_subfolder or '(top level)'}")
            if len(moved) > MOVED_SHOWN:
                lines.append(f"  … and {len(moved) - MOVED_SHOWN} more (`syncd status --json`: remote_tag, subfolder)")
    elif facts.collections:
        shown = ", ".join(f"{name} ({n})" for name, n in sorted(facts.collections.items()))
        lines.append(f"collections: {shown}")
    else:
        lines.append("collections: none yet")
    lines.append("")
    counts = facts.counts
    lines.append(f"{sum(counts.values())} tracked file(s)")
    word_width = max((len(STATE_WORDS.get(state, state)) for state in counts), default=0)
    for state, n in sorted((state, n) for state, n in counts.items() if n):
        lines.append(f"  {STATE_WORDS.get(state, state):<{word_width}}  {n}")
    if facts.blocked:
        lines += ["", f"BLOCKED: {facts.blocked}"]
    if facts.waiting:
        summary, *details = facts.waiting.splitlines()
        lines += ["", f"WAITING: {summary}", *(f"  {line}" for line in details)]
    pending = facts.pending
    if pending:
        lines += ["", *_table(pending, facts, width)]
    attention = attention_items(facts)
    lines += ["", f"needs attention: {'; '.join(attention)}" if attention else "nothing needs attention"]
    return lines


def _progress(status: FileStatus, facts: StatusFacts) -> str:
    if status.state == "uploading" and status.sha256 in facts.sent:
        size = facts.sizes.get(status.path, 0)
        return f"{format_size(facts.sent[status.sha256 or ''])} of {format_size(size)}"
    percent = status.percent
    return "" if percent is None else f"{percent:.0f}%"


def _table(pending: list[FileStatus], facts: StatusFacts, width: int) -> list[str]:
    rows = [(s.words, _progress(s, facts), s.path, s.error) for s in pending]
    w_state = max(len("STATE"), *(len(r[0]) for r in rows))
    w_prog = max(len("PROGRESS"), *(len(r[1]) for r in rows))
    w_path = max(12, width - w_state - w_prog - 4)
    out = [f"{'STATE':<{w_state}}  {'PROGRESS':<{w_prog}}  PATH"]
    for words, progress, path, error in rows:
        out.append(f"{words:<{w_state}}  {progress:<{w_prog}}  {middle(path, w_path)}")
        if error:
            out.append(f"{'':<{w_state}}  {middle('error: ' + error, max(12, width - w_state - 2))}")
    return out


def attention_items(facts: StatusFacts) -> list[str]:
    bad = sum(f.problem is not None for f in facts.folders)
    items = [f"{bad} folder(s) cannot be synced (see folders above)"] if bad else []
    states = facts.counts
    if states["failed"]:
        items.append(f"{states['failed']} file(s) failed for good (see the errors above; `syncd log` has the history)")
    if states["remote-deleted"]:
        items.append(f"{states['remote-deleted']} file(s) deleted on the remote are not uploaded again "
                     "(`syncd restore PATH` to upload one again)")
    if facts.trashed:
        items.append(f"{facts.trashed} file(s) in the trash, deleted on the remote (`syncd trash list`; "
                     "`syncd restore PATH` uploads one again)")
    if facts.blocked and "--allow-mass-delete" in facts.blocked:
        items.append("the mass-delete guard refused the last pass (see BLOCKED above; "
                     "`syncd sync --allow-mass-delete` once you have checked)")
    elif facts.blocked:
        items.append("the last pass was held back (see BLOCKED above); the next sync tries again")
    if facts.waiting:
        items.append("deletions wait for files still being written (see WAITING above; they go ahead once "
                     "those files settle, or after safety.delete_wait)")
    return [i for i in items if i] + facts.attention_extra

