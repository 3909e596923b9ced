"""A pass over a synced tree whose folder has ``collections: subfolder`` (the default
config): what the planner is handed, by the code of two checkouts.

    python benchmarks/bench_collections.py --keep DIR [--before REPO] [--after REPO] [--repeat 2]
        [--scenario unchanged|to_mark|processing]

Starts from a ``bench_scale.py --keep DIR`` state (``DIR/synced``: N files in subfolders
of 1,000, each a finished video) and makes every subfolder a collection holding its
files (catalog rows: the collection, the memberships, the pipelines done and the
instance marker set; no remote request, as ``bench_scale``'s set-up). Then ``syncd sync
--dry-run`` (the complete listing not due) ``--repeat`` times with each checkout's code,
the older first (a newer catalog is refused by older code), each on its own copy of the
state, after one real pass in process with the same code (the sync that made the state;
its mirror deferred): CPU seconds, wall, peak RSS. Prints JSON.

Scenarios: ``unchanged`` (nothing to do); ``to_mark``: after the set-up pass, every video
waits for this instance's marker (``contents.marked = 0``), as each does in the pass
after a first sync in which its processing finished: every content is at work at once;
``processing``: every video processing on the remote, for days (the emulator's records
and the catalog's steps set so before the set-up pass), as in the passes right after a
first sync: each pass polls the videos' states (every one before round 10; since, at most
1,000, those asked longest ago first), and none changes."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import yaml
from _common import REPO, emit, machine
from bench_scale import KEY, EmulatorProcess, copy_state, measured, write_config

from syncd.remote.facts import MIKSHI_PIPELINES, MIKSHI_PROCESSING_STEPS
from syncd.store.catalog import CATALOG_FILE


SETTLE = """
import sys
from pathlib import Path
from syncd.config import load_config
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions
import os
import time
config = load_config(Path(sys.argv[1]), os.environ)
with Catalog.open(config.state_dir) as catalog, MikshiClient(config.remote.base_url, os.environ["SYNCD_BENCH_KEY"]) as remote:
    # bench_scale's rebind and listing_just_read, with this checkout's catalog code.
    bound = catalog.bound_remote()
    if bound is not None:
        catalog.bind_remote(f"{bound.rsplit(' at ', 1)[0]} at {config.remote.base_url}", rebind=True)
    catalog.set_meta("adopt_remote", "0")
    catalog.listing_read(time.time())
    report = Engine(EngineOptions.from_config(config), catalog, remote).run_pass(with_listing=False,
                                                                                defer_mirror=lambda: True)
    assert report.plan.actions == [], report.plan.actions[:5]
"""


def collections_everywhere(config: Path) -> int:
    """Every first-level subfolder a collection holding its files; the number of files."""
    data = yaml.safe_load(config.read_text())
    data["folders"][0].update(collections="subfolder", pipelines=None)
    config.write_text(yaml.safe_dump(data))
    # Plain sqlite3, not Catalog.open: that would migrate the catalog to this checkout's
    # schema, which older code refuses to open.
    with closing(sqlite3.connect(Path(data["state_dir"]) / CATALOG_FILE)) as conn:
        rows = conn.execute("SELECT rel_path, sha256 FROM files WHERE sha256 IS NOT NULL").fetchall()
        now = time.time()
        with conn:
            conn.executemany("INSERT OR REPLACE INTO steps (sha256, name, state, percentage, updated_at) "
                             "VALUES (?, ?, 'done', 100, ?)",
                             [(sha, step, now) for _, sha in rows for step in MIKSHI_PIPELINES])
            names = sorted({rel.split("/")[0] for rel, _ in rows})
            conn.executemany("INSERT OR REPLACE INTO collections (name, collection_id) VALUES (?, ?)",
                             [(n, f"collection-{n}") for n in names])
            conn.executemany("INSERT OR IGNORE INTO memberships (collection, sha256) VALUES (?, ?)",
                             [(rel.split("/")[0], sha) for rel, sha in rows])
            conn.execute("UPDATE contents SET owned = 1, marked = 1")
        assert set(MIKSHI_PROCESSING_STEPS)  # linked with them by bench_scale's set-up
        return len(rows)


def unmarked(config: Path) -> None:
    """Every video waits for this instance's marker (plain sqlite3, as above)."""
    data = yaml.safe_load(config.read_text())
    with closing(sqlite3.connect(Path(data["state_dir"]) / CATALOG_FILE)) as conn, conn:
        conn.execute("UPDATE contents SET marked = 0")


def processing(root: Path) -> None:
    """Every video processing on the remote for days, and so in the catalog's steps (plain
    sqlite3 on the emulator's records, before it starts, and on the catalog)."""
    with closing(sqlite3.connect(root / "emulator" / "emulator.sqlite3")) as conn, conn:
        conn.execute("UPDATE videos SET processing_started_at = ?, processing_seconds = ?", [time.time(), 1e7])
    with closing(sqlite3.connect(next(root.glob(f"state-*/{CATALOG_FILE}")))) as conn, conn:
        conn.execute(f"UPDATE steps SET state = 'running', percentage = 1 WHERE name IN "
                     f"({', '.join('?' for _ in MIKSHI_PROCESSING_STEPS)})", MIKSHI_PROCESSING_STEPS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, required=True, help="a bench_scale.py --keep directory")
    parser.add_argument("--before", type=Path, default=None, help="checkout with the older code (default: none)")
    parser.add_argument("--after", type=Path, default=REPO, help="checkout with the newer code (default: this one)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scenario", choices=("unchanged", "to_mark", "processing"), default="unchanged")
    args = parser.parse_args()
    result: dict[str, object] = {"benchmark": "bench_collections", "scenario": args.scenario, "machine": machine(),
                                 "runs": {}}
    drop = args.keep / "drop"
    for label, checkout in (("before", args.before), ("after", args.after)):
        if checkout is None:
            continue
        root = Path(tempfile.mkdtemp(prefix=f"collections-{label}-", dir=args.keep))
        try:
            copy_state(args.keep / "synced", root)
            if args.scenario == "processing":
                processing(root)
            env = {**os.environ, "SYNCD_BENCH_KEY": KEY, "PYTHONPATH": str(checkout.resolve())}
            with EmulatorProcess(root / "emulator", env) as emu:
                config = write_config(root, drop, emu.base_url, "tree")
                files = collections_everywhere(config)
                # The sync that made the state: one real pass with the checkout's code (a dry
                # run records nothing), its mirror left for later (not what is measured).
                # Run from the checkout: `python -m` and `-c` import from the working directory first.
                settle = measured([sys.executable, "-c", SETTLE, str(config)], env, cwd=checkout)
                if settle["exit"] != 0:
                    raise SystemExit(f"the set-up pass failed: {settle}")
                if args.scenario == "to_mark":
                    unmarked(config)
                runs = [measured([sys.executable, "-m", "syncd", "-c", str(config), "sync", "--dry-run"], env,
                                 cwd=checkout)
                        for _ in range(args.repeat)]
            result["files"] = files
            result["runs"][label] = {"checkout": str(checkout), "sync_dry_run": runs}  # type: ignore[index]
        finally:
            shutil.rmtree(root, ignore_errors=True)
    emit(result)


if __name__ == "__main__":
    main()
