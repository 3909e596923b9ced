"""Crash-safe file writes and moves.

``write_atomic`` writes a temp file beside the target (hidden, so no scan ever
picks it up), fsyncs it, renames it over the target and fsyncs the directory.
A crash at any moment leaves either the old file or the new one, never a
truncated mix. A target whose bytes would not change is not touched at all.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("syncd.mirror")

BLOCK = 1 << 20


def temp_path(target: Path) -> Path:
    """The one temp name per target: a later write reuses (truncates) a crash's leftover."""
    return target.with_name(f".{target.name}.syncd-tmp")


def write_atomic(target: Path, data: bytes | Iterable[bytes], *, make_parents: bool = False) -> bool:
    """Write ``data`` to ``target`` atomically; return False if the bytes were already there.

    The directory must exist unless ``make_parents``: a sidecar beside a video must never
    recreate the folder of an unmounted disk.
    """
    if isinstance(data, bytes):
        if _same_content(target, len(data), hashlib.sha256(data).digest()):
            return False  # known bytes: not even a temp file is written
        chunks: Iterable[bytes] = (data,)
    else:
        chunks = data
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    digest, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if _same_content(target, size, digest.digest()):
            tmp.unlink()
            return False
        os.replace(tmp, target)
    except BaseException:
        # The source failed or we were interrupted: the old target stays as it was.
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return True


def _same_content(path: Path, size: int, sha256: bytes) -> bool:
    try:
        if path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(BLOCK):
                digest.update(block)
        return digest.digest() == sha256
    except FileNotFoundError:
        return False


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # some filesystems (and platforms) cannot open a directory; the rename still happened
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def move_file(src: Path, dst: Path, *, make_parents: bool = False) -> bool:
    """Move ``src`` to ``dst`` (replacing it), across filesystems too. False if src is missing."""
    if not src.exists():
        return False
    if make_parents:
        dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with open(src, "rb") as fh:
            write_atomic(dst, iter(lambda: fh.read(BLOCK), b""), make_parents=make_parents)
        src.unlink()
    fsync_dir(dst.parent)
    return True


def remove_file(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
