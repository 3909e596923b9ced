"""Ingest throughput: ``syncd sync`` against a plain sequential single-stream PUT.

    python benchmarks/bench_ingest.py [--rounds 3] [--dir /tmp]

Data set (default 1 GiB): ``cam-big/big.mp4`` (512 MiB) plus ``cam-small/clip-NN.mp4``
(64 x 8 MiB), written once (``os.sync``-ed) and read once to warm the page cache. Each file
is a real 2 s MP4 padded with random bytes (``--payload video``, see ``make_dataset``):
the emulator probes every object with PyAV at ``preprocess``, which costs ~0.1 s of CPU per
*undecodable* file, a cost the real service does not put on the upload path. ``--payload
random`` (random bytes only) shows that effect.

Each round starts a fresh emulator (``python -m syncd.emulator``, its own process, short
processing timings) and uploads the same files twice, in alternating order:

* **syncd**: the real CLI, ``python -m syncd -c CFG sync`` (no ``--wait``), in a subprocess,
  with a fresh state dir; ``upload.part_size`` / ``upload.concurrency`` from the flags
  (default 16 MiB / 4, the shipped defaults).
* **reference**: this script, with one ``httpx.Client``, file after file: initiate a
  multipart upload, sign part 1, PUT the *whole file as one part* (one stream, the body a
  plain ``fh.read(1 MiB)`` generator), complete, preprocess. Same endpoints, same server
  work per byte (md5 + write on PUT, assembly + sha256 on complete), no parallelism.

What is timed (all from the emulator's own request log, so both sides are measured alike):

* ``upload_s``: from the start of the first ``initiate`` to the end of the last
  ``preprocess`` (every byte sent, every object assembled and registered). **Headline.**
* ``transfer_s``: from the start of the first part PUT to the end of the last one.
* ``wall_s``: the whole command as seen by this script. For syncd that adds interpreter
  start-up, the scan, sha256 of every file (syncd must know the content before it uploads),
  the catalog and the remote listing; for the reference only its HTTP calls.

Also recorded: the CPU seconds of the client (the ``syncd`` process, or this script during
the reference) and of the emulator process, which say where the time goes. Before each
contender the page cache is ``os.sync``-ed, and afterwards its videos are deleted again, so
neither inherits the other's writeback. Every uploaded object's sha256 (computed by the
emulator) is checked against the files.
Figures are medians over the rounds, MB/s = 10^6 bytes/s, printed as JSON.
Nothing is asserted: ``target_met`` says whether syncd's upload_s beat the reference's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from _common import REPO, MiB, emit, machine, mbps, median

from syncd.units import parse_size

KEY = "sk_bench_0123456789abcdef"
BACKEND = "/api/backend/v1/developer"


# ----------------------------------------------------------------------------- data set
def make_dataset(drop: Path, big: int, small_count: int, small: int, payload: str) -> dict[str, str]:
    """Write the files; return rel path -> sha256.

    ``video``: each file is a real 2 s H.264 MP4 followed by one top-level ``free`` box of
    random bytes up to the size (a valid MP4 that PyAV opens in ~1 ms). ``random``: random
    bytes only, which the emulator's synchronous PyAV probe at ``preprocess`` takes ~0.1 s
    of CPU per file to reject.
    """
    header = b""
    if payload == "video":
        from syncd.media.clips import make_clip

        clip = make_clip(drop.parent / "clip.mp4", seed=7)
        header = clip.read_bytes()
        clip.unlink()
    files: dict[str, str] = {}
    specs = [("cam-big/big.mp4", big, 1)] if big else []
    specs += [(f"cam-small/clip-{i:02d}.mp4", small, 100 + i) for i in range(small_count)]
    for rel, size, seed in specs:
        path = drop / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed)
        digest = hashlib.sha256()
        with open(path, "wb") as fh:
            left = size
            if header:
                if size < len(header) + 8 or size - len(header) >= 1 << 32:
                    raise SystemExit(f"{rel}: size {size} does not fit a video payload")
                head = header + struct.pack(">I", size - len(header)) + b"free"
                digest.update(head)
                fh.write(head)
                left -= len(head)
            while left:
                block = rng.randbytes(min(left, 16 * MiB))
                digest.update(block)
                fh.write(block)
                left -= len(block)
        files[rel] = digest.hexdigest()
    return files


def warm(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while fh.read(16 * MiB):
                pass


# ----------------------------------------------------------------------------- emulator
class EmulatorProcess:
    def __init__(self, data_dir: Path, log_path: Path, processing_seconds: float) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("SYNCD_EMULATOR_API_KEYS", None)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd.emulator", "--data-dir", str(data_dir), "--api-key", KEY,
             "--port", "0", "--processing-seconds", str(processing_seconds),
             "--pipeline-seconds", str(processing_seconds), "--collections-cache-seconds", "0",
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=self._log, env=env, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("emulator listening on "):
            self.stop()
            raise SystemExit(f"emulator did not start: {line!r} (see {log_path})")
        self.base_url = line.rsplit(" ", 1)[1]
        self.admin = httpx.Client(base_url=f"{self.base_url}/_admin", timeout=60)

    def clear_requests(self) -> None:
        self.admin.post("/requests/clear").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        response = self.admin.get("/requests")
        response.raise_for_status()
        return list(response.json())

    def object_shas(self) -> dict[str, str]:
        response = self.admin.get("/objects")
        response.raise_for_status()
        return {o["object_name"]: o["sha256"] for o in response.json()}

    def delete_all_videos(self) -> None:
        """Free the stored objects (and their dirty pages) before the next contender."""
        response = self.admin.get("/videos")
        response.raise_for_status()
        body = response.json()
        for video in body["videos"] if isinstance(body, dict) else body:
            self.admin.delete(f"/videos/{video['video_id']}").raise_for_status()

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far."""
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if hasattr(self, "admin"):
            self.admin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phases(log: list[dict[str, Any]]) -> dict[str, Any]:
    """Upload and transfer windows from the emulator's request log (time = end of request)."""
    def start(e: dict[str, Any]) -> float:
        return float(e["time"]) - float(e["duration_ms"]) / 1000

    puts = [e for e in log if e["method"] == "PUT" and e["path"].startswith("/s3/")]
    inits = [e for e in log if e["path"].endswith("/uploads/multipart/initiate")]
    registers = [e for e in log if e["path"].endswith("/uploads/preprocess")]
    completes = [e for e in log if e["path"].endswith("/uploads/multipart/complete")]
    bad = [e for e in log if e["status"] is None or int(e["status"]) >= 400]
    return {
        "upload_s": round(max(float(e["time"]) for e in registers) - min(start(e) for e in inits), 3),
        "transfer_s": round(max(float(e["time"]) for e in puts) - min(start(e) for e in puts), 3),
        "part_puts": len(puts),
        "part_bytes": sum(int(e["bytes_in"]) for e in puts),
        "part_put_ms_median": round(median([float(e["duration_ms"]) for e in puts]), 1),
        "complete_ms_total": round(sum(float(e["duration_ms"]) for e in completes), 1),
        "failed_requests": len(bad),
    }


# ----------------------------------------------------------------------------- contenders
def run_reference(base_url: str, drop: Path, files: dict[str, str]) -> tuple[float, float]:
    """Sequential single-stream upload of every file as one part; (wall s, client CPU s)."""
    cpu = time.process_time()
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=300) as api, \
            httpx.Client(timeout=300) as plain:
        for rel in files:
            path = drop / rel
            size = path.stat().st_size
            name = f"reference/{rel}"
            r = api.post(f"{BACKEND}/uploads/multipart/initiate",
                         json={"filename": name, "content_type": "video/mp4"})
            r.raise_for_status()
            up = r.json()
            obj, upload_id = up["s3_object_name"], up["upload_id"]
            r = api.post(f"{BACKEND}/uploads/multipart/part-url",
                         json={"s3_object_name": obj, "upload_id": upload_id, "part_number": 1})
            r.raise_for_status()
            with open(path, "rb") as fh:
                r = plain.put(r.json()["url"], content=iter(lambda: fh.read(MiB), b""),
                              headers={"Content-Length": str(size),
                                       "Content-Type": "application/octet-stream"})
            r.raise_for_status()
            r = api.post(f"{BACKEND}/uploads/multipart/complete",
                         json={"s3_object_name": obj, "upload_id": upload_id,
                               "parts": [{"part_number": 1, "etag": r.headers["ETag"]}]})
            r.raise_for_status()
            r = api.post(f"{BACKEND}/uploads/preprocess",
                         json={"s3_object_name": obj, "video_id": up["video_id"], "name": name,
                               "use_dynamic_hls": False})
            r.raise_for_status()
    return time.perf_counter() - started, time.process_time() - cpu


def write_config(work: Path, base_url: str, drop: Path, part_size: int, concurrency: int) -> Path:
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    data = {
        "remote": {"base_url": base_url, "api_key_env": "SYNCD_BENCH_KEY", "timeout": "300s"},
        "state_dir": str(state),
        "folders": [{"path": str(drop)}],
        "upload": {"settle_seconds": 0, "part_size": part_size, "concurrency": concurrency},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_syncd(config: Path, profile: str | None) -> tuple[float, float]:
    """``syncd sync`` in a subprocess; (wall s, its CPU s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["SYNCD_BENCH_KEY"] = KEY
    env["PYTHONPATH"] = str(REPO)
    cmd = [sys.executable, "-m", "syncd", "-c", str(config), "sync"]
    if profile:  # e.g. "pyinstrument -o /tmp/p.html -r html" (investigation only)
        cmd = [*profile.split(), "-m", "syncd", "-c", str(config), "sync"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"syncd sync exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return wall, cpu


def check_objects(before: dict[str, str], after: dict[str, str], files: dict[str, str], who: str) -> None:
    new = sorted(sha for name, sha in after.items() if name not in before)
    if new != sorted(files.values()):
        raise SystemExit(f"{who}: uploaded objects do not match the files "
                         f"({len(new)} new objects, {len(files)} files)")


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", default="512MiB", help="size of the one big file (default 512MiB)")
    parser.add_argument("--small-count", type=int, default=64, help="number of small files (default 64)")
    parser.add_argument("--small", default="8MiB", help="size of each small file (default 8MiB)")
    parser.add_argument("--payload", choices=("video", "random"), default="video",
                        help="file contents: a real MP4 padded with random bytes (default) or "
                             "random bytes only (see make_dataset)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each on a fresh emulator (default 3)")
    parser.add_argument("--part-size", default="16MiB", help="syncd upload.part_size (default 16MiB)")
    parser.add_argument("--concurrency", type=int, default=4, help="syncd upload.concurrency (default 4)")
    parser.add_argument("--processing-seconds", type=float, default=0.2,
                        help="emulator processing/pipeline timings (default 0.2)")
    parser.add_argument("--dir", default=None, help="parent of the temp work dir (default: system temp)")
    parser.add_argument("--profile", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    host = machine()  # before any work: includes the load average at start
    big, small = parse_size(args.big), parse_size(args.small)
    part_size = parse_size(args.part_size)

    with tempfile.TemporaryDirectory(prefix="syncd-bench-ingest-", dir=args.dir) as tmp:
        work = Path(tmp)
        drop = work / "drop"
        files = make_dataset(drop, big, args.small_count, small, args.payload)
        total = sum((drop / rel).stat().st_size for rel in files)
        os.sync()
        warm([drop / rel for rel in files])

        rounds: list[dict[str, Any]] = []
        for n in range(args.rounds):
            emu_dir = work / f"emulator-{n}"
            emu = EmulatorProcess(emu_dir, work / f"emulator-{n}.log", args.processing_seconds)
            try:
                order = ["reference", "syncd"] if n % 2 == 0 else ["syncd", "reference"]
                row: dict[str, Any] = {"order": order, "loadavg_1m_at_start": round(os.getloadavg()[0], 2)}
                for who in order:
                    config = write_config(work, emu.base_url, drop, part_size, args.concurrency)
                    os.sync()  # nobody inherits the other's writeback
                    before = emu.object_shas()
                    emu.clear_requests()
                    emu_cpu = emu.cpu_seconds()
                    if who == "reference":
                        wall, cpu = run_reference(emu.base_url, drop, files)
                    else:
                        wall, cpu = run_syncd(config, args.profile)
                    emu_cpu = emu.cpu_seconds() - emu_cpu
                    log = emu.requests()
                    check_objects(before, emu.object_shas(), files, who)
                    emu.delete_all_videos()
                    row[who] = {"wall_s": round(wall, 3), **phases(log),
                                "client_cpu_s": round(cpu, 2), "emulator_cpu_s": round(emu_cpu, 2)}
                    print(f"round {n + 1} {who}: {row[who]}", file=sys.stderr, flush=True)
                row["syncd_vs_reference_upload"] = round(
                    row["reference"]["upload_s"] / row["syncd"]["upload_s"], 3)
                rounds.append(row)
            finally:
                emu.stop()
                shutil.rmtree(emu_dir, ignore_errors=True)

    def summary(who: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("upload_s", "transfer_s", "wall_s"):
            seconds = median([r[who][key] for r in rounds])
            out[key] = round(seconds, 3)
            out[key.replace("_s", "_MBps")] = mbps(total, seconds)
        for key in ("client_cpu_s", "emulator_cpu_s"):
            out[key] = round(median([r[who][key] for r in rounds]), 2)
        return out

    syncd, reference = summary("syncd"), summary("reference")
    emit({
        "benchmark": "ingest",
        "machine": host,
        "data": {"files": len(files), "total_bytes": total, "payload": args.payload, "big_file_bytes": big,
                 "small_files": args.small_count, "small_file_bytes": small},
        "syncd_settings": {"part_size": part_size, "concurrency": args.concurrency,
                           "command": "python -m syncd -c CFG sync"},
        "reference": "sequential, one httpx stream: initiate, part-url, PUT whole file as part 1 "
                     "(1 MiB read generator), complete, preprocess; file after file",
        "timed": {
            "upload_s": "emulator request log: start of first initiate -> end of last preprocess",
            "transfer_s": "emulator request log: start of first part PUT -> end of last part PUT",
            "wall_s": "whole command; syncd's includes start-up, scan, sha256 of every file, listing",
        },
        "emulator": {"process": "separate (python -m syncd.emulator)",
                     "processing_seconds": args.processing_seconds},
        "rounds": rounds,
        "median": {"syncd": syncd, "reference": reference},
        "syncd_vs_reference_upload": round(reference["upload_s"] / syncd["upload_s"], 3),
        # Paired by round (both ran back to back on one emulator): steadier under load.
        "syncd_vs_reference_upload_median_of_rounds": round(
            median([r["syncd_vs_reference_upload"] for r in rounds]), 3),
        "target": "syncd upload_s shorter than the reference's (higher MB/s)",
        "target_met": syncd["upload_s"] < reference["upload_s"],
    })


if __name__ == "__main__":
    main()
