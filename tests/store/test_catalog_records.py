"""Every way the catalog reads a content carries all its fields (a batched read once left out
the ownership columns, so a marked video was planned for marking on every pass)."""

from __future__ import annotations

from pathlib import Path

from syncd.store.catalog import Catalog
from tests.conftest import at_work
from syncd.models import LocalFile


def test_contents_and_present_files_carry_owned_and_marked(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.record_scan(folder, [(LocalFile(folder, "a.mp4", 10, 1, 1), "a" * 64)], [], 1.0)
        catalog.video_registered("a" * 64, "v1", "a.mp4", owned=False)
        catalog.set_marked("a" * 64, True)
        [content] = catalog.contents()
        assert (content.owned, content.marked) == (False, True)
        [(_, present)] = list(catalog.iter_present())
        assert present is not None and (present.owned, present.marked) == (False, True)
        [in_progress] = [c for page in catalog.iter_contents_in_progress(("transcoding",)) for c in page]
        assert (in_progress.owned, in_progress.marked) == (False, True)


def test_what_only_status_shows_is_not_a_change(tmp_path: Path) -> None:
    """The listing's time and the other instances' summary are written every few minutes
    by an idle daemon; a change would make it count every status and rerun the mirror."""
    with Catalog.open(tmp_path / "state") as catalog:
        before = catalog.changes
        catalog.listing_read(1.0)
        catalog.set_info("other_instances", "3 1700000000 laptop")
        catalog.set_info("other_instances", "3 1700000300 laptop")
        assert catalog.changes == before
        assert catalog.get_meta("other_instances") == "3 1700000300 laptop"
        catalog.set_meta("blocked", "a line")
        assert catalog.changes != before


def test_a_library_at_rest_is_answered_from_empty_index_ranges(tmp_path: Path) -> None:
    """What every pass asks (``Catalog.fill_slices``, ``changed_shas``) reads no content,
    file or step row one by one when nothing is in play: each part is a range of a partial
    index (counted in the query plan, not timed). An unmarked video of ours is still found."""
    folder = tmp_path / "drop"
    shas = [f"{i:064x}" for i in range(3)]
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.record_scan(folder, [(LocalFile(folder, f"f{i}.mp4", 10 + i, 1, 100 + i), sha)
                                     for i, sha in enumerate(shas)], [], 1.0)
        catalog.link_finished([(sha, f"v{i}", f"f{i}.mp4") for i, sha in enumerate(shas)], ("hls",))
        catalog.set_processing_rule(("hls",))
        assert at_work(catalog, ("hls",), {}, marks=("hls",)) == set(shas)  # ready, not marked
        catalog.set_marked(shas[0], True)
        catalog.set_marked(shas[1], True)
        assert at_work(catalog, ("hls",), {}, marks=("hls",)) == {shas[2]}
        catalog.set_marked(shas[2], True)
        sent: list[str] = []
        catalog.db.conn.set_trace_callback(sent.append)
        assert at_work(catalog, ("hls",), {}, marks=("hls",)) == set() == catalog.changed_shas()
        catalog.db.conn.set_trace_callback(None)
        queries = [s[s.upper().index("SELECT"):] for s in sent if "UNION" in s]
        assert len(queries) == 2, sent
        for query in queries:
            plan = [row[-1] for row in catalog.db.conn.execute("EXPLAIN QUERY PLAN " + query)]
            scans = [step for step in plan if step.startswith("SCAN") and not step.startswith(
                ("SCAN superseded", "SCAN uploads", "SCAN plan_dirty"))]  # tables empty at rest
            assert all("INDEX" in step and "autoindex" not in step for step in scans), plan
