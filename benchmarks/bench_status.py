"""``syncd status`` over a large catalog (issue 15: under 3 s at 1,000,000 files).

    python benchmarks/bench_status.py --files 1000000

Builds a catalog through ``Catalog`` methods (no tree on disk: ``status`` no longer walks
the folders, it checks only the folder guard and shows the engine's last scan summary):
N files in one folder, all but ``--pending`` of them uploaded with their processing
steps done; records the folder's done rule as the engine does at its first pass (which
is also what a catalog migrated from schema 7 pays once: timed here) and a scan
summary. Then measures real ``python -m syncd status`` subprocesses (wall, CPU from their
own rusage, peak RSS): the text status, ``status --json`` (every file, streamed), and,
for reference in the same run, the text status without a recorded rule (SQL tests every
file, as before this round, minus the folder walk). JSON on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, emit, machine
from bench_scale import measured  # its peak RSS its own, not this process's (a spawner)

from syncd.config import load_config
from syncd.models import LocalFile
from syncd.remote.facts import MIKSHI_PROCESSING_STEPS, backend_facts
from syncd.store.catalog import Catalog, DoneRule, ScanSummary
from syncd.sync.report import done_rules

BATCH = 50_000
KEY = "sk_bench_status_0123456789"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def build(catalog: Catalog, drop: Path, files: int, pending: int) -> None:
    now = time.time()
    for start in range(0, files, BATCH):
        batch = [(LocalFile(drop, f"cam{i // 1000:04d}/clip{i:07d}.mp4", 1000 + i % 977, 1_700_000_000_000_000_000 + i,
                            i + 1), f"{i:064x}") for i in range(start, min(files, start + BATCH))]
        catalog.record_seen(drop, batch, now)
        finished = [(sha, f"video-{i:08d}", f.rel_path) for i, (f, sha) in enumerate(batch, start) if i >= pending]
        catalog.link_finished(finished, MIKSHI_PROCESSING_STEPS)
        say(f"{start + len(batch)} files catalogued")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=100, help="files not uploaded yet (listed by status)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "status", "machine": machine(), "files": args.files,
                              "pending": args.pending}
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        root = Path(tmp)
        drop = root / "drop"
        drop.mkdir()
        config_path = root / "config.yaml"
        config_path.write_text(
            f"remote:\n  base_url: http://127.0.0.1:9\n  api_key_env: SYNCD_BENCH_KEY\n"
            f"state_dir: {root / 'state'}\nfolders:\n  - path: {drop}\n    collections: none\n"
            "    pipelines: []\nupload:\n  settle_seconds: 0\nlog_level: warning\n")
        env = {**os.environ, "SYNCD_BENCH_KEY": KEY, "PYTHONPATH": str(REPO)}
        config = load_config(config_path, env)
        start = time.monotonic()
        with Catalog.open(config.state_dir) as catalog:
            build(catalog, drop, args.files, args.pending)
            result["build_s"] = round(time.monotonic() - start, 1)
            rules = done_rules(config.folders, backend_facts(config.remote.backend))
            start = time.monotonic()
            catalog.set_done_rules(rules)  # what the engine's first pass does (and a migrated catalog pays once)
            result["done_state_computed_s"] = round(time.monotonic() - start, 2)
            catalog.record_scan_summary(ScanSummary(drop, time.time(), empty=0, settling=0))
        result["catalog_mb"] = round(sum(p.stat().st_size for p in config.state_dir.iterdir()) / 1e6, 1)
        status = [sys.executable, "-m", "syncd", "-c", str(config_path), "status"]
        say("syncd status")
        runs = [measured(status, env) for _ in range(args.repeat)]
        result["status"] = {"runs": [{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")} for r in runs],
                            "best_wall_s": min(r["wall_s"] for r in runs), "best_cpu_s": min(r["cpu_s"] for r in runs),
                            "output_head": runs[0]["output_head"], "target_wall_s": 3.0}
        say("syncd status --json")
        json_run = measured([*status, "--json"], env)
        result["status_json"] = {k: json_run[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "output_bytes")}
        # Reference: no recorded rule for this config (another rule recorded instead), so
        # status tests every file in SQL, as before this round (minus the folder walk).
        with Catalog.open(config.state_dir) as catalog:
            catalog.set_done_rules([DoneRule(drop, ("not-a-step",), False)])
        say("syncd status without a stored done state")
        old = measured(status, env)
        result["status_without_stored_done_state"] = {k: old[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")}
    emit(result)


if __name__ == "__main__":
    main()
