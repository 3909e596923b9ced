"""What a person sees of `syncd sync`: progress on a terminal (through a real
pseudo-terminal), plain lines elsewhere, one line per action, and messages that
say what to do. The real CLI, against the emulator."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from syncd.emulator import Emulator
from tests.conftest import MiB, run_syncd, syncd_env, write_config, write_random

ESCAPE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def run_on_terminal(config: Path, *args: str, columns: int = 110) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run syncd with stderr on a pseudo-terminal (stdout a pipe, as in `syncd sync > out`).
    Returns the result and everything written to the terminal."""
    master, slave = pty.openpty()
    env = {**syncd_env(), "TERM": "xterm-256color", "COLUMNS": str(columns)}
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(config), *args],
                            stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = proc.stdout.read() if proc.stdout else ""
    proc.wait(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, ""), b"".join(chunks).decode()


def screen(raw: str) -> list[str]:
    """The lines a terminal shows for ``raw`` (with scrollback): the few controls rich
    uses, interpreted: carriage return, newline, erase line, cursor up; colours dropped."""
    lines, row, col = [""], 0, 0
    pos = 0
    for match in [*ESCAPE.finditer(raw), None]:
        text = raw[pos:match.start() if match else len(raw)]
        for ch in text:
            if ch == "\r":
                col = 0
            elif ch == "\n":
                row += 1
                col = 0
                if row == len(lines):
                    lines.append("")
            else:
                line = lines[row].ljust(col)
                lines[row] = line[:col] + ch + line[col + 1:]
                col += 1
        if match is None:
            break
        pos = match.end()
        arg, op = match.groups()
        if op == "K":
            lines[row] = ""
        elif op == "A":
            row = max(0, row - int(arg or 1))
    return lines


def plain(raw: str) -> str:
    return ESCAPE.sub("", raw)


def test_progress_on_a_terminal_shows_files_bytes_rate_and_waiting(tmp_path: Path, emu: Emulator) -> None:
    write_random(tmp_path / "drop" / "cam1" / "a.mp4", 12 * MiB, 1)
    write_random(tmp_path / "drop" / "b.mp4", 6 * MiB, 2)
    config = write_config(tmp_path, emu.base_url)
    result, raw = run_on_terminal(config, "sync", "--wait", "-v")
    assert result.returncode == 0, raw
    drawn = plain(raw)
    # Per file and in total: bytes of total, percentage, rate, time left, files done and left.
    assert re.search(r"cam1/a\.mp4 .*━.* 0\.0/12\.0 MiB", drawn), drawn[:2000]
    assert re.search(r"total: 0 done, 2 left .* 0\.0/18\.0 MiB +0%", drawn)
    assert re.search(r"total: 2 done, 0 left .* 18\.0/18\.0 MiB +100% +[\d.]+ [KMG]?i?B/s", drawn)
    # Then the phase line while the remote works, file by file.
    assert re.search(r"waiting for the remote on 2 file\(s\):", drawn)
    assert re.search(r"b\.mp4 +(processing|running analyse|running search-process)", drawn)
    # Log lines (-v: debug ones too) never share a line with the progress display.
    shown = screen(raw)
    logged = [line for line in shown if re.search(r"(DEBUG|INFO|WARNING) syncd", line)]
    assert logged, "-v printed log lines while the display was up"
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) ", line) for line in logged), logged
    # The display is gone at the end (transient); stdout has the result, never progress.
    assert not any("━" in line for line in shown)
    assert "━" not in result.stdout and "waiting for the remote" not in result.stdout
    assert "2 file(s): 2 done; uploaded 2 file(s), 18.0 MiB" in result.stdout


def test_progress_without_a_terminal_is_plain_lines_and_q_silences_it(tmp_path: Path, emu: Emulator) -> None:
    write_random(tmp_path / "drop" / "a.mp4", 6 * MiB, 1)
    config = write_config(tmp_path, emu.base_url)
    result = run_syncd(config, "sync", "--wait")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^uploaded .*a\.mp4 \(6\.0 MiB\); 6\.0 MiB of 6\.0 MiB \(100%\), .*/s.*1 of 1 file\(s\) done$",
                     result.stderr, re.MULTILINE), result.stderr
    assert re.search(r"^waiting for the remote on 1 file\(s\): .*a\.mp4 ", result.stderr, re.MULTILINE)
    assert "\x1b[" not in result.stderr, "no terminal controls in a log"
    write_random(tmp_path / "drop" / "b.mp4", 6 * MiB, 2)
    quiet = run_syncd(config, "sync", "--wait", "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and "upload " not in quiet.stdout
    assert quiet.stdout.strip() == "2 file(s): 2 done; uploaded 1 file(s), 6.0 MiB"
