"""`syncd import URL... --into FOLDER[/SUBFOLDER]` against both emulators over loopback.

(The module is ``syncd/mirror/imports.py``: landing a video is a pull, one layer above sync.)
The emulators fetch nothing from the web: each URL becomes a few synthetic bytes, so a
landed file is checked against the bytes the emulator holds (sha256).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from syncd.emulator.mikshi import Emulator
from syncd.emulator.memories import MemoriesEmulator
from syncd.store.catalog import Catalog
from tests.conftest import KEY, admin_videos, run_syncd, wait_for, write_config
from tests.memories_support import NO_LIMITS, memories_config, memories_emu  # noqa: F401 - a fixture

YT = "https://www.youtube.com/watch?v="


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(folder: Path) -> dict[str, bytes]:
    """The videos in a folder (not hidden files, not the mirror's sidecars)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and ".syncd." not in p.name}


def plain(path: Path) -> list[dict[str, Any]]:
    return [{"path": str(path), "collections": "none", "pipelines": []}]


# ------------------------------------------------------------------ Mikshi (YouTube import)
def test_mikshi_import_lands_the_video_and_the_next_sync_uploads_nothing(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, plain(drop))
    result = run_syncd(config, "import", YT + "abcDEF123", "--into", f"{drop}/trips")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    video = admin_videos(admin)[0]
    assert f"task {video['video_id']} started: 1 URL(s) into {drop / 'trips'}" in out
    assert f"video {video['video_id']} appeared" in out
    assert "done: 1 video(s) landed" in out
    landed = files_in(drop)
    assert list(landed) == ["trips/YouTube video abcDEF123.mp4"]
    assert sha(landed["trips/YouTube video abcDEF123.mp4"]) == video["sha256"]

    before = len(admin.get("/requests").json())
    synced = run_syncd(config, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    sent = [r for r in admin.get("/requests").json()[before:] if "/uploads/" in r["path"]]
    assert sent == [], sent
    assert len(admin_videos(admin)) == 1
    with Catalog.open(tmp_path / "state") as catalog:
        content = catalog.content(video["sha256"])
        assert content is not None and content.video_id == video["video_id"] and content.state == "uploaded"


def test_mikshi_refused_urls_exit_2_and_send_nothing(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, plain(drop))
    before = len(admin.get("/requests").json())
    cases = [
        (["https://vimeo.com/123"], "not a YouTube video URL"),
        (["not a url"], "not a YouTube video URL"),
        ([YT + str(i) for i in range(51)], "give 1 to 50 URLs per import (got 51)"),
    ]
    for urls, message in cases:
        result = run_syncd(config, "import", *urls, "--into", str(drop))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for into in (str(tmp_path / "elsewhere"), f"{drop}/.hidden"):
        result = run_syncd(config, "import", YT + "x1", "--into", into)
        assert result.returncode == 2 and "--into" in result.stderr, result.stderr
    result = run_syncd(config, "import", YT + "x1")
    assert result.returncode == 2 and "--into FOLDER[/SUBFOLDER] is required" in result.stderr
    assert admin.get("/requests").json()[before:] == []
    assert admin_videos(admin) == []


# ------------------------------------------------------------------ memories.ai (scraper task)
@pytest.fixture
def quick_memories(tmp_path: Path) -> Iterator[MemoriesEmulator]:
    """Tasks bring their videos within a second and parse in another."""
    with MemoriesEmulator(memories_config(tmp_path / "memories", task_seconds=1.0, parse_seconds=1.0)) as emu:
        yield emu


def memories_syncd_config(tmp_path: Path, emu: MemoriesEmulator, **sections: Any) -> Path:
    drop = tmp_path / "drop"
    path = write_config(tmp_path, emu.v1_url, plain(drop), **sections)
    data = yaml.safe_load(path.read_text())
    data["remote"].update(backend="memories", v2_base_url=emu.v2_url, rate_limits=dict(NO_LIMITS))
    path.write_text(yaml.safe_dump(data))
    return path


def paths_of(emu: MemoriesEmulator, since: int = 0) -> list[str]:
    return [r["path"] for r in emu.requests(since)]


def test_memories_import_prints_task_and_videos_and_lands_them(tmp_path: Path,
                                                               quick_memories: MemoriesEmulator) -> None:
    emu = quick_memories
    drop = tmp_path / "drop"
    config = memories_syncd_config(tmp_path, emu)
    urls = ["https://www.tiktok.com/@cook/video/7001", "https://www.tiktok.com/@cook/video/7002",
            "https://www.tiktok.com/@cook/video/private-7003"]
    result = run_syncd(config, "import", *urls, "--into", "drop/kitchen")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr  # one video failed on the remote
    videos = {v["name"]: v for v in emu.admin_videos()}
    assert set(videos) == {"7001", "7002", "private-7003"}
    first = emu.requests()[0]
    assert "task " in out and "started: 3 URL(s) into " + str(drop / "kitchen") in out
    for video in videos.values():
        assert f"video {video['video_no']} appeared" in out
    assert f"video {videos['private-7003']['video_no']} failed" in out
    assert "done: 2 video(s) landed, 1 failed" in out
    landed = files_in(drop)
    assert sorted(landed) == ["kitchen/7001.mp4", "kitchen/7002.mp4"]
    for name in ("7001", "7002"):
        assert sha(landed[f"kitchen/{name}.mp4"]) == sha(emu.admin_video_bytes(videos[name]["video_no"]) or b"")
    assert first["path"].endswith("/scraper_url")

    since = len(emu.requests())
    synced = run_syncd(config, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert not [p for p in paths_of(emu, since) if p.endswith("/upload")]
    assert len(emu.admin_videos()) == 3


def test_memories_refused_urls_exit_2_and_send_nothing(tmp_path: Path, quick_memories: MemoriesEmulator) -> None:
    config = memories_syncd_config(tmp_path, quick_memories)
    cases = [
        (["https://www.tiktok.com/@a/video/1", "https://www.instagram.com/p/xyz"],
         "one import takes URLs of one platform; these mix instagram and tiktok"),
        (["ftp://tiktok.com/x"], "not a post URL memories.ai can import"),
        ([f"https://www.tiktok.com/@a/video/{i}" for i in range(51)], "give 1 to 50 URLs per import (got 51)"),
    ]
    for urls, message in cases:
        result = run_syncd(config, "import", *urls, "--into", "drop")
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert quick_memories.requests() == []


def test_an_unfinished_import_is_shown_and_resumed(tmp_path: Path, quick_memories: MemoriesEmulator) -> None:
    """`import --timeout 0` leaves at once; `status` shows the import; the next `syncd import`
    (as the daemon would) takes it to its end from the catalog alone."""
    emu = quick_memories
    drop = tmp_path / "drop"
    config = memories_syncd_config(tmp_path, emu)
    url = "https://www.tiktok.com/@cook/video/8001"
    result = run_syncd(config, "import", url, "--into", "drop", "--timeout", "0")
    assert result.returncode == 1 and "TIMEOUT: still importing" in result.stderr, result.stderr
    assert files_in(drop) == {}
    status = run_syncd(config, "status")
    assert "in progress: task " in status.stdout and f"1 URL(s) into {drop}" in status.stdout, status.stdout

    resumed = run_syncd(config, "import")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    video = emu.admin_videos()[0]
    assert f"video {video['video_no']} appeared" in resumed.stdout
    assert sha(files_in(drop)["8001.mp4"]) == sha(emu.admin_video_bytes(video["video_no"]) or b"")
    assert [p for p in paths_of(emu) if p.endswith("/scraper_url")] == ["/serve/api/v1/scraper_url"]
    assert "in progress" not in run_syncd(config, "status").stdout
    assert run_syncd(config, "import").stdout.strip() == "no imports in progress"


def test_a_task_that_never_brings_a_video_is_given_up(tmp_path: Path, quick_memories: MemoriesEmulator) -> None:
    """An unknown task and one still downloading answer the same: the give-up time decides."""
    from syncd.config import load_config
    from syncd.mirror.imports import Importer, Timing
    from syncd.remote import open_remote

    config = load_config(memories_syncd_config(tmp_path, quick_memories), {"SYNCD_TEST_KEY": KEY})
    now = [1000.0]
    lines: list[str] = []
    with Catalog.open(config.state_dir) as catalog:
        remote = open_remote(config.remote)
        try:
            importer = Importer(config, catalog, remote, timing=Timing(poll_start=1, poll_cap=4, give_up_after=10),
                                clock=lambda: now[0], say=lines.append)
            record = importer.start(["https://www.tiktok.com/@a/video/notfound-1"], "drop")
            polls = 0
            while importer.unfinished():
                now[0] += 5
                importer.poll_due()
                polls += 1
            record = catalog.imports()[0]
        finally:
            remote.close()
    assert record.state == "failed" and "no video appeared within 10s" in record.detail
    assert polls == 2  # the backoff (1 s, then 1.5x up to 4 s) within 10 s of silence
    assert [p for p in paths_of(quick_memories) if p.endswith("/get_video_ids_by_task_id")] == \
        ["/serve/api/v1/get_video_ids_by_task_id"] * 2


def test_pull_remote_leaves_imported_videos_to_the_import(tmp_path: Path, quick_memories: MemoriesEmulator) -> None:
    """A remote-only video of an import in progress is not pulled into pull_into meanwhile."""
    emu = quick_memories
    drop = tmp_path / "drop"
    config = memories_syncd_config(tmp_path, emu, mirror={"pull_remote": True})
    result = run_syncd(config, "import", "https://www.tiktok.com/@c/video/9001", "--into", "drop/in",
                       "--timeout", "0")
    assert result.returncode == 1
    emu.advance_clock(5)
    wait_for(lambda: len(emu.admin_videos()) == 1, 10, "the task's video")
    run_syncd(config, "sync")
    assert files_in(drop) == {}
    assert run_syncd(config, "import").returncode == 0
    assert list(files_in(drop)) == ["in/9001.mp4"]


def test_the_daemon_resumes_an_unfinished_import(tmp_path: Path, quick_memories: MemoriesEmulator) -> None:
    from tests.service.test_daemon import FAST, SyncdDaemon

    emu = quick_memories
    drop = tmp_path / "drop"
    config = memories_syncd_config(tmp_path, emu, **FAST)
    urls = ["https://www.youtube.com/shorts/aa1", "https://youtu.be/bb2"]
    result = run_syncd(config, "import", *urls, "--into", f"{drop}/yt", "--timeout", "0")
    assert result.returncode == 1, result.stdout + result.stderr
    with SyncdDaemon(config) as daemon:
        daemon.wait_log("done: 2 video(s) landed")
        assert daemon.stop() == 0
    landed = files_in(drop)
    assert sorted(landed) == ["yt/aa1.mp4", "yt/bb2.mp4"]
    for video in emu.admin_videos():
        assert sha(landed[f"yt/{video['name']}.mp4"]) == sha(emu.admin_video_bytes(video["video_no"]) or b"")
    assert [p for p in paths_of(emu) if p.endswith("/scraper_url")] == ["/serve/api/v1/scraper_url"]
    assert run_syncd(config, "sync").returncode == 0
    assert not [p for p in paths_of(emu) if p.endswith("/upload")]  # known content: adopted, not sent


def test_a_landing_cut_short_is_finished_at_the_next_start(tmp_path: Path, memories_emu: MemoriesEmulator,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between placing the file and recording it: the next start records the file
    (no second download, no upload), as a pull's recovery does."""
    from syncd.config import load_config
    from syncd.mirror.imports import Importer, Timing
    from syncd.remote import open_remote
    from tests.memories_support import advance_past_parsing

    emu = memories_emu
    config = load_config(memories_syncd_config(tmp_path, emu), {"SYNCD_TEST_KEY": KEY})
    now = [1000.0]
    with Catalog.open(config.state_dir) as catalog:
        remote = open_remote(config.remote)
        try:
            importer = Importer(config, catalog, remote, timing=Timing(poll_start=1), clock=lambda: now[0])
            importer.start(["https://www.tiktok.com/@a/video/5001"], "drop")
            advance_past_parsing(emu)

            def killed(*args: object, **kwargs: object) -> None:
                raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this runs

            monkeypatch.setattr(catalog, "import_video_landed", killed)
            now[0] += 2
            with pytest.raises(KeyboardInterrupt):
                importer.poll_due()
            monkeypatch.undo()
            assert [v.state for v in catalog.import_videos()] == ["placing"]
            assert list(files_in(tmp_path / "drop")) == ["5001.mp4"]

            Importer(config, catalog, remote, clock=lambda: now[0]).recover()
            video = catalog.import_videos()[0]
            assert video.state == "landed" and video.sha256 is not None
            content = catalog.content(video.sha256)
            assert content is not None and content.video_id == video.video_id
        finally:
            remote.close()
    assert sum(1 for r in emu.requests() if r["path"].endswith("/download")) == 1


def test_mikshi_a_refused_url_among_others_is_reported(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """One request per URL: a video the service refuses after another went through is one
    line, the other still lands, and the exit status says not everything came."""
    drop = tmp_path / "drop"
    config = write_config(tmp_path, emu.base_url, plain(drop))
    result = run_syncd(config, "import", YT + "good1", YT + "private-2", "--into", str(drop))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"refused: {YT}private-2: YOUTUBE_VIDEO_PRIVATE" in result.stdout
    assert "done: 1 video(s) landed; 1 URL(s) brought no video" in result.stdout
    assert list(files_in(drop)) == ["YouTube video good1.mp4"]
