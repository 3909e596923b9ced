"""The queries every pass sends find what is open through an index, not by reading every
step row (EXPLAIN QUERY PLAN of the very statements the catalog sends)."""

from __future__ import annotations

from pathlib import Path

from syncd.models import LocalFile
from syncd.store.catalog import Catalog


def _plans(catalog: Catalog, call: object) -> list[str]:
    sent: list[str] = []
    catalog.db.conn.set_trace_callback(sent.append)
    try:
        call()  # type: ignore[operator]
    finally:
        catalog.db.conn.set_trace_callback(None)
    # The query itself, not the meta lookups that choose it.
    selects = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "FROM meta" not in s]
    assert selects
    return [" | ".join(row[3] for row in catalog.db.conn.execute("EXPLAIN QUERY PLAN " + s)) for s in selects]


def test_open_steps_are_an_index_range(tmp_path: Path) -> None:
    steps = ("thumbnail", "transcoding", "hls")
    with Catalog.open(tmp_path / "state") as catalog:
        [unsettled] = _plans(catalog, lambda: catalog.unsettled_shas(steps, {}, marks=None))
        [in_progress] = _plans(catalog, lambda: catalog.contents_in_progress(steps))
    for plan in (unsettled, in_progress):
        assert "USING INDEX steps_open" in plan, plan
        assert "SCAN steps |" not in plan + " |", plan  # never every step row without an index


def test_with_the_processing_rule_recorded_no_step_row_is_read(tmp_path: Path) -> None:
    steps = ("thumbnail", "transcoding", "hls")
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.set_processing_rule(steps)
        for plan in (*_plans(catalog, lambda: catalog.unsettled_shas(steps, {}, marks=None)),
                     *_plans(catalog, lambda: catalog.contents_in_progress(steps))):
            # Step rows only through steps_open (empty at rest), never all of them.
            assert "SCAN steps |" not in plan + " |" and "SCAN steps USING INDEX sqlite_" not in plan, plan
            assert "USING INDEX contents_unprocessed" in plan, plan


def test_the_kept_processing_flag_answers_as_the_step_rows_do(tmp_path: Path) -> None:
    """Contents in every state a life gives them, asked with and without the kept flag."""
    steps = ("thumbnail", "transcoding", "hls")
    folder = tmp_path / "drop"
    shas = [f"{i:064x}" for i in range(8)]
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.record_scan(folder, [(LocalFile(folder, f"f{i}.mp4", 10 + i, 1, 100 + i), sha)
                                     for i, sha in enumerate(shas)], [], 1.0)
        for i, sha in enumerate(shas[1:], start=1):
            catalog.video_registered(sha, f"v{i}", f"f{i}.mp4")
        for sha in shas[2:]:  # 1: uploaded, no step row at all
            for name in steps:
                catalog.set_step(sha, name, "pending")
        for sha in shas[3:]:
            catalog.set_step(sha, "thumbnail", "done")
        for sha in shas[4:]:
            for name in steps:
                catalog.set_step(sha, name, "done")
        catalog.set_step(shas[5], "analyse", "running")  # a pipeline under way
        catalog.set_step(shas[6], "hls", "failed")  # done, then failed on a retry
        catalog.step_attempted(shas[7], "search-process", 10.0)

        def answers() -> tuple[set[str], list[str]]:
            return (catalog.unsettled_shas(steps, {}, marks=None),
                    [c.sha256 for c in catalog.contents_in_progress(steps)])

        from_rows = answers()
        catalog.set_processing_rule(steps)  # computes every content's flag
        assert answers() == from_rows
        assert from_rows[1] == [shas[1], shas[2], shas[3], shas[5], shas[6], shas[7]]
        # Kept by the triggers from here on, in both directions.
        catalog.set_step(shas[3], "transcoding", "done")
        catalog.set_step(shas[3], "hls", "done")
        catalog.set_step(shas[4], "thumbnail", "failed")
        kept = answers()
        with Catalog.open(tmp_path / "state") as fresh:
            fresh.set_processing_rule(("thumbnail",))  # another rule: every flag again
            fresh.set_processing_rule(steps)
        assert answers() == kept
        assert shas[3] not in kept[1] and shas[4] in kept[1]
