"""The one resumable multipart driver, for every backend that can ``ChunkedUploader``.

Crash safety comes from the journal: the session is recorded before the
first part is sent, every part's ETag as it lands, the completion before the
video is registered. A restart hands the recorded :class:`ResumeState` back in
and the driver asks the remote which parts it really holds (``list_parts``),
so only missing parts are sent again.

Failure policy: a permanent failure (the remote refuses a part or the
completion, the file changed) aborts the upload so no orphaned parts remain;
a transient one (network, 5xx after retries) leaves the session recorded so
the next attempt resumes it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from syncd.errors import BadRequestError, LinkExpiredError, NotFoundError, RemoteError, SyncdError
from syncd.remote.base import ChunkedUploader, UploadSession

log = logging.getLogger("syncd.upload")

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
MiB = 1024 * 1024


class UploadInterrupted(SyncdError):
    """Stopped on request (shutdown); the session stays recorded and resumable."""


class SourceChanged(SyncdError):
    """The local file changed or vanished during the upload: the content is gone."""


class UploadLost(RemoteError):
    """The remote forgot an unfinished upload (expired or aborted elsewhere); start afresh."""

    retryable = True


@dataclass
class ResumeState:
    session: UploadSession
    part_size: int
    parts: dict[int, str] = field(default_factory=dict)
    completed: bool = False  # the object was assembled; only registration remains


class UploadJournal(Protocol):
    """Where the driver records progress; the catalog implements it. Must be thread-safe."""

    def session_started(self, session: UploadSession, part_size: int) -> None: ...

    def part_done(self, session: UploadSession, part_number: int, etag: str, size: int) -> None: ...

    def upload_completed(self, session: UploadSession) -> None: ...

    def session_ended(self, session: UploadSession, outcome: str) -> None: ...


class NoJournal:
    """A journal kept nowhere: for one-shot uploads that are not resumed after a crash."""

    def session_started(self, session: UploadSession, part_size: int) -> None: ...

    def part_done(self, session: UploadSession, part_number: int, etag: str, size: int) -> None: ...

    def upload_completed(self, session: UploadSession) -> None: ...

    def session_ended(self, session: UploadSession, outcome: str) -> None: ...


def plan_part_size(size: int, wanted: int) -> int:
    """The configured part size, raised (in whole MiB) if the file would need > 10,000 parts."""
    part = max(wanted, MIN_PART_SIZE)
    if math.ceil(size / part) > MAX_PARTS:
        part = math.ceil(size / MAX_PARTS / MiB) * MiB
    return part


def part_ranges(size: int, part_size: int) -> dict[int, tuple[int, int]]:
    """part number → (offset, length). An empty file is one empty part."""
    count = max(1, math.ceil(size / part_size))
    return {n: ((n - 1) * part_size, min(part_size, size - (n - 1) * part_size)) for n in range(1, count + 1)}


@dataclass
class UploadResult:
    video_id: str
    parts_sent: int
    bytes_sent: int
    resumed: bool


def upload_file(
    uploader: ChunkedUploader,
    path: Path,
    *,
    name: str,
    part_size: int,
    concurrency: int,
    journal: UploadJournal,
    resume: ResumeState | None = None,
    expected_size: int | None = None,
    content_type: str = "video/mp4",
    should_stop: Callable[[], bool] = lambda: False,
    on_bytes: Callable[[int], None] = lambda n: None,
    expected_mtime_ns: int | None = None,
) -> UploadResult:
    """Upload ``path`` (resuming ``resume`` if given) and register it; return the video id.

    A file whose size or mtime changes (from ``expected_*``, or during the upload) is not
    registered: the upload is aborted and SourceChanged raised."""
    with open(path, "rb") as source:
        st = os.fstat(source.fileno())
        size = st.st_size
        if expected_size is not None and size != expected_size:
            raise SourceChanged(f"{path}: size changed from {expected_size} to {size}")
        mtime_ns = st.st_mtime_ns if expected_mtime_ns is None else expected_mtime_ns
        if st.st_mtime_ns != mtime_ns:
            raise SourceChanged(f"{path}: changed since it was hashed")

        state = _resume_or_start(uploader, path, name, size, part_size, resume, journal, content_type)
        session = state.session
        try:
            parts_sent, bytes_sent = 0, 0
            if not state.completed:
                ranges = part_ranges(size, state.part_size)
                missing = [n for n in ranges if n not in state.parts]
                parts_sent, bytes_sent = _send_parts(
                    uploader, session, source, ranges, missing, state.parts,
                    concurrency, journal, should_stop, on_bytes,
                )
                now = os.fstat(source.fileno())
                if now.st_size != size or now.st_mtime_ns != mtime_ns:
                    raise SourceChanged(f"{path}: file changed during upload")
                _complete(uploader, session, sorted(state.parts.items()))
                journal.upload_completed(session)
            video_id = _register(uploader, session, name)
        except UploadInterrupted:
            raise
        except (SourceChanged, OSError) as exc:
            _abort(uploader, session, journal, f"aborted: {exc}")
            raise SourceChanged(str(exc)) from exc
        except UploadLost:
            journal.session_ended(session, "lost")
            raise
        except RemoteError as exc:
            if not exc.retryable and not state.completed:
                _abort(uploader, session, journal, f"aborted: {exc}")
            raise
        journal.session_ended(session, "registered")
        return UploadResult(video_id, parts_sent, bytes_sent, resumed=resume is not None)


def _resume_or_start(
    uploader: ChunkedUploader,
    path: Path,
    name: str,
    size: int,
    part_size: int,
    resume: ResumeState | None,
    journal: UploadJournal,
    content_type: str,
) -> ResumeState:
    if resume is not None:
        if resume.completed:
            return resume
        try:
            remote_parts = uploader.list_parts(resume.session)
        except NotFoundError:
            # The upload id is gone: completed by an attempt whose answer was
            # lost, or expired/aborted. Registration tells which.
            log.info("%s: upload %s no longer listed; checking whether it completed", path, resume.session.upload_id)
            return ResumeState(resume.session, resume.part_size, dict(resume.parts), completed=True)
        log.info("%s: resuming upload, %d part(s) already on the remote", path, len(remote_parts))
        return ResumeState(resume.session, resume.part_size, remote_parts)
    chosen = plan_part_size(size, part_size)
    session = uploader.start_upload(name, content_type)
    journal.session_started(session, chosen)
    return ResumeState(session, chosen)


def _send_parts(
    uploader: ChunkedUploader,
    session: UploadSession,
    source: BinaryIO,
    ranges: dict[int, tuple[int, int]],
    missing: list[int],
    done: dict[int, str],
    concurrency: int,
    journal: UploadJournal,
    should_stop: Callable[[], bool],
    on_bytes: Callable[[int], None],
) -> tuple[int, int]:
    """Send the missing parts, at most ``concurrency`` at once; record each ETag as it lands."""
    lock = threading.Lock()
    sent = [0, 0]
    pending = iter(missing)

    def worker() -> None:
        while True:
            if should_stop():
                raise UploadInterrupted("stopped")
            with lock:
                number = next(pending, None)
            if number is None:
                return
            offset, length = ranges[number]
            etag = _put_part(uploader, session, number, source, offset, length)
            journal.part_done(session, number, etag, length)
            with lock:
                done[number] = etag
                sent[0] += 1
                sent[1] += length
            on_bytes(length)

    workers = max(1, min(concurrency, len(missing)))
    if not missing:
        return 0, 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="part") as pool:
        futures: list[Future[None]] = [pool.submit(worker) for _ in range(workers)]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failure = next((f.exception() for f in finished if f.exception()), None)
        if failure is not None:
            # Let the other workers stop at their next part boundary.
            with lock:
                for _ in pending:
                    pass
            wait(futures)
            raise failure
    return sent[0], sent[1]


def _put_part(uploader: ChunkedUploader, session: UploadSession, number: int, source: BinaryIO,
              offset: int, length: int) -> str:
    try:
        return uploader.put_part(session, number, source, offset, length)
    except LinkExpiredError:
        # The object store refused the pre-signed URL: it expired between signing and
        # sending (a stall, a suspended machine). ``put_part`` signs anew: try once more
        # rather than abort an upload whose other parts are safely on the remote.
        log.info("upload %s: part %d's URL was refused; signing it again", session.upload_id, number)
        return uploader.put_part(session, number, source, offset, length)
    except NotFoundError as exc:  # NoSuchUpload: aborted or expired on the remote
        raise UploadLost(f"upload {session.upload_id} is gone from the remote: {exc.message}") from exc


def _complete(uploader: ChunkedUploader, session: UploadSession, parts: list[tuple[int, str]]) -> None:
    try:
        uploader.complete_upload(session, parts)
    except NotFoundError:
        # A repeat of a completion whose answer was lost: registration decides.
        log.info("upload %s already gone at completion; assuming it completed", session.upload_id)


def _register(uploader: ChunkedUploader, session: UploadSession, name: str) -> str:
    try:
        return uploader.register_video(session, name)  # registered before: the same id
    except BadRequestError as exc:
        raise UploadLost(f"upload {session.upload_id} was never completed on the remote: {exc.message}") from exc


def _abort(uploader: ChunkedUploader, session: UploadSession, journal: UploadJournal, outcome: str) -> None:
    try:
        uploader.abort_upload(session)
    except NotFoundError:
        pass
    except RemoteError as exc:
        # Keep the session recorded: the next pass aborts it again.
        log.warning("could not abort upload %s: %s", session.upload_id, exc)
        return
    journal.session_ended(session, outcome)
