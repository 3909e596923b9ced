"""Streaming sha256 of a file, run in worker threads (hashlib releases the GIL)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from syncd.models import LocalFile

BLOCK = 1 << 20  # large reads into one reused buffer: no per-block copies


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


@dataclass(frozen=True)
class HashResult:
    file: LocalFile
    sha256: str | None  # None: the file changed or vanished while being hashed
    error: str | None = None


def _hash_one(file: LocalFile) -> HashResult:
    try:
        sha = sha256_file(file.path)
        after = os.stat(file.path, follow_symlinks=False)
    except OSError as exc:
        return HashResult(file, None, f"{file.path}: {exc.strerror or exc}")
    if (after.st_size, after.st_mtime_ns) != (file.size, file.mtime_ns):
        return HashResult(file, None, f"{file.path}: changed while being hashed")
    return HashResult(file, sha)


def hash_files(files: Iterable[LocalFile], workers: int = 2,
                should_stop: Callable[[], bool] = lambda: False) -> Iterator[HashResult]:
    """Hash files in worker threads; results in input order.

    Once ``should_stop()`` is true, files not yet started come back unhashed
    (``sha256`` None, no error), so a stop never waits for a whole backlog.
    """
    def one(file: LocalFile) -> HashResult:
        return HashResult(file, None) if should_stop() else _hash_one(file)

    # A bounded window of futures, not ``pool.map`` (which submits every file at once: a
    # first pass over a million files would hold a million futures).
    window = max(1, workers) * 16
    pending: deque[Future[HashResult]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hash") as pool:
        for file in files:
            pending.append(pool.submit(one, file))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
