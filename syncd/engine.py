"""One reconcile pass, and ``sync`` (passes until done). Both the one-shot CLI
and the daemon's watcher and timers end here, so one path writes the catalog.

A pass:
1. observe: scan every folder (stat only), hash new or changed settled files,
   record the scan in the catalog;
2. refresh: poll processing/pipeline states of unfinished videos (reads);
3. list: read the complete remote listing (if asked), for remote deletions
   and catalog recovery;
4. plan: the pure planner decides; guards drop what must not happen;
5. execute (unless dry-run);
6. mirror (unless dry-run): sidecars and the search index for finished videos,
   and pulling remote-only videos (``syncd.mirror``).

A quiet pass over a settled tree (the daemon's remote poll, most of the time)
stays cheap at 10,000 files: a folder the caller vouches for is not walked again
(``observe``), the last empty plan is reused while nothing it was made from has
changed (``_still_quiet``), and the mirror runs only when it has something to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

from syncd.catalog import Catalog
from syncd.config import Config, FolderConfig
from syncd.errors import AuthError
from syncd.executor import ExecOptions, ExecResult, Executor, FatalRemoteError
from syncd.hashing import hash_files
from syncd.mirror.mirror import Mirror, MirrorReport
from syncd.models import ContentRecord, FolderScan, LocalFile, Plan, RecordedFile, UnknownFile
from syncd.planner import FolderPolicy, RemoteView, Settings, Snapshot, plan
from syncd.remote.base import Remote
from syncd.report import FileStatus, file_status
from syncd.scan import ScanRules, folder_problem, scan_folder

log = logging.getLogger("syncd.engine")


def folder_policy(folder: FolderConfig, scan_ok: bool = True) -> FolderPolicy:
    return FolderPolicy(
        path=folder.path,
        scan_ok=scan_ok,
        collections=folder.collections == "subfolder",
        pipelines=tuple(folder.pipelines),
        delete_remote=folder.delete_remote,
        on_remote_delete=folder.on_remote_delete,
        remove_empty_collections=folder.remove_empty_collections,
    )


def file_statuses(config: Config, catalog: Catalog) -> list[FileStatus]:
    """Every tracked, present file's status (``syncd status``, ``sync --wait``, the mirror)."""
    policies = {f.path: folder_policy(f) for f in config.folders}
    memberships = catalog.memberships()
    contents = {c.sha256: c for c in catalog.contents()}
    return [
        file_status(f, contents.get(f.sha256 or ""), policies[f.folder], memberships, config.upload.max_attempts)
        for f in catalog.files()
        if f.present and f.folder in policies
    ]


@dataclass(frozen=True)
class _PlanInputs:
    """What a plan depends on besides the clock (the catalog by its change counter)."""

    changes: tuple[int, int]
    listing: RemoteView | None
    scans_ok: tuple[bool, ...]


@dataclass
class PassReport:
    scans: list[FolderScan]
    plan: Plan
    result: ExecResult
    listing_ok: bool
    hashed: int = 0
    problems: list[str] = field(default_factory=list)  # folder and hashing problems
    mirror: MirrorReport | None = None  # None on a dry run


@dataclass
class SyncOutcome:
    statuses: list[FileStatus]
    reports: list[PassReport]
    timed_out: bool = False

    @property
    def failures(self) -> list[str]:
        lines = [f"{s.path}: {s.error or 'failed'}" for s in self.statuses if s.state == "failed"]
        for report in self.reports[-1:]:
            lines += report.plan.blocked
            lines += report.problems
            lines += report.result.failed
        return list(dict.fromkeys(lines))

    @property
    def pending(self) -> list[FileStatus]:
        return [s for s in self.statuses if not s.terminal]


class Engine:
    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        remote: Remote,
        *,
        dry_run: bool = False,
        allow_mass_delete: bool = False,
        delete_grace: float = 0.0,
        clock: Callable[[], float] = time.time,
        on_bytes: Callable[[int], None] = lambda n: None,
        stop_event: threading.Event | None = None,
        sidecar_hook: Callable[[str, Path, Path | None], None] | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.remote = remote
        self.dry_run = dry_run
        self.allow_mass_delete = allow_mass_delete
        self.delete_grace = delete_grace
        self.clock = clock
        self.stop_event = stop_event or threading.Event()
        self._complete_scans: dict[Path, FolderScan] = {}  # the last scan of each folder, if complete
        self._quiet: tuple[_PlanInputs, Plan] | None = None  # the last plan, if it had nothing to do
        self._in_progress: tuple[tuple[int, int], list[ContentRecord]] | None = None  # by catalog.changes
        self._pulls_recovered = False
        self.mirror = Mirror(config, catalog, remote, clock=clock, should_stop=self.stop_event.is_set)
        self.executor = Executor(
            remote,
            catalog,
            ExecOptions(
                part_size=config.upload.part_size,
                concurrency=config.upload.concurrency,
                max_attempts=config.upload.max_attempts,
                retry_base=config.upload.retry_backoff,
                direct_upload_below=config.upload.direct_upload_below,
                key_source=config.remote.api_key_source,
                should_stop=self.stop_event.is_set,
                on_bytes=on_bytes,
                sidecar_hook=sidecar_hook or self.mirror.sidecar_hook,
            ),
            clock=clock,
        )

    # ---------------------------------------------------------------- observe
    def observe(self, unchanged: Collection[Path] = ()) -> tuple[list[FolderScan], list[str], int]:
        """Scan and hash every folder; record what was seen. Returns (scans, problems, hashed).

        ``unchanged``: folders the caller vouches nothing changed in since the last
        observe (the daemon: watched, and no event came). Such a folder is not walked
        again if its last scan was complete (every file settled and hashed) and the
        folder itself still passes its guard (mounted, readable, marker present).
        """
        if not self._pulls_recovered and not self.dry_run:
            self.mirror.recover_pulls()  # before a scan could take a pulled file for new content
            self._pulls_recovered = True
        scans: list[FolderScan] = []
        problems: list[str] = []
        hashed = 0
        now = self.clock()
        for folder in self.config.folders:
            last = self._complete_scans.get(folder.path)
            if folder.path in unchanged and last is not None and folder_problem(folder.path, folder.require_marker) is None:
                scans.append(last)
                continue
            self._complete_scans.pop(folder.path, None)
            scan, folder_hashed = self._observe_folder(folder, now, problems)
            scans.append(scan)
            hashed += folder_hashed
        return scans, problems, hashed

    def _observe_folder(self, folder: FolderConfig, now: float, problems: list[str]) -> tuple[FolderScan, int]:
        """Scan one folder, learn each file's content, record the scan. The returned scan
        lists the files whose content this pass does not know (``FolderScan.unknown``)."""
        base = self.config.upload.settle_seconds
        longer = {rel: settle_time(base, level) for rel, level in self.catalog.settle_levels(folder.path).items()}
        rules = ScanRules(folder.include, folder.exclude, base, folder.require_marker)
        scan = scan_folder(folder.path, rules, now, longer)
        problems += scan.skipped
        if not scan.ok:
            problems.append(scan.error or f"{folder.path}: cannot scan")
            log.warning("%s", scan.error)
            return scan, 0
        known = self.catalog.recorded(folder.path)
        # A file renamed or moved (within one filesystem) keeps its inode, size and mtime: its
        # content is known at once, without reading it or waiting for it to settle.
        strangers = {f.inode for f in scan.files if not _as_recorded(known.get(f.rel_path), f)}
        moved = self.catalog.known_versions(strangers) if strangers else {}
        seen: list[tuple[LocalFile, str]] = []
        unsettled: list[str] = []
        to_hash: list[LocalFile] = []
        unknown: list[UnknownFile] = []
        changed: list[LocalFile] = []  # content not known: read it once settled
        as_recorded = 0  # seen files recorded present with the same stat: nothing to write
        for local in scan.files:
            record = known.get(local.rel_path)
            if record is not None and record.sha256 and _as_recorded(record, local):
                seen.append((local, record.sha256))
                as_recorded += record.present
                continue
            sha = moved.get((local.size, local.mtime_ns, local.inode))
            if sha is not None:
                seen.append((local, sha))
            else:
                changed.append(local)
        # A path that changed after it had counted as settled (a slow writer's pause) settles
        # longer, from this very pass on.
        rewritten = [f.rel_path for f in changed if (r := known.get(f.rel_path)) is not None and r.sha256]
        if rewritten:
            self.catalog.note_changed(folder.path, rewritten, now, MAX_SETTLE_LEVEL)
            levels = self.catalog.settle_levels(folder.path)
            changed = [_resettle(f, settle_time(base, levels.get(f.rel_path, 0)), now) for f in changed]
            resettled = {f.rel_path: f for f in changed}
            scan = replace(scan, files=tuple(resettled.get(f.rel_path, f) for f in scan.files))
        for local in changed:
            if local.settled:
                to_hash.append(local)
                continue
            unsettled.append(local.rel_path)
            # An empty file that has not changed for a while is just an empty file (never synced).
            if local.size > 0 or now - local.changed < local.settle:
                unknown.append(UnknownFile(folder.path, local.rel_path, local.size, local.inode, settling=True))
        hashed = 0
        for result in hash_files(to_hash, should_stop=self.stop_event.is_set):
            if result.sha256 is None:
                unsettled.append(result.file.rel_path)
                f = result.file
                unknown.append(UnknownFile(folder.path, f.rel_path, f.size, f.inode, settling=True))
                if result.error:
                    problems.append(result.error)
                continue
            hashed += 1
            seen.append((result.file, result.sha256))
        recorded_present = sum(r.present for r in known.values())
        if not unsettled and not to_hash and as_recorded == len(seen) == recorded_present:
            self.catalog.scan_unchanged(folder.path, now)  # the usual rescan: nothing new
        else:
            self.catalog.record_scan(folder.path, seen, unsettled, now)
        if not unsettled:
            self._complete_scans[folder.path] = scan
        return replace(scan, unknown=tuple(unknown)), hashed

    # ------------------------------------------------------------------- pass
    def run_pass(self, *, with_listing: bool = True, unchanged: Collection[Path] = ()) -> PassReport:
        """One pass. ``unchanged``: folders not to walk again if possible (see ``observe``)."""
        scans, problems, hashed = self.observe(unchanged)
        problems += self.executor.refresh(self._contents_in_progress())
        remote = self.executor.read_listing() if with_listing else None
        adopt = self.catalog.get_meta("adopt_remote") == "1"
        inputs = _PlanInputs(self.catalog.changes, remote, tuple(s.ok for s in scans))
        quiet = None if adopt else self._still_quiet(inputs)
        if quiet is not None:
            inputs, the_plan = quiet  # keep what it was made from (its listing, say)
        else:
            snapshot = self.snapshot(scans, remote, self._adoptable(remote) if adopt and remote else {})
            settings = Settings(
                max_delete_percent=self.config.safety.max_delete_percent,
                delete_grace=self.delete_grace,
                allow_mass_delete=self.allow_mass_delete,
                max_attempts=self.config.upload.max_attempts,
                adopt_remote=adopt and remote is not None,
                delete_wait=self.config.safety.delete_wait,
            )
            the_plan = plan(snapshot, settings)
        # Files not settled yet change the plan as they settle, though no catalog row changes.
        waiting = bool(the_plan.deferred or the_plan.settling)
        has_work = bool(the_plan.actions or the_plan.blocked) or waiting or self.dry_run
        self._quiet = None if has_work else (inputs, the_plan)
        for line in the_plan.blocked:
            log.error("%s", line)
        if self.dry_run:
            return PassReport(scans, the_plan, ExecResult(notes=list(the_plan.notes)), remote is not None, hashed, problems)
        self.catalog.set_meta("blocked", "\n".join(the_plan.blocked) or None)
        self._record_deferred(the_plan)
        result = self.executor.execute(the_plan)
        if adopt and remote is not None:
            self.catalog.set_meta("adopt_remote", "0")
        for line in result.notes:
            log.info("%s", line)
        mirrored = self._mirror(remote, [s.folder for s in scans if not s.ok])
        result.notes += mirrored.notes
        problems += mirrored.problems
        return PassReport(scans, the_plan, result, remote is not None, hashed, problems, mirrored)

    def _record_deferred(self, the_plan: Plan) -> None:
        """What ``syncd status`` shows of deletions waiting for unsettled files (written only
        when it changes, so a waiting pass does not count as a catalog change)."""
        summary = the_plan.waiting_summary()
        text = None if summary is None else "\n".join([summary, *(d.describe() for d in the_plan.deferred)])
        if self.catalog.get_meta("deferred") != text:
            self.catalog.set_meta("deferred", text)

    def _contents_in_progress(self) -> list[ContentRecord]:
        """``Catalog.contents_in_progress``, read again only once the catalog changed: it
        reads every step row, which a quiet pass over 10,000 videos need not repeat."""
        changes = self.catalog.changes
        if self._in_progress is None or self._in_progress[0] != changes:
            self._in_progress = (changes, self.catalog.contents_in_progress())
        return self._in_progress[1]

    def _still_quiet(self, inputs: _PlanInputs) -> tuple[_PlanInputs, Plan] | None:
        """The last plan, if it had nothing to do and nothing it was made from has changed
        since: the same catalog, folder guards and listing (or none read now, which can
        only plan less), and no retry or delete grace fallen due. A settled tree then
        costs a remote poll no snapshot and no planning."""
        if self._quiet is None:
            return None
        before, last = self._quiet
        same = (
            inputs.changes == before.changes
            and inputs.scans_ok == before.scans_ok
            and (inputs.listing is None or inputs.listing == before.listing)
        )
        if not same or (last.revisit_at is not None and self.clock() >= last.revisit_at):
            return None
        return self._quiet

    def _mirror(self, listing: RemoteView | None, unavailable: list[Path]) -> MirrorReport:
        if not self.mirror.due(listing):
            return self.mirror.skipped()
        try:
            return self.mirror.run(self.statuses(), listing, unavailable)
        except AuthError as exc:
            raise FatalRemoteError(
                f"the remote rejected the API key from {self.config.remote.api_key_source} ({exc}); stopping"
            ) from exc

    def snapshot(self, scans: list[FolderScan], remote: RemoteView | None, adoptable: dict[str, str]) -> Snapshot:
        ok = {s.folder: s.ok for s in scans}
        return Snapshot(
            folders=tuple(folder_policy(f, ok.get(f.path, True)) for f in self.config.folders),
            files=tuple(self.catalog.files()),
            contents={c.sha256: c for c in self.catalog.contents()},
            uploads=tuple(self.catalog.uploads()),
            collections=tuple(self.catalog.collections()),
            memberships=frozenset(self.catalog.memberships()),
            remote=remote,
            now=self.clock(),
            adoptable=adoptable,
            unknown=tuple(u for s in scans for u in s.unknown),
            superseded=tuple(self.catalog.superseded()),
        )

    def _adoptable(self, remote: RemoteView) -> dict[str, str]:
        """Catalog recovery: remote videos named like a local file whose size fits."""
        linked = {c.video_id for c in self.catalog.contents() if c.video_id}
        found: dict[str, str] = {}
        for file in self.catalog.files():
            if not file.present or not file.sha256:
                continue
            content = self.catalog.content(file.sha256)
            if content is None or content.state != "new":
                continue
            candidates = [v for v in remote.names.get(file.rel_path, ()) if v not in linked]
            if len(candidates) != 1:
                continue
            try:
                details = self.remote.video_details(candidates[0])
            except Exception as exc:  # noqa: BLE001 - a failed check just means "upload"
                log.info("cannot check remote %s for %s: %s", candidates[0], file.path, exc)
                continue
            if not _fits(file.path, file.size, details.size_bytes, details.duration_seconds):
                log.info("%s: a remote video has that name but another size or duration; uploading", file.path)
                continue
            found[f"{file.folder}\0{file.rel_path}"] = candidates[0]
            linked.add(candidates[0])
        return found

    # ----------------------------------------------------------------- status
    def statuses(self) -> list[FileStatus]:
        return file_statuses(self.config, self.catalog)

    # ------------------------------------------------------------------- sync
    def sync(self, *, wait: bool = False, timeout: float | None = None,
             poll_start: float = 0.5, poll_max: float = 5.0) -> SyncOutcome:
        """One pass, or with ``wait`` passes until every file is terminal (or timeout)."""
        deadline = None if timeout is None else self.clock() + timeout
        reports: list[PassReport] = []
        delay = poll_start
        while True:
            report = self.run_pass()
            reports.append(report)
            statuses = self.statuses()
            if not wait or self.dry_run or report.plan.blocked or self.stop_event.is_set():
                return SyncOutcome(statuses, reports)
            busy = any(not s.terminal for s in statuses) or self._work_left(report)
            if not busy:
                return SyncOutcome(statuses, reports)
            if deadline is not None and self.clock() + delay > deadline:
                return SyncOutcome(statuses, reports, timed_out=True)
            if self.stop_event.wait(delay):
                return SyncOutcome(statuses, reports)
            delay = min(poll_max, delay * 1.5)

    def _work_left(self, report: PassReport) -> bool:
        """Actions this pass planned that change something (a next pass may have more),
        or finished videos whose sidecars and index entries are not written yet."""
        return any(a.kind not in ("ForgetFile",) for a in report.plan.actions) or any(
            s.unknown for s in report.scans
        ) or (report.mirror is not None and report.mirror.pending > 0)


MAX_SETTLE_LEVEL = 6  # a path that keeps changing after settling waits at most 64 × settle_seconds


def settle_time(base: float, level: int) -> float:
    """How long a path must hold still: ``settle_seconds``, doubled each time the path changed
    after it had counted as settled (a slow writer's pauses), at most ``MAX_SETTLE_LEVEL`` times."""
    return base * 2 ** min(level, MAX_SETTLE_LEVEL)


def _resettle(file: LocalFile, settle: float, now: float) -> LocalFile:
    """``file`` judged by a (longer) settle time."""
    return replace(file, settle=settle, settled=file.size > 0 and now - file.changed >= settle)


def _as_recorded(record: RecordedFile | None, local: LocalFile) -> bool:
    """The catalog's record of this path is of this very file version (same size, mtime, inode)."""
    return record is not None and (record.size, record.mtime_ns, record.inode) == (local.size, local.mtime_ns, local.inode)


def _fits(path: Path, size: int, remote_size: int | None, remote_duration: float | None) -> bool:
    """Catalog recovery: does a remote video plausibly hold this file? Size first, else duration."""
    if remote_size is not None:
        return remote_size == size
    if remote_duration is None:
        return True  # the name is all the remote tells; the name is syncd's own relative path
    from syncd.media import probe_duration

    local = probe_duration(path)
    return local is None or abs(local - remote_duration) <= 1.0
