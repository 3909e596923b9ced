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

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from syncd.store.catalog import Catalog, ScanSummary
from syncd.config import Config, FolderConfig, SafetyConfig, UploadConfig
from syncd.errors import AuthError, RemoteError, TransportError
from syncd.sync.executor import ExecOptions, ExecResult, Executor, FatalRemoteError
from syncd.sync.deletion_check import deletion_check_words, listing_due
from syncd.sync.hashing import hash_files
from syncd.sync.instances import NOTE_EVERY, clash, make_note, parse_note, read_marks
from syncd.mirror.mirror import Mirror, MirrorOptions, MirrorReport
from syncd.models import (
    CreateCollection, DeleteCollection, DeleteRemote, FileRecord, FolderScan, Listing,
    LocalFile, Plan, RecordedFile, RenameCollection, UnknownFile,
)
from syncd.sync.planner import Adoptable, FolderPolicy, RemoteView, Settings, Snapshot, plan, waits_for_retry
from syncd.sync.progress import NullProgress, SyncProgress, Waiting
from syncd.sync.proof import Verdict, judge
from syncd.remote.base import InstanceMarks, Marks, Remote
from syncd.sync.report import (
    TERMINAL,
    FileStatus,
    StatusOverview,
    done_rules,
    file_statuses,
    folder_policy,
    iter_file_statuses,
    iter_statuses_of,
    overview_of,
    statuses_of,
)
from syncd.sync.scan import (
    BatchSink,
    ScanProgress,
    ScanRules,
    count_files,
    folder_problem,
    scan_changes,
    target_walkable,
    unreadable_problem,
)

log = logging.getLogger("syncd.sync.engine")

PENDING_KEPT = 10_000  # statuses of files not done a ``sync`` keeps for its report (all are counted)
RECORD_BATCH = 1000  # hashed files recorded per transaction during a walk's hashing
# Files a walk hands on at a time to be hashed and recorded, and new contents planned
# (and executed) at a time: what a first pass over a huge tree holds (``EngineOptions.batch``).
BATCH = 5000
# Videos in flight a pass asks the state of, one request each (``EngineOptions.polls``),
# those asked longest ago first: ~1.3 s of CPU a poll however many are processing.
POLLS = 1000

__all__ = ["Engine", "EngineOptions", "PassReport", "SyncOutcome", "file_statuses", "folder_policy", "iter_file_statuses"]


@dataclass(frozen=True)
class _PlanInputs:
    """What a plan depends on besides the clock (the catalog by its change counter)."""

    changes: tuple[int, int]
    listing: Listing | None
    scans_ok: tuple[bool, ...]


@dataclass(frozen=True)
class EngineOptions:
    """What the engine reads of the config (``from_config``), rather than the whole of it."""

    folders: tuple[FolderConfig, ...]
    upload: UploadConfig
    safety: SafetyConfig
    instance: str  # this syncd's name on the account
    key_source: str  # where the API key came from, for messages
    mirror: MirrorOptions
    deletion_check: float = 3600.0  # seconds between complete listings in ``sync`` (schedule.deletion_check)
    batch: int = BATCH  # an internal knob, not config: tests make it small
    polls: int = POLLS  # most videos in flight a pass asks the state of, one request each

    @classmethod
    def from_config(cls, config: Config) -> EngineOptions:
        return cls(config.folders, config.upload, config.safety, config.instance,
                   config.remote.api_key_source, MirrorOptions.from_config(config),
                   config.schedule.deletion_check, BATCH)


@dataclass
class PassReport:
    scans: list[FolderScan]
    plan: Plan
    result: ExecResult
    listing_ok: bool
    hashed: int = 0
    problems: list[str] = field(default_factory=list)  # folder and hashing problems
    mirror: MirrorReport | None = None  # None on a dry run
    listing_asked: bool = True  # the pass meant to read the complete listing (``listing_ok``: it did)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, why) of files left out on purpose; an empty file cannot become a video."""
        return [(str(f.path), "empty file") for s in self.scans for f in s.files if f.size == 0]


@dataclass
class SyncOutcome:
    #: Every present file counted by state, and the statuses of the files not done (a
    #: sync over a million files builds no status for the done ones).
    overview: StatusOverview
    reports: list[PassReport]
    timed_out: bool = False
    #: When no pass read the complete listing: when it was last read and is due next
    #: (``deletion_check_words``); None when this sync read it.
    deletion_check: str | None = None

    @property
    def not_done(self) -> list[FileStatus]:
        return self.overview.pending

    @property
    def failures(self) -> list[str]:
        lines = [f"{s.path}: {s.error or 'failed'}" for s in self.not_done if s.state == "failed"]
        for report in self.reports[-1:]:
            lines += report.plan.blocked
            lines += report.problems
            lines += report.result.failed
        return list(dict.fromkeys(lines))

    @property
    def pending(self) -> list[FileStatus]:
        return [s for s in self.not_done if not s.terminal]


class Engine:
    def __init__(
        self,
        options: EngineOptions,
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
        progress: SyncProgress | None = None,
        on_progress: Callable[[ScanProgress], None] | None = None,
    ) -> None:
        self.options = options
        self.catalog = catalog
        self.remote = remote
        self.features = remote.features()
        self.dry_run = dry_run
        self.allow_mass_delete = allow_mass_delete
        self.delete_grace = delete_grace
        self.clock = clock
        self.stop_event = stop_event or threading.Event()
        self.progress = progress or NullProgress()
        # Scan and hash counters, as they grow: to the display unless the caller wants them.
        self.on_progress = on_progress or self.progress.scanning
        self._shows_progress = on_progress is not None or not isinstance(self.progress, NullProgress)
        self._complete_scans: dict[Path, FolderScan] = {}  # the last scan of each folder, if complete
        # With a kept scan: the paths it left unsettled (or unhashed), walked again each pass.
        self._revisit: dict[Path, tuple[str, ...]] = {}
        self._quiet: tuple[_PlanInputs, Plan] | None = None  # the last plan, if it had nothing to do
        self._in_progress: tuple[tuple[int, int], bool] | None = None  # any in progress, by catalog.changes
        # The contents (changed ones among them: table ``plan_dirty``) the last snapshot
        # took, and, once planned, those with no work left and the collection folders planned.
        self._dirty_taken: set[str] = set()
        self._dirty_seen: tuple[set[str], str | None] | None = None
        self._pulls_recovered = False
        self._rules_recorded = False
        self._noted_at: float | None = None  # when this syncd last wrote its instance note
        self.mirror = Mirror(options.mirror, catalog, remote, clock=clock, should_stop=self.stop_event.is_set)
        self.executor = Executor(
            remote,
            catalog,
            ExecOptions(
                part_size=options.upload.part_size,
                concurrency=options.upload.concurrency,
                max_attempts=options.upload.max_attempts,
                retry_base=options.upload.retry_backoff,
                direct_upload_below=options.upload.direct_upload_below,
                key_source=options.key_source,
                should_stop=self.stop_event.is_set,
                on_bytes=on_bytes,
                sidecar_hook=sidecar_hook or self.mirror.sidecar_hook,
                progress=self.progress,
                instance=options.instance,
            ),
            clock=clock,
        )

    # ---------------------------------------------------------------- observe
    def observe(self, unchanged: Collection[Path] = (), changed: Mapping[Path, Collection[str]] | None = None
                ) -> tuple[list[FolderScan], list[str], int]:
        """Scan and hash every folder; record what was seen. Returns (scans, problems, hashed).

        ``unchanged``: folders the caller vouches nothing changed in since the last
        observe (the daemon: watched, and no event came). Such a folder is not walked
        again if its last scan read every subfolder and the folder itself still passes
        its guard (mounted, readable, marker present); only the files that scan left
        unsettled or unhashed are, until they settle.

        ``changed``: for other folders, the relative paths where the caller saw changes
        (the daemon's file events), vouching nothing changed elsewhere in them: under the
        same conditions only those paths are walked (a file, a directory's subtree, a path
        gone) and only their rows read. A path that cannot be walked on its own (a parent
        gone, a symlink on the way) is walked from the nearest parent that can.
        """
        if not self._pulls_recovered and not self.dry_run:
            self.mirror.recover_pulls()  # before a scan could take a pulled file for new content
            self._pulls_recovered = True
        if not self._rules_recorded:
            # The catalog keeps every file's done state under these (``syncd status`` counts it).
            self.catalog.set_done_rules(done_rules(self.options.folders, self.features))
            self.catalog.set_processing_rule(self.features.processing_steps)
            if self.features.marks is not None:
                self.catalog.set_mark_rule(self._mark_steps())
            self._rules_recorded = True
        problems: list[str] = []
        hashed = 0
        now = self.clock()
        progress = ScanProgress()
        # Each folder's last complete scan (kept: not walked again), or the paths to walk.
        walks: list[FolderScan | tuple[FolderConfig, tuple[str, ...]]] = []
        for folder in self.options.folders:
            last = self._complete_scans.pop(folder.path, None)
            revisit = self._revisit.pop(folder.path, ())
            if last is not None and folder_problem(folder.path, folder.require_marker) is not None:
                last = None
            if folder.path in unchanged and last is not None and not revisit:
                self._complete_scans[folder.path] = last
                walks.append(last)
                continue
            paths: set[str] = set()
            if last is not None and (folder.path in unchanged or (changed and folder.path in changed)):
                # Only what changed, and the files still settling (a file being written
                # elsewhere does not make every pass walk the whole folder).
                paths = {*revisit, *(changed.get(folder.path, ()) if changed else ())}
            walks.append((folder, walk_targets(folder, paths) if paths else ()))
        counter = self._count_ahead(walks, progress)
        scans: list[FolderScan] = []
        for walk in walks:
            if isinstance(walk, FolderScan):
                scans.append(walk)
                continue
            scan, folder_hashed = self._observe_folder(walk[0], now, problems, progress, walk[1])
            scans.append(scan)
            hashed += folder_hashed
        if counter is not None:
            counter.join()  # long done, as a rule: it only lists and stats what the walk hashed
        return scans, problems, hashed

    def _count_ahead(self, walks: list[FolderScan | tuple[FolderConfig, tuple[str, ...]]],
                     progress: ScanProgress) -> threading.Thread | None:
        """A first pass shown as it goes (a display or log wants the counters): count the
        files it will hash and their bytes beside it (``scan.count_files``, in a thread of
        its own, returned; ``ScanProgress.total`` once done), so its ETA covers the whole
        tree, not the files found so far. Only when every folder it walks is walked whole
        and has nothing recorded yet: a rescan costs no second walk."""
        folders = [w[0] for w in walks if not isinstance(w, FolderScan)]
        if (not self._shows_progress or not folders or any(w[1] for w in walks if not isinstance(w, FolderScan))
                or any(self.catalog.any_files(f.path) for f in folders)):
            return None
        rules = [(f.path, ScanRules(f.include, f.exclude, 0, f.require_marker)) for f in folders]

        def count() -> None:
            progress.total = count_files(rules, self.stop_event.is_set)

        counter = threading.Thread(target=count, name="syncd-count", daemon=True)
        counter.start()
        return counter

    def _observe_folder(self, folder: FolderConfig, now: float, problems: list[str],
                        progress: ScanProgress, targets: Collection[str] = ()) -> tuple[FolderScan, int]:
        """Scan one folder, learn each file's content, record the scan. The returned scan
        lists the files whose content this pass does not know (``FolderScan.unknown``).
        ``targets``: walk only these relative paths (see ``observe``), else the folder.

        The walk hands its files on a batch at a time (``EngineOptions.batch``): each batch
        is hashed and recorded before the walk goes on, so a first pass over a million new
        files holds a batch of them, and a kill loses at most ``RECORD_BATCH`` hashed files.
        The returned scan's ``files`` are those not recorded (not settled, empty, unread)."""
        base = self.options.upload.settle_seconds
        longer = {rel: settle_time(base, level) for rel, level in self.catalog.settle_levels(folder.path).items()}
        rules = ScanRules(folder.include, folder.exclude, base, folder.require_marker)
        unsettled: list[str] = []
        unknown: list[UnknownFile] = []
        counts = {"hashed": 0, "seen": 0, "to_hash": 0}  # files hashed, recorded present, to hash

        def take(files: list[LocalFile], known: dict[str, RecordedFile]) -> list[LocalFile]:
            """One batch of the walk's files not as recorded: learn and record their content;
            return those whose content stays unknown."""
            # A file renamed or moved (within one filesystem) keeps its inode, size and mtime: its
            # content is known at once, without reading it or waiting for it to settle.
            strangers = {f.inode for f in files if not _as_recorded(known.get(f.rel_path), f)}
            moved = self.catalog.known_versions(strangers) if strangers else {}
            seen: list[tuple[LocalFile, str]] = []
            changed: list[LocalFile] = []  # content not known: read it once settled
            for local in files:
                record = known.get(local.rel_path)
                if record is not None and record.sha256 and _as_recorded(record, local):
                    seen.append((local, record.sha256))  # back after it had gone missing
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
            to_hash: list[LocalFile] = []
            keep: list[LocalFile] = []
            for local in changed:
                if local.settled:
                    to_hash.append(local)
                    continue
                keep.append(local)
                unsettled.append(local.rel_path)
                # An empty file that has not changed for a while is just an empty file (never synced).
                if local.size > 0 or now - local.changed < local.settle:
                    unknown.append(UnknownFile(folder.path, local.rel_path, local.size, local.inode, settling=True))
            if to_hash and not counts["to_hash"]:
                self.progress.phase(f"hashing new or changed files in {folder.path}")
            counts["to_hash"] += len(to_hash)
            progress.files_seen += len(files)
            progress.to_hash += len(to_hash)
            progress.bytes_to_hash += sum(f.size for f in to_hash)
            self.on_progress(progress)
            for result in hash_files(to_hash, should_stop=self.stop_event.is_set):
                f = result.file
                if result.sha256 is None:
                    keep.append(f)
                    unsettled.append(f.rel_path)
                    unknown.append(UnknownFile(folder.path, f.rel_path, f.size, f.inode, settling=True))
                    if result.error:
                        problems.append(result.error)
                    continue
                counts["hashed"] += 1
                seen.append((f, result.sha256))
                progress.hashed += 1
                progress.bytes_hashed += f.size
                self.on_progress(progress)
                if len(seen) >= RECORD_BATCH:  # a long first pass: a kill loses at most a batch
                    self.catalog.record_seen(folder.path, seen, now)
                    counts["seen"] += len(seen)
                    seen = []
            if seen:
                self.catalog.record_seen(folder.path, seen, now)
                counts["seen"] += len(seen)
            return keep

        scan = self._scan(folder.path, rules, now, longer, targets, take)
        problems += scan.skipped
        if not scan.ok:
            problems.append(scan.error or f"{folder.path}: cannot scan")
            log.debug("%s", scan.error)  # a problem of the pass: its caller reports it, once
            return scan, counts["hashed"]
        # What is recorded under an unreadable directory stays as recorded (the scan does
        # not count it missing).
        partial = unreadable_problem(scan)
        if partial is not None:
            problems.append(partial)
        progress.files_seen += scan.as_recorded
        self.on_progress(progress)
        if counts["seen"] or scan.missing:
            # Files not settled (or not hashed) are left as recorded, as are files as recorded.
            self.catalog.record_changes(folder.path, (), scan.missing, now)
        else:
            self.catalog.scan_unchanged(folder.path, now)  # the usual rescan: nothing new
        self.catalog.record_scan_summary(ScanSummary(
            folder.path, now, empty=sum(1 for f in scan.files if f.size == 0),
            settling=sum(1 for f in scan.files if not f.settled and f.size > 0), unreadable=scan.unreadable))
        if partial is None:
            # Kept for passes that vouch the folder unchanged: nothing per file in it but
            # the paths to look at again (``observe``).
            self._complete_scans[folder.path] = replace(scan, files=(), recorded={}, missing=())
            if unsettled:
                self._revisit[folder.path] = tuple(unsettled)
        return replace(scan, unknown=tuple(unknown)), counts["hashed"]

    def _scan(self, folder: Path, rules: ScanRules, now: float, longer: Mapping[str, float],
              targets: Collection[str], take: BatchSink) -> FolderScan:
        """The folder's walk merged with its rows read in path order (``scan_changes``),
        its files handed to ``take`` a batch at a time; with ``targets``, one walk per
        target path, their results joined."""
        batch = self.options.batch
        if not targets:
            with closing(self.catalog.recorded_in_order(folder)) as rows:
                return scan_changes(folder, rules, now, longer, rows, on_batch=take, batch=batch)
        parts: list[FolderScan] = []
        for target in targets:
            with closing(self.catalog.recorded_in_order(folder, target)) as rows:
                part = scan_changes(folder, rules, now, longer, rows, target, on_batch=take, batch=batch)
            if not part.ok:
                return part
            parts.append(part)
        return FolderScan(
            folder, ok=True, files=tuple(f for p in parts for f in p.files),
            skipped=tuple(s for p in parts for s in p.skipped),
            unreadable=tuple(sorted(u for p in parts for u in p.unreadable)),
            as_recorded=sum(p.as_recorded for p in parts),
            recorded={rel: r for p in parts for rel, r in p.recorded.items()},
            missing=tuple(m for p in parts for m in p.missing))

    # ------------------------------------------------------------------- pass
    def run_pass(self, *, with_listing: bool = True, unchanged: Collection[Path] = (),
                 changed: Mapping[Path, Collection[str]] | None = None, newest: bool = False,
                 defer_mirror: Callable[[], bool] | None = None,
                 mirror_yield: Callable[[], bool] | None = None) -> PassReport:
        """One pass. ``unchanged``: folders not to walk again if possible; ``changed``: the
        paths to walk in others, if possible (see ``observe``).
        ``newest`` (without ``with_listing``): look for new remote videos to pull at the
        newest end of the listing only (the daemon's polls between complete listings).
        ``defer_mirror`` (the daemon), asked after execution: True skips the mirror step
        this time (a later pass runs it: it is still due). Never with a listing or new
        remote videos read, which only this pass has to pull from. ``mirror_yield`` (the
        daemon: it has work) ends a mirror run before a video's details pull, and its
        verification of every sidecar between two slices; a later pass goes on with it
        (``MirrorReport.unfinished``): a catch-up over a whole library does not hold back a
        file that arrives meanwhile."""
        scans, problems, hashed = self.observe(unchanged, changed)
        problems += self._refresh()
        if with_listing:
            self.progress.phase("reading the remote listing")
        remote = self.executor.read_listing() if with_listing else None
        if remote is not None:
            if not self.dry_run:  # a dry run acts on no deletion: the next sync still checks
                self.catalog.listing_read(self.clock())
        fresh = self._read_newest() if newest and remote is None else None
        adopt = self.catalog.get_meta("adopt_remote") == "1"
        inputs = _PlanInputs(self.catalog.changes, remote, tuple(s.ok and not s.unreadable for s in scans))
        quiet = None if adopt else self._still_quiet(inputs)
        slicing: _Slicing | None = None
        if quiet is not None:
            inputs, the_plan = quiet  # keep what it was made from (its listing, say)
        else:
            the_plan, adopted, slicing = self._plan(scans, remote, adopt)
            if adopt and with_listing and remote is None:
                the_plan.blocked.append("the remote listing could not be read; a new catalog uploads nothing "
                                        "until it sees what the remote already holds")
            adopt = adopt and not adopted  # recovery done: the flag goes after execution
        # Files not settled yet change the plan as they settle, though no catalog row changes.
        waiting = bool(the_plan.deferred or the_plan.settling)
        more = slicing is not None and slicing.after is not None
        has_work = bool(the_plan.actions or the_plan.blocked) or waiting or self.dry_run or more
        self._quiet = None if has_work else (inputs, the_plan)
        for line in the_plan.blocked:
            log.error("%s", line)
        if self.dry_run:
            while slicing is not None and slicing.after is not None and not self.stop_event.is_set():
                _summarise(the_plan, self._plan_slice(scans, slicing))
            return PassReport(scans, the_plan, ExecResult(notes=list(the_plan.notes)), remote is not None, hashed, problems,
                              listing_asked=with_listing)
        self.catalog.set_meta("blocked", "\n".join(the_plan.blocked) or None)
        self._record_deferred(the_plan)
        result = self.executor.execute(the_plan)
        self._plan_seen()
        # The rest of the contents at work, a slice at a time: planned, executed, let go.
        while (slicing is not None and slicing.after is not None and not self.stop_event.is_set()
               and not result.stopped and not _outage(result)):
            part = self._plan_slice(scans, slicing)
            done = self.executor.execute(part)
            self._plan_seen()
            _summarise(the_plan, part)
            _merge(result, done)
            if _outage(done):
                break  # every step failed alike: the next pass tries again, not a million times now
        if slicing is not None and slicing.after is not None:
            adopt = adopt or slicing.settings.adopt_remote  # recovery not over: it goes on next pass
        elif slicing is not None and slicing.rule is not None and slicing.clean_dirty:
            self.catalog.set_meta("work_rule", slicing.rule)  # every content at work was planned
        if self.catalog.get_meta("adopt_remote") == "1" and not adopt:
            self.catalog.set_meta("adopt_remote", "0")
        for line in result.notes:
            log.info("%s", line)
        if remote is None and not (fresh and fresh.video_ids) and defer_mirror is not None and defer_mirror():
            mirrored = self.mirror.skipped()
        else:
            mirrored = self._mirror(remote, [s.folder for s in scans if not s.ok], fresh, mirror_yield)
        # Last: a remote gone away meanwhile is reported by what came first. Reading every
        # instance's marks costs as much as the complete listing: only along with one.
        self._write_note(with_marks=remote is not None)
        result.notes += mirrored.notes
        problems += mirrored.problems
        return PassReport(scans, the_plan, result, remote is not None, hashed, problems, mirrored,
                          listing_asked=with_listing)

    def _plan(self, scans: list[FolderScan], remote: Listing | None,
              adopt: bool) -> tuple[Plan, bool, _Slicing]:
        """Plan, whether catalog recovery (if pending) was done, and the slices left. The
        instance markers are read only when a decision needs them: recovery (whose videos
        are whose), and a remote deletion (does another instance hold the video).

        The contents at work (not uploaded yet, processing, waiting for a pipeline, a marker
        or a collection: ``Catalog.fill_slices``) are planned a slice of
        ``EngineOptions.batch`` at a time, in sha256 order: this plan holds what a deletion
        could follow from (``snapshot``) plus the first slice, and the returned ``_Slicing``
        gives the rest (``_plan_slice``). Each content is planned once a pass: in this plan
        or in exactly one slice."""
        marks: Marks | None = None
        marks_error: str | None = None
        adoptable: dict[str, Adoptable] = {}
        notes: list[str] = []
        self._dirty_seen = None
        if adopt and remote is not None:
            marks, marks_error = read_marks(self.features.marks)
            if marks is None:
                notes.append(f"catalog recovery waits: cannot read the instance markers ({marks_error})")
                remote = None  # nothing is linked, uploaded or deleted until whose is whose is known
            else:
                self._record_marks(marks)
        settings = Settings(
            max_delete_percent=self.options.safety.max_delete_percent,
            delete_grace=self.delete_grace,
            allow_mass_delete=self.allow_mass_delete,
            max_attempts=self.options.upload.max_attempts,
            adopt_remote=adopt,
            mark_videos=self.features.marks is not None,
            delete_wait=self.options.safety.delete_wait,
        )
        slicing = _Slicing(settings, remote, marks, marks_error)
        first: list[str] = []  # the first slice of the contents at work
        if adopt and remote is None:
            slicing.after = None  # a new catalog waiting for the listing plans no new content
        else:
            self._collection_folders_changed()
            pipelines = {str(f.path): folder_policy(f, self.features).effective_pipelines for f in self.options.folders}
            mark_steps = None if self.features.marks is None else self._mark_steps()
            rule = json.dumps({"processing": self.features.processing_steps, "pipelines": pipelines,
                               "marks": mark_steps, "max_attempts": settings.max_attempts}, sort_keys=True)
            every = adopt or self.catalog.get_meta("work_rule") != rule
            slicing.rule = rule if every else None
            self.catalog.fill_slices(self.features.processing_steps, pipelines, marks=mark_steps, every=every)
            first = self._next_slice(slicing)
        snapshot = self.snapshot(scans, remote, adoptable, first=first)
        slicing.planned = set(snapshot.contents)
        if adopt and remote is not None and marks is not None:
            adoptable, notes = self._adoptable(marks, snapshot, slicing.adopted if self.dry_run else None)
        snapshot = replace(snapshot, marks=None if marks is None else marks.videos, marks_error=marks_error,
                           adoptable=adoptable)
        the_plan = plan(snapshot, settings)
        if marks is None and marks_error is None and the_plan.of(DeleteRemote):
            marks, marks_error = read_marks(self.features.marks)
            if marks is not None:
                self._record_marks(marks)
            snapshot = replace(snapshot, marks=None if marks is None else marks.videos, marks_error=marks_error)
            the_plan = plan(snapshot, settings)
        the_plan.notes[:0] = notes
        if any(not f.scan_ok for f in snapshot.folders):
            # A folder not read this pass may hold members, or the only readable file of a
            # content to upload: every changed content stays changed, and the folders are
            # not recorded as planned (a change of collection folders still has removals to make).
            self._dirty_seen = (set(), None)
        else:
            # In catalog recovery every content at work is planned (``every``) and stays changed.
            slicing.clean_dirty = not adopt
            clean = set() if adopt else self._dirty_taken - _contents_with_work(the_plan, snapshot, settings)
            self._dirty_seen = (clean, self._collection_folders())
        return the_plan, adopt and remote is not None, slicing

    def _collection_folders_changed(self) -> None:
        """Collection folders other than those of the last executed plan (a config change,
        or none recorded yet): the catalog's changes say nothing of what that asks for
        (adding every video of a new collection folder to its collection, taking those of
        a former one out), so every content with a file in a folder that is or was one
        counts as changed (``Catalog.plan_dirty_in``), and is planned a slice at a time.
        ``_plan_seen`` records the folders once the plan is executed."""
        paths = self._collection_paths()
        recorded = self.catalog.collection_folders()
        if paths and recorded != json.dumps(paths):
            self.catalog.plan_dirty_in({*paths, *json.loads(recorded or "[]")})

    def _next_slice(self, slicing: _Slicing) -> list[str]:
        """The next slice of contents at work (``Catalog.slice_after``), where the last ended."""
        batch = self.options.batch
        found = self.catalog.slice_after(slicing.after or "", batch)
        slicing.after = found[-1] if len(found) >= batch else None
        return found

    def _plan_slice(self, scans: list[FolderScan], slicing: _Slicing) -> Plan:
        """The next slice of contents at work (after ``slicing.after``) but those the pass's
        first plan held, planned on its own: their files, their contents and memberships,
        the known collections (none whole) and nothing else. None of them has a path gone
        or an upload open (``Catalog.changed_shas``) or can leave a collection
        (``Catalog.dirty_leaving``): it plans their uploads (or, in catalog recovery, the
        links to remote videos proved to hold them), pipelines, markers, the collections
        their subfolders need and their adds. Its changed contents with no collection work
        left are clean once it is executed (``_plan_seen``)."""
        found = self._next_slice(slicing)
        shas = [sha for sha in found if sha not in slicing.planned]
        if not shas:
            return Plan()
        adoptable: dict[str, Adoptable] = {}
        notes: list[str] = []
        snapshot = self.snapshot(scans, slicing.remote, adoptable, first=shas, a_slice=True)
        if slicing.settings.adopt_remote and slicing.remote is not None and slicing.marks is not None:
            adoptable, notes = self._adoptable(slicing.marks, snapshot, slicing.adopted if self.dry_run else None)
        snapshot = replace(snapshot, marks=None if slicing.marks is None else slicing.marks.videos,
                           marks_error=slicing.marks_error, adoptable=adoptable)
        part = plan(snapshot, slicing.settings)
        part.notes[:0] = notes
        if slicing.clean_dirty:
            self._dirty_seen = (set(shas) - _contents_with_work(part, snapshot, slicing.settings), None)
        return part

    def _write_note(self, *, with_marks: bool = True) -> None:
        """Rewrite this instance's note every few minutes; warn if another syncd wrote it.
        ``with_marks``: also count the remote videos other instances hold (``syncd status``),
        which reads every instance's marks: a pass that read the complete listing asks."""
        markers = self.features.marks
        if markers is None:
            return
        now = self.clock()
        if (self._noted_at is None or now - self._noted_at >= NOTE_EVERY) and not self._note(markers, now):
            return  # the remote is away or refused the note: no marks either
        if not with_marks:
            return
        marks, _ = read_marks(self.features.marks)
        if marks is not None:
            self._record_marks(marks)

    def _note(self, markers: InstanceMarks, now: float) -> bool:
        """Write this instance's note; False if the remote did not take it."""
        key = self.catalog.instance_key()
        try:
            before = markers.write_note(self.options.instance, make_note(self.options.instance, key, now))
        except TransportError as exc:  # the remote is away: the daemon says so, once
            log.debug("could not write the marker note of instance %r: %s", self.options.instance, exc)
            return False
        except RemoteError as exc:
            log.warning("could not write the marker note of instance %r: %s", self.options.instance, exc)
            return False
        self._noted_at = now
        problem = clash(parse_note(before), key, now)
        if problem is not None:
            log.warning("%s", problem)
            self.catalog.set_info("instance_clash", f"{int(now)} {problem}")
        return True

    def _record_marks(self, marks: Marks) -> None:
        """For ``syncd status``: how many remote videos other instances hold, and when seen."""
        me = self.options.instance
        theirs = sum(1 for holders in marks.videos.values() if holders - {me})
        others = ",".join(sorted(marks.others(me))) or "-"
        self.catalog.set_info("other_instances", f"{theirs} {int(self.clock())} {others}")

    def _record_deferred(self, the_plan: Plan) -> None:
        """What ``syncd status`` shows of deletions waiting for unsettled files (written only
        when it changes, so a waiting pass does not count as a catalog change)."""
        summary = the_plan.waiting_summary()
        text = None if summary is None else "\n".join([summary, *(d.describe() for d in the_plan.deferred)])
        if self.catalog.get_meta("deferred") != text:
            self.catalog.set_meta("deferred", text)

    def in_flight(self) -> bool:
        """Videos uploaded and still processing remotely (or in pipelines)."""
        return self._any_in_progress()

    def settling(self) -> bool:
        """Files the last walk left unsettled (or unhashed): a pass comes back for them."""
        return any(self._revisit.values())

    def _any_in_progress(self) -> bool:
        """``Catalog.any_content_in_progress``, asked again only once the catalog changed
        (without the kept processing flag it reads every step row)."""
        changes = self.catalog.changes
        if self._in_progress is None or self._in_progress[0] != changes:
            self._in_progress = (changes, self.catalog.any_content_in_progress(self.features.processing_steps))
        return self._in_progress[1]

    def _refresh(self) -> list[str]:
        """Poll the remote states of the contents in progress (``Executor.refresh``): at most
        ``options.polls`` of them, those asked longest ago first, a page of
        ``Catalog.iter_contents_in_progress`` at a time. A first sync's 100,000 uploads
        still processing then cost a poll 1,000 status requests on Mikshi (10 filtered
        listing pages on memories.ai), each video asked every 100th poll, not 100,000
        requests, and are never all in memory."""
        if self.features.processing is None or not self._any_in_progress():
            return []  # nothing to poll (``refresh`` would ask nothing)
        steps = self.features.processing_steps
        notes: list[str] = []
        for page in self.catalog.iter_contents_in_progress(steps, limit=self.options.polls):
            asked = self.clock()
            notes += self.executor.refresh(page)
            self.catalog.mark_polled([c.sha256 for c in page], asked)
        return notes

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
        catalog links or pulled (``Catalog.known_videos``)."""
        if not self.options.mirror.pull_remote:
            return None
        return self.executor.read_newest(self.catalog.known_videos())

    def _mirror(self, listing: Listing | None, unavailable: list[Path],
                newest: RemoteView | None = None, yield_to: Callable[[], bool] | None = None) -> MirrorReport:
        if not self.mirror.due(listing, newest):
            return self.mirror.skipped()
        try:
            # Streamed: the mirror keeps only the done files' targets.
            def of_contents(shas: Collection[str] | None) -> Iterator[FileStatus]:
                return iter_statuses_of(self.options.folders, self.options.upload.max_attempts,
                                        self.catalog, self.features, shas)

            return self.mirror.run(of_contents(None), listing, unavailable, newest, statuses_of=of_contents,
                                   yield_to=yield_to)
        except AuthError as exc:
            raise FatalRemoteError(
                f"the remote rejected the API key from {self.options.key_source} ({exc}); stopping"
            ) from exc

    def snapshot(self, scans: list[FolderScan], remote: Listing | None,
                 adoptable: dict[str, Adoptable], *, first: list[str], a_slice: bool = False) -> Snapshot:
        """What the planner decides from: the contents a deletion could follow from
        (``_in_play``); with collection folders, also the changed contents a collection
        could lose (``Catalog.dirty_leaving``), their collections decided whole
        (``Catalog.collections_in_play``); and ``first``, a slice of the contents at work
        (``_plan``), which makes no collection whole: all their files, and the mass-delete
        guard's counts from the catalog. ``a_slice``: ``first`` and nothing else (a later
        slice: the known collections, none whole, so it may create one and add to it, and
        removes or renames none)."""
        ok = {s.folder: s.ok for s in scans}
        readable = {s.folder: not s.unreadable for s in scans}
        folders = tuple(folder_policy(f, self.features, ok.get(f.path, True), readable.get(f.path, True))
                        for f in self.options.folders)
        tracked: dict[Path, int] | None = None
        superseded = self.catalog.superseded()
        # A slice creates collections and removes none; with no collection folder left, no
        # plan changes a collection: syncd leaves the remote's as they are.
        whole_collections: set[str] = set()
        occupied: set[str] = set()
        whole_folders = self._collection_paths()
        if a_slice:
            shas, gone = set(first), set[str]()
        else:
            shas, gone = self._in_play(remote)
            if whole_folders:
                shas |= self.catalog.dirty_leaving(whole_folders)
                in_play = self.catalog.collections_in_play(shas, whole_folders, first)
                whole_collections, occupied = in_play.names, in_play.occupied
                shas |= in_play.members
            shas.update(first)
        self._dirty_taken = shas  # the changed contents (``plan_dirty``) among them are seen
        # A path rewritten from a content not in this snapshot is planned with that content.
        superseded = [s for s in superseded if s.sha256 in shas]
        files, contents = self.catalog.files_of_contents(shas), self.catalog.contents_of(shas)
        if not a_slice and (gone or superseded or any(not f.present for f in files)):
            tracked = {Path(f): n for f, n in self.catalog.tracked_videos().items()}  # a deletion is possible
        return Snapshot(
            folders=folders,
            files=tuple(files),
            contents={c.sha256: c for c in contents},
            tracked=tracked,
            uploads=tuple(self.catalog.uploads()),
            collections=tuple(self.catalog.collections()) if whole_folders or not a_slice else (),
            memberships=frozenset(self.catalog.memberships_of(c.sha256 for c in contents)),
            whole_collections=frozenset(whole_collections),
            occupied=frozenset(occupied),
            # Of the snapshot's videos, those the listing lists: not a set of every listed one.
            remote=None if remote is None else RemoteView(frozenset(self.catalog.listed_among(
                [c.video_id for c in contents if c.video_id]))),
            now=self.clock(),
            adoptable=adoptable,
            instance=self.options.instance,
            unknown=tuple(u for s in scans for u in s.unknown),
            superseded=tuple(superseded),
        )

    def _in_play(self, remote: Listing | None) -> tuple[set[str], set[str]]:
        """Contents a deletion could follow from: a path vanished or rewritten, an upload
        open, a state neither new nor uploaded (``Catalog.changed_shas``), a video missing
        from the complete listing; also, apart, those missing from the listing. A content
        at rest or at work whose paths are as recorded is none of these: an unchanged tree
        plans nothing, file by file, and a first sync's million videos processing are
        planned a slice at a time."""
        gone = self.catalog.linked_not_listed() if remote is not None else set()
        return self.catalog.changed_shas() | gone, gone

    def _collection_paths(self) -> list[str]:
        """The collection folders (``collections: subfolder`` on a backend with collections)."""
        return sorted(str(f.path) for f in self.options.folders if folder_policy(f, self.features).collections)

    def _collection_folders(self) -> str:
        return json.dumps(self._collection_paths())

    def _plan_seen(self) -> None:
        """After a plan's execution: its changed contents with no work left are clean
        (``Catalog.plan_dirty_done``), and its collection folders recorded."""
        if self._dirty_seen is None:
            return
        clean, folders = self._dirty_seen
        self._dirty_seen = None
        self.catalog.plan_dirty_done(clean)
        if folders is not None and self.catalog.collection_folders() != folders:
            self.catalog.record_collection_folders(folders)

    def _mark_steps(self) -> tuple[str, ...]:
        """A video is marked once ready for a collection (``planner.ready_for_collection``)."""
        return tuple(dict.fromkeys((*self.features.processing_steps, *self.features.collection_pipelines)))

    def _adoptable(self, marks: Marks, snapshot: Snapshot,
                   adopted: set[str] | None = None) -> tuple[dict[str, Adoptable], list[str]]:
        """Catalog recovery: remote videos proved to hold a local file's bytes.

        Names (in the complete listing just read) only choose the candidates (syncd names
        a video by the file's relative path); ``syncd.sync.proof`` decides. Whose a proved video is: ours if only our marker
        is on it, or if no marker is and no other instance has ever marked anything on
        the account (one syncd per account, as before instances); otherwise another
        instance's, linked as held, never deleted by us.

        The candidates are the new contents of ``snapshot`` (the whole catalog, or a slice
        of the new contents, see ``_plan``) and their files. ``adopted``: videos earlier
        slices of a dry run chose (linked in no catalog row), which no later slice may
        choose again; it gets this slice's.
        """
        if self.features.proof is None:
            return {}, []  # nothing can be proved: upload
        me = self.options.instance
        shared = bool(marks.others(me))
        contents = snapshot.contents
        found: dict[str, Adoptable] = {}
        notes: list[str] = []
        files = [f for f in snapshot.files if f.present and f.sha256
                 and (c := contents.get(f.sha256)) is not None and c.state == "new"]
        named = self.catalog.listed_named({self._listed_name(f.rel_path) for f in files})
        # Videos already linked (to any content), of those the names could choose.
        linked = self.catalog.linked_among({v for ids in named.values() for v in ids}) | (adopted or set())
        for file in files:
            undecided: list[str] = []
            for video_id in named.get(self._listed_name(file.rel_path), ()):
                if video_id in linked:
                    continue
                verdict = self._prove(file, video_id)
                if verdict.same is None:
                    undecided.append(f"{file.path}: cannot prove remote video {video_id} holds the same bytes "
                                     f"({verdict.how}); uploading instead")
                    continue
                if not verdict.same:
                    log.info("%s: remote video %s has its name but other bytes (%s)", file.path, video_id, verdict.how)
                    continue
                holders = marks.holders(video_id)
                owned = holders == {me} or (not holders and not shared)
                found[f"{file.folder}\0{file.rel_path}"] = Adoptable(video_id, owned, verdict.how)
                linked.add(video_id)
                if adopted is not None:
                    adopted.add(video_id)
                break
            else:
                notes += undecided
        return found, notes

    def _listed_name(self, rel_path: str) -> str:
        """The name the remote's listing shows for a file uploaded from ``rel_path``."""
        return PurePosixPath(rel_path).stem if self.features.video_names == "stem" else rel_path

    def _prove(self, file: FileRecord, video_id: str) -> Verdict:
        proof = self.features.proof
        assert proof is not None and file.sha256

        def download(sink: BinaryIO) -> object:
            return self.remote.download_video(video_id, sink)

        try:
            evidence = proof.content_evidence(video_id)
            return judge(file.path, file.size, file.sha256, evidence, part_size=self.options.upload.part_size,
                         max_download=self.options.safety.max_proof_download, download=download)
        except (RemoteError, OSError) as exc:
            return Verdict(None, f"could not check: {exc}")

    # ----------------------------------------------------------------- status
    def statuses(self) -> list[FileStatus]:
        """Every file's status."""
        return statuses_of(self.options.folders, self.options.upload.max_attempts, self.catalog, self.features)

    def overview(self) -> StatusOverview:
        """Every file counted by state; statuses of those not done (what ``sync`` reports),
        the first ``PENDING_KEPT`` of them and every failed one: a first pass over a
        million new files counts them, it does not hold a status each."""
        return overview_of(self.options.folders, self.options.upload.max_attempts, self.catalog, self.features,
                           PENDING_KEPT, keep_failed=True)

    # ------------------------------------------------------------------- sync
    def sync(self, *, wait: bool = False, timeout: float | None = None,
             poll_start: float = 0.5, poll_max: float = 5.0,
             before_pass: Callable[[], None] = lambda: None, check_deletions: bool = False) -> SyncOutcome:
        """One pass, or with ``wait`` passes until every file is terminal (or timeout).
        ``before_pass`` runs before each pass after the first (the CLI lets a remote
        that was down be tried again). The complete listing is read when ``listing_due``
        (``check_deletions``: now, until one read succeeds)."""
        deadline = None if timeout is None else self.clock() + timeout
        reports: list[PassReport] = []
        delay = poll_start

        def outcome(overview: StatusOverview, timed_out: bool = False) -> SyncOutcome:
            return SyncOutcome(overview, reports, timed_out, self._deletion_check_note(reports))

        while True:
            if reports:
                before_pass()
            listing = self.listing_due(check_deletions=check_deletions and not any(r.listing_ok for r in reports))
            report = self.run_pass(with_listing=listing, newest=not listing)
            reports.append(report)
            overview = self.overview()
            if not wait or self.dry_run or report.plan.blocked or report.result.stopped or self.stop_event.is_set():
                return outcome(overview)
            in_progress = [s for s in overview.pending if not s.terminal]
            busy = any(n for state, n in overview.counts.items() if state not in TERMINAL)
            if not busy and not self._work_left(report):
                return outcome(overview)
            if deadline is not None and self.clock() + delay > deadline:
                return outcome(overview, timed_out=True)
            self.progress.waiting([Waiting(s.path, s.words, s.percent) for s in in_progress])
            if self.stop_event.wait(delay):
                return outcome(overview)
            delay = min(poll_max, delay * 1.5)

    def listing_due(self, *, check_deletions: bool = False) -> bool:
        """Whether a ``sync`` pass reads the complete remote listing, which is what proves
        remote deletions and costs a request per page of the whole remote library. Like the
        daemon, only once ``schedule.deletion_check`` has passed since the last one (the
        catalog's ``listing_read_at``); also when never read, when catalog recovery waits
        for it, when asked (``check_deletions``), and when pulling remote videos on a
        backend that cannot list from the newest end. Otherwise a pass polls what is in
        flight and, when pulling, the listing's newest end."""
        if check_deletions or self.catalog.get_meta("adopt_remote") == "1":
            return True
        if self.options.mirror.pull_remote and self.features.newest is None:
            return True
        return listing_due(self.catalog.listing_read_at(), self.options.deletion_check, self.clock())

    def _deletion_check_note(self, reports: list[PassReport]) -> str | None:
        if any(r.listing_ok for r in reports):
            return None
        return "remote deletions " + deletion_check_words(self.catalog.listing_read_at(), self.options.deletion_check,
                                                          self.clock())

    def _work_left(self, report: PassReport) -> bool:
        """Actions this pass planned that change something (a next pass may have more),
        or finished videos whose sidecars and index entries are not written yet."""
        return any(a.kind not in ("ForgetFile",) for a in report.plan.actions) or any(
            kind != "ForgetFile" for kind in report.plan.unlisted) or any(
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


def walk_targets(folder: FolderConfig, paths: Collection[str]) -> tuple[str, ...]:
    """The relative paths to walk for changes seen at ``paths`` (relative, POSIX): each
    path, or its nearest parent that can be walked on its own (``target_walkable``),
    without any inside another. Empty (walk the whole folder) if one is the folder."""
    rules = ScanRules(folder.include, folder.exclude, 0, folder.require_marker)
    targets: set[str] = set()
    for path in paths:
        while path and path != "." and not target_walkable(folder.path, path, rules):
            path = path.rpartition("/")[0]
        if not path or path == ".":
            return ()
        targets.add(path)
    kept: list[str] = []
    for target in sorted(targets):  # a parent sorts before its subtree's paths
        if not any(target.startswith(k + "/") for k in kept):
            kept.append(target)
    return tuple(kept)


def _as_recorded(record: RecordedFile | None, local: LocalFile) -> bool:
    """The catalog's record of this path is of this very file version (same size, mtime, inode)."""
    return record is not None and (record.size, record.mtime_ns, record.inode) == (local.size, local.mtime_ns, local.inode)


def _contents_with_work(the_plan: Plan, snapshot: Snapshot, settings: Settings) -> set[str]:
    """The contents ``the_plan`` leaves work for: an action or a deferred deletion for
    one, a file of one under a collection the plan creates, renames or deletes, a file of
    one changing (its new content not known yet), or a failed step of one to retry later
    (``waits_for_retry``). They stay changed (table ``plan_dirty``) until a plan finds
    nothing left to do for them: a failed step is planned again, and a retry once due,
    though no row of theirs changes. The others wait for a change of their rows (a
    processing state polled, a file seen): a million videos processing are not planned
    on every pass."""
    shas = {sha for a in the_plan.actions if (sha := getattr(a, "sha256", None))}
    shas |= {d.sha256 for d in the_plan.deferred}
    changing = {(u.folder, u.rel_path) for u in snapshot.unknown}
    shas |= {f.sha256 for f in snapshot.files if f.sha256 and (f.folder, f.rel_path) in changing}
    shas |= {sha for sha, c in snapshot.contents.items() if waits_for_retry(c, settings, snapshot.now)}
    names: set[str] = set()
    for action in the_plan.actions:
        if isinstance(action, CreateCollection | DeleteCollection):
            names.add(action.name)
        elif isinstance(action, RenameCollection):
            names |= {action.old, action.new}
    if names:
        shas |= {f.sha256 for f in snapshot.files if f.sha256 and f.subfolder in names}
    return shas


@dataclass
class _Slicing:
    """What the slices of one pass's plan share (``Engine._plan``): the settings, the
    listing and markers read once, and where the next slice starts."""

    settings: Settings
    remote: Listing | None
    marks: Marks | None
    marks_error: str | None
    after: str | None = ""  # the last content at work planned ("": none yet); None: no slice left
    planned: set[str] = field(default_factory=set)  # the contents the pass's first plan held
    clean_dirty: bool = False  # slices mark their changed contents clean (``Engine._plan_slice``)
    # The rule (``Engine._plan``) whose change had every content at work planned: recorded
    # once every slice was planned and executed, and the next pass plans the changed ones.
    rule: str | None = None
    adopted: set[str] = field(default_factory=set)  # a dry run's videos chosen by earlier slices


def _summarise(the_plan: Plan, part: Plan) -> None:
    """A later slice's plan into the pass's: its actions counted by kind (not kept), its
    notes and its revisit time kept; its settling and deferred lists are the first's."""
    for action in part.actions:
        the_plan.unlisted[action.kind] = the_plan.unlisted.get(action.kind, 0) + 1
    for kind, n in part.unlisted.items():
        the_plan.unlisted[kind] = the_plan.unlisted.get(kind, 0) + n
    the_plan.notes += part.notes
    the_plan.blocked += part.blocked
    if part.revisit_at is not None:
        the_plan.revisit(part.revisit_at)


KEPT_LINES = 10_000  # "done" lines a pass's result keeps of its later slices


def _merge(result: ExecResult, part: ExecResult) -> None:
    """A later slice's execution into the pass's result."""
    result.done += part.done[:max(0, KEPT_LINES - len(result.done))]
    result.failed += part.failed
    result.notes += part.notes
    result.uploaded_bytes += part.uploaded_bytes
    result.uploaded_files += part.uploaded_files
    result.stopped = result.stopped or part.stopped


def _outage(result: ExecResult) -> bool:
    """Every step of an execution failed (the remote is away or refusing): no use going on."""
    return bool(result.failed) and not result.done and not result.uploaded_files
