"""A library of many small files: passes that grow with the changes, not the library.

    python benchmarks/bench_scale.py [--files 200000] [--dir DIR] [--skip-first-pass]

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
* ``status``: ``syncd status`` (streamed) at N files, and on an empty catalog.

Printed as JSON; nothing asserted (``target_met`` says). Not measured here: the daemon
idle at N files (``bench_daemon.py`` measures 10,000) and the first sync's uploads/s
(``bench_ingest.py``).
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
from syncd.models import PROCESSING_STEPS

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the tree goes (default: system temp)")
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
            say("mirror catch-up (details of every video, once)")
            catch_up = measured([*syncd, str(config), "sync"], env)
            result["mirror_catch_up"] = catch_up
            say("unchanged syncs and status")
            unchanged = [measured([*syncd, str(config), "sync"], env) for _ in range(2)]
            status = measured([*syncd, str(config), "status"], env)
            result["unchanged"] = {"empty": sync_empty, "tree": unchanged, "dry_run": dry}
            result["status"] = {"empty": status_empty, "tree": status}
        best = min(unchanged, key=lambda r: r["cpu_s"])
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
        result["target_met"] = {
            "per_file_cpu_within_3x_walk": ratio <= 3.0,
            "status_small_under_0.3s": status_empty["wall_s"] < 0.3,
            "status_under_3s": status["wall_s"] < 3.0,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    emit(result)


if __name__ == "__main__":
    main()
