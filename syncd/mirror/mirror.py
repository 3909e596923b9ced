"""The mirror job, run by the engine after every (non-dry-run) pass.

For each video whose files are ``done`` (processed, pipelines finished, in their
collection):

1. pull its details (free) once, then again only when the remote listing (checked
   every ``mirror.interval``; the pass reads it anyway) says otherwise than the
   stored details, so 10,000 quiet videos cost no request; and, once search-process
   is done, its segment embeddings (1 credit; pulled once per video, and again only
   if the index lost them: stored embeddings never change, so re-pulling them every
   interval would only spend credits);
2. store both in the catalog and the search index;
3. write each of its files' sidecars (only bytes that changed are rewritten).

Sidecars follow their video: before any of that, the job reconciles the sidecars it
wrote with the files the catalog now tracks. A file that vanished while another path
with the same content appeared (a move) takes its sidecars along; a file that is gone
for good, or now holds other content, loses them. Doing this from catalog state
rather than from events makes it right after a crash too. Trash and delete by the
executor go through ``sidecar_hook``.

A 409 from the embeddings endpoint means "still processing": retried with backoff.
A 404 is left to the engine's remote-deletion check (a complete listing plus a 404);
the job only reports it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from syncd.store.catalog import Catalog
from syncd.config import Config
from syncd.errors import AuthError, ConflictError, NotFoundError, RemoteError
from syncd.mirror.index import SEARCH_DIR, SearchIndex
from syncd.mirror.pull import PullOptions, Puller
from syncd.store.records import MirrorFile, MirrorVideo
from syncd.mirror.sidecars import SidecarLayout, embeddings_bytes, metadata_document, remote_facts
from syncd.models import ContentRecord, FileRecord, Listing, RemoteView
from syncd.remote.base import Remote, need

log = logging.getLogger("syncd.mirror")

RETRY_BASE = 2.0  # seconds before the first retry of a failed pull; doubles each time


@dataclass
class MirrorReport:
    """What one run did; ``pending`` > 0 keeps ``syncd sync --wait`` going."""

    written: list[str] = field(default_factory=list)  # sidecar files (re)written
    moved: int = 0  # files whose sidecars followed them
    removed: int = 0  # files whose sidecars were removed
    pulled: list[str] = field(default_factory=list)  # remote videos downloaded (local paths)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures that gave up (retried each interval)
    gone: list[str] = field(default_factory=list)  # video ids whose details answered 404
    pending: int = 0  # videos still waiting for sidecars or index entries
    # The run gave way to other work between two slices with some left: changed contents,
    # or the process's verification of every sidecar (``_Sweep``). The next run goes on.
    unfinished: bool = False


class FileState(Protocol):
    """What the mirror reads of a file's status (``syncd.sync.report.FileStatus``, which
    sits above the mirror: the engine runs the mirror after its pass)."""

    @property
    def path(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def video_id(self) -> str | None: ...
    @property
    def collection(self) -> str | None: ...


@dataclass(frozen=True)
class _Target:
    file: FileRecord
    collection: str | None


@dataclass(frozen=True)
class MirrorOptions:
    """What the mirror reads of the config."""

    layout: SidecarLayout
    index_dir: Path  # the local search index
    interval: float  # seconds between details checks; a given-up video's retry
    embeddings: bool
    max_attempts: int  # failures before a video is given up until the next interval
    pull: PullOptions
    pull_remote: bool
    # Contents a slice of a run covers (changed ones, and as many of the once-per-process
    # verification of every sidecar): at ~0.65 ms a video (20,000 videos, loaded machine),
    # a slice is ~0.65 CPU-s (more with pulls, which each ask the daemon first): what a file
    # arriving in the daemon may wait behind, and less than its settle time (5 s by default).
    slice: int = 1000

    @classmethod
    def from_config(cls, config: Config) -> MirrorOptions:
        return cls(
            layout=SidecarLayout.from_config(config.mirror),
            index_dir=config.state_dir / SEARCH_DIR,
            interval=config.mirror.interval,
            embeddings=config.mirror.embeddings,
            max_attempts=config.upload.max_attempts,
            pull=PullOptions.from_config(config),
            pull_remote=config.mirror.pull_remote,
        )


class Mirror:
    def __init__(
        self,
        options: MirrorOptions,
        catalog: Catalog,
        remote: Remote,
        *,
        clock: Callable[[], float] = time.time,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.options = options
        self.catalog = catalog
        self.remote = remote
        self.features = remote.features()
        # The backend's step and pipeline names, in its order: the sidecar's ``statuses``.
        self.steps = (*self.features.processing_steps, *self.features.pipelines)
        self.clock = clock
        self._should_stop = should_stop
        # This run's ``yield_to``, asked before each details pull (``_mirror_targets``); once
        # it says yes, the run stops as if told to (``should_stop``).
        self._yield_to: Callable[[], bool] | None = None
        self._yielded = False
        self.layout = options.layout
        self.index = SearchIndex(catalog, options.index_dir, clock=clock)
        self.max_attempts = options.max_attempts
        # A quiet pass skips the mirror: nothing changed in the catalog since the last
        # run (``catalog.changes``), no retry has fallen due, the listing is the one the
        # details were last checked against (or the next check is not due yet) and,
        # when pulling, the one last pulled from.
        self._changes_after_run: tuple[int, int] | None = None
        self._next_due = 0.0
        self._checked_listing: Listing | None = None  # the listing details were last checked against
        self._next_check = 0.0  # ...and when the next check is due (every mirror.interval)
        # A check a run left part way (it gave way to other work): the next run goes on with it.
        self._check_left: Listing | None = None
        self._listing_after_run: Listing | None = None  # pull_remote: the listing last pulled from
        self._pull_due: float | None = None
        self._given_up: list[str] = []
        self._sweep: _Sweep | None = None  # this process's verification of every sidecar (None: not begun)
        self._full_due = False  # a run over every row is due (the last one was cut short)
        # What the mirror's result depends on besides the catalog: with the catalog's
        # generation, the marker of a complete run (``_record_complete``).
        self._settings = hashlib.sha256(repr(options).encode()).hexdigest()[:16]

    def should_stop(self) -> bool:
        """The process is stopping, or this run gave way to the daemon's other work."""
        return self._yielded or self._should_stop()

    # ------------------------------------------------------------ executor hook
    def sidecar_hook(self, event: str, path: Path, new_path: Path | None) -> None:
        """The executor trashed (``move``) or deleted a video: its sidecars go with it."""
        try:
            if event == "move" and new_path is not None:
                self.layout.move(path, new_path)
            elif event == "delete":
                self.layout.remove(path)
        except OSError as exc:
            log.warning("%s: sidecars not %s: %s", path, "moved" if event == "move" else "removed", exc)
        self.catalog.mirror_file_forget_path(path)

    # ---------------------------------------------------------------- the job
    def due(self, listing: Listing | None, newest: RemoteView | None = None) -> bool:
        """Whether a run could do anything; False lets a quiet pass skip it (and ``statuses()``).
        ``newest``: remote videos new since the last complete listing (see ``run``)."""
        now = self.clock()
        if newest is not None and newest.video_ids and self.options.pull_remote:
            return True
        if listing is not None:
            if now >= self._next_check and listing != self._checked_listing:
                return True
            # Pulling needs a listing: a new one, or a failed pull's retry fallen due.
            pull_due = self._pull_due is not None and now >= self._pull_due
            if self.options.pull_remote and (listing != self._listing_after_run or pull_due):
                return True
        elif self._changes_after_run is None and self.catalog.mirror_complete() == self._marker():
            # A new process (a one-shot `syncd sync`) whose catalog has not changed since a
            # run left the mirror complete: nothing to do, and no sidecar to check until the
            # catalog changes or a complete listing is read (which re-checks every sidecar).
            self._changes_after_run, self._next_due = self.catalog.changes, float("inf")
            return False
        return self._changes_after_run != self.catalog.changes or now >= self._next_due

    def recover_pulls(self) -> None:
        """Before a process's first scan: pulls a crash cut short (``Puller.recover``)."""
        Puller(self.options.pull, self.catalog, self.remote, clock=self.clock, should_stop=self.should_stop).recover()

    def skipped(self) -> MirrorReport:
        """The report of a skipped run: failures that gave up are still reported."""
        return MirrorReport(problems=list(self._given_up))

    def run(self, statuses: Iterable[FileState], listing: Listing | None,
            unavailable: Collection[Path] = (), newest: RemoteView | None = None, *,
            statuses_of: Callable[[Collection[str] | None], Iterable[FileState]] | None = None,
            yield_to: Callable[[], bool] | None = None) -> MirrorReport:
        """One run. ``unavailable``: folders whose scan failed this pass (an unmounted disk);
        nothing in them is written, moved or removed. ``newest``: without a complete
        listing, the videos new at its newest end, to pull (and nothing else).
        ``statuses_of``: the statuses of some contents' files; with it, a run covers only
        the contents changed since the last run and the videos not finished with
        (``Catalog.mirror_changed_slice``), those whose listing entry differs from their
        details (when the listing is checked) and, while this process's verification of
        every sidecar is not over, its next slices (``_Sweep``), a slice of each at a time,
        not the whole catalog. ``yield_to`` (the daemon: it has work) ends the run between
        two slices (``MirrorReport.unfinished``); without it the run goes on until both
        are over."""
        report = MirrorReport()
        self._yield_to, self._yielded = yield_to, False
        if self._sweep is None:
            # Once per process: drop leftovers of a crashed compaction, re-pull lost vectors,
            # and compare every sidecar with what it should hold (repairs hand edits), a
            # slice at a time from where the last process's verification was.
            self.index.remove_stale_files()
            self.index.verify()
            self._sweep = _Sweep.starting_at(self.catalog.mirror_verify_cursor())
        sweep = self._sweep
        now = self.clock()
        check = listing if listing is not None and now >= self._next_check else self._check_left
        pull_from = listing if listing is not None else newest
        if self.options.pull_remote and pull_from is not None:
            puller = Puller(self.options.pull, self.catalog, self.remote, clock=self.clock, should_stop=self.should_stop)
            self._pull_due = puller.run(pull_from, report)
            if listing is not None:
                self._listing_after_run = listing
        # The listed videos whose entry says otherwise than their stored details (when
        # checked: every mirror.interval), asked of the catalog, which keeps the listing:
        # among those whose entry or details changed since the last check.
        due: list[float] = []
        compared = check is not None  # every differing entry covered: the check is done
        if statuses_of is None or self._full_due:
            # Every row at once: what changed before it is covered (after it: marked again).
            differ = self.catalog.listing_differs_from_details_of(changed=True) if check is not None else {}
            self.catalog.mirror_dirty_done(None)
            self._cover(None, statuses, statuses_of, unavailable, differ, None if not sweep.done else frozenset(),
                        report, due)
            # A whole run cut short leaves no record of what it did not reach: the next is whole.
            self._full_due = self.should_stop()
            sweep.done = sweep.done or not self.should_stop()
        else:
            # A slice at a time: the contents changed since the last run or whose video is
            # not finished with (after a first sync of a million files: all of them), those
            # whose listing entry differs (by video id), and the verification's next slice.
            # Each changed slice is done with once covered (unless stopped), so a run that
            # gives way to other work leaves the rest for the next; differing entries not
            # reached stay for the next check (``listing_compared`` waits for the last).
            changed_after, changed_over = "", False
            differ_after: str | None = "" if check is not None else None  # None: no differing entry left
            while True:
                changed = [] if changed_over else self.catalog.mirror_changed_slice(changed_after, self.options.slice)
                changed_over = len(changed) < self.options.slice
                differ = {} if differ_after is None else self.catalog.listing_differs_from_details_of(
                    changed=True, after=differ_after, limit=self.options.slice)
                differ_after = max(differ) if len(differ) >= self.options.slice else None
                part = self._next_slice(sweep)
                shas = frozenset(part[0] if part else ())
                self._cover(set(differ.values()).union(changed, shas), None, statuses_of, unavailable, differ, shas,
                            report, due)
                compared = check is not None and differ_after is None
                if self.should_stop():
                    break
                if changed:
                    changed_after = changed[-1]
                    self.catalog.mirror_dirty_done(changed)
                if part is not None:
                    sweep.slice_done(*part)
                    self.catalog.mirror_verified_to(sweep.pos)
                report.unfinished = not (changed_over and sweep.done and differ_after is None)
                if not report.unfinished or (yield_to is not None and yield_to()):
                    break
        self.index.compact()
        self.index.refresh_ann(self.should_stop)  # after compaction: its row numbers are the keys
        compared = compared and not self.should_stop()
        if compared:
            self._checked_listing, self._next_check = check, now + self.options.interval
            self.catalog.listing_compared()
        self._check_left = None if compared else check
        report.unfinished = report.unfinished or not sweep.done
        self._remember(report, min(due, default=float("inf")))
        self._record_complete(report)
        if report.written or report.moved or report.removed:
            log.info("mirror: %d sidecar file(s) written, %d moved, %d removed",
                     len(report.written), report.moved, report.removed)
        return report

    def _next_slice(self, sweep: _Sweep) -> tuple[list[str], bool] | None:
        """The verification's next slice of contents and whether it ends a leg; None when over."""
        while not sweep.done:
            shas = self.catalog.mirror_sweep_slice(sweep.pos, sweep.upto, self.options.slice)
            last = len(shas) < self.options.slice
            if shas:
                return shas, last
            sweep.slice_done(shas, last)
        return None

    def _cover(self, scope: Collection[str] | None, statuses: Iterable[FileState] | None,
               statuses_of: Callable[[Collection[str] | None], Iterable[FileState]] | None,
               unavailable: Collection[Path], differ: dict[str, str], verify: Collection[str] | None,
               report: MirrorReport, due: list[float]) -> None:
        """Mirror the contents in ``scope`` (None: all), comparing the sidecars of those in
        ``verify`` (None: all) with what they should hold; ``due``: when its earliest retry is."""
        files, contents = self._rows(scope, unavailable)
        touched = self._follow_files(files, report, unavailable, scope)
        if statuses is None:
            assert statuses_of is not None
            statuses = statuses_of(scope)
        targets = self._targets(statuses, files)
        self.index.read_texts(None if scope is None else targets)
        dim = self.index.dim()
        videos = self._mirror_targets(targets, contents, differ, touched, verify, report, scope)
        if dim and self.index.dim() != dim and not self.should_stop():
            # The remote's embedding dimension changed part way through: the index was
            # reset, and the videos done before that lost their vectors. Once more for them
            # (every video: the index lost them all).
            log.info("mirror: the embedding dimension changed (%d → %d); pulling every video's again",
                     dim, self.index.dim())
            if scope is not None:
                scope = None
                files, contents = self._rows(None, unavailable)
                assert statuses_of is not None
                targets = self._targets(statuses_of(None), files)
                self.index.read_texts(None)
            videos = self._mirror_targets(targets, contents, differ, touched, verify, report, scope)
        self._drop_stale(contents, videos)
        due.append(self._retry_due(targets, scope))

    def _rows(self, scope: Collection[str] | None, unavailable: Collection[Path],
              ) -> tuple[dict[tuple[Path, str], FileRecord], dict[str, ContentRecord]]:
        """The file rows (outside ``unavailable`` folders) and content rows a run reads: of
        the contents in ``scope``, or all."""
        if scope is None:
            file_rows, content_rows = self.catalog.files(), self.catalog.contents()
        else:
            file_rows, content_rows = self.catalog.files_of_contents(scope), self.catalog.contents_of(scope)
        files = {(f.folder, f.rel_path): f for f in file_rows if f.folder not in unavailable}
        return files, {c.sha256: c for c in content_rows}

    def _mirror_targets(self, targets: dict[str, list[_Target]], contents: dict[str, ContentRecord],
                        differ: Collection[str], touched: set[str], verify: Collection[str] | None,
                        report: MirrorReport, scope: Collection[str] | None = None) -> dict[str, MirrorVideo]:
        """Mirror each target video (comparing the sidecars of the contents in ``verify``,
        None: all); returns the mirror rows read at the start (of the contents in ``scope``,
        if given)."""
        # Read once per run, not once per video: a pass over 10,000 quiet videos stays cheap.
        videos = self.catalog.mirror_videos(scope)
        written: dict[str, dict[tuple[Path, str], MirrorFile]] = defaultdict(dict)
        for row in self.catalog.mirror_files(shas=scope):
            written[row.video_id][(row.folder, row.rel_path)] = row
        for video_id, group in targets.items():
            if self.should_stop():
                break
            content = contents.get(group[0].file.sha256 or "")
            if content is None:
                continue
            if self._yield_to is not None and self._must_pull(videos.get(video_id), video_id in differ) \
                    and self._yield_to():
                # A pull is a request (a catch-up over a whole library is hours of them): the
                # daemon's other work, a new file say, goes first. What is done is kept.
                self._yielded = True
                break
            try:
                self._mirror_video(video_id, group, content, video=videos.get(video_id), rows=written[video_id],
                                   report=report, touched=video_id in touched, listing_differs=video_id in differ,
                                   verify=verify is None or content.sha256 in verify)
            except OSError as exc:  # e.g. the state disk is full: report it, go on with the rest
                report.problems.append(f"{group[0].file.path}: mirror: {exc}")
                log.error("%s: mirror: %s", group[0].file.path, exc)
        return videos

    def _retry_due(self, targets: dict[str, list[_Target]], scope: Collection[str] | None) -> float:
        """The earliest retry among ``targets`` (now: one never checked; inf: none). A run
        over ``scope`` covered every video with a retry to come (``mirror_videos_pending``)."""
        now = self.clock()
        videos = self.catalog.mirror_videos(scope)
        due = [float("inf")]
        for video_id in targets:
            video = videos.get(video_id)
            if video is None or video.checked_at is None:
                due.append(now)
            elif video.attempts and video.retry_at > now:
                due.append(video.retry_at)
        return min(due)

    def _remember(self, report: MirrorReport, retry_due: float) -> None:
        """When the next run can have work without a catalog change or a new listing: at
        once if anything is pending or the verification is not over, else at the earliest
        retry (or never)."""
        now = self.clock()
        self._next_due = now if report.pending or report.unfinished or self.should_stop() else retry_due
        self._given_up = list(report.problems)
        self._changes_after_run = self.catalog.changes

    def _marker(self) -> str:
        return f"{self.catalog.generation} {self._settings}"

    def _record_complete(self, report: MirrorReport) -> None:
        """Record in the catalog whether this run left the mirror complete: nothing pending,
        given up or due for a retry, and every sidecar verified by this process. A later
        process skips its run while the catalog's generation (and the mirror's settings)
        are still those of the record (``due``)."""
        complete = not (report.pending or report.problems or report.unfinished or self.should_stop()) \
            and self._next_due == float("inf")
        marker = self._marker() if complete else None
        if self.catalog.mirror_complete() != marker:
            self.catalog.mirror_completed(marker)

    @staticmethod
    def _targets(statuses: Iterable[FileState], files: dict[tuple[Path, str], FileRecord]) -> dict[str, list[_Target]]:
        by_path = {str(f.path): f for f in files.values()}
        targets: dict[str, list[_Target]] = defaultdict(list)
        for status in statuses:
            record = by_path.get(status.path)
            if status.state == "done" and status.video_id and record is not None and record.sha256:
                targets[status.video_id].append(_Target(record, status.collection))
        return dict(targets)

    def _follow_files(self, files: dict[tuple[Path, str], FileRecord], report: MirrorReport,
                      unavailable: Collection[Path], scope: Collection[str] | None = None) -> set[str]:
        """Move sidecars after their video, remove those whose video is gone. Returns the
        videos whose files changed. ``scope``: the contents changed since the last run
        (a path that changed content marks both), whose rows and files are all it reads."""
        touched: set[str] = set()
        written = self.catalog.mirror_files(shas=scope)
        claimed = {(w.folder, w.rel_path) for w in written}
        by_sha: dict[str, list[FileRecord]] = defaultdict(list)
        for known in files.values():
            if known.sha256 and known.present:
                by_sha[known.sha256].append(known)
        for row in written:
            if row.folder in unavailable:
                continue  # unknown this pass: not gone
            record = files.get((row.folder, row.rel_path))
            if record is not None and record.sha256 == row.sha256:
                continue
            touched.add(row.video_id)
            if record is None:
                dest = next((f for f in by_sha.get(row.sha256, []) if (f.folder, f.rel_path) not in claimed), None)
                if dest is not None:
                    try:
                        self.layout.move(row.path, dest.path)
                    except OSError as exc:
                        report.notes.append(f"{row.path}: sidecars not moved to {dest.path}: {exc}")
                    self.catalog.mirror_file_moved(row.folder, row.rel_path, dest.folder, dest.rel_path)
                    claimed.add((dest.folder, dest.rel_path))
                    report.moved += 1
                    continue
            # Gone for good, or the path now holds other content: its sidecars describe nothing.
            try:
                self.layout.remove(row.path)
            except OSError as exc:
                report.notes.append(f"{row.path}: sidecars not removed: {exc}")
            self.catalog.mirror_file_forget(row.folder, row.rel_path)
            report.removed += 1
        return touched

    def _drop_stale(self, contents: dict[str, ContentRecord], videos: dict[str, MirrorVideo]) -> None:
        """Videos no longer uploaded (deleted either way) leave the index."""
        live = {c.video_id for c in contents.values() if c.state == "uploaded" and c.video_id}
        for video_id in videos:
            if video_id not in live:
                self.index.drop(video_id)

    # --------------------------------------------------------------- one video
    def _mirror_video(self, video_id: str, group: list[_Target], content: ContentRecord, *,
                      video: MirrorVideo | None, rows: dict[tuple[Path, str], MirrorFile],
                      report: MirrorReport, touched: bool, listing_differs: bool, verify: bool) -> None:
        """``listing_differs``: the video's entry in the listing checked this run (every
        mirror.interval) says otherwise than its stored details: they are pulled again."""
        refresh = self._must_pull(video, listing_differs)
        if refresh:
            video = self._pull_details(video_id, group, content, report) or video
        if video is not None and video.details:
            waiting = video.retry_at > self.clock()
            if not waiting and self._wants_embeddings(content) and video.embeddings_at is None:
                self._pull_embeddings(video_id, group, content, report)
                video = self.catalog.mirror_video(video_id) or video
            errors = self._write_sidecars(video, group, content, rows, report, check=refresh,
                                          touched=touched, verify=verify)
            if errors and not waiting:
                # Counted like a failed pull, so `sync --wait` stops waiting for a folder
                # it cannot write to (retried every mirror.interval from then on).
                self._failed(video_id, content, group, f"cannot write sidecars: {errors[0]}")
            complete = not errors and not (self._wants_embeddings(content) and video.embeddings_at is None)
        else:
            complete = False
        if complete:
            return
        latest = self.catalog.mirror_video(video_id)
        if latest is not None and self._gave_up(latest):
            # Reported by every run until it succeeds, like a failed upload.
            report.problems.append(f"{group[0].file.path}: mirror: {latest.error} (gave up after "
                                   f"{latest.attempts} attempts; retried every mirror.interval)")
        else:
            report.pending += 1

    def _must_pull(self, video: MirrorVideo | None, listing_differs: bool) -> bool:
        """Whether the video's details are pulled (again) now: never pulled, a failed pull
        due again, or its listing entry says otherwise."""
        if video is not None and video.retry_at > self.clock():
            return False
        return (video is None or video.checked_at is None or not video.details
                or video.attempts > 0  # a failed pull, due again
                or listing_differs)

    def _pull_details(self, video_id: str, group: list[_Target], content: ContentRecord,
                      report: MirrorReport) -> MirrorVideo | None:
        try:
            details = self.remote.video_details(video_id)
        except AuthError:
            raise
        except NotFoundError:
            # Not proof of a deletion on its own: the engine's next complete listing decides.
            report.gone.append(video_id)
            self._failed(video_id, content, group, "details answered 404 (deleted on the remote?)")
            return None
        except RemoteError as exc:
            self._failed(video_id, content, group, f"details: {exc}")
            return None
        facts = remote_facts(details, _pipeline_states(content, self.features.pipelines), self.steps)
        self.catalog.mirror_details_pulled(video_id, content.sha256, _canonical(facts), self.clock())
        return self.catalog.mirror_video(video_id)

    def _pull_embeddings(self, video_id: str, group: list[_Target], content: ContentRecord,
                         report: MirrorReport) -> None:
        try:
            segments = need(self.remote, self.features.embeddings, "give segment embeddings").video_segments(video_id)
        except AuthError:
            raise
        except ConflictError:
            self._failed(video_id, content, group, "embeddings not ready yet (409: still processing)")
        except RemoteError as exc:
            self._failed(video_id, content, group, f"embeddings: {exc}")
        else:
            self.index.put(video_id, segments)

    def _wants_embeddings(self, content: ContentRecord) -> bool:
        return (
            self.options.embeddings
            and self.features.embeddings is not None
            and all(content.step(name).state == "done" for name in self.features.embeddings_after)
        )

    def _gave_up(self, video: MirrorVideo | None) -> bool:
        return video is not None and video.attempts >= self.max_attempts

    def _failed(self, video_id: str, content: ContentRecord, group: list[_Target], error: str) -> None:
        previous = self.catalog.mirror_video(video_id)
        attempts = (previous.attempts if previous else 0) + 1
        if attempts >= self.max_attempts:
            delay = self.options.interval  # given up for now: try again next interval
        else:
            delay = min(self.options.interval, RETRY_BASE * 2 ** (attempts - 1))
        self.catalog.mirror_failed(video_id, content.sha256, error, self.clock() + delay)
        where = group[0].file.path
        if attempts == self.max_attempts:
            log.warning("%s: mirror: %s (gave up after %d attempts)", where, error, attempts)
        else:
            log.info("%s: mirror: %s; retry in %.0fs", where, error, delay)  # transient: log only

    # ---------------------------------------------------------------- sidecars
    def _write_sidecars(self, video: MirrorVideo, group: list[_Target], content: ContentRecord,
                        rows: dict[tuple[Path, str], MirrorFile], report: MirrorReport, *,
                        check: bool, touched: bool, verify: bool = False) -> list[str]:
        """Write the sidecars of every file of one video that needs it, and keep its full-text
        row in step. Returns the write errors (none: every file's sidecars are written).

        A file needs it when its sidecars are missing or older than the data (``rows``: what
        was written, per file). ``check`` (a details refresh) compares every file's JSON
        sidecar with what it should hold, which also repairs one edited by hand;
        ``touched``: a file of this video moved or went away, so its full-text row changes.
        The embeddings are read from the index only when an ``.emb`` file is to be written.
        ``verify`` (once per process) compares a JSON sidecar only if it changed since it
        was written (its mtime is later than the row's ``written_at``): a stat per file,
        not a read, so a ``syncd sync`` over 100,000 quiet videos does not reread them all.
        """
        facts: dict[str, Any] = json.loads(video.details)
        emb_bytes: bytes | None = None
        errors: list[str] = []
        changed = touched
        for target in group:
            file = target.file
            row = rows.get((file.folder, file.rel_path))
            stale = _stale(row, video, content.sha256, target.collection)
            paths = self.layout.paths(file.path)
            has_emb = video.embeddings_at is not None
            write_emb = has_emb and (stale or not paths.emb.exists())
            if not (stale or check or write_emb) and _untouched(paths.json, row if verify else None):
                continue
            summary = None
            if has_emb:
                summary = {"file": paths.emb.name, "segments": video.row_count,
                           "dim": self.index.dim() if video.row_count else 0}
            doc = metadata_document(
                video_id=video.video_id, facts=facts, collection=target.collection, folder=file.folder,
                rel_path=file.rel_path, sha256=content.sha256, local_size=file.size, embeddings=summary,
                pulled_at=video.details_at or self.clock(), steps=self.steps,
            )
            wrote = False
            try:
                if self.layout.write_metadata(paths.json, doc):
                    report.written.append(str(paths.json))
                    wrote = True
                if not has_emb:
                    paths.emb.unlink(missing_ok=True)  # embeddings switched off, or none yet
                elif write_emb:
                    if emb_bytes is None:
                        stored = self.index.vectors(video.video_id)
                        assert stored is not None
                        emb_bytes = embeddings_bytes(video.video_id, *stored)
                    if self.layout.write(paths.emb, emb_bytes):
                        report.written.append(str(paths.emb))
                        wrote = True
            except OSError as exc:
                beside = self.layout.directory is None
                hint = " (read-only folder? set mirror.sidecars to a directory)" if beside else ""
                log.info("%s: cannot write sidecars: %s", file.path, exc)
                errors.append(f"{exc}{hint}")
                continue
            if wrote or stale:  # a check that found the sidecars right records nothing
                self.catalog.mirror_file_written(file.folder, file.rel_path, video.video_id, content.sha256,
                                                 target.collection, self.clock())
                changed = True
        if changed or check or verify:
            self.index.set_text(
                video.video_id,
                name=str(facts.get("name") or ""),
                paths=[str(t.file.path) for t in group],
                collections={t.collection for t in group if t.collection},
                metadata=_metadata_text(facts),
            )
        return errors


@dataclass
class _Sweep:
    """A process's verification of every sidecar (``Mirror.run``), a slice of contents at a
    time in sha256 order (``Catalog.mirror_sweep_slice``): from where the last process's
    was (``start``, persisted after each slice), to the end, then from the beginning round
    to ``start`` again. A slice is not cut short by a stop: the next run does it again."""

    start: str
    pos: str  # the last content of the last slice done ("": from the beginning)
    wrapped: bool  # on the leg from the beginning to ``start``
    done: bool = False

    @classmethod
    def starting_at(cls, cursor: str) -> _Sweep:
        return cls(cursor, cursor, wrapped=not cursor)

    @property
    def upto(self) -> str | None:
        """The last content of this leg (None: the end)."""
        return self.start if self.wrapped and self.start else None

    def slice_done(self, shas: list[str], last: bool) -> None:
        """A slice verified; ``last``: it ended its leg."""
        if shas:
            self.pos = shas[-1]
        if not last:
            return
        if self.wrapped:
            self.done, self.pos = True, self.start
        else:
            self.wrapped, self.pos = True, ""


def _untouched(path: Path, row: MirrorFile | None) -> bool:
    """The sidecar exists and (given the row that recorded its writing) was not changed
    since: no need to read it back."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return False
    return row is None or mtime <= row.written_at


def _stale(row: MirrorFile | None, video: MirrorVideo, sha256: str, collection: str | None) -> bool:
    if row is None or row.sha256 != sha256 or row.collection != collection:
        return True
    newest = max(video.details_at or 0.0, video.embeddings_at or 0.0)
    return row.written_at < newest  # moved (written_at 0), or the data changed since


def _pipeline_states(content: ContentRecord, pipelines: tuple[str, ...]) -> dict[str, str]:
    return {name: content.steps[name].state for name in pipelines if name in content.steps}


def _canonical(facts: dict[str, Any]) -> str:
    return json.dumps(facts, sort_keys=True, separators=(",", ":"))


def _metadata_text(facts: dict[str, Any]) -> str:
    statuses = facts.get("statuses") or {}
    parts = [f"{k} {v}" for k, v in statuses.items() if v]
    if facts.get("width") and facts.get("height"):
        parts.append(f"{facts['width']}x{facts['height']}")
    for key in ("duration_seconds", "created_at"):
        if facts.get(key) is not None:
            parts.append(f"{key} {facts[key]}")
    parts.extend(str(word) for word in facts.get("keywords") or ())  # tags, camera, place...
    return "\n".join(parts)
