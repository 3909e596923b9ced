"""The engine's scan of an unchanged, already-catalogued folder against a bare walk.

    python benchmarks/bench_observe.py --files 200000

Builds a tree of N small files (1,000 per subfolder), records every file in a fresh
catalog as hashed and present (a made-up sha256 per file: nothing is read), then, in
this one process and in alternation, measures CPU seconds (``time.process_time``) of:

* ``walk``: a bare ``os.scandir`` + ``stat`` walk of the tree (the reference);
* ``observe``: ``Engine.observe()`` of the same tree (dry run: no remote is called):
  the folder's rows read in path order and merged with the walk with its rules (settle
  times, ignored names, symlinks, the folder guard), and the catalog's "unchanged"
  write;
* ``event``: what the daemon's pass observes for one new file among them (a file event:
  ``observe(changed=...)`` walks that path and reads its rows only), best of
  ``--repeat``, each with another new file, and how many rows it read.

Each is run ``--repeat`` times; the best is reported (other sessions share the
machine) with the ratio per file. JSON on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, machine

from syncd.config import load_config
from syncd.models import LocalFile
from syncd.remote import open_remote
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions

PER_DIR = 1000


def walk(path: str) -> int:
    n = 0
    stack = [path]
    while stack:
        for entry in os.scandir(stack.pop()):
            entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                n += 1
    return n


def build(drop: Path, files: int) -> list[LocalFile]:
    out = []
    for i in range(files):
        folder = drop / f"cam{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"clip{i:07d}.mp4"
        path.write_bytes(f"clip {i}\n".encode())
        st = path.stat()
        out.append(LocalFile(drop, f"{folder.name}/{path.name}", st.st_size, st.st_mtime_ns, st.st_ino))
    return out


def cpu(fn: Any) -> tuple[float, Any]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "observe", "machine": machine(), "files": args.files}
    with tempfile.TemporaryDirectory(prefix="bench-observe-") as tmp:
        root = Path(tmp)
        drop = root / "drop"
        say(f"building {args.files} files")
        files = build(drop, args.files)
        config_path = root / "config.yaml"
        config_path.write_text(
            f"remote:\n  base_url: http://127.0.0.1:9\n  api_key_env: SYNCD_BENCH_KEY\n"
            f"state_dir: {root / 'state'}\nfolders:\n  - path: {drop}\n    collections: none\n"
            "    pipelines: []\nupload:\n  settle_seconds: 0\n")
        config = load_config(config_path, {"SYNCD_BENCH_KEY": "sk_bench_observe_0123456789", "HOME": tmp})
        catalog = Catalog.open(config.state_dir)
        say("recording them in the catalog")
        catalog.record_scan(drop, [(f, f"{i:064x}") for i, f in enumerate(files)], [], time.time())
        del files
        engine = Engine(EngineOptions.from_config(config), catalog, open_remote(config.remote), dry_run=True)
        engine.observe()  # warm: the page cache, the catalog's pages
        walks, observes = [], []
        for _ in range(args.repeat):
            seconds, n = cpu(lambda: walk(str(drop)))
            assert n == args.files, n
            walks.append(seconds)
            seconds, (scans, problems, hashed) = cpu(engine.observe)
            assert scans[0].ok and not problems and not hashed and not scans[0].files, (problems, hashed)
            assert scans[0].as_recorded == args.files
            observes.append(seconds)
        events, rows_read = [], []
        real_rows = catalog.recorded_in_order

        def counted_rows(*a: Any, **k: Any) -> Any:
            for row in real_rows(*a, **k):
                rows_read[-1] += 1
                yield row

        catalog.recorded_in_order = counted_rows  # type: ignore[method-assign]
        for i in range(args.repeat):
            rel = f"cam0000/new{i}.mp4"
            (drop / rel).write_bytes(b"a new clip\n")
            rows_read.append(0)
            seconds, (scans, problems, hashed) = cpu(lambda: engine.observe(changed={drop: {rel}}))
            assert scans[0].ok and hashed == 1 and [f.rel_path for f in scans[0].files] == [rel], scans[0]
            events.append(seconds)
        catalog.close()
        best_walk, best_observe = min(walks), min(observes)
        result.update({
            "walk_cpu_s": [round(s, 3) for s in walks],
            "observe_cpu_s": [round(s, 3) for s in observes],
            "walk_us_per_file": round(best_walk / args.files * 1e6, 2),
            "observe_us_per_file": round(best_observe / args.files * 1e6, 2),
            "ratio": round(best_observe / best_walk, 2),
            "target_ratio": 3.0,
            "event_observe_cpu_s": [round(s, 4) for s in events],
            "event_rows_read": rows_read,
        })
    emit(result)


if __name__ == "__main__":
    main()
