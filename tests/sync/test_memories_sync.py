"""`syncd sync`/`status`/`log` with `remote.backend: memories`, against the memories.ai
emulator over loopback, with real clips in temp folders (issue 13, "Sync on this backend")."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from syncd.emulator import Faults
from syncd.emulator.memories import MemoriesEmulator
from syncd.media.clips import make_clip
from syncd.remote.memories import MemoriesRemote
from syncd.store.catalog import Catalog
from syncd.sync.executor import ExecOptions, Executor
from tests.conftest import KEY, run_syncd, wait_for, write_config
from tests.memories_support import NO_LIMITS, V1, advance_past_parsing, logged, make_client, memories_config, uploaded

#: Parsing takes a moment of emulator time, so `sync --wait` sees UNPARSE and then PARSE.
PARSE_SECONDS = 0.3
GPS_TAGS = {"creation_time": "2024-05-01T10:20:30.000000Z", "location": "+48.8577+002.2950/",
            "com.apple.quicktime.make": "Google", "com.apple.quicktime.model": "Pixel 8"}


@pytest.fixture
def memu(tmp_path: Path) -> Iterator[MemoriesEmulator]:
    with MemoriesEmulator(memories_config(tmp_path / "memories", parse_seconds=PARSE_SECONDS)) as emu:
        yield emu


def mem_config(tmp_path: Path, emu: MemoriesEmulator, *, limits: dict[str, str | None] | None = None,
               folder: dict[str, Any] | None = None, **sections: Any) -> Path:
    """A syncd config for the memories backend; one ``drop`` folder grouped by subfolder."""
    path = write_config(tmp_path, emu.v1_url, [{"path": str(tmp_path / "drop"), "collections": "subfolder",
                                                 **(folder or {})}],
                        **{"upload": {"concurrency": 1}, **sections})
    data = yaml.safe_load(path.read_text())
    data["remote"].update(backend="memories", v2_base_url=emu.v2_url, unique_id="default",
                          rate_limits=limits or dict(NO_LIMITS))
    path.write_text(yaml.safe_dump(data))
    return path


def status_json(config: Path) -> dict[str, dict[str, Any]]:
    result = run_syncd(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return {Path(s["path"]).name: s for s in json.loads(result.stdout)}


def calls(emu: MemoriesEmulator, name: str) -> list[dict[str, Any]]:
    """The logged requests to ``name``, once the log is quiet: the emulator logs a request
    just after answering it, so a finished syncd may have the last answer before the log."""
    import time

    seen, since = -1, time.monotonic()
    while time.monotonic() - since < 0.2:
        count = len(emu.requests())
        if count != seen:
            seen, since = count, time.monotonic()
        time.sleep(0.05)
    return [r for r in emu.requests() if r["path"] == f"{V1}/{name}"]


def test_sync_uploads_once_with_tags_and_capture_metadata(tmp_path: Path, memu: MemoriesEmulator) -> None:
    drop = tmp_path / "drop"
    make_clip(drop / "cam1" / "gate.mp4", seed=1, tags=GPS_TAGS)
    make_clip(drop / "loose.mp4", seed=2)
    config = mem_config(tmp_path, memu)

    result = run_syncd(config, "sync", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(calls(memu, "upload")) == 2  # one request per file
    videos = {v["filename"]: v for v in memu.admin_videos()}
    gate, loose = videos["gate.mp4"], videos["loose.mp4"]
    assert (drop / "cam1" / "gate.mp4").read_bytes() == memu.admin_video_bytes(gate["video_no"])
    rows = status_json(config)
    sha = rows["gate.mp4"]["sha256"]
    assert gate["tags"] == ["cam1", f"sha256:{sha}", f"syncd-instance:{_instance(config)}"]
    assert loose["tags"] == [f"sha256:{rows['loose.mp4']['sha256']}", f"syncd-instance:{_instance(config)}"]
    # Capture metadata from the container's tags; the loose clip has none but its mtime.
    assert gate["datetime_taken_ms"] == 1714558830000
    assert (gate["camera_model"], gate["latitude"], gate["longitude"]) == ("Google Pixel 8", 48.8577, 2.295)
    assert loose["datetime_taken_ms"] == int((drop / "loose.mp4").stat().st_mtime) * 1000
    assert loose["camera_model"] is None and loose["latitude"] is None
    # status: the video_no is the video id; processed to PARSE.
    assert rows["gate.mp4"]["video_id"] == gate["video_no"] and rows["gate.mp4"]["state"] == "done"
    assert rows["gate.mp4"]["steps"]["parse"]["state"] == "done"
    assert (rows["gate.mp4"]["remote_tag"], rows["gate.mp4"]["subfolder"]) == ("cam1", "cam1")

    again = run_syncd(config, "sync")
    assert again.returncode == 0 and len(calls(memu, "upload")) == 2  # nothing new: nothing sent
    log = run_syncd(config, "log").stdout
    assert f"ok       {drop / 'cam1' / 'gate.mp4'}  (video {gate['video_no']}" in log
    doctor = run_syncd(config, "doctor")
    assert doctor.returncode == 0 and "API key accepted (2 video(s))" in doctor.stdout, doctor.stdout
    assert "keeps no per-instance note, so another syncd using this name cannot be detected" in doctor.stdout


def _instance(config: Path) -> str:
    import socket

    return str(yaml.safe_load(config.read_text()).get("instance") or socket.gethostname())


def test_processing_is_read_from_listing_pages_not_per_video(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "memories")) as emu:  # parsing takes 30 s here
        for i in range(5):
            make_clip(tmp_path / "drop" / f"clip{i}.mp4", seed=i)
        config = mem_config(tmp_path, emu)
        assert run_syncd(config, "sync").returncode == 0
        remote = MemoriesRemote(make_client(emu))
        with Catalog.open(tmp_path / "state") as catalog:
            executor = Executor(remote, catalog, ExecOptions(part_size=5 * 2**20, concurrency=1))
            before = len(emu.requests())
            assert executor.refresh(catalog.contents()) == []
            assert [r["path"] for r in logged(emu, before + 1)[before:]] == [f"{V1}/list_videos"]
            assert {c.step("parse").state for c in catalog.contents()} == {"running"}
            advance_past_parsing(emu)
            before = len(emu.requests())
            executor.refresh(catalog.contents())
            assert [r["path"] for r in logged(emu, before + 1)[before:]] == [f"{V1}/list_videos"]
            assert {c.step("parse").state for c in catalog.contents()} == {"done"}
        remote.close()
        assert {s["state"] for s in status_json(config).values()} == {"done"}


def test_processing_states_are_asked_of_the_videos_in_flight_only(tmp_path: Path) -> None:
    """The listing is filtered to the ids asked about (``video_nos``), a page of them a
    request: the requests grow with the videos in flight, not with the library (newer
    videos, which a newest-first read would page through first, cost nothing)."""
    with MemoriesEmulator(memories_config(tmp_path / "memories")) as emu:
        for i in range(5):
            make_clip(tmp_path / "drop" / f"clip{i}.mp4", seed=i)
        config = mem_config(tmp_path, emu)
        assert run_syncd(config, "sync").returncode == 0
        with httpx.Client(base_url=emu.base_url, headers={"Authorization": KEY}, timeout=10) as raw:
            for i in range(4):  # uploaded after syncd's, by someone else
                uploaded(raw, content=bytes([i]) * 2048, filename=f"other{i}.mp4")
        remote = MemoriesRemote(make_client(emu))
        remote.page_size = 2
        with Catalog.open(tmp_path / "state") as catalog:
            executor = Executor(remote, catalog, ExecOptions(part_size=5 * 2**20, concurrency=1))
            advance_past_parsing(emu)
            before = len(emu.requests())
            assert executor.refresh(catalog.contents()) == []
            assert [r["path"] for r in logged(emu, before + 3)[before:]] == [f"{V1}/list_videos"] * 3
            assert {c.step("parse").state for c in catalog.contents()} == {"done"}
        remote.close()


def test_a_failed_parse_shows_in_status_with_its_cause(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "memories", parse_seconds=PARSE_SECONDS,
                                          fail_name_glob="broken*")) as emu:
        make_clip(tmp_path / "drop" / "broken.mp4", seed=1)
        make_clip(tmp_path / "drop" / "fine.mp4", seed=2)
        config = mem_config(tmp_path, emu, upload={"concurrency": 1, "max_attempts": 1})
        result = run_syncd(config, "sync", "--wait")
        assert result.returncode == 1
        rows = status_json(config)
        assert rows["fine.mp4"]["state"] == "done"
        broken = rows["broken.mp4"]
        assert broken["state"] == "failed" and broken["steps"]["parse"]["state"] == "failed"
        cause = next(v for v in emu.admin_videos() if v["name"] == "broken")["fail_cause"]
        assert cause and cause in broken["error"]
        text = run_syncd(config, "status").stdout
        assert cause in text and "failed" in text


def test_files_the_service_never_takes_are_refused_one_line_each(tmp_path: Path, memu: MemoriesEmulator) -> None:
    drop = tmp_path / "drop"
    make_clip(drop / "ok.mp4", seed=1)
    (drop / "clip.webm").write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 4096)  # included by default, not taken
    with open(drop / "huge.mp4", "wb") as fh:  # sparse: over the 3 GB cap without the disk space
        fh.truncate(3_000_000_001)
    config = mem_config(tmp_path, memu)
    result = run_syncd(config, "sync", timeout=300)
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 2, result.stderr
    assert any("clip.webm" in line and ".mp4, .avi, .mkv, .mov" in line for line in failed)
    assert any("huge.mp4: not sent: 3,000,000,001 bytes is over memories.ai's upload cap" in line for line in failed)
    assert [r["path"] for r in calls(memu, "upload")] == [f"{V1}/upload"]  # only ok.mp4 was sent
    rows = status_json(config)
    assert rows["huge.mp4"]["state"] == "failed" and rows["clip.webm"]["state"] == "failed"
    # Refused for good: the next pass sends nothing and says the same two lines.
    again = run_syncd(config, "sync", timeout=300)
    assert len(calls(memu, "upload")) == 1
    assert [line for line in again.stderr.splitlines() if line.startswith("FAILED:")] == failed


def test_local_deletions_are_batched_into_one_delete_request(tmp_path: Path, memu: MemoriesEmulator) -> None:
    for i in range(4):
        make_clip(tmp_path / "drop" / f"c{i}.mp4", seed=i)
    config = mem_config(tmp_path, memu, safety={"max_delete_percent": 100})
    assert run_syncd(config, "sync").returncode == 0
    for i in range(3):
        (tmp_path / "drop" / f"c{i}.mp4").unlink()
    result = run_syncd(config, "sync")
    assert result.returncode == 0, result.stderr
    deletes = calls(memu, "delete_videos")
    assert len(deletes) == 1 and deletes[0]["code"] == "0000"
    assert [v["filename"] for v in memu.admin_videos()] == ["c3.mp4"]
    log = run_syncd(config, "log").stdout
    assert log.count("delete-remote") == 6  # started + ok, per video


def test_remote_deletion_needs_a_complete_listing_and_data_null(tmp_path: Path, memu: MemoriesEmulator) -> None:
    make_clip(tmp_path / "drop" / "gone.mp4", seed=1)
    make_clip(tmp_path / "drop" / "kept.mp4", seed=2)
    config = mem_config(tmp_path, memu)
    assert run_syncd(config, "sync", "--wait").returncode == 0
    gone = status_json(config)["gone.mp4"]["video_id"]
    memu.admin_delete_video(gone)
    result = run_syncd(config, "sync", "--check-deletions")  # not waiting for schedule.deletion_check
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "drop" / "gone.mp4").exists()
    assert (tmp_path / "drop" / ".syncd-trash" / "gone.mp4").exists()
    asked = [r for r in calls(memu, "get_metadata")]
    assert asked, "the deletion was confirmed by get_metadata answering data: null"
    assert (tmp_path / "drop" / "kept.mp4").exists()


def test_a_failed_listing_deletes_nothing_locally(tmp_path: Path, memu: MemoriesEmulator) -> None:
    make_clip(tmp_path / "drop" / "gone.mp4", seed=1)
    config = mem_config(tmp_path, memu)
    assert run_syncd(config, "sync", "--wait").returncode == 0
    memu.admin_delete_video(status_json(config)["gone.mp4"]["video_id"])
    memu.set_faults(Faults(error_share=1.0, path_glob=f"{V1}/list_videos"))  # every listing fails
    data = yaml.safe_load(config.read_text())
    data["remote"]["max_retries"] = 0
    config.write_text(yaml.safe_dump(data))
    result = run_syncd(config, "sync", "--check-deletions")
    assert result.returncode == 1  # the pass could not confirm the remote
    assert (tmp_path / "drop" / "gone.mp4").exists()
    assert not (tmp_path / "drop" / ".syncd-trash").exists()
    memu.set_faults(Faults())
    assert run_syncd(config, "sync", "--check-deletions").returncode == 0  # a complete listing, and data: null: now it goes
    assert (tmp_path / "drop" / ".syncd-trash" / "gone.mp4").exists()


def test_catalog_loss_relinks_by_name_and_sha256_tag_never_uploads(tmp_path: Path, memu: MemoriesEmulator) -> None:
    make_clip(tmp_path / "drop" / "cam1" / "a.mp4", seed=1)
    make_clip(tmp_path / "drop" / "b.mp4", seed=2)
    config = mem_config(tmp_path, memu)
    assert run_syncd(config, "sync", "--wait").returncode == 0
    before = {name: s["video_id"] for name, s in status_json(config).items()}
    shutil.rmtree(tmp_path / "state")
    result = run_syncd(config, "sync", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(calls(memu, "upload")) == 2  # the first sync's only
    assert {name: s["video_id"] for name, s in status_json(config).items()} == before
    assert "link" in run_syncd(config, "log").stdout


def test_out_of_credits_stops_uploads_with_one_line(tmp_path: Path) -> None:
    with MemoriesEmulator(memories_config(tmp_path / "memories", parse_seconds=PARSE_SECONDS, credits=1)) as emu:
        for i in range(4):
            make_clip(tmp_path / "drop" / f"c{i}.mp4", seed=i)
        config = mem_config(tmp_path, emu)
        result = run_syncd(config, "sync", "--wait")
        assert result.returncode == 1
        uploads = calls(emu, "upload")
        assert [r["code"] for r in uploads] == ["0000", "0402"]  # stopped at the first refusal
        failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED:")]
        assert len(failed) == 1 and "out of credits" in failed[0], result.stderr
        assert "Traceback" not in result.stderr


def test_pacing_keeps_uploads_apart_and_refusals_rare(tmp_path: Path) -> None:
    limits = {**NO_LIMITS, "upload": "2/s"}
    with MemoriesEmulator(memories_config(tmp_path / "memories", parse_seconds=PARSE_SECONDS,
                                          rate_limits=limits)) as emu:
        for i in range(12):
            make_clip(tmp_path / "drop" / f"c{i:02d}.mp4", seed=i, seconds=0.5)
        config = mem_config(tmp_path, emu, limits=limits)
        result = run_syncd(config, "sync", "--wait")
        assert result.returncode == 0, result.stdout + result.stderr
        uploads = calls(emu, "upload")
        accepted = [r for r in uploads if r["code"] == "0000"]
        assert len(accepted) == 12
        assert len(uploads) - len(accepted) <= 2  # paced before the service refuses
        starts = sorted(r["time"] for r in accepted)  # arrival stamps (the duration is the body's)
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        # 2/s: 12 uploads span at least 5.5 s. Each stamp is when the emulator got to the
        # request, which a loaded machine delays by up to a few tenths of a second: that
        # moves single gaps both ways, but not the span by more than the two ends' delays.
        assert starts[-1] - starts[0] >= 11 * 0.5 - 0.2, gaps
        assert min(gaps) >= 0.2, gaps  # never a burst (an unpaced client sends them ~0 s apart)


def test_a_moved_file_keeps_its_remote_tag_and_status_shows_both(tmp_path: Path, memu: MemoriesEmulator) -> None:
    make_clip(tmp_path / "drop" / "cam1" / "a.mp4", seed=1)
    config = mem_config(tmp_path, memu)
    assert run_syncd(config, "sync", "--wait").returncode == 0
    (tmp_path / "drop" / "cam2").mkdir()
    (tmp_path / "drop" / "cam1" / "a.mp4").rename(tmp_path / "drop" / "cam2" / "a.mp4")
    assert run_syncd(config, "sync").returncode == 0
    assert len(calls(memu, "upload")) == 1  # a move is not an upload
    row = status_json(config)["a.mp4"]
    assert (row["remote_tag"], row["subfolder"]) == ("cam1", "cam2")
    text = run_syncd(config, "status").stdout
    assert "1 file(s) moved since upload keep their remote tag" in text
    assert "remote tag cam1, now in cam2" in text


def test_pipelines_are_a_config_error_naming_the_key(tmp_path: Path, memu: MemoriesEmulator) -> None:
    config = mem_config(tmp_path, memu, folder={"pipelines": ["analyse"]})
    result = run_syncd(config, "sync")
    assert result.returncode == 2
    assert "folders[0].pipelines" in result.stderr and "Traceback" not in result.stderr


def test_trash_and_restore_bring_a_remotely_deleted_file_back(tmp_path: Path, memu: MemoriesEmulator) -> None:
    video = tmp_path / "drop" / "cam1" / "a.mp4"
    make_clip(video, seed=1)
    config = mem_config(tmp_path, memu)
    assert run_syncd(config, "sync", "--wait").returncode == 0
    memu.admin_delete_video(status_json(config)["a.mp4"]["video_id"])
    assert run_syncd(config, "sync", "--check-deletions").returncode == 0
    trashed = tmp_path / "drop" / ".syncd-trash" / "cam1" / "a.mp4"
    assert trashed.exists() and not video.exists()
    assert str(trashed) in run_syncd(config, "trash", "list").stdout
    restored = run_syncd(config, "restore", str(trashed))
    assert restored.returncode == 0, restored.stderr
    assert video.exists() and not trashed.exists()
    assert run_syncd(config, "sync", "--wait").returncode == 0
    assert len(calls(memu, "upload")) == 2  # uploaded again, once, with its subfolder's tag
    again = next(v for v in memu.admin_videos() if v["filename"] == "a.mp4")
    assert again["tags"][0] == "cam1" and status_json(config)["a.mp4"]["state"] == "done"


def test_the_daemon_syncs_to_memories(tmp_path: Path, memu: MemoriesEmulator) -> None:
    from tests.service.test_daemon import SyncdDaemon

    config = mem_config(tmp_path, memu, schedule={"rescan": "5s", "remote_poll": "2s"},
                        safety={"delete_grace": "1s"})  # not the default 30 s before the deletion
    with SyncdDaemon(config) as daemon:
        make_clip(tmp_path / "drop" / "cam1" / "a.mp4", seed=1)
        wait_for(lambda: status_json(config).get("a.mp4", {}).get("state") == "done", 60, "a.mp4 done",
                 daemon.log)
        (tmp_path / "drop" / "cam1" / "a.mp4").unlink()
        wait_for(lambda: not memu.admin_videos(), 60, "the remote video deleted", daemon.log)
        assert daemon.stop() == 0
    assert [r["code"] for r in calls(memu, "upload")] == ["0000"]
    assert [r["code"] for r in calls(memu, "delete_videos")] == ["0000"]


def test_refusals_for_rate_wait_and_go_on(tmp_path: Path) -> None:
    """The config lets uploads go faster than the account may: the service answers 0429,
    syncd waits and goes on, and every file ends uploaded once."""
    # The account allows one upload per 3 s; the config claims 20/s: the second upload is
    # refused unless syncd took 3 s between two uploads of a half-second clip.
    with MemoriesEmulator(memories_config(tmp_path / "memories", parse_seconds=PARSE_SECONDS,
                                          rate_limits={**NO_LIMITS, "upload": "1/3s"})) as emu:
        for i in range(3):
            make_clip(tmp_path / "drop" / f"c{i}.mp4", seed=i, seconds=0.5)
        config = mem_config(tmp_path, emu, limits={**NO_LIMITS, "upload": "20/s"})
        result = run_syncd(config, "sync", "--wait")
        assert result.returncode == 0, result.stdout + result.stderr
        codes = [r["code"] for r in calls(emu, "upload")]
        assert codes.count("0000") == 3 and set(codes) <= {"0000", "0429"}
        assert "0429" in codes  # refused, then waited for
        assert len(emu.admin_videos()) == 3


def test_a_delete_of_a_video_already_gone_counts_as_done(tmp_path: Path, memu: MemoriesEmulator) -> None:
    for i in range(2):
        make_clip(tmp_path / "drop" / f"c{i}.mp4", seed=i)
    config = mem_config(tmp_path, memu, safety={"max_delete_percent": 100})
    assert run_syncd(config, "sync", "--wait").returncode == 0
    ids = [s["video_id"] for s in status_json(config).values()]
    memu.admin_delete_video(ids[0])  # gone on the remote in between: the batch answers 0409
    for i in range(2):
        (tmp_path / "drop" / f"c{i}.mp4").unlink()
    result = run_syncd(config, "sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r["code"] for r in calls(memu, "delete_videos")] == ["0409"]  # one batch; 0409 means gone too
    assert memu.admin_videos() == []
    assert run_syncd(config, "status", "--json").stdout.strip() == "[]"


# A small process forks and execs syncd and reports wait4's peak RSS for it: the peak of a
# direct child of pytest would include pytest's own size (Linux carries it over at exec).
_PEAK_RSS = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}))
"""


def test_a_large_upload_streams_from_disk(tmp_path: Path, memu: MemoriesEmulator) -> None:
    import subprocess
    import sys

    from tests.conftest import syncd_env

    size = 512 * 2**20
    make_clip(tmp_path / "drop" / "big.mp4", seed=1)
    with open(tmp_path / "drop" / "big.mp4", "r+b") as fh:  # a real clip, padded sparsely
        fh.truncate(size)
    config = mem_config(tmp_path, memu)
    child = subprocess.run([sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "syncd", "-c", str(config), "sync"],
                           env=syncd_env(), capture_output=True, text=True, timeout=600)
    peak = json.loads(child.stdout.splitlines()[-1])
    assert peak["exit"] == 0, child.stdout + child.stderr
    uploads = calls(memu, "upload")
    assert len(uploads) == 1 and uploads[0]["bytes_in"] > size  # the whole file, in one request
    assert memu.admin_videos()[0]["size"] == size
    assert peak["maxrss_kib"] * 1024 < 150 * 10**6  # never the whole file in memory


def test_the_sync_path_imports_pyav_only_when_probing() -> None:
    import subprocess
    import sys

    code = "import sys, syncd.sync.engine; print('av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
