"""Videos never ready for a marker: what a pass pays for them (issue 15, round 5).

    python benchmarks/bench_marks.py [--contents 1000000]

A catalog of N contents of ours, uploaded and processed but never given the collection
pipelines (a Mikshi folder with ``pipelines: []``): a marker needs a fully processed
video, so none of them is ever marked. Every pass asks ``Catalog.fill_slices`` which
contents could have something to do, markers included. Measured in the same run: the
question with the mark rule recorded (``contents.mark_ready``, kept by triggers: what the
engine does) and without it (the step rows tested per content, as before). Figures:
SQLite virtual-machine instructions (counted through the progress handler: rows visited)
and the best of three wall times. JSON on stdout.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, machine

from syncd.remote.facts import MIKSHI_PIPELINES, MIKSHI_PROCESSING_STEPS
from syncd.store.catalog import Catalog

BATCH = 100_000
MARK_STEPS = tuple(dict.fromkeys((*MIKSHI_PROCESSING_STEPS, *MIKSHI_PIPELINES)))


def fill(catalog: Catalog, contents: int) -> None:
    """N uploaded contents with their processing steps done, straight into the tables."""
    conn = catalog.db.conn
    for first in range(0, contents, BATCH):
        batch = range(first, min(contents, first + BATCH))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO contents (sha256, size, state, video_id, created_at, updated_at) "
                         "VALUES (?, 1, 'uploaded', ?, 0, 0)", ((f"{i:064x}", f"v{i}") for i in batch))
        conn.executemany("INSERT INTO steps (sha256, name, state, updated_at) VALUES (?, ?, 'done', 0)",
                         ((f"{i:064x}", s) for i in batch for s in MIKSHI_PROCESSING_STEPS))
        conn.execute("COMMIT")


def ask(catalog: Catalog) -> dict[str, Any]:
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    best = float("inf")
    for _ in range(3):
        counted[0] = 0
        catalog.db.conn.set_progress_handler(tick, 1)
        start = time.perf_counter()
        catalog.fill_slices(MIKSHI_PROCESSING_STEPS, {}, marks=MARK_STEPS, every=True)
        found = catalog.slice_after("", 1 << 30)
        best = min(best, time.perf_counter() - start)
        catalog.db.conn.set_progress_handler(None, 1)
    return {"unsettled": len(found), "vm_instructions": counted[0], "seconds": round(best, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contents", type=int, default=1_000_000)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "marks", "machine": machine(), "contents": args.contents}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-marks-") as tmp, Catalog.open(Path(tmp)) as catalog:
        catalog.set_processing_rule(MIKSHI_PROCESSING_STEPS)
        start = time.monotonic()
        fill(catalog, args.contents)
        result["fill_s"] = round(time.monotonic() - start, 1)
        result["without_rule"] = ask(catalog)  # the step rows, per content
        start = time.monotonic()
        catalog.set_mark_rule(MARK_STEPS)  # what a migrated catalog pays once
        result["set_mark_rule_s"] = round(time.monotonic() - start, 1)
        result["with_rule"] = ask(catalog)
    emit(result)


if __name__ == "__main__":
    main()
