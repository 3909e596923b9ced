"""The daemon at scale (issue 15): its work in proportion to change, counted, never timed.

The daemon runs in this process (a worker thread, short configured timings) against the
emulator, over a tree reached "synced" cheaply (``tests.sync.test_scale.synced_tree``);
SQL statements are counted through SQLite's trace callback, walks by wrapping the
engine's ``scan_folder``, requests in the emulator's log. Each test runs at two sizes
and asserts the counts do not grow with the library.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from syncd.config import Config, load_config
from syncd.store.catalog import Catalog
from syncd.emulator.mikshi import Emulator
from syncd.models import FolderScan
from syncd.mirror.mirror import Mirror
from syncd.service import daemon as daemon_module
from syncd.service.daemon import Daemon
from syncd.sync import engine as engine_module
from syncd.sync.engine import PassReport
from tests.conftest import KEY, admin_videos, clear_requests, wait_for
from tests.sync.test_scale import synced_tree

LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")  # a quoted string or a number in expanded SQL


class Counted:
    """A ``Daemon`` in a thread; per pass: its SQL statements, the folders it walked, its actions."""

    def __init__(self, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
        self.daemon = Daemon(config)
        self.statements: Counter[str] = Counter()
        self.walked: list[Path] = []
        self.targets: list[tuple[str | None, int]] = []  # per walk: its target path (None: all), rows read
        self.passes: list[dict[str, Any]] = []  # one per pass once counting: statements, walked, actions
        self.counting = threading.Event()
        self._lock = threading.Lock()
        real_scan = engine_module.scan_changes

        def scan_changes(folder: Path, rules: Any, now: float, settle_for: Any, rows: Iterable[Any],
                         target: str | None = None, **batches: Any) -> FolderScan:
            self.walked.append(folder)
            read = [0]

            def counted_rows() -> Iterator[Any]:
                for row in rows:
                    read[0] += 1
                    yield row

            scan = real_scan(folder, rules, now, settle_for, counted_rows(), target, **batches)
            self.targets.append((target, read[0]))
            return scan

        monkeypatch.setattr(engine_module, "scan_changes", scan_changes)
        after_pass = self.daemon._after_pass

        def counted(report: PassReport, *args: Any, **kwargs: Any) -> None:
            after_pass(report, *args, **kwargs)
            with self._lock:
                if self.counting.is_set():
                    self.passes.append({
                        "statements": sum(self.statements.values()), "by_kind": +self.statements,
                        "walked": list(self.walked), "targets": list(self.targets),
                        "actions": [type(a).__name__ for a in report.plan.actions],
                        "mirror_runs": self.full_reads["mirror run"],  # so far, this pass's included
                    })
                self.statements.clear()
                self.walked.clear()
                self.targets.clear()

        self.daemon._after_pass = counted  # type: ignore[method-assign]
        # Status counts and mirror runs: each reads every file, so an idle pass must make none.
        self.full_reads: Counter[str] = Counter()
        real_overview, real_mirror = daemon_module.status_overview, Mirror.run

        def overview(*args: Any, **kwargs: Any) -> Any:
            self.full_reads["status counts"] += self.counting.is_set()
            return real_overview(*args, **kwargs)

        def mirror_run(mirror: Mirror, *args: Any, **kwargs: Any) -> Any:
            self.full_reads["mirror run"] += self.counting.is_set()
            return real_mirror(mirror, *args, **kwargs)

        monkeypatch.setattr(daemon_module, "status_overview", overview)
        monkeypatch.setattr(Mirror, "run", mirror_run)
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"install_signals": False}, daemon=True)

    def __enter__(self) -> Counted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.request_stop()
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert not self.daemon.crashed

    def start_counting(self) -> None:
        """From the next pass on (the start-up pass walks everything and checks the mirror)."""
        wait_for(lambda: self.daemon.passes >= 1, 120, "the start-up pass")
        # The process's check of every sidecar stops for the daemon's other work (a poll
        # due, under load) and goes on in later passes: those are start-up too.
        def checked() -> bool:
            engine = self.daemon._engine
            return engine is not None and engine.mirror._sweep is not None and engine.mirror._sweep.done
        wait_for(checked, 120, "the start-up check of every sidecar")
        catalog = self.daemon._catalog
        assert catalog is not None
        with self._lock:
            catalog.db.conn.set_trace_callback(lambda sql: self.statements.update([statement_kind(sql)]))
            self.statements.clear()
            self.walked.clear()
            self.targets.clear()
            self.counting.set()


def statement_kind(sql: str) -> str:
    """A statement without its values (the trace callback gives them expanded): the same
    query at another time or for another row counts as the same statement."""
    return " ".join(LITERAL.sub("?", sql).split())[:80]


def config_for(tmp_path: Path, emu: Emulator, admin: httpx.Client, files: int, **schedule: str) -> Config:
    """``files`` synced files in ``drop``, an empty watched folder ``other``, short timings."""
    config = synced_tree(tmp_path, emu, admin, files)
    assert config.source is not None
    data = yaml.safe_load(config.source.read_text())
    other = tmp_path / "other"
    other.mkdir()
    data["folders"].append({"path": str(other), "collections": "none", "pipelines": []})
    data["upload"]["settle_seconds"] = "200ms"
    data["schedule"] = {"rescan": "10m", "remote_poll": "10m", **schedule}
    config.source.write_text(yaml.safe_dump(data))
    return load_config(config.source, {"SYNCD_TEST_KEY": KEY})


def listings(admin: httpx.Client) -> list[str]:
    return [r["path"] for r in admin.get("/requests").json() if "/videos/list" in r["path"]]


def idle_run(tmp_path: Path, emu: Emulator, admin: httpx.Client, files: int,
             monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    config = config_for(tmp_path, emu, admin, files, remote_poll="500ms", rescan="1500ms")
    monkeypatch.setattr(engine_module, "NOTE_EVERY", 1.0)  # the instance note, every 5 min: every pass here
    with Counted(config, monkeypatch) as counted:
        counted.start_counting()
        clear_requests(admin)
        wait_for(lambda: len(counted.passes) >= 8 and any(p["walked"] for p in counted.passes), 120,
                 "eight polls and a rescan")
        assert listings(admin) == []  # the complete listing waits for schedule.deletion_check (1 h)
        assert counted.full_reads == {"status counts": 0, "mirror run": 0}, counted.full_reads
        return list(counted.passes)


def test_an_idle_daemon_does_work_that_does_not_grow_with_the_library(tmp_path: Path, emu: Emulator,
                                                                      admin: httpx.Client,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls and rescans of a settled tree, writing the instance note each time: no listing
    request (the deletion check is an hour away), no action, no status count or mirror run
    (each reads every file), and as many SQL statements a pass at 600 files as at 150."""
    few = idle_run(tmp_path / "few", emu, admin, 150, monkeypatch)
    many = idle_run(tmp_path / "many", emu, admin, 600, monkeypatch)
    for passes in (few, many):
        assert all(p["actions"] == [] for p in passes), passes
        # A rescan walks both folders; a poll walks none.
        assert {len(p["walked"]) for p in passes} <= {0, 2}, [p["walked"] for p in passes]
    # Per statement, the most any one pass sent. Which passes coincide (a rescan with a
    # note, say) is timing, so whole passes are not compared; a per-file query would show
    # as a statement sent more often at 600 files.
    def most_per_statement(passes: list[dict[str, Any]]) -> Counter[str]:
        most: Counter[str] = Counter()
        for p in passes:
            most |= p["by_kind"]
        return most

    assert not most_per_statement(many) - most_per_statement(few), (
        most_per_statement(many) - most_per_statement(few))
    worst = max(many, key=lambda p: p["statements"])
    assert worst["statements"] < 60, worst["by_kind"].most_common(5)


def change_run(tmp_path: Path, emu: Emulator, admin: httpx.Client, files: int,
               monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    config = config_for(tmp_path, emu, admin, files)
    before = {v["video_id"] for v in admin_videos(admin)}
    with Counted(config, monkeypatch) as counted:
        counted.start_counting()
        clear_requests(admin)
        (tmp_path / "other" / "new.mp4").write_bytes(b"one new clip among many\n")
        wait_for(lambda: any("Upload" in p["actions"] for p in counted.passes), 60, "the upload")
        new = [v["name"] for v in admin_videos(admin) if v["video_id"] not in before]
        assert new == ["new.mp4"]
        starts = [r for r in admin.get("/requests").json() if r["path"].endswith(("/multipart/initiate", "/upload"))]
        assert len(starts) == 1, starts  # exactly that file
        upload = next(p for p in counted.passes if "Upload" in p["actions"])
        assert upload["actions"] == ["Upload"]
        assert upload["walked"] == [tmp_path / "other"]  # not the folder of many files
        return upload


def test_one_new_file_walks_its_folder_only_and_costs_the_same_sql_at_any_size(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    few = change_run(tmp_path / "few", emu, admin, 150, monkeypatch)
    many = change_run(tmp_path / "many", emu, admin, 600, monkeypatch)
    assert many["statements"] <= few["statements"], many["by_kind"] - few["by_kind"]


def test_a_new_clip_costs_one_mirror_run_and_a_file_meanwhile_does_not_wait_for_it(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mirror run reads every done file and video (~33 CPU-s at 100,000). The pass that
    uploads a new clip leaves it for later while the clip's video processes, so a second
    clip written meanwhile is uploaded by a pass of its own, and one run, once both are
    processed, writes both clips' sidecars."""
    config = config_for(tmp_path, emu, admin, 300)
    other = tmp_path / "other"
    with Counted(config, monkeypatch) as counted:
        counted.start_counting()
        (other / "one.mp4").write_bytes(b"a new clip\n")
        wait_for(lambda: any("Upload" in p["actions"] for p in counted.passes), 60, "the first upload")
        (other / "two.mp4").write_bytes(b"another new clip, while the first one processes\n")
        wait_for(lambda: all((other / f"{n}.mp4.syncd.json").exists() for n in ("one", "two")), 60,
                 "both clips' sidecars")
        with counted._lock:
            passes = list(counted.passes)
        uploads = [p for p in passes if "Upload" in p["actions"]]
        assert [p["actions"] for p in uploads] == [["Upload"], ["Upload"]], passes
        # No run before the second upload, whatever pass it came in; then one for both clips.
        assert uploads[-1]["mirror_runs"] == 0, passes
        assert counted.full_reads["mirror run"] == 1, passes


def test_events_walk_only_their_paths_and_read_only_their_rows(tmp_path: Path, emu: Emulator, admin: httpx.Client,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """One new file among many walks that file (and a file still settling elsewhere) and
    reads no other row; a file renamed walks
    where it went and where it came from (known by its inode: no upload); a directory
    deleted wholesale is seen gone, every row under it and none elsewhere."""
    config = config_for(tmp_path, emu, admin, 400)
    drop = tmp_path / "drop"
    with Counted(config, monkeypatch) as counted, Catalog.open_readonly(config.state_dir) as catalog:
        counted.start_counting()
        clear_requests(admin)
        # A file that never settles (empty) is walked again every pass, and only it.
        (drop / "cam00" / "empty.mp4").write_bytes(b"")
        wait_for(lambda: any(p["targets"] for p in counted.passes), 60, "the empty file's walk")
        (drop / "cam01" / "new.mp4").write_bytes(b"one new clip among many\n")
        wait_for(lambda: any("Upload" in p["actions"] for p in counted.passes), 60, "the upload")
        upload = next(p for p in counted.passes if "Upload" in p["actions"])
        # No other path walked, no row read.
        assert upload["targets"] == [("cam00/empty.mp4", 0), ("cam01/new.mp4", 0)]
        starts = [r for r in admin.get("/requests").json() if r["path"].endswith(("/multipart/initiate", "/upload"))]
        assert len(starts) == 1, starts

        walks = len(counted.passes)
        (drop / "cam02" / "clip00200.mp4").rename(drop / "cam02" / "renamed.mp4")

        def walked_since(start: int) -> list[tuple[str | None, int]]:
            with counted._lock:
                return [t for p in counted.passes[start:] for t in p["targets"]]

        wait_for(lambda: {"cam02/clip00200.mp4", "cam02/renamed.mp4"} <= {t for t, _ in walked_since(walks)},
                 60, "the rename's walk")
        moved = walked_since(walks)
        assert catalog.file(drop, "cam02/renamed.mp4") is not None
        assert not getattr(catalog.file(drop, "cam02/clip00200.mp4"), "present", False)
        assert all(rows <= 1 for _, rows in moved), moved
        assert len([r for r in admin.get("/requests").json()
                    if r["path"].endswith(("/multipart/initiate", "/upload"))]) == 1  # still only new.mp4

        walks = len(counted.passes)
        shutil.rmtree(drop / "cam03")
        wait_for(lambda: "cam03" in {t for t, _ in walked_since(walks)}, 60, "the deleted directory's walk")
        assert all(not f.present for f in catalog.files(drop) if f.rel_path.startswith("cam03/"))
        gone = walked_since(walks)
        # Its files' parent, walked once gone: its 100 rows, none elsewhere (a path the
        # watcher reported again may ride along: one row).
        assert ("cam03", 100) in gone and all(rows <= 1 for t, rows in gone if t != "cam03"), gone
        assert all(f.present for f in catalog.files(drop) if f.rel_path.startswith(("cam00/", "cam01/", "cam02/")))
        with counted._lock:
            assert all(target is not None for p in counted.passes for target, _ in p["targets"]), [
                p["targets"] for p in counted.passes]  # never the whole folder (the rescan is 10 min away)


def test_a_file_written_during_the_first_mirror_runs_check_waits_for_one_slice(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon's first mirror run compares every sidecar with what it should hold (~33
    CPU-s at 100,000 videos, ~5 minutes at 1,000,000): a slice of contents at a time, and
    between two slices it gives way to a file that came in. That file is uploaded by the
    next pass; the check goes on after it and still repairs a sidecar edited by hand in
    its last slice."""
    from syncd.mirror.mirror import MirrorOptions
    from tests.mirror.test_mirror_verify import last_in_order

    config = config_for(tmp_path, emu, admin, 300)
    edited = last_in_order(config)
    right = edited.read_text()
    edited.write_text("{}")
    with Catalog.open(config.state_dir) as catalog:
        catalog.mirror_completed(None)  # not known complete: the start-up pass runs the mirror
    real_options = MirrorOptions.from_config
    monkeypatch.setattr(MirrorOptions, "from_config",
                        classmethod(lambda cls, c: dataclasses.replace(real_options(c), slice=20)))
    slices: list[int] = []  # per slice checked: the passes counted by then
    with Counted(config, monkeypatch) as counted:
        real_verified = Catalog.mirror_verified_to

        def verified_to(catalog: Catalog, sha256: str) -> None:
            real_verified(catalog, sha256)
            slices.append(len(counted.passes))
            if len(slices) == 3:  # a clip arrives while the third slice is checked
                (tmp_path / "other" / "new.mp4").write_bytes(b"one new clip\n")
                wait_for(lambda: counted.daemon.pending.depth > 0, 30, "its event")

        monkeypatch.setattr(Catalog, "mirror_verified_to", verified_to)
        counted.counting.set()
        wait_for(lambda: any("Upload" in p["actions"] for p in counted.passes), 60, "the upload")
        upload = next(i for i, p in enumerate(counted.passes) if "Upload" in p["actions"])
        assert len([n for n in slices if n <= upload]) == 3, (slices, upload)  # none after the clip came
        wait_for(lambda: edited.read_text() == right, 60, "the check's last slice")
    # 300 contents, 20 a slice (and the new clip's, if it sorts after the third slice).
    assert len(slices) in (15, 16), slices
