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
from dataclasses import dataclass, field
from pathlib import Path

from syncd.catalog import Catalog
from syncd.config import Config
from syncd.errors import AuthError
from syncd.executor import ExecOptions, ExecResult, Executor, FatalRemoteError
from syncd.hashing import hash_files
from syncd.mirror.mirror import Mirror, MirrorReport
from syncd.models import ContentRecord, FolderScan, LocalFile, Plan
from syncd.planner import FolderPolicy, RemoteView, Settings, Snapshot, plan
from syncd.remote.base import Remote
from syncd.report import FileStatus, file_statuses, folder_policy, iter_file_statuses
from syncd.scan import ScanProgress, ScanRules, folder_problem, scan_folder

log = logging.getLogger("syncd.engine")

RECORD_BATCH = 1000  # hashed files recorded per transaction during a walk's hashing

__all__ = ["Engine", "PassReport", "SyncOutcome", "file_statuses", "folder_policy", "iter_file_statuses"]


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
        on_progress: Callable[[ScanProgress], None] = lambda p: None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.remote = remote
        self.dry_run = dry_run
        self.allow_mass_delete = allow_mass_delete
        self.delete_grace = delete_grace
        self.clock = clock
        self.stop_event = stop_event or threading.Event()
        self.on_progress = on_progress  # scan and hash counters, as they grow
        self._complete_scans: dict[Path, FolderScan] = {}  # the last scan of each folder, if complete
        self._quiet: tuple[_PlanInputs, Plan] | None = None  # the last plan, if it had nothing to do
        self._in_progress: tuple[tuple[int, int], list[ContentRecord]] | None = None  # by catalog.changes
        self._pulls_recovered = False
        self._listed: frozenset[str] = frozenset()  # video ids of the last complete listing
        self._statuses: tuple[tuple[int, int], list[FileStatus]] | None = None  # by catalog.changes
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
        progress = ScanProgress()
        for folder in self.config.folders:
            last = self._complete_scans.get(folder.path)
            if folder.path in unchanged and last is not None and folder_problem(folder.path, folder.require_marker) is None:
                scans.append(last)
                continue
            self._complete_scans.pop(folder.path, None)
            rules = ScanRules(folder.include, folder.exclude, self.config.upload.settle_seconds, folder.require_marker)
            scan = scan_folder(folder.path, rules, now)
            scans.append(scan)
            problems += scan.skipped
            if not scan.ok:
                problems.append(scan.error or f"{folder.path}: cannot scan")
                log.warning("%s", scan.error)
                continue
            known = self.catalog.recorded(folder.path)
            seen, unsettled, to_hash = [], [], []
            as_recorded = 0  # seen files recorded present with the same stat: nothing to write
            for local in scan.files:
                if not local.settled:
                    unsettled.append(local.rel_path)
                    continue
                record = known.get(local.rel_path)
                stat = (local.size, local.mtime_ns, local.inode)
                if record is not None and record.sha256 and (record.size, record.mtime_ns, record.inode) == stat:
                    seen.append((local, record.sha256))
                    as_recorded += record.present
                else:
                    to_hash.append(local)
            progress.files_seen += len(scan.files)
            progress.to_hash += len(to_hash)
            progress.bytes_to_hash += sum(f.size for f in to_hash)
            self.on_progress(progress)
            batch: list[tuple[LocalFile, str]] = []
            for result in hash_files(to_hash, should_stop=self.stop_event.is_set):
                if result.sha256 is None:
                    unsettled.append(result.file.rel_path)
                    if result.error:
                        problems.append(result.error)
                    continue
                hashed += 1
                seen.append((result.file, result.sha256))
                progress.hashed += 1
                progress.bytes_hashed += result.file.size
                self.on_progress(progress)
                batch.append((result.file, result.sha256))
                if len(batch) >= RECORD_BATCH:  # a long first pass: a kill loses at most a batch
                    self.catalog.record_seen(folder.path, batch, now)
                    batch = []
            recorded_present = sum(r.present for r in known.values())
            if not unsettled and not to_hash and as_recorded == len(seen) == recorded_present:
                self.catalog.scan_unchanged(folder.path, now)  # the usual rescan: nothing new
            else:
                self.catalog.record_scan(folder.path, seen, unsettled, now)
            if not unsettled:
                self._complete_scans[folder.path] = scan
        return scans, problems, hashed

    # ------------------------------------------------------------------- pass
    def run_pass(self, *, with_listing: bool = True, unchanged: Collection[Path] = (),
                 newest: bool = False) -> PassReport:
        """One pass. ``unchanged``: folders not to walk again if possible (see ``observe``).
        ``newest`` (without ``with_listing``): look for new remote videos to pull at the
        newest end of the listing only (the daemon's polls between complete listings)."""
        scans, problems, hashed = self.observe(unchanged)
        problems += self.executor.refresh(self._contents_in_progress())
        remote = self.executor.read_listing() if with_listing else None
        if remote is not None:
            self._listed = remote.video_ids
            self.catalog.listing_read(self.clock())
        fresh = self._read_newest() if newest and remote is None else None
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
            )
            the_plan = plan(snapshot, settings)
        has_work = bool(the_plan.actions or the_plan.blocked) or self.dry_run
        self._quiet = None if has_work else (inputs, the_plan)
        for line in the_plan.blocked:
            log.error("%s", line)
        if self.dry_run:
            return PassReport(scans, the_plan, ExecResult(notes=list(the_plan.notes)), remote is not None, hashed, problems)
        self.catalog.set_meta("blocked", "\n".join(the_plan.blocked) or None)
        result = self.executor.execute(the_plan)
        if adopt and remote is not None:
            self.catalog.set_meta("adopt_remote", "0")
        for line in result.notes:
            log.info("%s", line)
        mirrored = self._mirror(remote, [s.folder for s in scans if not s.ok], fresh)
        result.notes += mirrored.notes
        problems += mirrored.problems
        return PassReport(scans, the_plan, result, remote is not None, hashed, problems, mirrored)

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

    def _read_newest(self) -> RemoteView | None:
        """New remote videos (for ``mirror.pull_remote``): those newer than any video the
        last complete listing or the catalog knows."""
        if not self.config.mirror.pull_remote:
            return None
        return self.executor.read_newest(self._listed | self.catalog.known_video_ids())

    def _mirror(self, listing: RemoteView | None, unavailable: list[Path],
                newest: RemoteView | None = None) -> MirrorReport:
        if not self.mirror.due(listing, newest):
            return self.mirror.skipped()
        try:
            return self.mirror.run(self.statuses(), listing, unavailable, newest)
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
        )

    def _adoptable(self, remote: RemoteView) -> dict[str, str]:
        """Catalog recovery: remote videos named like a local file whose size fits."""
        contents = {c.sha256: c for c in self.catalog.contents()}  # one read, not one per file
        linked = {c.video_id for c in contents.values() if c.video_id}
        found: dict[str, str] = {}
        for file in self.catalog.files():
            if not file.present or not file.sha256:
                continue
            content = contents.get(file.sha256)
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
        """Built again only once the catalog changed (the mirror and ``sync`` both ask)."""
        changes = self.catalog.changes
        if self._statuses is None or self._statuses[0] != changes:
            self._statuses = (changes, file_statuses(self.config, self.catalog))
        return self._statuses[1]

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
            not f.settled for s in report.scans for f in s.files
        ) or (report.mirror is not None and report.mirror.pending > 0)


def _fits(path: Path, size: int, remote_size: int | None, remote_duration: float | None) -> bool:
    """Catalog recovery: does a remote video plausibly hold this file? Size first, else duration."""
    if remote_size is not None:
        return remote_size == size
    if remote_duration is None:
        return True  # the name is all the remote tells; the name is syncd's own relative path
    from syncd.media import probe_duration

    local = probe_duration(path)
    return local is None or abs(local - remote_duration) <= 1.0
