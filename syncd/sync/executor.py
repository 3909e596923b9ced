"""Perform a plan's actions through a Remote and the Catalog.

Every remote-changing action is journalled before (``started``) and after
(``ok``/``failed: ...``), and each is idempotent on repeat: a 409 "already
exists/already in", or a 404 on delete, is read as "already done".

Also here: the read-only remote steps of a pass (status refresh, listing,
remote-deletion confirmation), because they feed the same catalog records.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Container, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from syncd.store.catalog import Catalog, ListingWriter
from syncd.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    LinkExpiredError,
    NotFoundError,
    OutOfCreditsError,
    PayloadTooLargeError,
    RemoteError,
    SyncdError,
    TransportError,
    UnavailableError,
    UnsupportedError,
)
from syncd.models import (
    RemoteView,
    TRASH_DIR,
    AbortUpload,
    Action,
    AddToCollection,
    ContentRecord,
    CreateCollection,
    DeleteCollection,
    DeleteRemote,
    ForgetFile,
    LinkVideo,
    Listing,
    MarkVideo,
    Plan,
    RemoteDeleted,
    RemoveFromCollection,
    RenameCollection,
    StartPipeline,
    UnlinkVideo,
    Upload,
)
from syncd.sync.instances import upload_labels
from syncd.sync.progress import NullProgress, SyncProgress
from syncd.media.probe import probe_capture
from syncd.remote.base import (BatchDelete, ChunkedUploader, Collections, Processing, ProcessingStatus, Remote,
                               RemoteVideo, UploadSession)
from syncd.remote.multipart import ResumeState, SourceChanged, UploadInterrupted, upload_file

log = logging.getLogger("syncd.sync.executor")


class FatalRemoteError(SyncdError):
    """The remote refused our credentials: stop the pass at once."""


def key_refused(exc: RemoteError) -> bool:
    """Whether a refusal is about the key or the account, so every later call would fail
    too: a rejected key, or a 403 from the API (syncd made every video and collection it
    touches with its key). A pre-signed URL the object store refused is not."""
    return isinstance(exc, AuthError) or (isinstance(exc, ForbiddenError) and not isinstance(exc, LinkExpiredError))


def retry_delay(attempts: int, base: float = 30.0, cap: float = 3600.0) -> float:
    """Backoff between attempts of a failed upload or pipeline."""
    return min(cap, base * 2 ** max(attempts - 1, 0))


@dataclass
class ExecOptions:
    part_size: int
    concurrency: int
    max_attempts: int = 5
    direct_upload_below: int = 0
    retry_base: float = 30.0
    key_source: str = "the configured key"
    should_stop: Callable[[], bool] = lambda: False
    on_bytes: Callable[[int], None] = lambda n: None
    sidecar_hook: Callable[[str, Path, Path | None], None] | None = None  # (event, path, new_path)
    progress: SyncProgress = field(default_factory=NullProgress)
    instance: str = ""  # this syncd's instance name, for ownership markers


@dataclass
class ExecResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line each
    notes: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    uploaded_files: int = 0
    #: Why uploads stopped for a while (the account is out of credits): waiting cannot help.
    stopped: str | None = None


class _CatalogJournal:
    """The multipart driver's journal, recorded in the catalog for one content."""

    def __init__(self, catalog: Catalog, sha256: str) -> None:
        self.catalog, self.sha256 = catalog, sha256

    def session_started(self, session: UploadSession, part_size: int) -> None:
        self.catalog.upload_started(self.sha256, session.upload_id, session.token, part_size)

    def part_done(self, session: UploadSession, part_number: int, etag: str, size: int) -> None:
        self.catalog.part_uploaded(session.upload_id, part_number, etag, size)

    def upload_completed(self, session: UploadSession) -> None:
        self.catalog.upload_completed(session.upload_id)

    def session_ended(self, session: UploadSession, outcome: str) -> None:
        self.catalog.upload_ended(session.upload_id)
        if outcome != "registered":
            self.catalog.log("upload-session", session.upload_id, outcome)


class _SharedPartSlots:
    """Caps parts in flight across all concurrent file uploads at ``concurrency``."""

    def __init__(self, remote: ChunkedUploader, slots: int) -> None:
        self._remote = remote
        self._slots = threading.BoundedSemaphore(slots)

    def __getattr__(self, name: str) -> object:
        return getattr(self._remote, name)

    def put_part(self, session: UploadSession, part_number: int, source: BinaryIO, offset: int, length: int) -> str:
        with self._slots:
            return self._remote.put_part(session, part_number, source, offset, length)


class _IntoCatalog:
    """A listing sink: each page of the listing into the catalog's staging table."""

    def __init__(self, writer: ListingWriter) -> None:
        self.writer = writer

    def add(self, videos: Sequence[RemoteVideo]) -> int:
        return self.writer.add([
            (v.video_id, v.name, v.created_at, v.hls_playlist_url,
             json.dumps(dict(sorted(v.processing.items())), separators=(",", ":")))
            for v in videos
        ])

    def restart(self) -> None:
        self.writer.restart()


class Executor:
    def __init__(self, remote: Remote, catalog: Catalog, options: ExecOptions,
                 clock: Callable[[], float] = time.time) -> None:
        self.remote = remote
        self.features = remote.features()
        self.catalog = catalog
        self.options = options
        self.clock = clock
        self._lock = threading.Lock()
        self._direct_below = options.direct_upload_below  # lowered by a 413 (the server's cap)
        self._uploads_held_until = 0.0  # out of credits: no upload is tried before then

    # ======================================================== reads
    def read_listing(self) -> Listing | None:
        """The complete remote listing, kept in the catalog as it is read (page by page:
        nothing per video is held here); None (logged) if it could not be read in full,
        and then the catalog keeps the previous one, untouched."""
        with self.catalog.listing_writer() as writer:
            try:
                self.remote.list_into(_IntoCatalog(writer))
            except RemoteError as exc:
                if key_refused(exc):
                    raise self._fatal(exc) from exc
                # A remote that does not answer at all is reported once by the caller (the
                # outage line of `sync`, the daemon's "remote unreachable"), not per step.
                outage = isinstance(exc, (TransportError, UnavailableError))
                log.log(logging.DEBUG if outage else logging.WARNING,
                        "remote listing failed; no remote deletions this pass: %s", exc)
                return None
            return writer.commit()

    def read_newest(self, known: Container[str]) -> RemoteView | None:
        """Remote videos newer than every ``known`` one, from the newest end of the listing
        (for pulls between two complete listings); None if the backend cannot or the read
        failed. Never a complete listing: nothing may be judged deleted from it."""
        newest = self.features.newest
        if newest is None:
            return None
        try:
            videos = newest.list_newest(known)
        except RemoteError as exc:
            if key_refused(exc):
                raise self._fatal(exc) from exc
            log.info("reading the newest remote videos failed: %s", exc)
            return None
        return RemoteView(frozenset(v.video_id for v in videos))

    def refresh(self, contents: Sequence[ContentRecord]) -> list[str]:
        """Poll processing and pipeline states of unfinished videos. Returns notes."""
        notes: list[str] = []
        now = self.clock()
        processing = self.features.processing
        steps = self.features.processing_steps
        if processing is None:
            return notes
        batch = self._batch_statuses(contents, notes)
        for content in contents:
            if content.state != "uploaded" or not content.video_id:
                continue
            try:
                if not content.processed(steps) and not content.processing_failed(steps):
                    if batch is None:
                        self._record_processing(content, processing.processing_status(content.video_id), now)
                    elif content.video_id in batch:
                        self._record_processing(content, batch[content.video_id], now)
                for name, step in content.steps.items():
                    started = step.state == "running" or (step.state == "pending" and step.attempts > 0)
                    if name not in steps and started:
                        status = processing.pipeline_status(content.video_id, name)
                        self.catalog.set_step(content.sha256, name, status.state, status.percentage, status.error)
                        if status.state == "failed":
                            self.catalog.log(name, content.video_id, f"failed: {status.error or 'no reason given'}")
                        elif status.state == "done":
                            self.catalog.log(name, content.video_id, "ok", "finished")
            except NotFoundError:
                notes.append(f"video {content.video_id} answered 404; the remote listing will tell if it was deleted")
            except RemoteError as exc:
                if key_refused(exc):
                    raise self._fatal(exc) from exc
                notes.append(f"status of video {content.video_id}: {exc}")
        return notes

    def _batch_statuses(self, contents: Sequence[ContentRecord], notes: list[str]) -> dict[str, ProcessingStatus] | None:
        """With a backend that reads many states per request (``status_batch``): the states of
        every video still processing, in one go; None: ask per video."""
        batch = self.features.status_batch
        if batch is None:
            return None
        steps = self.features.processing_steps
        ids = [c.video_id for c in contents if c.state == "uploaded" and c.video_id
               and not c.processed(steps) and not c.processing_failed(steps)]
        if not ids:
            return {}
        try:
            found = batch.processing_statuses(ids)
        except RemoteError as exc:
            if key_refused(exc):
                raise self._fatal(exc) from exc
            notes.append(f"processing states: {exc}")
            return {}
        for video_id in ids:
            if video_id not in found:
                notes.append(f"video {video_id} is not listed; the remote listing will tell if it was deleted")
        return found

    def _record_processing(self, content: ContentRecord, status: ProcessingStatus, now: float) -> None:
        for name in self.features.processing_steps:
            step = status.steps.get(name)
            if step is not None:
                self.catalog.set_step(content.sha256, name, step.state, step.percentage, step.error)
        if status.state == "failed":
            attempts = content.attempts + 1
            self.catalog.update_content(
                content.sha256, error=status.failure, attempts=attempts,
                next_attempt_at=now + retry_delay(attempts, self.options.retry_base),
            )
            self.catalog.log("processing", status.video_id, f"failed: {status.failure}")

    def confirm_deleted(self, video_id: str) -> bool:
        """A listing said the video is gone; its details must answer 404 too."""
        try:
            self.remote.video_details(video_id)
        except NotFoundError:
            return True
        except RemoteError as exc:
            if key_refused(exc):
                raise self._fatal(exc) from exc
            log.warning("could not confirm deletion of %s: %s", video_id, exc)
        return False

    # ======================================================== actions
    def execute(self, plan: Plan) -> ExecResult:
        result = ExecResult(notes=list(plan.notes))
        uploads = [a for a in plan.actions if isinstance(a, Upload)]
        rest = [a for a in plan.actions if not isinstance(a, Upload)]
        # Catalog-only and abort steps first, uploads together, then the rest in plan order.
        first = [a for a in rest if isinstance(a, (ForgetFile, AbortUpload, LinkVideo))]
        later = [a for a in rest if a not in first]
        for quick in first:
            self._run(quick, result)
        self._run_uploads(uploads, result)
        unavailable: set[str] = set()
        batch_delete = self.features.batch_delete
        if batch_delete is not None:
            deletes = [a for a in later if isinstance(a, DeleteRemote)]
            later = [a for a in later if not isinstance(a, DeleteRemote)]
            self._delete_batch(batch_delete, deletes, result)
        for action in later:
            if self.options.should_stop():
                break
            if isinstance(action, AddToCollection) and action.collection in unavailable:
                continue
            if not self._run(action, result) and isinstance(action, (CreateCollection, RenameCollection)):
                unavailable.add(action.new if isinstance(action, RenameCollection) else action.name)
        return result

    def _run(self, action: Action, result: ExecResult) -> bool:
        name, target = journal_key(action)
        # Catalog-only steps are not journalled; a pipeline start and a remote delete
        # journal their own "started" (a pipeline's once the remote accepted it).
        if not isinstance(action, (ForgetFile, LinkVideo, StartPipeline, DeleteRemote)):
            self.catalog.log(name, target, "started", action.describe())
        try:
            self._dispatch(action, result)
        except RemoteError as exc:
            if key_refused(exc):
                raise self._fatal(exc) from exc
            self.catalog.log(name, target, f"failed: {exc}")
            result.failed.append(f"{action.describe()}: {exc}")
            return False
        except OSError as exc:
            self.catalog.log(name, target, f"failed: {exc}")
            result.failed.append(f"{action.describe()}: {exc}")
            return False
        return True

    def _dispatch(self, action: Action, result: ExecResult) -> None:
        """Each action to its handler; a type checker follows every branch."""
        match action:
            case AbortUpload():
                self._do_AbortUpload(action, result)
            case LinkVideo():
                self._do_LinkVideo(action, result)
            case MarkVideo():
                self._do_MarkVideo(action, result)
            case UnlinkVideo():
                self._do_UnlinkVideo(action, result)
            case ForgetFile():
                self._do_ForgetFile(action, result)
            case StartPipeline():
                self._do_StartPipeline(action, result)
            case CreateCollection():
                self._do_CreateCollection(action, result)
            case RenameCollection():
                self._do_RenameCollection(action, result)
            case DeleteCollection():
                self._do_DeleteCollection(action, result)
            case AddToCollection():
                self._do_AddToCollection(action, result)
            case RemoveFromCollection():
                self._do_RemoveFromCollection(action, result)
            case DeleteRemote():
                self._do_DeleteRemote(action, result)
            case RemoteDeleted():
                self._do_RemoteDeleted(action, result)
            case _:
                raise TypeError(f"no handler for {action.kind}")

    def _collections(self) -> Collections:
        """The collections feature; the planner asks for collection actions only when the
        backend groups by collection, so its absence here is a bug, said plainly."""
        if self.features.collections is None:
            raise UnsupportedError(f"{self.remote.description} has no collections")
        return self.features.collections

    def _processing(self) -> Processing:
        if self.features.processing is None:
            raise UnsupportedError(f"{self.remote.description} has no pipelines to start")
        return self.features.processing

    def _fatal(self, exc: RemoteError) -> FatalRemoteError:
        # Every video and collection syncd touches on the API was made with its key, so a
        # 403 there ("not authorized for this video") means the key now belongs to
        # another account: stop like for a bad key rather than fail item by item.
        if isinstance(exc, ForbiddenError):
            return FatalRemoteError(
                f"the API key from {self.options.key_source} may not use the videos and collections "
                f"syncd made ({exc}); is it another account's key? stopping"
            )
        return FatalRemoteError(f"the remote rejected the API key from {self.options.key_source} ({exc}); stopping")

    # ---------------------------------------------------------- uploads
    def _run_uploads(self, uploads: list[Upload], result: ExecResult) -> None:
        if not uploads or self.clock() < self._uploads_held_until:
            return  # held: out of credits, said when it happened
        self.options.progress.uploads_planned([(str(a.path), a.size) for a in uploads])
        chunked = self.features.chunked
        slots = None if chunked is None else _SharedPartSlots(chunked, max(1, self.options.concurrency))
        workers = max(1, min(self.options.concurrency, len(uploads)))
        fatal: list[BaseException] = []

        def one(action: Upload) -> None:
            if fatal or self.options.should_stop() or result.stopped:
                return
            progress = self.options.progress
            progress.file_started(str(action.path), action.size)
            ok = False
            try:
                ok = self._upload(action, slots, result)
            except FatalRemoteError as exc:
                fatal.append(exc)
            finally:
                progress.file_finished(str(action.path), ok)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload") as pool:
            list(pool.map(one, uploads))
        if fatal:
            raise fatal[0]

    def _upload(self, action: Upload, uploader: _SharedPartSlots | None, result: ExecResult) -> bool:
        """Upload one file; True once its video is registered."""
        sha = action.sha256
        content = self.catalog.content(sha)
        if content is None:
            return False
        try:
            if action.replaces_video:
                self._delete_remote_video(action.replaces_video, "replaced after failed processing")
                self.catalog.update_content(sha, state="new", video_id=None)
            record = self.catalog.upload_for(sha)
            _check_unchanged(action)  # hashed, then changed: not this content any more
            self.catalog.log("upload", str(action.path), "started", f"sha256 {sha}")
            video_id, whole = None, False
            # Resumable parts (journalled in the catalog) where the backend chunks, except
            # for small files; otherwise the backend's own upload, in one go.
            if record is None and (uploader is None or 0 < action.size < self._direct_below):
                try:
                    video_id = self._upload_whole(action)
                    parts, sent, whole = 1, action.size, True
                    try:
                        _check_unchanged(action)
                    except SourceChanged:
                        # One request made the video: it holds bytes no file holds now.
                        self._delete_remote_video(video_id, "its file changed during the upload")
                        raise
                except PayloadTooLargeError:
                    if uploader is None:
                        raise  # nothing else can send it: refused below
                    # The cap is the server's, set per environment: over it, multipart (as the
                    # doc says), now and for every file this size or larger.
                    self._direct_below = min(self._direct_below, action.size)
                    log.info("%s: over the remote's direct-upload cap; uploading in parts", action.path)
            if video_id is None and uploader is not None:
                resume = None
                if record is not None:
                    resume = ResumeState(
                        UploadSession(record.upload_id, record.token),
                        record.part_size, dict(record.parts), record.completed,
                    )
                outcome = upload_file(
                    uploader, action.path, name=action.name, part_size=self.options.part_size,  # type: ignore[arg-type]
                    concurrency=self.options.concurrency, journal=_CatalogJournal(self.catalog, sha),
                    resume=resume, expected_size=action.size, should_stop=self.options.should_stop,
                    on_bytes=lambda n: self._sent(action, n), expected_mtime_ns=action.mtime_ns,
                )
                video_id, parts, sent = outcome.video_id, outcome.parts_sent, outcome.bytes_sent
            if video_id is None:
                raise PayloadTooLargeError(f"{action.path}: over the remote's upload cap", endpoint="upload")
        except (BadRequestError, PayloadTooLargeError) as exc:
            if uploader is not None:
                self._upload_failed(content, action, exc, result)
            else:
                self._upload_refused(content, action, exc, result)
            return False
        except OutOfCreditsError as exc:
            self._out_of_credits(content, action, exc, result)
            return False
        except UploadInterrupted:
            self.catalog.log("upload", str(action.path), "interrupted; resumable")
            return False
        except SourceChanged as exc:
            self.catalog.update_content(sha, state="new")
            self.catalog.log("upload", str(action.path), f"aborted: {exc}")
            result.notes.append(f"{action.path}: changed during upload; will retry once it settles")
            return False
        except RemoteError as exc:
            if key_refused(exc):
                raise self._fatal(exc) from exc
            self._upload_failed(content, action, exc, result)
            return False
        except OSError as exc:
            self._upload_failed(content, action, exc, result)
            return False
        self.catalog.video_registered(sha, video_id, action.name)
        if self.features.tags is not None and self.features.marks is not None and uploader is None:
            self.catalog.set_marked(sha, True)  # our instance tag went with the upload
        how = "one request, " if whole else f"{parts} part(s), "
        self.catalog.log("upload", str(action.path), "ok", f"video {video_id}, {how}{sent} bytes sent")
        with self._lock:
            result.uploaded_files += 1
            result.uploaded_bytes += sent
            result.done.append(action.describe())
        return True

    def _upload_whole(self, action: Upload) -> str:
        """One request. A backend whose labels are given at upload only (``tags``) gets the
        subfolder's tag, the proof and owner tags (``upload_labels``) and the capture metadata."""
        tags = self.features.tags
        if tags is None:
            return self.remote.upload(action.path, action.name)
        labels = ((action.tag,) if action.tag else ()) + upload_labels(action.sha256, self.options.instance)
        return tags.upload_tagged(action.path, action.name, labels, probe_capture(action.path))

    def _upload_refused(self, content: ContentRecord, action: Upload, exc: RemoteError, result: ExecResult) -> None:
        """The remote will never take this file as it is (too large, a type it does not
        accept): one line, no retries; the same path with other bytes is a new content."""
        self.catalog.update_content(content.sha256, state="failed", error=str(exc),
                                    attempts=max(self.options.max_attempts, content.attempts + 1))
        self.catalog.log("upload", str(action.path), f"refused: {exc}")
        with self._lock:
            result.failed.append(f"{action.path}: {exc}")  # the words `syncd status` shows

    def _out_of_credits(self, content: ContentRecord, action: Upload, exc: RemoteError, result: ExecResult) -> None:
        """No upload can succeed until credits are bought: hold every upload for
        ``CREDITS_WAIT`` (no attempt counted against the file), say so once."""
        now = self.clock()
        self.catalog.update_content(content.sha256, state="failed", error=str(exc), next_attempt_at=now + CREDITS_WAIT)
        self.catalog.log("upload", str(action.path), f"failed: {exc}")
        with self._lock:
            self._uploads_held_until = now + CREDITS_WAIT
            if result.stopped is None:
                result.stopped = (f"uploads stopped: the remote account is out of credits ({exc}); "
                                  f"syncd tries again in {int(CREDITS_WAIT // 60)} minutes or on the next `syncd sync`")
                result.failed.append(result.stopped)

    def _sent(self, action: Upload, n: int) -> None:
        self.options.on_bytes(n)
        self.options.progress.file_bytes(str(action.path), n)

    def _upload_failed(self, content: ContentRecord, action: Upload, exc: Exception, result: ExecResult) -> None:
        if isinstance(exc, TransportError) and not exc.sent:
            # Never reached the remote (it is down): no attempt used, no backoff; retried once it answers.
            self.catalog.update_content(content.sha256, error=str(exc))
            self.catalog.log("upload", str(action.path), f"not sent: {exc}")
            with self._lock:
                result.failed.append(f"{action.path}: upload not sent, will retry: {exc}")
            return
        attempts = content.attempts + 1
        still_open = self.catalog.upload_for(content.sha256) is not None
        self.catalog.update_content(
            content.sha256, state="uploading" if still_open else "failed", error=str(exc),
            attempts=attempts, next_attempt_at=self.clock() + retry_delay(attempts, self.options.retry_base),
        )
        self.catalog.log("upload", str(action.path), f"failed: {exc}")
        with self._lock:
            result.failed.append(f"{action.path}: upload failed (attempt {attempts}): {exc}")

    def _do_AbortUpload(self, action: AbortUpload, result: ExecResult) -> None:
        record = next((u for u in self.catalog.uploads() if u.upload_id == action.upload_id), None)
        if record is None:
            return
        chunked = self.features.chunked
        try:
            if chunked is not None:
                chunked.abort_upload(UploadSession(record.upload_id, record.token))
        except NotFoundError:
            pass
        self.catalog.upload_ended(action.upload_id)
        self.catalog.update_content(action.sha256, state="new")
        self.catalog.log("abort-upload", action.upload_id, "ok")

    def _do_LinkVideo(self, action: LinkVideo, result: ExecResult) -> None:
        name = action.path.name
        file = self.catalog.find_file(action.path)
        if file is not None:
            name = file.rel_path
        marks = self.features.marks
        if not action.owned and marks is not None:
            # Our marker goes on first: until it is there, the owner may delete the video.
            if not marks.add_mark(self.options.instance, action.video_id):
                result.notes.append(f"{action.path}: remote video {action.video_id} of another syncd instance holds "
                                    "the same bytes but cannot be marked as ours yet (not fully processed); "
                                    "uploading a copy of our own instead")
                return
        self.catalog.video_registered(action.sha256, action.video_id, name, owned=action.owned)
        if not action.owned and marks is not None:
            self.catalog.set_marked(action.sha256, True)
        whose = "" if action.owned else " of another syncd instance"
        self.catalog.log("link", str(action.path), "ok",
                         f"existing remote video {action.video_id}{whose}, proved by {action.proof}; nothing uploaded")
        result.notes.append(f"{action.path}: linked to existing remote video {action.video_id}{whose} "
                            f"(catalog rebuilt; same bytes by {action.proof or 'proof'})")

    def _do_MarkVideo(self, action: MarkVideo, result: ExecResult) -> None:
        marks = self.features.marks
        if marks is None:
            return
        if marks.add_mark(self.options.instance, action.video_id):
            self.catalog.set_marked(action.sha256, True)
            self.catalog.log("mark", action.video_id, "ok", self.options.instance)
        else:
            self.catalog.log("mark", action.video_id, "not yet", "the remote cannot mark it yet")
            result.notes.append(f"{action.path}: remote video {action.video_id} cannot be marked yet")

    def _do_UnlinkVideo(self, action: UnlinkVideo, result: ExecResult) -> None:
        content = self.catalog.content(action.sha256)
        marks = self.features.marks
        if content is not None and content.marked and marks is not None:
            marks.remove_mark(self.options.instance, action.video_id)
        self.catalog.content_gone(action.sha256, "deleted", drop_files="all")  # no copy is left here
        self.catalog.log("unlink", action.video_id, "ok", action.reason)
        result.done.append(action.describe())
        gone = ", ".join(str(action.folder / p) for p in action.paths)
        result.notes.append(f"{gone}: deleted locally; remote video {action.video_id} kept ({action.reason})")

    def _do_ForgetFile(self, action: ForgetFile, result: ExecResult) -> None:
        if action.sha256 is not None:  # a rewritten path: only its record of the old content
            self.catalog.forget_superseded(action.folder, action.rel_path, action.sha256)
        else:
            self.catalog.forget_file(action.folder, action.rel_path)

    # -------------------------------------------------------- pipelines
    def _do_StartPipeline(self, action: StartPipeline, result: ExecResult) -> None:
        content = self.catalog.content(action.sha256)
        attempts = content.step(action.pipeline).attempts if content else 0
        try:
            self._processing().start_pipeline(action.video_id, action.pipeline)
        except ConflictError:
            # 409: the video is not ready for it yet; a later pass tries again.
            result.notes.append(f"{action.path}: {action.pipeline} not ready yet")
            return
        self.catalog.step_attempted(
            action.sha256, action.pipeline, self.clock() + retry_delay(attempts + 1, self.options.retry_base)
        )
        self.catalog.log(action.pipeline, action.video_id, "started", str(action.path))

    # ------------------------------------------------------ collections
    def _do_CreateCollection(self, action: CreateCollection, result: ExecResult) -> None:
        try:
            created = self._collections().create_collection(action.name)
            self.catalog.set_collection(action.name, created.collection_id)
            self.catalog.log("create-collection", action.name, "ok", created.collection_id)
            return
        except ConflictError:
            pass
        existing = next((c for c in self._collections().list_collections() if c.name == action.name), None)
        if existing is None:
            raise RemoteError(f"collection {action.name!r} exists but is not listed yet; retrying later")
        self.catalog.set_collection(action.name, existing.collection_id)
        self.catalog.log("create-collection", action.name, "found existing", existing.collection_id)

    def _do_RenameCollection(self, action: RenameCollection, result: ExecResult) -> None:
        try:
            self._collections().rename_collection(action.collection_id, action.new)
        except NotFoundError:
            self.catalog.drop_collection(action.old)
            raise RemoteError(f"collection {action.old!r} is gone on the remote; it will be re-created")
        self.catalog.rename_collection(action.old, action.new)
        self.catalog.log("rename-collection", action.old, "ok", f"now {action.new!r}")

    def _do_DeleteCollection(self, action: DeleteCollection, result: ExecResult) -> None:
        try:
            self._collections().delete_collection(action.collection_id)
        except NotFoundError:
            pass
        self.catalog.drop_collection(action.name)
        self.catalog.log("delete-collection", action.name, "ok")

    def _do_AddToCollection(self, action: AddToCollection, result: ExecResult) -> None:
        record = self.catalog.collection(action.collection)
        if record is None:
            return
        collections = self._collections()
        try:
            collections.add_to_collection(record.collection_id, action.video_id)
        except ConflictError:
            pass  # already in
        except NotFoundError as exc:
            if collections.missing_collection(exc):
                self.catalog.drop_collection(action.collection)
            raise
        except BadRequestError as exc:
            result.notes.append(f"{action.path}: not added to {action.collection!r} yet: {exc.message}")
            return
        self.catalog.add_membership(action.collection, action.sha256)
        self.catalog.log("add-to-collection", str(action.path), "ok", action.collection)

    def _do_RemoveFromCollection(self, action: RemoveFromCollection, result: ExecResult) -> None:
        record = self.catalog.collection(action.collection)
        if record is not None:
            try:
                self._collections().remove_from_collection(record.collection_id, action.video_id)
            except NotFoundError:
                pass
        self.catalog.remove_membership(action.collection, action.sha256)
        self.catalog.log("remove-from-collection", action.video_id, "ok", action.collection)

    # -------------------------------------------------------- deletions
    def _delete_remote_video(self, video_id: str, reason: str) -> None:
        self.catalog.log("delete-remote", video_id, "started", reason)
        try:
            self.remote.delete_video(video_id)
        except NotFoundError:
            pass
        self.catalog.log("delete-remote", video_id, "ok", reason)

    def _delete_batch(self, remote: BatchDelete, actions: list[DeleteRemote], result: ExecResult) -> None:
        """Every ``DeleteRemote`` of the plan, many videos per request (the backend batches):
        each journalled before and after, like one by one."""
        for start in range(0, len(actions), DELETE_BATCH):
            if self.options.should_stop():
                return
            batch = actions[start:start + DELETE_BATCH]
            for action in batch:
                self.catalog.log("delete-remote", action.video_id, "started", _delete_reason(action))
            try:
                remote.delete_videos([a.video_id for a in batch])
            except RemoteError as exc:
                if key_refused(exc):
                    raise self._fatal(exc) from exc
                for action in batch:
                    self.catalog.log("delete-remote", action.video_id, f"failed: {exc}")
                    result.failed.append(f"{action.describe()}: {exc}")
                continue
            for action in batch:
                self.catalog.log("delete-remote", action.video_id, "ok", _delete_reason(action))
                self.catalog.content_gone(action.sha256, "deleted", drop_files="all")
                result.done.append(action.describe())

    def _do_DeleteRemote(self, action: DeleteRemote, result: ExecResult) -> None:
        self._delete_remote_video(action.video_id, _delete_reason(action))
        self.catalog.content_gone(action.sha256, "deleted", drop_files="all")  # no copy is left
        result.done.append(action.describe())

    def _do_RemoteDeleted(self, action: RemoteDeleted, result: ExecResult) -> None:
        if not self.confirm_deleted(action.video_id):
            result.notes.append(f"video {action.video_id} missing from the listing but still answers; left alone")
            return
        for rel in action.rel_paths:
            path = action.folder / rel
            if action.policy == "trash":
                target = trash_path(action.folder, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(path, target)
                if self.options.sidecar_hook:
                    self.options.sidecar_hook("move", path, target)
                self.catalog.log("trash", str(path), "ok", str(target))
            elif action.policy == "delete":
                path.unlink(missing_ok=True)
                if self.options.sidecar_hook:
                    self.options.sidecar_hook("delete", path, None)
                self.catalog.log("delete-local", str(path), "ok")
        moved_away = [] if action.policy == "keep" else [(action.folder, rel) for rel in action.rel_paths]
        self.catalog.content_gone(action.sha256, "remote_deleted", drop_files=moved_away)
        self.catalog.log("remote-deleted", action.video_id, "ok", action.policy)
        result.done.append(action.describe())


#: Video ids per delete request where the backend deletes many at once (memories.ai: 100).
DELETE_BATCH = 100
#: Out of credits: how long uploads wait before one is tried again.
CREDITS_WAIT = 3600.0


def _delete_reason(action: DeleteRemote) -> str:
    return f"local copies deleted: {', '.join(action.paths)}"


def _check_unchanged(action: Upload) -> None:
    """The file still has the size and mtime it had when hashed, else SourceChanged."""
    try:
        st = os.stat(action.path)
    except OSError as exc:
        raise SourceChanged(f"{action.path}: {exc.strerror or exc}") from exc
    if st.st_size != action.size or (action.mtime_ns is not None and st.st_mtime_ns != action.mtime_ns):
        raise SourceChanged(f"{action.path}: changed since it was hashed")


def trash_path(folder: Path, rel_path: str) -> Path:
    """``<folder>/.syncd-trash/<rel_path>``, never an existing file: add ``.1``, ``.2`` ..."""
    base = folder / TRASH_DIR / rel_path
    candidate, n = base, 0
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.stem}.{n}{base.suffix}")
    return candidate


JOURNAL_NAMES = {
    "Upload": "upload", "AbortUpload": "abort-upload", "LinkVideo": "link",
    "CreateCollection": "create-collection", "RenameCollection": "rename-collection",
    "DeleteCollection": "delete-collection", "AddToCollection": "add-to-collection",
    "RemoveFromCollection": "remove-from-collection", "DeleteRemote": "delete-remote",
    "RemoteDeleted": "remote-deleted", "ForgetFile": "forget",
    "MarkVideo": "mark", "UnlinkVideo": "unlink",
}


def journal_key(action: Action) -> tuple[str, str]:
    """The journal's name and target for an action: one name per kind, the same
    target for its "started" and its outcome (``syncd log``, ``sync`` output)."""
    if isinstance(action, StartPipeline):
        return action.pipeline, action.video_id
    if isinstance(action, RenameCollection):
        return "rename-collection", action.old
    if isinstance(action, (DeleteRemote, RemoteDeleted, RemoveFromCollection, MarkVideo, UnlinkVideo)):
        return JOURNAL_NAMES[action.kind], action.video_id
    for attr in ("path", "name", "upload_id", "video_id", "collection"):
        value = getattr(action, attr, None)
        if value:
            return JOURNAL_NAMES.get(action.kind, action.kind), str(value)
    return JOURNAL_NAMES.get(action.kind, action.kind), action.kind


