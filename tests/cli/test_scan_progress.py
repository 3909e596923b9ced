"""What a person sees while a first pass walks and hashes a large tree: on a
terminal a hashing bar, in a pipe periodic plain lines, under the daemon a log
line every so often. The engine's real observe of real files; the display in-process
so that the interval can be short (the CLI's is 10 s)."""

from __future__ import annotations

import dataclasses
import io
import logging
import re
from pathlib import Path

import pytest
from rich.console import Console

from syncd.cli.console import PlainProgress, TerminalProgress
from syncd.config import load_config
from syncd.emulator.mikshi import Emulator
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions
from syncd.sync.progress import ScanLog, ScanMeter
from syncd.sync.scan import ScanProgress
from tests.conftest import FAST_RETRY, KEY, write_config


def _tree(drop: Path, n: int) -> None:
    for i in range(n):
        (drop / f"cam{i % 3}").mkdir(parents=True, exist_ok=True)
        (drop / f"cam{i % 3}" / f"clip{i:04d}.mp4").write_bytes(b"x" * (1000 + i))


def _observe(tmp_path: Path, emu: Emulator, display: PlainProgress | TerminalProgress) -> None:
    folders = [{"path": str(tmp_path / "drop"), "collections": "none", "pipelines": []}]
    config = load_config(write_config(tmp_path, emu.base_url, folders), {"SYNCD_TEST_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        Engine(EngineOptions.from_config(config), catalog, remote, progress=display).observe()


def test_plain_lines_say_files_seen_hashed_bytes_rate_and_time_left(tmp_path: Path, emu: Emulator) -> None:
    _tree(tmp_path / "drop", 300)
    out = io.StringIO()
    _observe(tmp_path, emu, PlainProgress(out, interval=0))
    lines = out.getvalue().splitlines()
    hashing = [line for line in lines if line.startswith("scanning: ")]
    assert hashing, out.getvalue()
    assert hashing[0] == "scanning: 300 file(s) seen; hashed 0 of 300 new or changed, 0 B of 336.8 KiB, 0 B/s"
    assert any(re.fullmatch(r"scanning: 300 file\(s\) seen; hashed 2\d\d of 300 new or changed, "
                            r"\d+\.\d KiB of 336\.8 KiB, [\d.]+ [KMG]?i?B/s, about \S+ left", line) for line in hashing)
    assert hashing[-1].startswith("scanning: 300 file(s) seen; hashed 300 of 300 new or changed, 336.8 KiB of 336.8 KiB")
    assert "left" not in hashing[-1]


def test_a_terminal_shows_a_hashing_bar_that_goes_when_hashing_is_done(tmp_path: Path, emu: Emulator) -> None:
    _tree(tmp_path / "drop", 30)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with TerminalProgress(console) as live:
        _observe(tmp_path, emu, live)
        assert live.hash_task is None  # gone once every file is hashed
        assert live.live.waiting_lines == ["scanning: 30 file(s) seen"]
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert re.search(r"hashing 0 of 30 \(30 seen\) +━+ 0\.0/29\.7 KiB +0%", drawn), drawn[:2000]


def test_the_daemon_logs_a_long_scan_once_per_interval_and_a_short_one_never(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    scan_log = ScanLog(interval=60, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="syncd.sync.progress")
    counts = ScanProgress(files_seen=200_000, to_hash=200_000, bytes_to_hash=200_000 * 2**20)
    for second in range(181):  # three minutes of hashing, 1,000 files (1,000 MiB) a second
        now[0] = float(second)
        counts.hashed, counts.bytes_hashed = 1000 * second, 1000 * second * 2**20
        scan_log(counts)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"scanning: 200,000 file(s) seen; hashed {n:,} of 200,000 new or changed, "
        f"{n * 2**20 / 2**30:.1f} GiB of 195.3 GiB, 1000.0 MiB/s, about {left} left"
        for n, left in ((60_000, "2m20s"), (120_000, "1m20s"), (180_000, "20s"))
    ]
    caplog.clear()
    short = ScanProgress(files_seen=20_000)  # the next pass: a rescan with nothing to hash
    for second in range(181, 200):
        now[0] = float(second)
        scan_log(short)
    assert caplog.records == []


def test_the_rate_counts_from_the_first_file_to_hash_not_from_the_walk() -> None:
    now = [0.0]
    meter = ScanMeter(clock=lambda: now[0])
    walked = ScanProgress(files_seen=500_000)
    meter.update(walked)
    assert meter.line(walked) == "scanning: 500,000 file(s) seen"
    now[0] = 300.0  # five minutes of walking
    counts = ScanProgress(files_seen=500_000, to_hash=10, bytes_to_hash=10 * 2**20)
    meter.update(counts)
    now[0] = 302.0
    counts.hashed, counts.bytes_hashed = 4, 4 * 2**20
    assert meter.line(counts).endswith("hashed 4 of 10 new or changed, 4.0 MiB of 10.0 MiB, 2.0 MiB/s, about 3s left")


def test_a_first_pass_counts_the_whole_tree_ahead_for_its_time_left(tmp_path: Path, emu: Emulator) -> None:
    """The walk hands its files on a batch at a time, so what it has found is not what is
    left: a first pass shown on a display counts the tree beside it (the files its walk
    would hash, under the same rules), and its lines say "of 300" before the walk has
    found them all. A rescan counts nothing again."""
    drop = tmp_path / "drop"
    _tree(drop, 300)
    (drop / "cam0" / ".hidden.mp4").write_bytes(b"not synced")
    (drop / "cam0" / "notes.txt").write_bytes(b"not a video")
    (drop / "cam1" / "empty.mp4").write_bytes(b"")  # never hashed
    folders = [{"path": str(drop), "collections": "none", "pipelines": []}]
    config = load_config(write_config(tmp_path, emu.base_url, folders), {"SYNCD_TEST_KEY": KEY})
    seen: list[tuple[int, tuple[int, int] | None]] = []
    total_bytes = sum(1000 + i for i in range(300))
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        options = dataclasses.replace(EngineOptions.from_config(config), batch=50)
        engine = Engine(options, catalog, remote, on_progress=lambda c: seen.append((c.to_hash, c.total)))
        engine.observe()
        assert seen[-1] == (300, (300, total_bytes))  # counted by the time the pass ends
        # Once in, the total is the tree's while the walk has found a part of it.
        early = [total for found, total in seen if found < 300 and total is not None]
        assert all(total == (300, total_bytes) for total in early)
        meter = ScanMeter()
        assert "hashed 0 of 300 new or changed, 0 B of 336.8 KiB" in meter.line(
            ScanProgress(files_seen=50, to_hash=50, bytes_to_hash=50_000, total=(300, total_bytes)))
        seen.clear()
        (drop / "cam2" / "late.mp4").write_bytes(b"y" * 4000)
        engine.observe()
        assert seen and all(total is None for _, total in seen)
