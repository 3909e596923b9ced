"""proof.judge on its own: which evidence decides, and when the original is downloaded."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from syncd.sync.proof import judge, local_etag
from syncd.remote.base import ContentEvidence
from tests.conftest import MiB, write_random


def _judge(path: Path, evidence: ContentEvidence, original: bytes | None = None, limit: int = 64 * MiB,
           part_size: int = 5 * MiB) -> tuple[bool | None, str, int]:
    downloads = []

    def download(sink: BinaryIO) -> None:
        downloads.append(1)
        assert original is not None, "no download expected"
        for i in range(0, len(original), MiB):
            sink.write(original[i:i + MiB])

    data = path.read_bytes()
    verdict = judge(path, len(data), hashlib.sha256(data).hexdigest(), evidence,
                    part_size=part_size, max_download=limit, download=download)
    return verdict.same, verdict.how, len(downloads)


def test_a_plain_md5_etag_or_a_sha256_tag_decides_without_a_download(tmp_path: Path) -> None:
    f = write_random(tmp_path / "a.mp4", 1000, seed=1)
    md5 = hashlib.md5(f.read_bytes()).hexdigest()
    assert _judge(f, ContentEvidence(size=1000, etag=md5)) == (True, "S3 ETag (MD5)", 0)
    assert _judge(f, ContentEvidence(size=1000, etag="0" * 32))[::2] == (False, 0)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    assert _judge(f, ContentEvidence(sha256=sha)) == (True, "sha256 tag", 0)
    assert _judge(f, ContentEvidence(size=999, etag=md5))[::2] == (False, 0), "another size"


def test_a_multipart_etag_of_our_part_size_proves_and_another_needs_the_download(tmp_path: Path) -> None:
    f = write_random(tmp_path / "a.mp4", 11 * MiB, seed=2)
    ours = local_etag(f, 11 * MiB, 5 * MiB)
    assert ours.endswith("-3")
    assert _judge(f, ContentEvidence(size=11 * MiB, etag=ours)) == (True, "S3 ETag (multipart)", 0)
    theirs = local_etag(f, 11 * MiB, 6 * MiB)
    same, how, downloads = _judge(f, ContentEvidence(size=11 * MiB, etag=theirs), original=f.read_bytes())
    assert (same, how, downloads) == (True, "downloaded and hashed", 1)
    other = bytearray(f.read_bytes())
    other[-1] ^= 1
    assert _judge(f, ContentEvidence(size=11 * MiB, etag=theirs), original=bytes(other))[0] is False
    assert _judge(f, ContentEvidence(size=None, etag=theirs), original=f.read_bytes() + b"x")[0] is False
    undecided = _judge(f, ContentEvidence(size=11 * MiB, etag=theirs), limit=MiB)
    assert undecided[0] is None and "max_proof_download" in undecided[1] and undecided[2] == 0
