"""``syncd sync`` prints its run's journal: each action once, its last entry, in the order
they ended. Read a batch at a time from an aggregate in SQL, not the run's every entry at
once (a first sync of a million files journals two million)."""

from __future__ import annotations

import random
from pathlib import Path

from syncd.store.catalog import Catalog
from syncd.models import JournalEntry
from tests.traced import rows_read


def last_per_action(entries: list[JournalEntry]) -> list[JournalEntry]:
    """What the lines showed before: the last entry per (action, target), in the order they ended."""
    last: dict[tuple[str, str], JournalEntry] = {}
    for entry in entries:
        last.pop((entry.action, entry.target), None)
        last[(entry.action, entry.target)] = entry
    return list(last.values())


def test_the_runs_journal_lines_are_read_a_batch_at_a_time(tmp_path: Path) -> None:
    rng = random.Random(15)
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.log("upload", "before-the-run", "done")
        first = catalog.last_journal_id()
        for i in range(1200):  # uploads, retried ones, pipelines still running, a deletion
            target = f"drop/clip{rng.randrange(900):04d}.mp4"
            action = rng.choice(["upload", "upload", "pipeline", "delete_remote"])
            catalog.log(action, target, "started")
            if rng.random() < 0.8:
                catalog.log(action, target, rng.choice(["done", "failed"]), "why")
        expected = last_per_action(catalog.journal(10_000, after_id=first))
        with rows_read(catalog) as read:
            batches = list(catalog.iter_final_journal(first, batch=100))
        assert [e for batch in batches for e in batch] == expected
        assert "before-the-run" not in {e.target for batch in batches for e in batch}
        assert len(expected) > 500 and max(read) == 100  # a batch a statement, never the run
        assert len(read) == len(expected) // 100 + 1 + (len(expected) % 100 > 0)
        assert catalog.db.conn.execute("SELECT count(*) FROM sqlite_temp_master").fetchone()[0] == 0
