"""Decide what a pass should do. Pure: no I/O, no clock, no remote; imports only models.

Input is a :class:`Snapshot` (the catalog after this pass's scan and status
refresh, plus the remote listing if one was read in full); output is a
:class:`~syncd.models.Plan`. The executor performs the plan; ``--dry-run``
prints it. Every guard lives here:

* a folder whose scan failed is left alone: its files stay "present", so
  nothing in it is uploaded, deleted or moved out of a collection;
* deletions from the remote side need a complete listing (``remote`` is None
  when the listing failed or was cut short);
* a pass that would delete more than ``max_delete_percent`` of a folder's
  tracked videos (and more than one) deletes nothing, unless allowed;
* a move is never a deletion: a content whose last path vanished (or was
  rewritten with other bytes) is deleted remotely only once no file whose
  content is still unknown (``Snapshot.unknown``: not settled or not hashed)
  could hold it, for at most ``delete_wait``; a file being rewritten in place
  keeps its old content (nothing is deleted before the new one is known) but
  starts no new work for it.
* a local deletion deletes the remote video only if this syncd instance owns it and
  no other instance's marker is on it; otherwise it is unlinked (forgotten here,
  kept there). Markers not read yet (``Snapshot.marks`` None) leave the deletion in
  the plan for the engine to read them and plan again; markers unreadable hold it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from syncd.models import (
    AbortUpload,
    Action,
    AddToCollection,
    CollectionRecord,
    ContentRecord,
    CreateCollection,
    DeleteCollection,
    DeleteRemote,
    FileRecord,
    ForgetFile,
    LinkVideo,
    MarkVideo,
    Plan,
    RemoteDeleted,
    RemoteView,
    RemoveFromCollection,
    RenameCollection,
    DeferredDeletion,
    StartPipeline,
    Superseded,
    UnknownFile,
    UnlinkVideo,
    Upload,
    UploadRecord,
)


@dataclass(frozen=True)
class FolderPolicy:
    path: Path
    scan_ok: bool
    collections: bool
    pipelines: tuple[str, ...]
    delete_remote: bool
    on_remote_delete: str
    remove_empty_collections: bool = False
    deletions_ok: bool = True  # False: part of the folder could not be read; no deletions in it
    # What the backend declares (``Features``), as data: the steps a video must finish
    # after upload, and the pipelines a video needs before a collection accepts it.
    processing_steps: tuple[str, ...] = ()
    collection_pipelines: tuple[str, ...] = ()
    #: The backend groups by tag and the folder by subfolder: each upload carries its subfolder's
    #: name as a tag (fixed at upload: a file moved later keeps the tag it was sent with).
    tag_subfolders: bool = False

    @property
    def effective_pipelines(self) -> tuple[str, ...]:
        """A collection accepts only videos its pipelines finished, so it implies them."""
        if self.collections:
            return tuple(dict.fromkeys((*self.pipelines, *self.collection_pipelines)))
        return self.pipelines

    def processed(self, content: ContentRecord) -> bool:
        return content.processed(self.processing_steps)

    def processing_failed(self, content: ContentRecord) -> str | None:
        return content.processing_failed(self.processing_steps)


class Adoptable(NamedTuple):
    """A remote video proved (by the engine, before planning) to hold a local file's bytes."""

    video_id: str
    owned: bool  # False: another syncd instance's video (linked, never deleted by us)
    proof: str = ""


@dataclass(frozen=True)
class Settings:
    max_delete_percent: float = 50.0
    delete_grace: float = 0.0
    allow_mass_delete: bool = False
    max_attempts: int = 5
    adopt_remote: bool = False  # catalog is new: link remote videos proved to hold local files
    mark_videos: bool = False  # the remote keeps per-instance ownership markers
    delete_wait: float = 3600.0  # longest a deletion waits for unknown files that could hold its content


@dataclass(frozen=True)
class Snapshot:
    folders: tuple[FolderPolicy, ...]
    files: tuple[FileRecord, ...]
    contents: dict[str, ContentRecord]
    uploads: tuple[UploadRecord, ...]
    collections: tuple[CollectionRecord, ...]
    memberships: frozenset[tuple[str, str]]
    remote: RemoteView | None
    now: float
    # Catalog recovery: "<folder>\0<rel_path>" → the remote video proved to hold that file.
    adoptable: dict[str, Adoptable] = field(default_factory=dict)
    instance: str = ""  # this syncd's instance name
    # Remote video id → the instances whose marker is on it. None: not read this pass.
    marks: dict[str, frozenset[str]] | None = None
    marks_error: str | None = None  # reading the markers failed: delete nothing remotely
    # Files this pass's scan saw but whose content it does not know (not settled, not hashed).
    unknown: tuple[UnknownFile, ...] = ()
    # Contents paths held before they were rewritten with other bytes.
    superseded: tuple[Superseded, ...] = ()
    # Linked videos per folder, counted by the catalog, when ``files`` holds only the files
    # that changed or are in flight (the engine plans in proportion to change); None: count ``files``.
    tracked: dict[Path, int] | None = None
    # The collections this snapshot decides whole (the engine plans in proportion to
    # change): each holds every member that could leave it, and, if its subfolder has no
    # present file, every member; only they are renamed, emptied or deleted, and lose
    # members. None: all of them, with every file and member.
    whole_collections: frozenset[str] | None = None
    # Of those, the ones whose subfolder holds a present file of a content left out of this
    # snapshot: not empty, and no rename's target.
    occupied: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Vanished:
    """A path that held a content and no longer does: deleted, moved away, or rewritten."""

    folder: Path
    rel_path: str
    since: float
    inode: int | None  # None for a rewritten path (its inode now holds the new bytes)
    rewritten: bool = False


def plan(snap: Snapshot, settings: Settings) -> Plan:
    result = Plan()
    policies = {f.path: f for f in snap.folders}
    bad_folders = {f.path for f in snap.folders if not f.scan_ok}
    changing = {(u.folder, u.rel_path) for u in snap.unknown}
    present: dict[str, list[FileRecord]] = defaultdict(list)  # holds the content, as far as we know
    live: dict[str, list[FileRecord]] = defaultdict(list)  # ...and has not changed since it was hashed
    vanished: dict[str, list[_Vanished]] = defaultdict(list)
    for record in snap.files:
        if record.sha256 is None or record.folder not in policies:
            continue
        if record.present:
            present[record.sha256].append(record)
            if (record.folder, record.rel_path) not in changing:
                live[record.sha256].append(record)
        else:
            since = snap.now if record.missing_since is None else record.missing_since
            vanished[record.sha256].append(_Vanished(record.folder, record.rel_path, since, record.inode))
    for old in snap.superseded:
        if old.folder in policies:
            vanished[old.sha256].append(_Vanished(old.folder, old.rel_path, old.since, None, rewritten=True))
    result.settling = sorted(u.path for u in snap.unknown)

    # A file being rewritten still holds its old content for deletions (nothing is deleted
    # before the new content is known), but starts no new work for it: ``live``.
    _plan_uploads(snap, settings, policies, live, bad_folders, result)
    _plan_pipelines(snap, settings, policies, live, result)
    _plan_marks(snap, settings, policies, present, result)
    _plan_collections(snap, policies, present, live, bad_folders, result)
    partly_read = {f.path for f in snap.folders if not f.deletions_ok}
    deletions = _plan_local_deletions(snap, settings, policies, present, vanished, partly_read, result)
    deletions += _plan_remote_deletions(snap, policies, present, bad_folders | partly_read, result)
    _guard_mass_delete(snap, settings, deletions, result)
    return result


# ----------------------------------------------------------------- uploads
def _plan_uploads(
    snap: Snapshot, settings: Settings, policies: dict[Path, FolderPolicy], present: dict[str, list[FileRecord]],
    bad_folders: set[Path], result: Plan,
) -> None:
    open_uploads = {u.sha256 for u in snap.uploads}
    for sha, content in snap.contents.items():
        readable = [f for f in present.get(sha, []) if f.folder not in bad_folders]
        if not readable:
            continue
        source = readable[0]
        if content.state == "remote_deleted":
            result.notes.append(
                f"{source.path}: deleted on the remote; not uploaded again (run `syncd restore {source.path}`)"
            )
            continue
        replaces: str | None = None
        if content.state in ("new", "deleted"):
            if settings.adopt_remote and content.state == "new" and snap.remote is None:
                continue  # a new catalog uploads nothing before the listing shows what is there
            if settings.adopt_remote and content.state == "new":
                found = next((snap.adoptable[k] for f in readable
                              if (k := f"{f.folder}\0{f.rel_path}") in snap.adoptable), None)
                if found is not None:
                    result.actions.append(LinkVideo(sha, found.video_id, source.path, found.owned, found.proof))
                    continue
        elif content.state == "uploading" or sha in open_uploads:
            if not _retry_due(content.attempts, content.next_attempt_at, snap, settings, result):
                continue  # resume later
        elif content.state == "failed" or (
            content.state == "uploaded" and policies[source.folder].processing_failed(content)
        ):
            if not _retry_due(content.attempts, content.next_attempt_at, snap, settings, result):
                continue
            replaces = content.video_id
        else:
            continue
        tag = source.subfolder if policies[source.folder].tag_subfolders else None
        result.actions.append(Upload(sha, source.path, source.rel_path, source.size, replaces, source.mtime_ns, tag))


# --------------------------------------------------------------- pipelines
def _plan_pipelines(
    snap: Snapshot, settings: Settings, policies: dict[Path, FolderPolicy],
    present: dict[str, list[FileRecord]], result: Plan,
) -> None:
    for sha, content in snap.contents.items():
        files = present.get(sha, [])
        if not files or not policies[files[0].folder].processed(content) or content.video_id is None:
            continue
        wanted: dict[str, None] = {}
        for f in files:
            wanted.update(dict.fromkeys(policies[f.folder].effective_pipelines))
        for pipeline in wanted:
            step = content.step(pipeline)
            if step.state == "pending" and step.attempts == 0:
                result.actions.append(StartPipeline(sha, content.video_id, pipeline, files[0].path))
            elif step.state == "failed" and _retry_due(step.attempts, step.next_attempt_at, snap, settings, result):
                result.actions.append(StartPipeline(sha, content.video_id, pipeline, files[0].path, retry=True))


def _plan_marks(snap: Snapshot, settings: Settings, policies: dict[Path, FolderPolicy],
                present: dict[str, list[FileRecord]], result: Plan) -> None:
    """Mark our own videos once the remote lets us (Mikshi: fully processed)."""
    if not settings.mark_videos:
        return
    for sha, content in snap.contents.items():
        files = present.get(sha, [])
        if files and content.owned and not content.marked and ready_for_collection(content, policies[files[0].folder]):
            assert content.video_id is not None
            result.actions.append(MarkVideo(sha, content.video_id, files[0].path))


def _retry_due(attempts: int, next_attempt_at: float, snap: Snapshot, settings: Settings, result: Plan) -> bool:
    """Whether a failed step may be tried again now; if only later, the plan says when."""
    if attempts >= settings.max_attempts:
        return False
    if next_attempt_at > snap.now:
        result.revisit(next_attempt_at)
        return False
    return True


def waits_for_retry(content: ContentRecord, settings: Settings, now: float) -> bool:
    """Something of ``content`` failed and is to be tried again later (``_retry_due`` said
    "later"): its upload or processing, or a pipeline. The clock, not a change of its
    rows, makes its next plan differ."""
    def later(attempts: int, next_attempt_at: float) -> bool:
        return attempts < settings.max_attempts and next_attempt_at > now

    failed_steps = [s for s in content.steps.values() if s.state == "failed"]
    return (((content.state in ("failed", "uploading") or bool(failed_steps))
             and later(content.attempts, content.next_attempt_at))
            or any(later(s.attempts, s.next_attempt_at) for s in failed_steps))


def ready_for_collection(content: ContentRecord, policy: FolderPolicy) -> bool:
    return (
        policy.processed(content)
        and content.video_id is not None
        and all(content.step(p).state == "done" for p in policy.collection_pipelines)
    )


# ------------------------------------------------------------- collections
def _plan_collections(
    snap: Snapshot, policies: dict[Path, FolderPolicy], present: dict[str, list[FileRecord]],
    live: dict[str, list[FileRecord]], bad_folders: set[Path], result: Plan,
) -> None:
    desired: dict[str, set[str]] = defaultdict(set)  # keeps members (and names renames)
    addable: set[tuple[str, str]] = set()  # adds need a file that has not changed since hashed
    for sha, files in present.items():
        for f in files:
            if policies[f.folder].collections and f.subfolder:
                desired[f.subfolder].add(sha)
    for sha, files in live.items():
        for f in files:
            if policies[f.folder].collections and f.subfolder:
                addable.add((f.subfolder, sha))
    known = {c.name: c for c in snap.collections}

    def whole(name: str) -> bool:
        """Whether the snapshot decides the collection whole (``Snapshot.whole_collections``):
        else it only adds to it (a part of its files would look like an emptied subfolder)."""
        return snap.whole_collections is None or name in snap.whole_collections

    recorded: dict[str, set[str]] = defaultdict(set)
    for name, sha in snap.memberships:
        recorded[name].add(sha)

    # A subfolder renamed on disk: an emptied known collection whose recorded
    # members are exactly a new name's members is renamed, not re-created.
    renamed: dict[str, str] = {}
    new_names = [n for n in desired if n not in known]

    def empty(name: str) -> bool:
        return not desired.get(name) and name not in snap.occupied

    for old, record in known.items():
        if not empty(old) or not recorded.get(old) or bad_folders or not whole(old):
            continue
        match = [n for n in new_names
                 if desired[n] == recorded[old] and n not in snap.occupied and n not in renamed.values()]
        if len(match) == 1:
            renamed[old] = match[0]
            result.actions.append(RenameCollection(old, match[0], record.collection_id))
    after_rename = {renamed.get(n, n) for n in known}
    membership = {(renamed.get(n, n), s) for n, s in snap.memberships}

    for name in sorted(desired):
        if name not in after_rename:
            result.actions.append(CreateCollection(name))
    for name in sorted(desired):
        for sha in sorted(desired[name]):
            content = snap.contents.get(sha)
            if (name, sha) not in membership and (name, sha) in addable and content is not None \
                    and ready_for_collection(content, policies[present[sha][0].folder]):
                assert content.video_id is not None
                result.actions.append(AddToCollection(name, sha, content.video_id, live[sha][0].path))
    if bad_folders:
        return  # an unreadable folder might hold members: remove nothing this pass
    for name, sha in sorted(membership):
        content = snap.contents.get(sha)
        if sha not in desired.get(name, set()) and content is not None and content.video_id and content.state == "uploaded" \
                and whole(name):
            result.actions.append(RemoveFromCollection(name, sha, content.video_id))
    remove_empty = any(p.remove_empty_collections for p in policies.values())
    if remove_empty:
        for old, record in known.items():
            name = renamed.get(old, old)
            if empty(name) and whole(old):
                result.actions.append(DeleteCollection(name, record.collection_id))


# --------------------------------------------------------------- deletions
def _plan_local_deletions(
    snap: Snapshot, settings: Settings, policies: dict[Path, FolderPolicy],
    present: dict[str, list[FileRecord]], vanished: dict[str, list[_Vanished]], partly_read: set[Path],
    result: Plan,
) -> list[tuple[Path, Action]]:
    """Vanished or rewritten paths: moves are forgotten; the last copy's content is deleted
    remotely, once nothing could still hold it (see ``_could_hold``). Not in a folder read
    only in part: a vanished file there may be behind the unreadable part."""
    deletions: list[tuple[Path, Action]] = []
    uploads_by_sha = {u.sha256: u for u in snap.uploads}
    for sha, gone in vanished.items():
        if any(v.folder in partly_read for v in gone):
            continue
        content = snap.contents.get(sha)
        if present.get(sha) or content is None:
            for v in gone:
                result.actions.append(_forget(v, sha, "moved" if present.get(sha) else "gone"))
            continue
        upload = uploads_by_sha.get(sha)
        wants_delete = any(policies[v.folder].delete_remote for v in gone)
        deletes = bool(content.video_id and content.state == "uploaded" and wants_delete)
        if deletes or upload is not None:
            waited = min(v.since for v in gone)
            if snap.now - waited < settings.delete_grace:
                result.revisit(waited + settings.delete_grace)
                continue  # a move target may still appear
            holders = _could_hold(content, gone, snap.unknown)
            if holders:
                if snap.now - waited < settings.delete_wait:
                    result.revisit(waited + settings.delete_wait)
                    result.deferred.append(DeferredDeletion(
                        sha, content.video_id, tuple(v.folder / v.rel_path for v in gone),
                        tuple(u.path for u in holders)))
                    continue
                result.notes.append(
                    f"{', '.join(str(v.folder / v.rel_path) for v in gone)}: waited safety.delete_wait "
                    f"({settings.delete_wait:g}s) for {len(holders)} unsettled file(s) that could hold "
                    "its content; deleting now")
        if upload is not None:
            result.actions.append(AbortUpload(upload.upload_id, sha, "local file deleted"))
        if deletes:
            assert content.video_id is not None
            folder = gone[0].folder
            paths = tuple(v.rel_path for v in gone)
            keep = _not_ours_alone(snap, content)
            if keep is not None:
                result.actions.append(UnlinkVideo(sha, content.video_id, folder, paths, keep))
            elif content.owned and snap.marks_error is not None:
                result.notes.append(f"{folder / paths[0]}: remote video {content.video_id} not deleted this pass: "
                                    f"cannot read which syncd instances hold it ({snap.marks_error})")
            else:
                reason = "rewritten" if all(v.rewritten for v in gone) else "deleted"
                action = DeleteRemote(sha, content.video_id, folder, paths, reason)
                result.actions.append(action)
                deletions.append((folder, action))
        else:
            for v in gone:
                result.actions.append(_forget(v, sha, "rewritten" if v.rewritten else "deleted locally"))
    return deletions


def _not_ours_alone(snap: Snapshot, content: ContentRecord) -> str | None:
    """Why a remote video must outlive our last local copy, or None if we may delete it."""
    if not content.owned:
        return "another syncd instance uploaded it"
    others = (snap.marks or {}).get(content.video_id or "", frozenset()) - {snap.instance}
    if others:
        return f"syncd instance {', '.join(sorted(others))} holds it too"
    return None


def _forget(v: _Vanished, sha: str, reason: str) -> ForgetFile:
    """Forget a vanished path's record, or a rewritten path's record of its old content."""
    return ForgetFile(v.folder, v.rel_path, reason, sha if v.rewritten else None)


def _could_hold(content: ContentRecord, gone: list[_Vanished], unknown: tuple[UnknownFile, ...]) -> list[UnknownFile]:
    """Files whose content is not known yet that could turn out to hold ``content``: the same
    inode as a vanished path (a rename), a file at a vanished path, a file of the same size
    (a finished copy not settled yet), or a smaller one still settling (a copy in progress)."""
    inodes = {v.inode for v in gone if v.inode is not None}
    paths = {(v.folder, v.rel_path) for v in gone if not v.rewritten}
    return [
        u for u in unknown
        if u.inode in inodes or (u.folder, u.rel_path) in paths or u.size == content.size
        or (u.settling and u.size < content.size)
    ]


def _plan_remote_deletions(
    snap: Snapshot, policies: dict[Path, FolderPolicy], present: dict[str, list[FileRecord]],
    bad_folders: set[Path], result: Plan,
) -> list[tuple[Path, Action]]:
    if snap.remote is None:
        return []
    deletions: list[tuple[Path, Action]] = []
    for sha, content in snap.contents.items():
        if content.state != "uploaded" or not content.video_id or content.video_id in snap.remote.video_ids:
            continue
        files = present.get(sha, [])
        if any(f.folder in bad_folders for f in files):
            continue  # act once the folder is back
        by_folder: dict[Path, list[str]] = defaultdict(list)
        for f in files:
            by_folder[f.folder].append(f.rel_path)
        if not by_folder:
            result.actions.append(RemoteDeleted(sha, content.video_id, Path(), (), "keep"))
            continue
        for folder, rel_paths in by_folder.items():
            policy = policies[folder].on_remote_delete
            action = RemoteDeleted(sha, content.video_id, folder, tuple(rel_paths), policy)  # type: ignore[arg-type]
            result.actions.append(action)
            if policy != "keep":
                deletions.append((folder, action))
    return deletions


def _guard_mass_delete(
    snap: Snapshot, settings: Settings, deletions: list[tuple[Path, Action]], result: Plan
) -> None:
    if not deletions or settings.allow_mass_delete:
        return
    tracked: dict[Path, int] = defaultdict(int)
    if snap.tracked is not None:
        tracked.update(snap.tracked)
    else:
        linked: dict[Path, set[str]] = defaultdict(set)
        for f in snap.files:
            content = snap.contents.get(f.sha256 or "")
            if content is not None and content.video_id:
                linked[f.folder].add(content.sha256)
        tracked.update({folder: len(shas) for folder, shas in linked.items()})
    counts: dict[Path, int] = defaultdict(int)
    for folder, _ in deletions:
        counts[folder] += 1
    over = [
        (folder, n, tracked[folder])
        for folder, n in counts.items()
        if n > 1 and n * 100 > settings.max_delete_percent * max(tracked[folder], 1)
    ]
    if not over:
        return
    held = {id(a) for _, a in deletions}
    result.actions = [a for a in result.actions if id(a) not in held]
    for folder, n, total in over:
        result.blocked.append(
            f"{folder}: refusing to delete {n} of {total} tracked videos "
            f"(more than safety.max_delete_percent={settings.max_delete_percent:g}%); nothing was deleted. "
            "Check the folder, then rerun with `syncd sync --allow-mass-delete` or raise the limit."
        )
