"""Engine and executor over the fake ``Remote`` (no HTTP): the contract as the engine uses it,
features consulted, and fault injection by semantic error."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.store.catalog import Catalog
from syncd.config import load_config
from syncd.sync.engine import Engine, EngineOptions
from syncd.errors import AuthError, ForbiddenError, LinkExpiredError, TransportError
from syncd.sync.executor import FatalRemoteError, key_refused
from syncd.remote.base import Features, ProcessingStatus, RemoteVideo, StepStatus, VideoDetails
from tests.conftest import KEY, write_config, write_random
from tests.fake_remote import FakeRemote

# A backend like memories.ai: tags, one processing step, no collections, no pipelines.
TAGGED = Features(grouping="tag", processing_steps=("parse",))


class Processing:
    def processing_status(self, video_id: str) -> ProcessingStatus:
        return ProcessingStatus(video_id, {"parse": StepStatus("done")})

    def start_pipeline(self, video_id: str, pipeline: str) -> None:
        raise AssertionError("no pipeline may be started")

    def pipeline_status(self, video_id: str, pipeline: str) -> StepStatus:
        raise AssertionError("no pipeline may be polled")


def engine(tmp_path: Path, remote: FakeRemote) -> tuple[Engine, Catalog, Path]:
    drop = tmp_path / "drop"
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", upload={"direct_upload_below": 0},
                                      mirror={"embeddings": False}, folders=[{"path": str(drop),
                                                                               "collections": "subfolder"}]),
                         {"SYNCD_TEST_KEY": KEY})
    catalog = Catalog.open(config.state_dir)
    return Engine(EngineOptions.from_config(config), catalog, remote), catalog, drop  # type: ignore[arg-type]


def test_a_backend_without_collections_or_chunks_uploads_whole_and_is_asked_nothing_else(tmp_path: Path) -> None:
    listed: list[RemoteVideo] = []
    remote = FakeRemote(features=lambda: Features(grouping="tag", processing_steps=("parse",),
                                                   processing=Processing()))
    remote.upload = remote.recording("upload", lambda: f"v{len(remote.calls)}")
    remote.list_videos = lambda: listed
    remote.video_details = lambda vid: VideoDetails(vid, "x", None, None, None, 4096, None, None, None, None, {})
    eng, catalog, drop = engine(tmp_path, remote)
    with catalog:
        write_random(drop / "cams" / "a.mp4", 4096, seed=1)
        write_random(drop / "b.mp4", 4096, seed=2)
        for _ in range(3):  # upload, then processing seen done, then quiet
            report = eng.run_pass()
            listed[:] = [RemoteVideo(c.video_id or "", c.name or "") for c in catalog.contents() if c.video_id]
        assert sorted(remote.calls) == ["upload(PosixPath('%s'), 'b.mp4')" % (drop / "b.mp4"),
                                        "upload(PosixPath('%s'), 'cams/a.mp4')" % (drop / "cams" / "a.mp4")]
        assert report.result.failed == [] and report.plan.actions == []
        assert {s.state for s in eng.statuses()} == {"done"}
        assert all(s.collection is None for s in eng.statuses())  # tags, not collections


@pytest.mark.parametrize("error, fatal", [
    (AuthError("bad key", endpoint="/x"), True),
    (ForbiddenError("not yours", endpoint="/x"), True),
    (LinkExpiredError("expired", endpoint="<part url>"), False),
    (TransportError("down", sent=False), False),
])
def test_fatality_is_decided_by_the_error_class(tmp_path: Path, error: Exception, fatal: bool) -> None:
    assert key_refused(error) is fatal  # type: ignore[arg-type]
    remote = FakeRemote(features=lambda: TAGGED, list_videos=lambda: [])
    remote.upload = remote.recording("upload", error)
    eng, catalog, drop = engine(tmp_path, remote)
    with catalog:
        write_random(drop / "a.mp4", 2048)
        if fatal:
            with pytest.raises(FatalRemoteError):
                eng.run_pass()
        else:
            report = eng.run_pass()
            assert len(report.result.failed) == 1
        assert remote.calls == [f"upload({drop / 'a.mp4'!r}, 'a.mp4')"]
