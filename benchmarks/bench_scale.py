"""A library of many small files: passes that grow with the changes, not the library.

    python benchmarks/bench_scale.py [--files 200000] [--dir DIR] [--skip-mirror]
                                     [--idle-seconds 180] [--ingest 1000,20000]

Phases, each a real ``python -m syncd`` subprocess (CPU from ``wait4``'s rusage, peak RSS
``ru_maxrss``) against an emulator in this process (its work is not counted):

* ``walk``: the reference, a bare ``os.scandir`` + ``stat`` walk of the tree in its own
  Python process, and the same on an empty folder (start-up), measured in this run;
* ``first_pass``: ``syncd sync --dry-run`` on a fresh catalog: walk, hash every file,
  record it in the catalog (in batches), plan N uploads: files/s;
* ``synced``: the "everything synced" state, reached cheaply. The emulator's admin
  ``videos/register`` creates N finished videos by name, size, sha256 and MD5 ETag (the
  real content hashes, so adoption by proof could verify them); the catalog is then
  populated directly (``Catalog.link_finished``) rather than by adoption, which would
  ask the remote about every file. A first ``syncd sync`` then mirrors every video once
  (details and sidecars; timed, ``mirror_catch_up``);
* ``unchanged``: ``syncd sync --dry-run`` over the synced tree before the mirror has run
  (walk, complete listing, plan), then ``syncd sync`` (listing, plan, mirror), and both
  on an empty folder: per-file CPU against the walk's, each minus its empty-folder run;
* ``status``: ``syncd status`` (counts in SQL) at N files, and on an empty catalog;
* ``daemon`` (not with ``--skip-mirror``): ``syncd run`` on the synced tree (settle 1 s,
  the default schedule): CPU share per minute and RSS over ``--idle-seconds`` after its
  start-up pass, then one file rewritten: seconds from the write to its ``upload
  started`` journal entry;
* ``ingest``: a first ``syncd sync`` of 1,000 and 20,000 small files (direct upload, no
  pipelines) against a fresh emulator: files/s, and the ratio of the two.

``--skip-mirror`` leaves out the mirror catch-up (one details request and sidecars per
video: ~16 ms a video here, an hour at 200,000), so the full unchanged ``sync`` and the
daemon too; the unchanged pass is then the dry run. Printed as JSON; nothing asserted
(``target_met`` says). The machine is shared: the load average at the start is in
``machine``; compare figures with the same run's references.
"""

from __future__ import annotations

import argparse
import hashlib
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
from _common import REPO, emit, machine

from syncd.store.catalog import Catalog
from syncd.emulator.mikshi import Emulator, EmulatorConfig
from syncd.remote.facts import MIKSHI_PROCESSING_STEPS as PROCESSING_STEPS

KEY = "sk_bench_scale_0123456789"
PER_DIR = 1000  # files per subfolder (a camera's day folder, say)
REGISTER_BATCH = 5000

WALK = """
import os, sys
def walk(path):
    n = 0
    stack = [path]
    while stack:
        for entry in os.scandir(stack.pop()):
            st = entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                n += 1
    return n
print(walk(sys.argv[1]))
"""


def measured(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a process to the end: wall seconds, CPU seconds (user + system, from its own
    rusage via ``wait4``), peak RSS, exit status and the tail of its output."""
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args[:6])} failed ({proc.returncode}): {text[-2000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mb": round(usage.ru_maxrss * 1024 / 1e6, 1), "exit": proc.returncode,
            "output_tail": text[-300:]}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def build_tree(drop: Path, files: int) -> None:
    for i in range(files):
        folder = drop / f"cam{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"clip{i:07d}.mp4").write_bytes(f"clip {i} of a long camera day\n".encode())


def write_config(root: Path, drop: Path, base_url: str, name: str) -> Path:
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "remote": {"base_url": base_url, "api_key_env": "SYNCD_BENCH_KEY"},
        "state_dir": str(root / f"state-{name}"),
        "folders": [{"path": str(drop), "collections": "none", "pipelines": []}],
        "upload": {"settle_seconds": 0},
        "log_level": "warning",
    }))
    return config


def synced_state(config_path: Path, base_url: str) -> dict[str, Any]:
    """Register every catalogued file as a finished remote video; link them in the catalog."""
    state_dir = Path(yaml.safe_load(config_path.read_text())["state_dir"])
    start = time.monotonic()
    with Catalog.open(state_dir) as catalog:
        records = catalog.files()
        links: list[tuple[str, str, str]] = []
        with httpx.Client(base_url=f"{base_url}/_admin", timeout=600) as admin:
            for first in range(0, len(records), REGISTER_BATCH):
                batch = records[first:first + REGISTER_BATCH]
                videos = [{"name": f.rel_path, "size": f.size, "sha256": f.sha256,
                           "md5": hashlib.md5(f.path.read_bytes()).hexdigest()} for f in batch]
                response = admin.post("/videos/register", json={"videos": videos})
                response.raise_for_status()
                links += [(f.sha256 or "", v, f.rel_path) for f, v in zip(batch, response.json()["video_ids"],
                                                                           strict=True)]
        catalog.link_finished(links, PROCESSING_STEPS)
        catalog.set_meta("adopt_remote", "0")
    return {"videos": len(links), "seconds": round(time.monotonic() - start, 1)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return round(int(line.split()[1]) * 1024 / 1e6, 1)
    return 0.0


def phase_daemon(root: Path, config: Path, drop: Path, env: dict[str, str], idle_seconds: float) -> dict[str, Any]:
    """``syncd run`` on the synced tree: idle CPU and RSS, then one changed file's upload start."""
    settings = yaml.safe_load(config.read_text())
    settings.update(upload={"settle_seconds": 1, "direct_upload_below": "1MiB"},
                    schedule={"rescan": "10m", "remote_poll": "2m"}, log_level="info")
    daemon_config = root / "daemon.yaml"
    daemon_config.write_text(yaml.safe_dump(settings))
    log_path = root / "daemon.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(daemon_config), "run"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        start = time.monotonic()
        quiet, last = 0, 0.0
        # The start-up pass is work, not idleness: wait for the daemon to say it watches,
        # then for five quiet seconds in a row.
        while quiet < 5 or "running: watching" not in log_path.read_text():
            time.sleep(1)
            if proc.poll() is not None:
                raise SystemExit(f"syncd run exited: {log_path.read_text()[-2000:]}")
            now = cpu_seconds(proc.pid)
            quiet = quiet + 1 if now - last < 0.02 else 0
            last = now
        startup = {"wall_s": round(time.monotonic() - start, 1), "cpu_s": round(cpu_seconds(proc.pid), 2),
                   "rss_mb": rss_mb(proc.pid)}
        t0 = time.monotonic()
        cpu, rss = [cpu_seconds(proc.pid)], [rss_mb(proc.pid)]
        while time.monotonic() - t0 < idle_seconds:
            time.sleep(10)
            cpu.append(cpu_seconds(proc.pid))
            rss.append(rss_mb(proc.pid))
        minutes = [(cpu[i + 6] - cpu[i]) / 60 for i in range(len(cpu) - 6)]
        idle = {"seconds": round(time.monotonic() - t0), "cpu_share_of_one_core": round((cpu[-1] - cpu[0]) /
                                                                                       (time.monotonic() - t0), 5),
                "worst_minute_cpu_share": round(max(minutes), 5) if minutes else None,
                "rss_start_mb": rss[0], "rss_end_mb": rss[-1], "rss_max_mb": max(rss)}
        state_dir = Path(settings["state_dir"])

        def upload_start(path: Path, content: bytes) -> float | None:
            """Write ``path``; seconds until the daemon journals its upload as started."""
            path.write_bytes(content)
            written = time.time()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                time.sleep(0.2)
                with Catalog.open_readonly(state_dir) as catalog:
                    started = [e.time for e in catalog.journal(50) if e.action == "upload"
                               and e.outcome == "started" and e.target == str(path)]
                if started:
                    return round(min(started) - written, 3)
            return None

        # A new clip among N; then one rewritten in place (a path that changes after it had
        # settled waits twice the settle time: a slow writer's pause).
        new = upload_start(drop / "cam0000" / "new-clip.mp4", b"a new clip from the benchmark\n")
        time.sleep(5)
        rewritten = upload_start(drop / "cam0000" / "clip0000000.mp4", b"clip 0, rewritten by the benchmark\n")
        out = {"startup_pass": startup, "idle": idle, "peak_rss_mb": rss_mb(proc.pid, "VmHWM"),
               "changed_file_upload_start_s": new, "rewritten_file_upload_start_s": rewritten, "settle_s": 1}
        if new is None or new > 3:
            out["log_tail"] = log_path.read_text()[-3000:]
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def phase_ingest(root: Path, sizes: list[int], env: dict[str, str]) -> dict[str, Any]:
    """A first ``syncd sync`` of small files on a fresh emulator (direct upload, no pipelines)."""
    out: dict[str, Any] = {}
    for n in sizes:
        where = root / f"ingest-{n}"
        drop = where / "drop"
        for i in range(n):
            folder = drop / f"cam{i // PER_DIR:04d}"
            if i % PER_DIR == 0:
                folder.mkdir(parents=True, exist_ok=True)
            (folder / f"clip{i:07d}.mp4").write_bytes(f"ingest clip {i} of {n}\n".encode())
        emu_config = EmulatorConfig(data_dir=where / "emulator", api_keys=[KEY], host="127.0.0.1", port=0,
                                    processing_seconds=0.1, pipeline_seconds=0.1)
        with Emulator(emu_config) as emu:
            config = write_config(where, drop, emu.base_url, "ingest")
            settings = yaml.safe_load(config.read_text())
            settings["upload"]["direct_upload_below"] = "1MiB"
            config.write_text(yaml.safe_dump(settings))
            run = measured([sys.executable, "-m", "syncd", "-c", str(config), "sync"], env)
            uploaded = len(emu.admin_videos())
        out[str(n)] = {**run, "uploaded": uploaded, "files_per_s": round(n / run["wall_s"], 1)}
        shutil.rmtree(where, ignore_errors=True)
    if len(sizes) == 2:
        small, large = (out[str(n)]["files_per_s"] for n in sizes)
        out["ratio_large_to_small"] = round(large / small, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the tree goes (default: system temp)")
    parser.add_argument("--skip-mirror", action="store_true",
                        help="no mirror catch-up, full unchanged sync or daemon phase (see above)")
    parser.add_argument("--idle-seconds", type=float, default=180.0, help="the daemon left idle (default 180)")
    parser.add_argument("--ingest", default="1000,20000", help="first-sync sizes, comma-separated ('' skips)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.dir))
    env = {**os.environ, "SYNCD_BENCH_KEY": KEY, "PYTHONPATH": str(REPO)}
    syncd = [sys.executable, "-m", "syncd", "-c"]
    result: dict[str, Any] = {"benchmark": "bench_scale", "files": args.files, "machine": machine()}
    try:
        drop, empty = root / "drop", root / "empty"
        empty.mkdir()
        start = time.monotonic()
        say(f"building a tree of {args.files} files in {drop}")
        build_tree(drop, args.files)
        result["build_tree_s"] = round(time.monotonic() - start, 1)
        emu_config = EmulatorConfig(data_dir=root / "emulator", api_keys=[KEY], host="127.0.0.1", port=0,
                                    processing_seconds=0.1, pipeline_seconds=0.1)
        with Emulator(emu_config) as emu:
            config, config_empty = (write_config(root, d, emu.base_url, n) for d, n in ((drop, "tree"), (empty, "empty")))
            say("walks")
            walk_empty = measured([sys.executable, "-c", WALK, str(empty)])
            walk = measured([sys.executable, "-c", WALK, str(drop)])
            status_empty = measured([*syncd, str(config_empty), "status"], env)
            sync_empty = measured([*syncd, str(config_empty), "sync"], env)
            say("first pass (hash and catalog every file)")
            first = measured([*syncd, str(config), "sync", "--dry-run"], env)
            result["walk"] = {"empty": walk_empty, "tree": walk}
            result["first_pass"] = {**first, "files_per_s": round(args.files / first["wall_s"], 1)}
            say("registering videos, linking the catalog")
            result["synced"] = synced_state(config, emu.base_url)
            say("unchanged dry run (walk, listing, plan; no mirror)")
            dry = [measured([*syncd, str(config), "sync", "--dry-run"], env) for _ in range(2)]
            unchanged: list[dict[str, Any]] = []
            if not args.skip_mirror:
                say("mirror catch-up (details of every video, once)")
                result["mirror_catch_up"] = measured([*syncd, str(config), "sync"], env)
                say("unchanged syncs")
                unchanged = [measured([*syncd, str(config), "sync"], env) for _ in range(2)]
            say("status")
            status = measured([*syncd, str(config), "status"], env)
            result["unchanged"] = {"empty": sync_empty, "tree": unchanged, "dry_run": dry}
            result["status"] = {"empty": status_empty, "tree": status}
            if not args.skip_mirror:
                say(f"daemon: start-up pass, {args.idle_seconds:.0f} s idle, one changed file")
                result["daemon"] = phase_daemon(root, config, drop, env, args.idle_seconds)
        sizes = [int(n) for n in args.ingest.split(",") if n.strip()]
        if sizes:
            say(f"first sync of {', '.join(map(str, sizes))} small files")
            result["ingest"] = phase_ingest(root, sizes, env)
        best = min(unchanged or dry, key=lambda r: r["cpu_s"])
        per_file_sync = (best["cpu_s"] - sync_empty["cpu_s"]) / args.files
        per_file_walk = (walk["cpu_s"] - walk_empty["cpu_s"]) / args.files
        ratio = per_file_sync / per_file_walk if per_file_walk > 0 else float("inf")
        best_dry = min(dry, key=lambda r: r["cpu_s"])
        per_file_dry = (best_dry["cpu_s"] - sync_empty["cpu_s"]) / args.files
        result["summary"] = {
            "unchanged_dry_run_cpu_s": best_dry["cpu_s"], "unchanged_dry_run_peak_rss_mb": best_dry["peak_rss_mb"],
            "per_file_cpu_ratio_dry_run": round(per_file_dry / per_file_walk, 1) if per_file_walk > 0 else None,
            "unchanged_sync_cpu_s": best["cpu_s"], "unchanged_sync_wall_s": best["wall_s"],
            "bare_walk_cpu_s": walk["cpu_s"],
            "per_file_cpu_us": {"sync": round(per_file_sync * 1e6, 2), "walk": round(per_file_walk * 1e6, 2)},
            "per_file_cpu_ratio": round(ratio, 1),
            "unchanged_peak_rss_mb": best["peak_rss_mb"],
            "status_wall_s": status["wall_s"], "status_small_wall_s": status_empty["wall_s"],
            "first_pass_files_per_s": result["first_pass"]["files_per_s"],
        }
        result["summary"]["unchanged_measured_by"] = "sync" if unchanged else "sync --dry-run (no mirror)"
        result["target_met"] = {
            "per_file_cpu_within_3x_walk": ratio <= 3.0,
            "status_small_under_0.3s": status_empty["wall_s"] < 0.3,
            "status_under_3s": status["wall_s"] < 3.0,
            "status_under_3s_extrapolated_to_1M": (status["wall_s"] - status_empty["wall_s"]) * 1e6 / args.files
            + status_empty["wall_s"] < 3.0,
        }
        if "daemon" in result:
            d = result["daemon"]
            result["target_met"]["daemon_idle_under_1pct"] = d["idle"]["cpu_share_of_one_core"] < 0.01
            result["target_met"]["daemon_rss_under_400MB"] = d["peak_rss_mb"] < 400
            latency = d["changed_file_upload_start_s"]
            result["target_met"]["changed_file_within_settle_plus_2s"] = latency is not None and latency <= 3.0
        if "ingest" in result and "ratio_large_to_small" in result["ingest"]:
            result["target_met"]["ingest_20k_at_least_0.9x_1k"] = result["ingest"]["ratio_large_to_small"] >= 0.9
    finally:
        shutil.rmtree(root, ignore_errors=True)
    emit(result)


if __name__ == "__main__":
    main()
