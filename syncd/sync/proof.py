"""Proof of content: is a remote video's original this local file's bytes?

Catalog recovery (a new catalog meeting videos already on the remote) links a local
file to a remote video only on proof. Name, size and duration only choose which
videos to check; they prove nothing (fixed-length camera clips share all three).

The evidence, strongest and cheapest first (``ContentEvidence``):

1. a sha256 the backend recorded at upload time (a tag ``sha256:<hex>``): equal or not;
2. the original object's S3 ETag. A single-part object's ETag is the MD5 of its bytes:
   equal or not. A multipart object's is ``md5(md5(part 1) + ... + md5(part N))-N``,
   which depends on the part size: syncd computes it for the part size it would have
   used itself; a match proves the bytes, a mismatch proves nothing (another client,
   or another ``upload.part_size``, may have cut other parts);
3. the original itself, streamed and hashed, up to ``safety.max_proof_download``
   bytes. Above that the file is uploaded instead, and the log says why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from syncd.remote.base import ContentEvidence
from syncd.remote.multipart import part_ranges, plan_part_size

READ = 1 << 20


@dataclass(frozen=True)
class Verdict:
    same: bool | None  # None: undecided (then: upload, never link)
    how: str  # for the log: "sha256 tag", "S3 ETag", "downloaded and hashed", or why not


def local_etag(path: Path, size: int, part_size: int | None) -> str:
    """The S3 ETag (without quotes) an upload of ``path`` would get: the plain MD5
    (``part_size`` None: one request), or the multipart form for ``part_size``."""
    with open(path, "rb") as fh:
        if part_size is None:
            return _md5(fh, 0, size).hexdigest()
        ranges = part_ranges(size, part_size)
        digests = b"".join(_md5(fh, offset, length).digest() for offset, length in ranges.values())
    return f"{hashlib.md5(digests).hexdigest()}-{len(ranges)}"


def _md5(fh: BinaryIO, offset: int, length: int) -> hashlib._Hash:
    md5 = hashlib.md5()
    fh.seek(offset)
    left = length
    while left > 0:
        block = fh.read(min(READ, left))
        if not block:
            break
        md5.update(block)
        left -= len(block)
    return md5


def judge(
    path: Path,
    size: int,
    sha256: str,
    evidence: ContentEvidence,
    *,
    part_size: int,
    max_download: int,
    download: Callable[[BinaryIO], object],
) -> Verdict:
    """Decide from ``evidence``; stream the original (``download`` writes it to a file) only
    when the cheaper evidence cannot decide and it is at most ``max_download`` bytes."""
    if evidence.size is not None and evidence.size != size:
        return Verdict(False, f"remote original is {evidence.size} bytes, the file {size}")
    if evidence.sha256:
        return Verdict(evidence.sha256.lower() == sha256, "sha256 tag")
    etag = (evidence.etag or "").lower()
    if etag and "-" not in etag and len(etag) == 32:
        return Verdict(etag == local_etag(path, size, None), "S3 ETag (MD5)")
    if etag.count("-") == 1:
        parts = etag.split("-")[1]
        if parts == "1":  # one part is the whole object, whatever the part size: decisive
            return Verdict(etag == local_etag(path, size, max(size, 1)), "S3 ETag (one part)")
        ours = plan_part_size(size, part_size)
        if parts == str(len(part_ranges(size, ours))) and etag == local_etag(path, size, ours):
            return Verdict(True, "S3 ETag (multipart)")
    if size > max_download:
        return Verdict(None, "the ETag cannot decide and the file is over safety.max_proof_download "
                             f"({max_download} bytes), so the original was not downloaded to compare")
    sink = _HashingSink(limit=size)
    try:
        download(cast(BinaryIO, sink))  # only write() is used
    except _TooLong:
        return Verdict(False, f"remote original is longer than the file ({size} bytes)")
    if sink.count != size:
        return Verdict(False, f"remote original is {sink.count} bytes, the file {size}")
    return Verdict(sink.digest.hexdigest() == sha256, "downloaded and hashed")


class _TooLong(Exception):
    pass


class _HashingSink:
    """A write-only file that hashes what it is given and refuses more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.digest = hashlib.sha256()
        self.count = 0
        self.limit = limit

    def write(self, block: bytes) -> int:
        self.count += len(block)
        if self.count > self.limit:
            raise _TooLong
        self.digest.update(block)
        return len(block)
