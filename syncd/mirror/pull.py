"""``mirror.pull_remote``: download remote videos this catalog did not upload.

A video added through the web, or by another machine, lands in
``<pull_into>/<collection name>/<name>`` (``<pull_into>/<name>`` when it is in no
collection). It is streamed to a hidden temp file in the target directory, checked
(byte count against the remote's size) and hashed on the way, then linked into place
without ever replacing an existing file. It is recorded in the catalog as already
uploaded under its remote id, so it is never uploaded again, and from then on it is
mirrored like any other file.

Names come from other clients and are never trusted: see ``names.safe_component``;
every target path is checked to resolve inside the folder (symlinks included).
Content the catalog already holds (the same bytes under another video) is not kept a
second time; the pull is recorded as a duplicate and not tried again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from syncd.store.catalog import Catalog
from syncd.config import Config, FolderConfig
from syncd.errors import AuthError, NotFoundError, RemoteError
from syncd.folders import folder_problem
from syncd.mirror.atomic import fsync_dir
from syncd.mirror.names import contained, matches_any, safe_component, sniff_extension
from syncd.models import Listing, LocalFile, RemoteView
from syncd.remote.base import Remote, UploadSession

if TYPE_CHECKING:
    from syncd.mirror.mirror import MirrorReport

log = logging.getLogger("syncd.mirror")

RETRY_BASE = 60.0  # seconds before a failed download is tried again; doubles each time
MAX_RETRY = 6 * 3600.0
IMPORT_WAIT = 60.0  # seconds before pulling again while an import may still claim remote videos
_TEMP_SUFFIX = ".syncd-pull"


class _HashingSink:
    """A write-only file wrapper that hashes and counts what goes through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, data: bytes) -> int:
        if len(self.head) < 16:
            self.head += data[: 16 - len(self.head)]
        self.sha256.update(data)
        self.size += len(data)
        return self._fh.write(data)


@dataclass(frozen=True)
class PullOptions:
    """What the puller reads of the config: the folders (a pull cut short may have placed its
    file in any of them) and the one it pulls into."""

    folders: tuple[FolderConfig, ...]
    into: FolderConfig | None  # None: no folder configured, nothing to pull into

    @classmethod
    def from_config(cls, config: Config) -> PullOptions:
        target = config.mirror.pull_into or next((f.path for f in config.folders), None)
        return cls(config.folders, next((f for f in config.folders if f.path == target), None))


class Puller:
    def __init__(
        self,
        options: PullOptions,
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
        self.clock = clock
        self.should_stop = should_stop

    def candidates(self, listing: Listing | RemoteView) -> list[str]:
        """Listed videos (the complete listing the catalog keeps, or the few new ones read
        at its newest end) that no content, import (``syncd import`` lands those where it
        was asked to), open upload or earlier pull accounts for."""
        if isinstance(listing, Listing):
            listed = self.catalog.listed_unaccounted()  # in SQL: not a set of every listed video
        else:
            listed = sorted(listing.video_ids - self.catalog.linked_among(listing.video_ids))
        known: set[str | None] = set()
        chunked = self.features.chunked
        if chunked is not None:  # registered, perhaps, and not yet recorded
            known |= {chunked.upload_video_id(UploadSession(u.upload_id, u.token)) for u in self.catalog.uploads()}
        pulls = self.catalog.pulls()
        now = self.clock()
        out = []
        for video_id in listed:
            record = pulls.get(video_id)
            if video_id in known or (record is not None and (record.outcome != "failed" or record.retry_at > now)):
                continue
            out.append(video_id)
        return out

    def run(self, listing: Listing | RemoteView, report: MirrorReport) -> float | None:
        """Pull what the listing has that nothing local accounts for. Returns when to
        run again without a new listing: now if work was left (folder unavailable, a
        stop), a failed pull's retry time, or None."""
        todo = self.candidates(listing)
        folder = self.options.into
        if todo and folder is not None and any(not r.complete for r in self.catalog.imports(unfinished=True)):
            # An import still finding its videos may own some of these (memories.ai reports a
            # task's videos one by one): ``syncd import`` lands them where it was asked to.
            report.notes.append(f"not pulling {len(todo)} remote video(s) yet: an import is still finding its videos")
            return self.clock() + IMPORT_WAIT
        if todo and folder is not None:
            problem = folder_problem(folder.path, folder.require_marker)
            if problem:
                report.notes.append(f"not pulling {len(todo)} remote video(s): {problem}")
                return self.clock()
            collections = self._collections_of(set(todo))
            for video_id in todo:
                if self.should_stop():
                    return self.clock()
                try:
                    self._pull(video_id, folder, collections.get(video_id, []), report)
                except AuthError:
                    raise
                except (RemoteError, OSError) as exc:
                    self._failed(video_id, str(exc), report)
        failed = {video_id: r.retry_at for video_id, r in self.catalog.pulls().items() if r.outcome == "failed"}
        listed = (self.catalog.listed_among(failed) if isinstance(listing, Listing)
                  else listing.video_ids & failed.keys())
        return min((failed[video_id] for video_id in listed), default=None)

    def _collections_of(self, video_ids: set[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        collections = self.features.collections
        if collections is None:
            return found  # a backend without collections places every video at the top
        try:
            for collection in collections.list_collections():
                for video_id in collections.collection_video_ids(collection.collection_id):
                    if video_id in video_ids:
                        found.setdefault(video_id, []).append(collection.name)
        except AuthError:
            raise
        except RemoteError as exc:
            log.warning("cannot list collections for pulled videos (placed without one): %s", exc)
        return {k: sorted(v) for k, v in found.items()}

    def _pull(self, video_id: str, folder: FolderConfig, collections: list[str], report: MirrorReport) -> None:
        try:
            details = self.remote.video_details(video_id)
        except NotFoundError:
            return  # deleted since the listing; nothing to pull
        directory = folder.path
        if collections:
            # The first collection by name names the subfolder, if it can be that name as
            # it is: a cleaned name ("a/b" → "b") would make a pass with subfolder
            # collections create and fill a new remote collection, and a name the scan
            # skips ("clips.tmp" under exclude "*.tmp") would hide the file, so that the
            # next scan took it for deleted. Otherwise the top of the folder.
            name = collections[0]
            if safe_component(name, fallback="") == name and not matches_any(name, folder.exclude):
                directory = folder.path / name
        if not contained(folder.path, directory / "x"):
            raise OSError(f"target directory {directory} is outside {folder.path}")
        directory.mkdir(parents=True, exist_ok=True)
        if not contained(folder.path, directory / "x"):  # a symlink planted on the way
            raise OSError(f"target directory {directory} resolves outside {folder.path}")
        tmp = directory / f".{video_id}{_TEMP_SUFFIX}"
        try:
            with open(tmp, "wb") as fh:
                sink = _HashingSink(fh)
                received = self.remote.download_video(video_id, sink)  # type: ignore[arg-type]
                fh.flush()
                os.fsync(fh.fileno())
            if received != sink.size or (details.size_bytes is not None and sink.size != details.size_bytes):
                raise RemoteError(
                    f"download of {video_id} is incomplete: {sink.size} bytes, expected {details.size_bytes}"
                )
            sha256 = sink.sha256.hexdigest()
            if self.catalog.content(sha256) is not None:
                self.catalog.pull_recorded(video_id, "duplicate", self.clock(), sha256=sha256,
                                           detail="same content as a local file")
                report.notes.append(f"remote video {video_id} ({details.name!r}) holds content already here; "
                                    "not pulled")
                return
            name = self._file_name(details.name, video_id, folder, sink.head)
            target = _free_path(directory / name)
            # Recorded first: killed between placing the file and recording it, the next
            # start finds it here (``recover``) before a scan could upload it again.
            self.catalog.pull_recorded(video_id, "placing", self.clock(), path=str(target), sha256=sha256,
                                       detail=details.name)
            _place(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        st = target.stat()
        local = LocalFile(folder.path, target.relative_to(folder.path).as_posix(), st.st_size, st.st_mtime_ns,
                          st.st_ino)
        self.catalog.register_pulled(local, sha256, video_id, details.name, self.clock())
        self._seed_pipelines(video_id, sha256)
        self.catalog.log("pull", video_id, "ok", f"{target} ({st.st_size} bytes, sha256 {sha256})")
        report.pulled.append(str(target))
        report.notes.append(f"pulled remote video {video_id} ({details.name!r}) into {target}")
        log.info("pulled remote video %s into %s", video_id, target)

    def recover(self) -> None:
        """Finish pulls cut short between placing the file and recording it: record the
        file if it holds the pulled bytes (so no scan takes it for new content and uploads
        it again), or else let the pull run again."""
        for video_id, record in self.catalog.pulls().items():
            if record.outcome != "placing" or not record.path or not record.sha256:
                continue
            target = Path(record.path)
            folder = next((f for f in self.options.folders if target.is_relative_to(f.path)), None)
            try:
                placed = folder is not None and file_sha256(target) == record.sha256
                st = target.stat()
            except OSError:
                placed = False
            if placed and folder is not None and self.catalog.content(record.sha256) is None:
                local = LocalFile(folder.path, target.relative_to(folder.path).as_posix(), st.st_size,
                                  st.st_mtime_ns, st.st_ino)
                self.catalog.register_pulled(local, record.sha256, video_id, record.detail, self.clock())
                log.info("recorded remote video %s, pulled into %s before syncd stopped", video_id, target)
            else:
                self.catalog.pull_recorded(video_id, "failed", self.clock(), detail="interrupted before it was placed",
                                           retry_at=self.clock())

    def _file_name(self, remote_name: str, video_id: str, folder: FolderConfig, head: bytes) -> str:
        name = safe_component(remote_name, fallback=f"video-{video_id[:8]}")
        # The file must be one the scan picks up, or the next scan would call it deleted.
        if not matches_any(name, folder.include) or matches_any(name, folder.exclude):
            name = safe_component(name + sniff_extension(head), fallback=f"video-{video_id[:8]}.mp4")
        return name

    def _seed_pipelines(self, video_id: str, sha256: str) -> None:
        """Record pipelines the remote already ran, so they are polled, not started again."""
        processing = self.features.processing
        if processing is None:
            return
        for pipeline in self.features.pipelines:
            try:
                status = processing.pipeline_status(video_id, pipeline)
            except AuthError:
                raise
            except RemoteError:
                continue
            if status.state in ("running", "done"):
                self.catalog.set_step(sha256, pipeline, status.state, status.percentage, status.error)

    def _failed(self, video_id: str, error: str, report: MirrorReport) -> None:
        previous = self.catalog.pulls().get(video_id)
        attempts = (previous.attempts if previous else 0) + 1
        delay = min(MAX_RETRY, RETRY_BASE * 2 ** (attempts - 1))
        self.catalog.pull_recorded(video_id, "failed", self.clock(), detail=error, retry_at=self.clock() + delay)
        self.catalog.log("pull", video_id, f"failed: {error}")
        report.notes.append(f"remote video {video_id}: not pulled ({error}); retry in {delay:.0f}s")


def _free_path(path: Path) -> Path:
    """``path``, or ``name.1.ext``, ``name.2.ext`` ... whichever does not exist."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate


def _place(tmp: Path, target: Path) -> None:
    """Move the finished download into place without ever replacing an existing file."""
    try:
        os.link(tmp, target)  # fails if target appeared meanwhile: nothing is overwritten
    except FileExistsError:
        raise
    except OSError:
        # No hard links (FAT/exFAT camera cards): a rename, checked just before.
        if target.exists():
            raise FileExistsError(target) from None
        os.rename(tmp, target)
    fsync_dir(target.parent)


def file_sha256(path: Path) -> str:
    """The sha256 of a file already on disk (a landed download checked again)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
