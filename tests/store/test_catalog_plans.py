"""The queries every pass sends find what is open through an index, not by reading every
step row (EXPLAIN QUERY PLAN of the very statements the catalog sends)."""

from __future__ import annotations

from pathlib import Path

from syncd.models import ContentRecord, LocalFile
from syncd.store.catalog import Catalog
from tests.conftest import at_work
from tests.traced import rows_read


def _sent(catalog: Catalog, call: object) -> list[str]:
    """The statements ``call`` sends, as SQLite's trace gives them."""
    sent: list[str] = []
    catalog.db.conn.set_trace_callback(sent.append)
    try:
        call()  # type: ignore[operator]
    finally:
        catalog.db.conn.set_trace_callback(None)
    return sent


def in_progress_of(catalog: Catalog, steps: tuple[str, ...]) -> list[ContentRecord]:
    """Every content in progress, every page read."""
    return [content for page in catalog.iter_contents_in_progress(steps) for content in page]


def _plans(catalog: Catalog, call: object) -> list[str]:
    sent = _sent(catalog, call)
    # The query itself, not the meta lookups that choose it.
    # (A query that fills a TEMP table to be read in pages counts: its SELECT is the query.)
    selects = [s for s in sent if s.lstrip().upper().startswith(("SELECT", "INSERT INTO TEMP."))
               and "FROM meta" not in s and "FROM temp." not in s]
    assert selects
    queries = [s[s.upper().index("SELECT"):] for s in selects]  # the TEMP table is gone by now
    return [" | ".join(row[3] for row in catalog.db.conn.execute("EXPLAIN QUERY PLAN " + q)) for q in queries]


def test_open_steps_are_an_index_range(tmp_path: Path) -> None:
    steps = ("thumbnail", "transcoding", "hls")
    with Catalog.open(tmp_path / "state") as catalog:
        [unsettled] = _plans(catalog, lambda: at_work(catalog, steps, {}, marks=None))
        [in_progress] = _plans(catalog, lambda: in_progress_of(catalog, steps))
    for plan in (unsettled, in_progress):
        assert "USING INDEX steps_open" in plan, plan
        assert "SCAN steps |" not in plan + " |", plan  # never every step row without an index


def test_with_the_processing_rule_recorded_no_step_row_is_read(tmp_path: Path) -> None:
    steps = ("thumbnail", "transcoding", "hls")
    with Catalog.open(tmp_path / "state") as catalog:
        catalog.set_processing_rule(steps)
        for plan in (*_plans(catalog, lambda: at_work(catalog, steps, {}, marks=None)),
                     *_plans(catalog, lambda: in_progress_of(catalog, steps))):
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
            return (at_work(catalog, steps, {}, marks=None),
                    [c.sha256 for c in in_progress_of(catalog, steps)])

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


MARK_STEPS = ("thumbnail", "transcoding", "hls", "analyse", "search-process")  # Mikshi: ready for a collection


def _never_marked(catalog: Catalog, folder: Path, count: int) -> list[str]:
    """``count`` of our videos, processed but never given the collection pipelines, so never
    ready for a marker (a folder with ``pipelines: []``)."""
    shas = [f"{i:064x}" for i in range(count)]
    catalog.record_scan(folder, [(LocalFile(folder, f"f{i}.mp4", 10, 1, 100 + i), sha)
                                 for i, sha in enumerate(shas)], [], 1.0)
    catalog.link_finished([(sha, f"v{i}", f"f{i}.mp4") for i, sha in enumerate(shas)], MARK_STEPS[:3])
    return shas


def test_never_marked_videos_cost_a_pass_nothing_with_the_mark_rule_recorded(tmp_path: Path) -> None:
    """Videos never ready for a marker were tested one by one on every pass (a step seek
    each); with the rule recorded the question is an empty range of ``contents_to_mark``."""
    costs = []
    for count in (200, 2000):
        with Catalog.open(tmp_path / str(count)) as catalog:
            _never_marked(catalog, tmp_path / "drop", count)
            catalog.set_processing_rule(MARK_STEPS[:3])  # as the engine records both
            catalog.set_mark_rule(MARK_STEPS)
            ask = lambda: at_work(catalog, MARK_STEPS[:3], {}, marks=MARK_STEPS)  # noqa: E731
            assert ask() == set()
            [plan] = _plans(catalog, ask)
            assert "USING INDEX contents_to_mark" in plan, plan
            assert "contents_unmarked" not in plan and "CORRELATED" not in plan, plan
            costs.append(_vm_steps(catalog, ask))
    assert costs[0] == costs[1], costs


def test_the_kept_mark_flag_answers_as_the_step_rows_do(tmp_path: Path) -> None:
    """A video that becomes fully processed is asked about (to be marked), one marked or
    never ready is not; the same answers with and without the kept flag, in both directions."""
    with Catalog.open(tmp_path / "state") as catalog:
        shas = _never_marked(catalog, tmp_path / "drop", 4)

        def with_rows() -> set[str]:
            catalog.db.execute("DELETE FROM meta WHERE key = 'mark_rule'")
            return at_work(catalog, MARK_STEPS[:3], {}, marks=MARK_STEPS)

        def flags() -> set[str]:
            return {r[0] for r in catalog.db.conn.execute("SELECT sha256 FROM contents WHERE mark_ready = 1")}

        def kept() -> set[str]:
            catalog.set_mark_rule(MARK_STEPS)
            answer = at_work(catalog, MARK_STEPS[:3], {}, marks=MARK_STEPS)
            # What the triggers kept is what computing every flag again gives.
            by_triggers = flags()
            catalog.set_mark_rule(("thumbnail",))
            catalog.set_mark_rule(MARK_STEPS)
            assert flags() == by_triggers
            return answer

        assert kept() == with_rows() == set()
        for sha in shas[1:]:  # both collection pipelines finish
            catalog.set_step(sha, "analyse", "done")
            catalog.set_step(sha, "search-process", "done")
        assert kept() == with_rows() == set(shas[1:])
        catalog.set_marked(shas[1], True)
        catalog.set_step(shas[2], "search-process", "failed")  # done, then failed on a retry
        assert kept() == with_rows() == {shas[2], shas[3]}  # 2: its failed step, as before
        assert flags() == {shas[1], shas[3]}  # 1 is ready but marked: not asked about
        with Catalog.open(tmp_path / "state") as fresh:
            fresh.set_mark_rule(("thumbnail",))  # another rule: every flag again
            assert at_work(fresh, MARK_STEPS[:3], {}, marks=("thumbnail",)) == {shas[0], shas[2], shas[3]}
        assert kept() == {shas[2], shas[3]}


def _vm_steps(catalog: Catalog, call: object) -> int:
    """SQLite VM instructions (in hundreds) ``call`` costs: rows read, not time."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    catalog.db.conn.set_progress_handler(tick, 100)
    try:
        call()  # type: ignore[operator]
    finally:
        catalog.db.conn.set_progress_handler(None, 0)
    return steps


def test_a_trashed_files_sidecar_row_is_forgotten_by_its_key(tmp_path: Path) -> None:
    """``Mirror.sidecar_hook`` (the executor trashed or deleted a file) forgets that file's
    sidecar row; it read every row to find it. Now a key lookup per ancestor of the path:
    as many instructions among 4,000 rows as among 200, only that row gone."""
    folder = tmp_path / "drop"
    costs = []
    for count in (200, 4000):
        with Catalog.open(tmp_path / f"state{count}") as catalog:
            for i in range(count):
                catalog.mirror_file_written(folder, f"cam{i % 7}/clip{i:05d}.mp4", f"v{i}", f"{i:064x}", None, 1.0)
            gone = folder / "cam3/clip00010.mp4"
            [plan] = _deletes(catalog, lambda: catalog.mirror_file_forget_path(gone))
            assert "USING INDEX sqlite_autoindex_mirror_files_1 (folder=? AND rel_path=?)" in plan, plan
            costs.append(_vm_steps(catalog, lambda: catalog.mirror_file_forget_path(folder / "cam4/clip00011.mp4")))
            left = {row.path for row in catalog.mirror_files()}
            assert len(left) == count - 2 and gone not in left and folder / "cam4/clip00011.mp4" not in left
    assert costs[1] == costs[0], costs


def _deletes(catalog: Catalog, call: object) -> list[str]:
    sent = _sent(catalog, call)
    deletes = [s for s in sent if s.lstrip().upper().startswith("DELETE")]
    return [" | ".join(row[3] for row in catalog.db.conn.execute("EXPLAIN QUERY PLAN " + s)) for s in deletes]


def _in_progress_cost(tmp_path: Path, done: int, processing: int) -> tuple[list[str], int, int, int]:
    """Contents in progress (their processing steps pending, created after the done ones)
    among ``done`` finished ones: what reading them a page of 100 at a time returns, the
    statements it sends, the rows the largest one returns, and its VM instructions."""
    steps = ("thumbnail", "transcoding", "hls")
    folder = tmp_path / "drop"
    with Catalog.open(tmp_path / f"state-{done}-{processing}") as catalog:
        catalog.set_processing_rule(steps)
        shas = [f"{i:064x}" for i in range(done + processing)]
        catalog.record_scan(folder, [(LocalFile(folder, f"f{i}.mp4", 10 + i, 1, 100 + i), sha)
                                     for i, sha in enumerate(shas)], [], 1.0)
        catalog.link_finished([(sha, f"v{i}", f"f{i}.mp4") for i, sha in enumerate(shas[:done])], steps)
        for i, sha in enumerate(shas[done:], start=done):
            catalog.video_registered(sha, f"v{i}", f"f{i}.mp4")
            catalog.set_step(sha, "thumbnail", "running")
        sent: list[str] = []
        with rows_read(catalog) as rows:
            catalog.db.conn.set_trace_callback(sent.append)
            pages = _vm_steps(catalog, lambda: sent.append(str([c.sha256 for page in catalog.iter_contents_in_progress(
                steps, batch=100) for c in page])))
            catalog.db.conn.set_trace_callback(None)
        found = [c.sha256 for c in in_progress_of(catalog, steps)]
        assert found == shas[done:]
        return found, len([s for s in sent if not s.startswith("[")]), max(rows), pages


def test_the_contents_in_progress_are_read_a_page_at_a_time_whatever_the_library(tmp_path: Path) -> None:
    """Each pass polls the videos still processing (``Engine._refresh``). Their reading now
    costs the same among 2,000 finished contents as among 100, and a page (100 here) of
    records at a time with its steps in one statement: 250 in progress, 6 pages' reads,
    never 250 rows at once and no statement a content (before: a steps query each)."""
    _, few_sent, few_rows, few_vm = _in_progress_cost(tmp_path, 100, 250)
    _, many_sent, many_rows, many_vm = _in_progress_cost(tmp_path, 2000, 250)
    assert (few_sent, few_rows) == (many_sent, many_rows) and many_rows <= 100
    assert few_sent <= 2 * 3 + 6, few_sent  # set-up and clean-up, and per page its contents and their steps
    assert many_vm <= few_vm + 2, (few_vm, many_vm)
