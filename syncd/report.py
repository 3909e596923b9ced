"""Per-file status as a user sees it, derived from catalog records. Pure.

A file's state walks: ``new`` → ``uploading`` → ``processing`` →
``pipelines`` → ``collecting`` → ``done``; or ends ``failed`` (a step failed
and its attempts are used up), ``remote-deleted`` (tombstone) or
``ambiguous``. ``terminal`` is what ``syncd sync --wait`` waits for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.models import ContentRecord, FileRecord
from syncd.planner import FolderPolicy, ready_for_collection

TERMINAL = frozenset({"done", "failed", "remote-deleted"})

# What each state means, in the words ``syncd status`` and the progress display use
# (``status --json`` keeps the short names above).
STATE_WORDS = {
    "new": "waiting to upload",
    "uploading": "uploading",
    "processing": "processing",
    "pipelines": "running pipelines",
    "collecting": "adding to collection",
    "done": "done",
    "failed": "failed",
    "remote-deleted": "deleted on the remote",
    "ambiguous": "ambiguous",
}


@dataclass(frozen=True)
class FileStatus:
    path: str
    sha256: str | None
    video_id: str | None
    state: str
    collection: str | None
    steps: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    error: str | None = None
    processing_steps: tuple[str, ...] = ()  # which of ``steps`` are the backend's processing (the rest: pipelines)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def words(self) -> str:
        """The state in plain words, naming the pipeline a file waits on."""
        running = self.running_step()
        if self.state == "pipelines" and running:
            return f"running {running[0]}"
        return STATE_WORDS.get(self.state, self.state)

    def running_step(self) -> tuple[str, float | None] | None:
        """The step this file waits on (processing or a pipeline) and its percentage."""
        if self.state not in ("processing", "pipelines"):
            return None
        wanted = self.processing_steps if self.state == "processing" else tuple(
            k for k in self.steps if k not in self.processing_steps)
        for name in wanted:
            state, pct = self.steps.get(name, ("pending", None))
            if state != "done":
                return name, pct
        return None

    @property
    def percent(self) -> float | None:
        running = self.running_step()
        return None if running is None else running[1]

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "video_id": self.video_id,
            "state": self.state,
            "collection": self.collection,
            "steps": {k: {"state": s, "percentage": p} for k, (s, p) in self.steps.items()},
            "error": self.error,
        }


def file_status(
    file: FileRecord,
    content: ContentRecord | None,
    policy: FolderPolicy,
    memberships: frozenset[tuple[str, str]] | set[tuple[str, str]],
    max_attempts: int,
) -> FileStatus:
    collection = file.subfolder if policy.collections else None
    if content is None:
        return FileStatus(str(file.path), file.sha256, None, "new", collection)
    pipelines = policy.effective_pipelines
    steps: dict[str, tuple[str, float | None]] = {
        name: (content.step(name).state, content.step(name).percentage)
        for name in (*policy.processing_steps, *pipelines)
    }
    state, error = _state(content, policy, collection, memberships, max_attempts)
    return FileStatus(
        str(file.path), content.sha256, content.video_id, state, collection, steps, error or content.error,
        policy.processing_steps,
    )


def _state(
    content: ContentRecord,
    policy: FolderPolicy,
    collection: str | None,
    memberships: frozenset[tuple[str, str]] | set[tuple[str, str]],
    max_attempts: int,
) -> tuple[str, str | None]:
    if content.state == "remote_deleted":
        return "remote-deleted", "deleted on the remote; run `syncd restore PATH` to upload again"
    if content.state in ("new", "deleted"):
        return "new", None
    if content.state in ("uploading", "failed"):
        if content.attempts >= max_attempts:
            return "failed", content.error
        return "uploading", content.error
    failure = policy.processing_failed(content)
    if failure:
        return ("failed" if content.attempts >= max_attempts else "processing"), failure
    if not policy.processed(content):
        return "processing", None
    for name in policy.effective_pipelines:
        step = content.step(name)
        if step.state == "failed":
            if step.attempts >= max_attempts:
                return "failed", f"{name}: {step.error or 'failed'}"
            return "pipelines", f"{name}: {step.error or 'failed'} (will retry)"
        if step.state != "done":
            return "pipelines", None
    if collection and (collection, content.sha256) not in memberships:
        return ("collecting" if ready_for_collection(content, policy) else "pipelines"), None
    return "done", None
