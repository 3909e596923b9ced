"""Peak memory of ``syncd sync`` while it uploads one large file.

    python benchmarks/bench_upload_rss.py [--size 2GiB] [--dir /tmp]

One file (default 2 GiB; a real MP4 padded with random bytes, see bench_ingest.py) is
uploaded by the real CLI, ``python -m syncd -c CFG sync``, in a subprocess, against an
emulator in its own process. While it runs, this script samples the child's
``/proc/PID/status`` (VmRSS, VmHWM) every 50 ms; when it exits, ``wait4`` (in a tiny
wrapper process, see ``_WRAPPER``) gives the kernel's exact peak, ``ru_maxrss``: the
headline.

Reference, measured the same way in the same run: ``syncd sync --dry-run`` on the same
folder with a fresh state dir: the same process doing everything except the upload
(start-up, scan, sha256 of the file, remote listing, plan). The difference is what the
upload itself costs in memory.

``--backend memories``: the same against the memories.ai emulator (one multipart/form-data
request per file, no parts; rate limits lifted on both sides).

MB = 10^6 bytes. Nothing is asserted: ``target_met`` says whether the peak is under 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from _common import MB, REPO, emit, machine
from bench_ingest import KEY, EmulatorProcess, make_dataset, phases, warm, write_config

from syncd.units import parse_size

TARGET_BYTES = 150 * MB
V1 = "/serve/api/v1"


class MemoriesEmulatorProcess(EmulatorProcess):
    """``syncd emulator --backend memories`` in its own process, every rate limit lifted."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:  # noqa: D107 - the parent's fields
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        lifted = [arg for group in ("upload", "list", "delete", "metadata", "search")
                  for arg in ("--rate-limit", f"{group}=off")]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "emulator", "--backend", "memories", "--data-dir", str(data_dir),
             "--api-key", KEY, "--port", "0", "--parse-seconds", "0.2", *lifted, "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=self._log, env=env, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("emulator listening on "):
            self.stop()
            raise SystemExit(f"emulator did not start: {line!r} (see {log_path})")
        self.base_url = line.rsplit(" ", 1)[1]
        self.admin = httpx.Client(base_url=f"{self.base_url}/_admin", timeout=60)

    def object_shas(self) -> dict[str, str]:
        response = self.admin.get("/videos")
        response.raise_for_status()
        body = response.json()
        return {v["video_no"]: v["sha256"] for v in (body["videos"] if isinstance(body, dict) else body)}


def memories_config(work: Path, base_url: str, drop: Path) -> Path:
    path = write_config(work, base_url + V1, drop, 16 * 2**20, 1)
    data = yaml.safe_load(path.read_text())
    data["remote"].update(backend="memories", v2_base_url=base_url + "/serve/api/v2",
                          rate_limits={g: None for g in ("upload", "list", "delete", "metadata", "search")})
    path.write_text(yaml.safe_dump(data))
    return path


def status_kib(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


# ru_maxrss of a direct child is useless here: Linux carries the *parent's* peak RSS over
# into the child at fork/exec (Python spawns with vfork), so it would report this script's
# own size. A tiny wrapper process forks + execs the command and reports wait4's figure for
# it instead (the floor is then the wrapper's ~10 MB, far below syncd's own).
_WRAPPER = """
import json, os, sys
out = sys.argv[1]
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
with open(out + ".pid", "w") as fh:
    fh.write(str(pid))
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as fh:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, fh)
"""


def run_sampled(cmd: list[str], env: dict[str, str], interval: float, work: Path) -> dict[str, Any]:
    """Run ``cmd``; sample its memory every ``interval`` s; exact peak from wait4."""
    report = work / "rusage.json"
    pid_file = work / "rusage.json.pid"
    report.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)
    started = time.perf_counter()
    wrapper = subprocess.Popen([sys.executable, "-c", _WRAPPER, str(report), *cmd], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    samples: list[tuple[float, int]] = []
    hwm = 0
    pid = None
    while wrapper.poll() is None:
        if pid is None and pid_file.exists() and pid_file.read_text():
            pid = int(pid_file.read_text())
        if pid is not None:
            mem = status_kib(pid)
            if "VmRSS" in mem:
                samples.append((time.perf_counter() - started, mem["VmRSS"]))
                hwm = max(hwm, mem.get("VmHWM", 0))
        time.sleep(interval)
    wall = time.perf_counter() - started
    out, err = wrapper.communicate()  # small: syncd prints a summary
    result = json.loads(report.read_text())
    if result["exit"] != 0:
        raise SystemExit(f"{' '.join(cmd[-3:])} exited {result['exit']}:\n{out.decode()}\n{err.decode()}")
    maxrss = result["maxrss_kib"] * 1024
    peak_sampled = max((kib for _, kib in samples), default=0)
    # A coarse timeline: the highest sample in each half second.
    timeline: dict[float, int] = {}
    for t, kib in samples:
        slot = round(t - t % 0.5, 1)
        timeline[slot] = max(timeline.get(slot, 0), kib)
    return {
        "wall_s": round(wall, 2),
        "ru_maxrss_bytes": maxrss,
        "ru_maxrss_MB": round(maxrss / MB, 1),
        "vmhwm_sampled_MB": round(hwm * 1024 / MB, 1),
        "vmrss_peak_sampled_MB": round(peak_sampled * 1024 / MB, 1),
        "samples": len(samples),
        "vmrss_MB_by_half_second": {f"{t:.1f}": round(k * 1024 / MB, 1) for t, k in timeline.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2GiB", help="file size (default 2GiB)")
    parser.add_argument("--part-size", default="16MiB", help="syncd upload.part_size (default 16MiB)")
    parser.add_argument("--concurrency", type=int, default=4, help="syncd upload.concurrency (default 4)")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling interval in s (default 0.05)")
    parser.add_argument("--dir", default=None, help="parent of the temp work dir (default: system temp)")
    parser.add_argument("--backend", choices=("mikshi", "memories"), default="mikshi",
                        help="which service's emulator to upload to (default: mikshi)")
    args = parser.parse_args()
    host = machine()  # before any work: includes the load average at start
    size, part_size = parse_size(args.size), parse_size(args.part_size)

    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["SYNCD_BENCH_KEY"] = KEY
    env["PYTHONPATH"] = str(REPO)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-rss-", dir=args.dir) as tmp:
        work = Path(tmp)
        drop = work / "drop"
        files = make_dataset(drop, size, 0, 0, "video")
        os.sync()
        warm([drop / rel for rel in files])
        memories = args.backend == "memories"
        emu = (MemoriesEmulatorProcess(work / "emulator", work / "emulator.log") if memories
               else EmulatorProcess(work / "emulator", work / "emulator.log", 0.2))
        try:
            for label, extra in (("reference_dry_run", ["--dry-run"]), ("syncd", [])):
                config = (memories_config(work, emu.base_url, drop) if memories
                          else write_config(work, emu.base_url, drop, part_size, args.concurrency))
                os.sync()
                emu.clear_requests()
                cmd = [sys.executable, "-m", "syncd", "-c", str(config), "sync", *extra]
                results[label] = run_sampled(cmd, env, args.interval, work)
                print(f"{label}: {results[label]['ru_maxrss_MB']} MB", file=sys.stderr, flush=True)
            log = emu.requests()
            shas = set(emu.object_shas().values())
            if shas != set(files.values()):
                raise SystemExit("the uploaded object does not match the file")
            results["syncd"]["upload"] = (
                {"requests": sum(1 for r in log if r["path"] == V1 + "/upload")} if memories else phases(log))
        finally:
            emu.stop()
            shutil.rmtree(work / "emulator", ignore_errors=True)

    peak = results["syncd"]["ru_maxrss_bytes"]
    emit({
        "benchmark": "upload_rss",
        "backend": args.backend,
        "machine": host,
        "file_bytes": size,
        "syncd_settings": {"part_size": part_size, "concurrency": args.concurrency,
                           "command": "python -m syncd -c CFG sync"},
        "reference": "python -m syncd -c CFG sync --dry-run (same process minus the upload)",
        "measured": "ru_maxrss from wait4 (exact peak RSS); /proc/PID/status sampled every "
                    f"{args.interval} s for the timeline",
        "results": results,
        "upload_cost_MB": round((peak - results["reference_dry_run"]["ru_maxrss_bytes"]) / MB, 1),
        "target": "peak RSS < 150 MB",
        "target_met": peak < TARGET_BYTES,
    })


if __name__ == "__main__":
    main()
