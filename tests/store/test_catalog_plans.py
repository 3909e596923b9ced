"""The queries every pass sends find what is open through an index, not by reading every
step row (EXPLAIN QUERY PLAN of the very statements the catalog sends)."""

from __future__ import annotations

from pathlib import Path

from syncd.store.catalog import Catalog


def _plans(catalog: Catalog, call: object) -> list[str]:
    sent: list[str] = []
    catalog.db.conn.set_trace_callback(sent.append)
    try:
        call()  # type: ignore[operator]
    finally:
        catalog.db.conn.set_trace_callback(None)
    selects = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
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
