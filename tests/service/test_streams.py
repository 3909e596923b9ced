"""Live camera streams (`streams:`): the daemon keeps the running set the configured one,
against the memories.ai emulator over loopback; the emulator's request log shows what was sent.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncd.emulator.mikshi import Emulator
from syncd.emulator.memories import MemoriesEmulator
from syncd.store.catalog import Catalog
from tests.conftest import run_syncd, wait_for, write_config
from tests.memories_support import NO_LIMITS, memories_config
from tests.service.test_daemon import FAST, SyncdDaemon

CAM1 = "rtsp://10.0.0.1:554/stream1"
CAM2 = "rtmp://10.0.0.2/live/door"
CAM3 = "rtsp://viewer:s3cret-pw@10.0.0.3/hall"


@pytest.fixture
def memories(tmp_path: Path) -> Iterator[MemoriesEmulator]:
    with MemoriesEmulator(memories_config(tmp_path / "memories")) as emu:
        yield emu


def config_with(tmp_path: Path, emu: MemoriesEmulator, streams: list[dict[str, Any]]) -> Path:
    drop = tmp_path / "drop"
    path = write_config(tmp_path, emu.v1_url, [{"path": str(drop), "collections": "none", "pipelines": []}],
                        **FAST)
    data = yaml.safe_load(path.read_text())
    data["remote"].update(backend="memories", v2_base_url=emu.v2_url, rate_limits=dict(NO_LIMITS))
    data["streams"] = streams
    path.write_text(yaml.safe_dump(data))
    return path


def running(emu: MemoriesEmulator) -> dict[str, dict[str, Any]]:
    """url → the emulator's running stream (there is no API call to list them: the admin view)."""
    return {s["url"]: s for s in emu.admin_streams() if s["stopped_at"] is None}


def calls(emu: MemoriesEmulator, since: int, suffix: str) -> int:
    return sum(1 for r in emu.requests(since) if r["path"].endswith(suffix))


def logged(emu: MemoriesEmulator, since: int, suffix: str, count: int) -> None:
    """``count`` such calls in the log, and no more: the emulator logs a request just after
    answering it, so the log can lag the answer a moment."""
    wait_for(lambda: calls(emu, since, suffix) >= count, 10, f"{count} {suffix} request(s)")
    assert calls(emu, since, suffix) == count


def after_first_step(daemon: SyncdDaemon, config: Path, started: float) -> None:
    """Streams are reconciled in the first step, before its pass walks the folders (a
    restart reads no listing while the deletion check is not due): once the walk is
    recorded, they are done."""
    state = Path(yaml.safe_load(config.read_text())["state_dir"])

    def scanned() -> bool:
        with Catalog.open_readonly(state) as catalog:
            return any(s.scanned_at >= started for s in catalog.scan_summaries().values())

    wait_for(scanned, 60, "the first pass's walk", daemon.log)


def test_streams_start_survive_a_restart_and_follow_the_config(tmp_path: Path, memories: MemoriesEmulator) -> None:
    emu = memories
    config = config_with(tmp_path, emu, [{"url": CAM1}, {"url": CAM2, "fps": 2, "enable_logo_detection": True}])
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: set(running(emu)) == {CAM1, CAM2}, 60, "both streams running", daemon.log)
        logged(emu, 0, "/stream/start", 2)
        assert running(emu)[CAM2]["options"] == (
            '{"enable_content_moderation": false, "enable_logo_detection": true, "fps": 2, "max_logos": 5}')
        listed = run_syncd(config, "streams")
        assert listed.returncode == 0, listed.stderr
        for url in (CAM1, CAM2):
            line = next(line for line in listed.stdout.splitlines() if line.startswith(url))
            assert line.split()[1:4] == ["yes", "yes", running(emu)[url]["task_id"]], line
        assert "the service lists none" in listed.stdout
        assert daemon.stop() == 0
    tasks = {url: s["task_id"] for url, s in running(emu).items()}

    # A restart leaves running streams alone: not one start or stop is sent.
    since, started = len(emu.requests()), time.time()
    with SyncdDaemon(config) as daemon:
        after_first_step(daemon, config, started)
        assert calls(emu, since, "/stream/start") == 0 and calls(emu, since, "/stream/stop") == 0
        assert {url: s["task_id"] for url, s in running(emu).items()} == tasks

        # A reload: CAM1 removed (stopped), CAM2's options changed (restarted), CAM3 added.
        config_with(tmp_path, emu, [{"url": CAM2, "fps": 5}, {"url": CAM3, "enable_content_moderation": True}])
        since = len(emu.requests())
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: set(running(emu)) == {CAM2, CAM3} and running(emu)[CAM2]["task_id"] != tasks[CAM2],
                 60, "the reloaded set running", daemon.log)
        logged(emu, since, "/stream/stop", 2)
        logged(emu, since, "/stream/start", 2)
        assert daemon.stop() == 0
        assert "s3cret-pw" not in daemon.log()
    listed = run_syncd(config, "streams")
    assert "rtsp://viewer:***@10.0.0.3/hall" in listed.stdout and "s3cret-pw" not in listed.stdout
    assert CAM1 not in listed.stdout


def test_a_stream_removed_while_the_daemon_was_down_is_stopped_once(tmp_path: Path,
                                                                   memories: MemoriesEmulator) -> None:
    emu = memories
    config = config_with(tmp_path, emu, [{"url": CAM1}])
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: CAM1 in running(emu), 60, "the stream running", daemon.log)
        assert daemon.stop() == 0
    config_with(tmp_path, emu, [])
    listed = run_syncd(config, "streams")
    assert "not in the config: the daemon stops it" in listed.stdout
    since, started = len(emu.requests()), time.time()
    with SyncdDaemon(config) as daemon:
        wait_for(lambda: not running(emu), 60, "the stream stopped", daemon.log)
        after_first_step(daemon, config, started)
        assert daemon.stop() == 0
    logged(emu, since, "/stream/stop", 1)
    assert calls(emu, since, "/stream/start") == 0
    assert run_syncd(config, "streams").stdout.startswith("no live streams")


def test_streams_on_a_backend_without_them_is_a_config_error(tmp_path: Path, emu: Emulator) -> None:
    path = write_config(tmp_path, emu.base_url, streams=[{"url": CAM1}])
    line = path.read_text().splitlines().index("streams:") + 1
    for command in ("streams", "sync", "run"):
        result = run_syncd(path, command)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == (f"syncd: {path}:{line}: streams: the mikshi backend has no live streams; "
                                         "remove this section"), result.stderr
