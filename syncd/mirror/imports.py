"""``syncd import URL... --into FOLDER[/SUBFOLDER]``: videos the service fetches itself.

The remote's ``url_import`` ability starts a task from web URLs (Mikshi: one YouTube
import per URL, its video known at once; memories.ai: one scraper task whose videos
appear one by one). Every step is in the catalog before the next request:

* the import is recorded before the request is sent (``sending``), its task id once the
  service answers (``running``);
* each video the task reports is recorded under its remote id (``waiting``); once the
  remote has processed it, it is downloaded into the folder like a pulled video (hashed on
  the way, named from its remote name made safe, never replacing a file) and recorded as
  content the remote already has (``landed``), so no pass ever uploads it back;
* the import ends ``done`` when the task will bring no more videos and every video landed
  or failed. A task that reports nothing is ambiguous on memories.ai (still downloading,
  or no such task): it is given up after ``give_up_after`` seconds without a new video.

Polling backs off while nothing changes (``poll_start`` growing 1.5x to ``poll_cap``); the
remote's rate limiter paces the requests themselves. ``syncd import`` polls until its
imports end; the daemon polls unfinished ones on a timer, so a restart resumes them.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from syncd.config import Config, FolderConfig
from syncd.errors import AuthError, NotFoundError, RemoteError
from syncd.mirror.names import contained, matches_any, safe_component, sniff_extension
from syncd.mirror.pull import _free_path, _HashingSink, _place, file_sha256
from syncd.models import LocalFile
from syncd.remote.base import Features, ImportTask, Remote, UrlImporter
from syncd.store.catalog import Catalog
from syncd.store.records import ImportRecord, ImportVideoRecord
from syncd.folders import folder_problem
from syncd.units import format_duration, format_size

log = logging.getLogger("syncd.mirror.imports")

_TEMP_SUFFIX = ".syncd-import"


class BadImport(ValueError):
    """The command line asks for an import that cannot be sent (one line; exit 2)."""


@dataclass(frozen=True)
class Timing:
    poll_start: float = 1.0  # seconds before the first poll, and after one that brought news
    poll_cap: float = 30.0  # the longest wait between polls of one import
    give_up_after: float = 1800.0  # no new video for this long: the task will bring no more

    def next_poll(self, idle_polls: int) -> float:
        return float(min(self.poll_cap, self.poll_start * 1.5 ** idle_polls))


def resolve_target(config: Config, into: str) -> tuple[FolderConfig, str]:
    """``FOLDER[/SUBFOLDER]``: a watched folder (its path, or its last name when that is
    unique), optionally a subfolder inside it; (folder, "sub/dir" or "")."""
    path = Path(os.path.normpath(os.path.abspath(into)))
    folder = config.folder_for(path)
    if folder is not None:
        rel = path.relative_to(folder.path).as_posix()
        sub = "" if rel == "." else rel
    else:
        head, _, sub = into.strip("/").partition("/")
        named = [f for f in config.folders if f.path.name == head]
        if len(named) != 1:
            known = ", ".join(str(f.path) for f in config.folders)
            raise BadImport(f"--into {into}: not a watched folder or a subfolder of one (folders: {known})")
        folder = named[0]
    parts = [p for p in sub.split("/") if p]
    for part in parts:
        if safe_component(part, fallback="") != part or matches_any(part, folder.exclude):
            raise BadImport(f"--into {into}: {part!r} is not a subfolder name the scan would read")
    return folder, "/".join(parts)


class Importer:
    """Starts imports and tracks them to their end; the only writer of the import tables."""

    def __init__(self, config: Config, catalog: Catalog, remote: Remote, *,
                 timing: Timing | None = None, clock: Callable[[], float] = time.time,
                 say: Callable[[str], None] = log.info) -> None:
        self.config = config
        self.catalog = catalog
        self.remote = remote
        self.features: Features = remote.features()
        self.timing = timing or Timing()
        self.clock = clock
        self.say = say  # one line per event: the task, each video as it appears, lands or fails

    @property
    def importer(self) -> UrlImporter:
        if self.features.url_import is None:
            raise BadImport(f"{self.remote.description} cannot import videos from URLs")
        return self.features.url_import

    # ------------------------------------------------------------------ start
    def start(self, urls: Sequence[str], into: str) -> ImportRecord:
        """Check everything, record the import, send it; the record. Nothing is sent when
        the URLs or the target are wrong (``BadImport``)."""
        importer = self.importer
        folder, subdir = resolve_target(self.config, into)
        problem = importer.check_urls(list(urls))
        if problem is not None:
            raise BadImport(problem)
        import_id = uuid.uuid4().hex[:12]
        self.catalog.import_started(import_id, urls, folder.path, subdir, self.clock())
        try:
            task = importer.import_urls(list(urls))
        except RemoteError as exc:
            self.catalog.import_update(import_id, state="failed", detail=str(exc))
            self.catalog.log("import", import_id, f"failed: {exc}")
            raise
        self.catalog.import_update(import_id, task_id=task.task_id, state="running", complete=int(task.done),
                                   next_poll_at=self.clock() + self.timing.poll_start)
        where = folder.path / subdir if subdir else folder.path
        self.catalog.log("import", import_id, "started", f"task {task.task_id}: {len(urls)} URL(s) into {where}")
        self.say(f"import {import_id}: task {task.task_id} started: {len(urls)} URL(s) into {where}")
        for line in task.failed:
            self.say(f"import {import_id}: refused: {line}")
        self._seen(import_id, task)
        return self._record(import_id)

    # ------------------------------------------------------------------ tracking
    def unfinished(self) -> list[ImportRecord]:
        return self.catalog.imports(unfinished=True)

    def poll_due(self) -> float | None:
        """Poll every unfinished import that is due; when the next one is (wall clock), or None."""
        for record in self.unfinished():
            if record.next_poll_at <= self.clock():
                self.poll(record)
        return min((r.next_poll_at for r in self.unfinished()), default=None)

    def poll(self, record: ImportRecord) -> ImportRecord:
        """One round for one import: new videos, processed ones downloaded, the end decided."""
        if record.state == "sending":
            # Killed between sending and recording the answer: the task id was never heard,
            # and no call lists tasks. Its videos, if any, show up as remote-only videos.
            detail = "interrupted before the service's answer was recorded; its videos, if any, are remote-only"
            self.catalog.import_update(record.import_id, state="failed", detail=detail)
            self.say(f"import {record.import_id}: failed: {detail}")
            return self._record(record.import_id)
        news = False
        if not record.complete and record.task_id is not None:
            known = tuple(v.video_id for v in self.catalog.import_videos(record.import_id))
            task = self.importer.import_status(ImportTask(record.task_id, known))
            news = self._seen(record.import_id, task) > 0
            # One video per URL at most: once each URL brought one, nothing more will come.
            if task.done or len(self.catalog.import_videos(record.import_id)) >= len(record.urls):
                self.catalog.import_update(record.import_id, complete=1)
        for video in self.catalog.import_videos(record.import_id):
            if video.state == "waiting":
                news = self._advance(record, video) or news
        return self._settle(self._record(record.import_id), news)

    def _seen(self, import_id: str, task: ImportTask) -> int:
        new = self.catalog.import_video_seen(import_id, task.video_ids, self.clock())
        for video_id in new:
            self.say(f"import {import_id}: video {video_id} appeared")
        return len(new)

    def _advance(self, record: ImportRecord, video: ImportVideoRecord) -> bool:
        """Land a processed video, fail a failed one; True if its state changed."""
        now = self.clock()
        try:
            processing = self.features.processing
            if processing is not None:
                status = processing.processing_status(video.video_id)
                if status.state == "failed":
                    reason = status.failure or "processing failed"
                    self.catalog.import_video_update(record.import_id, video.video_id, "failed", now, detail=reason)
                    self.say(f"import {record.import_id}: video {video.video_id} failed: {reason}")
                    return True
                if status.state != "done":
                    return False
            self._land(record, video)
            return True
        except NotFoundError:
            detail = "gone from the remote before it could be downloaded"
            self.catalog.import_video_update(record.import_id, video.video_id, "failed", now, detail=detail)
            self.say(f"import {record.import_id}: video {video.video_id} failed: {detail}")
            return True
        except AuthError:
            raise
        except (RemoteError, OSError) as exc:
            log.warning("import %s: video %s not downloaded yet (%s); trying again", record.import_id,
                        video.video_id, exc)
            return False

    def _land(self, record: ImportRecord, video: ImportVideoRecord) -> None:
        folder = next((f for f in self.config.folders if f.path == record.folder), None)
        if folder is None:
            raise OSError(f"{record.folder} is no longer a watched folder")
        problem = folder_problem(folder.path, folder.require_marker)
        if problem:
            raise OSError(problem)
        directory = folder.path / record.subdir if record.subdir else folder.path
        directory.mkdir(parents=True, exist_ok=True)
        if not contained(folder.path, directory / "x"):  # a symlink planted on the way
            raise OSError(f"target directory {directory} resolves outside {folder.path}")
        details = self.remote.video_details(video.video_id)
        tmp = directory / f".{video.video_id}{_TEMP_SUFFIX}"
        try:
            with open(tmp, "wb") as fh:
                sink = _HashingSink(fh)
                received = self.remote.download_video(video.video_id, sink)  # type: ignore[arg-type]
                fh.flush()
                os.fsync(fh.fileno())
            if received != sink.size or (details.size_bytes is not None and sink.size != details.size_bytes):
                raise RemoteError(f"download of {video.video_id} is incomplete: {sink.size} bytes, "
                                  f"expected {details.size_bytes}")
            sha256 = sink.sha256.hexdigest()
            now = self.clock()
            if self.catalog.content(sha256) is not None:
                detail = "its bytes are already here (same content as a local file); not downloaded again"
                self.catalog.import_video_update(record.import_id, video.video_id, "duplicate", now,
                                                 name=details.name, sha256=sha256, detail=detail)
                self.say(f"import {record.import_id}: video {video.video_id}: {detail}")
                return
            target = _free_path(directory / _file_name(details.name, video.video_id, folder, sink.head))
            # Recorded first: killed between placing the file and recording it, the next start
            # finds it here (``recover``) before a scan could take it for new content.
            self.catalog.import_video_update(record.import_id, video.video_id, "placing", now, name=details.name,
                                             path=str(target), sha256=sha256)
            _place(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self._landed(record.import_id, video.video_id, folder, target, sha256, details.name)

    def _landed(self, import_id: str, video_id: str, folder: FolderConfig, target: Path, sha256: str,
                name: str) -> None:
        st = target.stat()
        local = LocalFile(folder.path, target.relative_to(folder.path).as_posix(), st.st_size, st.st_mtime_ns,
                          st.st_ino)
        self.catalog.import_video_landed(import_id, video_id, local, sha256, name, self.features.processing_steps,
                                         self.clock())
        self.catalog.log("import", video_id, "ok", f"{target} ({st.st_size} bytes, sha256 {sha256})")
        self.say(f"import {import_id}: video {video_id} → {target} ({format_size(st.st_size)})")

    def _settle(self, record: ImportRecord, news: bool) -> ImportRecord:
        """Decide whether the import ended; else when to poll it next."""
        now = self.clock()
        videos = self.catalog.import_videos(record.import_id)
        waiting = [v for v in videos if v.state in ("waiting", "placing")]
        quiet_for = now - record.progress_at
        if not waiting and (record.complete or quiet_for >= self.timing.give_up_after):
            landed = sum(v.state == "landed" for v in videos)
            if not videos:
                state, detail = "failed", (f"no video appeared within {format_duration(self.timing.give_up_after)} "
                                           "(the task may not exist, or found nothing to download)")
            else:
                state = "done"
                failed = sum(v.state == "failed" for v in videos)
                detail = f"{landed} video(s) landed" + (f", {failed} failed" if failed else "")
                if len(videos) < len(record.urls):
                    detail += f"; {len(record.urls) - len(videos)} URL(s) brought no video"
            self.catalog.import_update(record.import_id, state=state, detail=detail)
            self.catalog.log("import", record.import_id, state, detail)
            self.say(f"import {record.import_id}: {state}: {detail}")
        else:
            idle = 0 if news else record.polls + 1
            self.catalog.import_update(record.import_id, polls=idle, next_poll_at=now + self.timing.next_poll(idle))
        return self._record(record.import_id)

    def _record(self, import_id: str) -> ImportRecord:
        return next(r for r in self.catalog.imports() if r.import_id == import_id)

    # ------------------------------------------------------------------ recovery
    def recover(self) -> None:
        """Finish landings cut short between placing the file and recording it: record the
        file if it holds the downloaded bytes, else download it again."""
        for record in self.unfinished():
            folder = next((f for f in self.config.folders if f.path == record.folder), None)
            for video in self.catalog.import_videos(record.import_id):
                if video.state != "placing" or not video.path or not video.sha256:
                    continue
                target = Path(video.path)
                try:
                    placed = folder is not None and file_sha256(target) == video.sha256
                except OSError:
                    placed = False
                if placed and folder is not None and self.catalog.content(video.sha256) is None:
                    self._landed(record.import_id, video.video_id, folder, target, video.sha256, video.name)
                else:
                    self.catalog.import_video_update(record.import_id, video.video_id, "waiting", self.clock(),
                                                     detail="interrupted before it was placed")


def _file_name(remote_name: str, video_id: str, folder: FolderConfig, head: bytes) -> str:
    """The remote's name made safe, with an extension the folder's scan picks up."""
    fallback = f"video-{video_id[:12]}"
    name = safe_component(remote_name, fallback=fallback)
    if not matches_any(name, folder.include) or matches_any(name, folder.exclude):
        name = safe_component(name + sniff_extension(head), fallback=fallback + ".mp4")
    return name
