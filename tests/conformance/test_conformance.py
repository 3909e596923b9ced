"""One suite, every backend, each against its own emulator over loopback (issue #12).

Everything here goes through the ``Remote`` contract and its ``Features`` only: a backend
passes when it uploads (in parts where it chunks), lists completely across pages, reports
details, deletes, downloads the same bytes, maps refusals onto the same semantic errors,
and is never asked for a feature it does not declare.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.emulator import Faults
from syncd.errors import (KeyRejectedError, NotFoundError, RateLimitedError, TransientError,
                          UnsupportedError)
from syncd.remote import base
from syncd.remote.base import ABILITIES, Features, need
from tests.conformance.backends import BACKENDS, NO_RETRY, Backend
from tests.conftest import MiB, write_random


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with BACKENDS[request.param](tmp_path) as made:
        yield made


def _known(backend: Backend, video_id: str) -> bool:
    try:
        backend.remote.video_details(video_id)
    except NotFoundError:
        return False
    return True


PROTOCOLS = {"chunked": base.ChunkedUploader, "collections": base.Collections, "tags": base.Tags,
             "processing": base.Processing, "embeddings": base.Embeddings, "search": base.RemoteSearch,
             "chat": base.Chat, "visualize": base.Visualizer, "url_import": base.UrlImporter,
             "streams": base.LiveStreams, "media": base.MediaSource, "proof": base.ContentProof,
             "marks": base.InstanceMarks, "newest": base.NewestListing,
             "status_batch": base.StatusBatch, "batch_delete": base.BatchDelete}


def test_features_are_one_record_of_protocols(backend: Backend) -> None:
    features = backend.remote.features()
    assert isinstance(features, Features) and set(PROTOCOLS) == set(ABILITIES)
    for name, protocol in PROTOCOLS.items():  # a declared ability is the protocol it claims
        ability = getattr(features, name)
        assert ability is None or isinstance(ability, protocol), name
    assert set(features.collection_pipelines) <= set(features.pipelines)
    assert set(features.default_pipelines) <= set(features.pipelines)
    assert features.grouping != "collection" or features.collections is not None
    assert features.grouping != "tag" or features.tags is not None
    assert features.pipelines == () or features.processing is not None


def test_upload_small_and_large_then_details(tmp_path: Path, backend: Backend) -> None:
    small = write_random(tmp_path / "small.mp4", 64 * 1024, seed=1)
    large = write_random(tmp_path / "large.mp4", 10 * MiB + 5, seed=2)  # 3 parts where chunked
    before = len(backend.emulator.requests())
    for path in (small, large):
        video_id = backend.remote.upload(path, path.name)
        details = backend.remote.video_details(video_id)
        # The name given (memories.ai keeps it without its extension).
        assert details.video_id == video_id and details.name in (path.name, path.stem)
        # Some backends fill in the size only after processing; what is reported must be right.
        assert details.size_bytes in (None, path.stat().st_size)
    parts = [r for r in backend.emulator.requests()[before:] if r["method"] == "PUT"]
    if backend.chunked_from is not None:
        assert backend.remote.features().chunked is not None
        assert len(parts) >= 3, "the large file went up in parts"
    else:
        assert parts == []


def test_listing_is_complete_across_pages(tmp_path: Path, backend: Backend) -> None:
    backend.page_size(3)
    made = {backend.remote.upload(p, p.name)
            for p in (write_random(tmp_path / f"v{i}.mp4", 2048, seed=i) for i in range(7))}
    listed = [v.video_id for v in backend.remote.list_videos()]
    assert sorted(listed) == sorted(made)


def test_delete_then_unknown(tmp_path: Path, backend: Backend) -> None:
    path = write_random(tmp_path / "gone.mp4", 4096)
    video_id = backend.remote.upload(path, path.name)
    backend.remote.delete_video(video_id)
    assert video_id not in {v.video_id for v in backend.remote.list_videos()}
    assert not _known(backend, video_id)
    assert not _known(backend, backend.missing_id)
    try:  # deleting again is safe: done, or NotFoundError
        backend.remote.delete_video(video_id)
    except NotFoundError:
        pass


def test_download_round_trip_by_sha256(tmp_path: Path, backend: Backend) -> None:
    path = write_random(tmp_path / "round.mp4", 1 * MiB + 3, seed=7)
    video_id = backend.remote.upload(path, path.name)
    sink = io.BytesIO()
    assert backend.remote.download_video(video_id, sink) == path.stat().st_size
    assert hashlib.sha256(sink.getvalue()).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_check_answers_with_the_key(backend: Backend) -> None:
    assert backend.remote.check()


def test_bad_key_is_key_rejected(backend: Backend) -> None:
    remote = backend.make(key="sk-wrong-key-000")
    try:
        for call in (remote.check, remote.list_videos):
            with pytest.raises(KeyRejectedError) as exc:
                call()
            assert "sk-wrong-key-000" not in str(exc.value)
    finally:
        remote.close()


def test_unknown_video_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        backend.remote.video_details(backend.missing_id)


def test_rate_limited_when_retries_run_out(backend: Backend) -> None:
    backend.emulator.set_faults(Faults(rate_limit_share=1.0, retry_after=0))
    remote = backend.make(retry=NO_RETRY)
    try:
        with pytest.raises(RateLimitedError):
            remote.list_videos()
    finally:
        remote.close()


def test_transient_errors_are_transient_and_retried(backend: Backend) -> None:
    backend.emulator.set_faults(Faults(error_share=1.0))
    remote = backend.make(retry=NO_RETRY)
    try:
        with pytest.raises(TransientError):
            remote.list_videos()
    finally:
        remote.close()
    backend.emulator.set_faults(Faults(error_share=0.5))
    for _ in range(4):  # the default client retries its way through
        backend.remote.list_videos()


def test_features_not_declared_are_never_asked(tmp_path: Path, backend: Backend) -> None:
    """What syncd's callers do (``need``) refuses locally, before any request leaves."""
    features = backend.remote.features()
    missing = [name for name in ABILITIES if getattr(features, name) is None]
    before = len(backend.emulator.requests())
    for name in missing:
        with pytest.raises(UnsupportedError):
            need(backend.remote, getattr(features, name), f"use {name}")
    assert backend.emulator.requests()[before:] == []
