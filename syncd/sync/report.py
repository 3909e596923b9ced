"""Per-file status as a user sees it, derived from catalog records. Pure.

A file's state walks: ``new`` → ``uploading`` → ``processing`` →
``pipelines`` → ``collecting`` → ``done``; or ends ``failed`` (a step failed
and its attempts are used up), ``remote-deleted`` (tombstone) or
``ambiguous``. ``terminal`` is what ``syncd sync --wait`` waits for.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from syncd.models import ContentRecord, FileRecord
from syncd.sync.planner import FolderPolicy, ready_for_collection
from syncd.remote.base import Features
from syncd.remote.facts import backend_facts

log = logging.getLogger("syncd.sync.report")

if TYPE_CHECKING:
    from syncd.store.catalog import Catalog, DoneRule
    from syncd.config import Config, FolderConfig

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
    #: A backend grouping by tag (``tagged``): the tag the remote video carries (its subfolder
    #: when it was uploaded; tags never change), which may differ from ``current_subfolder``.
    remote_tag: str | None = None
    current_subfolder: str | None = None  # the first-level subfolder the file is in now
    tagged: bool = False

    @property
    def tag_differs(self) -> bool:
        """Moved to another subfolder since upload: the remote keeps the old tag."""
        return self.tagged and self.video_id is not None and self.remote_tag != self.current_subfolder

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
            "subfolder": self.current_subfolder,
            "remote_tag": self.remote_tag,
        }


def folder_policy(folder: FolderConfig, facts: Features, scan_ok: bool = True, deletions_ok: bool = True) -> FolderPolicy:
    """The planner's view of a folder; ``facts``: what the backend declares (its steps and
    the pipelines its collections need), as data."""
    return FolderPolicy(
        path=folder.path,
        scan_ok=scan_ok,
        deletions_ok=deletions_ok,
        collections=folder.collections == "subfolder" and facts.grouping == "collection",
        pipelines=tuple(p for p in folder.pipelines if p in facts.pipelines),  # config checked them too
        delete_remote=folder.delete_remote,
        on_remote_delete=folder.on_remote_delete,
        remove_empty_collections=folder.remove_empty_collections,
        processing_steps=facts.processing_steps,
        collection_pipelines=facts.collection_pipelines,
        tag_subfolders=folder.collections == "subfolder" and facts.grouping == "tag",
    )


# Here rather than in the engine: ``syncd status`` then imports neither the engine nor
# what it needs (the HTTP client, numpy).
def file_statuses(config: Config, catalog: Catalog, facts: Features | None = None) -> list[FileStatus]:
    """Every tracked, present file's status (``sync --wait``, the mirror). ``facts``: the
    open remote's features, else what the configured backend declares."""
    return list(iter_file_statuses(config, catalog, facts))


def iter_file_statuses(config: Config, catalog: Catalog, facts: Features | None = None) -> Iterator[FileStatus]:
    """``file_statuses`` streamed from the catalog (``syncd status`` over a million files)."""
    facts = facts or backend_facts(config.remote.backend)
    return iter_statuses_of(config.folders, config.upload.max_attempts, catalog, facts)


def statuses_of(folders: Sequence[FolderConfig], max_attempts: int, catalog: Catalog,
                facts: Features) -> list[FileStatus]:
    """``file_statuses`` from the parts of the config it reads (the engine's options)."""
    return list(iter_statuses_of(folders, max_attempts, catalog, facts))


def iter_statuses_of(folders: Sequence[FolderConfig], max_attempts: int, catalog: Catalog,
                     facts: Features, shas: Collection[str] | None = None) -> Iterator[FileStatus]:
    """``shas``: only the files of these contents."""
    policies = {f.path: folder_policy(f, facts) for f in folders}
    memberships = catalog.memberships() if shas is None else catalog.memberships_of(shas)
    for file, content in catalog.iter_present(shas=shas):
        policy = policies.get(file.folder)
        if policy is not None:
            yield file_status(file, content, policy, memberships, max_attempts)


@dataclass
class StatusOverview:
    """``syncd status`` and the web UI over a million files: counts by state from SQL,
    rows only for the files not done. ``sizes``: path → size of those files."""

    counts: Counter[str]
    tracked: dict[str, int]  # folder → present files
    pending: list[FileStatus]
    sizes: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def done_rules(folders: Sequence[FolderConfig], facts: Features) -> list[DoneRule]:
    """When each folder's file is done, as SQL tests it (``DoneRule``); the engine records
    these in the catalog, which then keeps every file's ``done`` state."""
    from syncd.store.catalog import DoneRule  # here: status imports the catalog lazily

    policies = [folder_policy(f, facts) for f in folders]
    return [DoneRule(p.path, (*p.processing_steps, *p.effective_pipelines), p.collections) for p in policies]


def status_overview(config: Config, catalog: Catalog, facts: Features | None = None,
                    pending_limit: int | None = None) -> StatusOverview:
    """``overview_of`` the config's folders."""
    facts = facts or backend_facts(config.remote.backend)
    return overview_of(config.folders, config.upload.max_attempts, catalog, facts, pending_limit)


def overview_of(folders: Sequence[FolderConfig], max_attempts: int, catalog: Catalog, facts: Features,
                pending_limit: int | None = None, *, keep_failed: bool = False) -> StatusOverview:
    """Present files counted per folder in SQL; rows streamed and statuses built only for
    the files SQL does not find done, all counted, the first ``pending_limit`` kept (and
    with ``keep_failed`` every failed one). The rest are done: present minus streamed.

    Where the catalog keeps ``files.done`` under this folder's very rule (recorded by the
    engine, the usual case) the counts and the rows not done are index ranges; otherwise
    (no pass since an upgrade, or another config) SQL tests every present file."""
    from syncd.store.catalog import stored_rule_matches

    counts = catalog.done_counts()
    stored = catalog.done_rules()
    rules = done_rules(folders, facts)
    memberships: set[tuple[str, str]] | None = None  # all of them: only for a folder without a stored rule
    overview = StatusOverview(Counter(), {}, [], {})
    for folder, rule in zip(folders, rules, strict=True):
        policy = folder_policy(folder, facts)
        tracked, done = counts.get(str(folder.path), (0, 0))
        overview.tracked[str(folder.path)] = tracked
        rows: Iterator[tuple[FileRecord, ContentRecord | None, set[tuple[str, str]]]]
        if stored_rule_matches(stored, rule):
            rows = ((f, c, {(_subfolder(f.rel_path) or "", c.sha256)} if member and c else set())
                    for f, c, member in catalog.iter_not_done(folder.path))
        else:
            done = 0
            if memberships is None:
                memberships = catalog.memberships() if any(f.collections == "subfolder"
                                                           for f in folders) else set()
            rows = ((f, c, memberships) for f, c in catalog.iter_present(not_done=rule))
        streamed = 0
        for file, content, members in rows:
            streamed += 1
            status = file_status(file, content, policy, members, max_attempts)
            overview.counts[status.state] += 1
            if status.state != "done" and (pending_limit is None or len(overview.pending) < pending_limit
                                           or (keep_failed and status.state == "failed")):
                overview.pending.append(status)
                overview.sizes[status.path] = file.size
        if tracked > streamed:
            overview.counts["done"] += tracked - streamed
        if done + streamed != tracked and stored_rule_matches(stored, rule):
            # A writer may commit between the two statements; the next status agrees again.
            log.debug("%s: the catalog's done counts disagree (%d done + %d not of %d present)",
                        folder.path, done, streamed, tracked)
    return overview


def file_status(
    file: FileRecord,
    content: ContentRecord | None,
    policy: FolderPolicy,
    memberships: frozenset[tuple[str, str]] | set[tuple[str, str]],
    max_attempts: int,
) -> FileStatus:
    # Strings, not Path objects: ``syncd status`` builds one of these per tracked file.
    path = f"{file.folder}/{file.rel_path}"
    collection = _subfolder(file.rel_path) if policy.collections else None
    here = _subfolder(file.rel_path)
    tagged = policy.tag_subfolders
    if content is None:
        return FileStatus(path, file.sha256, None, "new", collection, current_subfolder=here, tagged=tagged)
    pipelines = policy.effective_pipelines
    steps: dict[str, tuple[str, float | None]] = {
        name: (content.step(name).state, content.step(name).percentage)
        for name in (*policy.processing_steps, *pipelines)
    }
    state, error = _state(content, policy, collection, memberships, max_attempts)
    return FileStatus(
        path, content.sha256, content.video_id, state, collection, steps, error or content.error,
        policy.processing_steps,
        # The name a video was uploaded under is the file's path then: its subfolder was the tag.
        remote_tag=_subfolder(content.name) if tagged and content.video_id and content.name else None,
        current_subfolder=here, tagged=tagged,
    )


def _subfolder(rel_path: str) -> str | None:
    """``FileRecord.subfolder`` without a path object: the first part of a nested path."""
    head, sep, _ = rel_path.partition("/")
    return head if sep else None


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
