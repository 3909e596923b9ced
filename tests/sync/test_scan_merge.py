"""The scan merged with the catalog's rows read in path order (issue 15): the walk yields
paths in exactly SQLite's order, files as recorded are only counted, and the rows the
walk does not meet are the missing ones, on real files and a real catalog."""

from __future__ import annotations

import fnmatch
import os
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from syncd.config import FolderConfig
from syncd.models import FolderScan, LocalFile
from syncd.store.catalog import Catalog
from syncd.sync.engine import walk_targets
from syncd.sync.scan import ScanRules, scan_changes, scan_folder, target_walkable

RULES = ScanRules(include=("*.mp4",), exclude=("*.part",), settle_seconds=0)
# Names whose order differs between "sort each directory by name" and the full paths'
# byte order: '-' and '.' sort before '/', '0' after it; upper case before lower case;
# a directory and a file sharing a prefix; non-ASCII (several UTF-8 lengths).
NAMES = ["a.mp4", "a-b.mp4", "a/x.mp4", "a/b/c.mp4", "a.b/y.mp4", "a-b/z.mp4", "a0.mp4", "a0/q.mp4",
         "A.mp4", "B/b.mp4", "b.mp4", "é.mp4", "é/é.mp4", "z/日本.mp4", "😀.mp4", "ab/ab.mp4", "ab.mp4",
         "x/y/z/deep.mp4", "x/y.mp4", "x/y-z.mp4", "x/y.z/w.mp4"]


def build(folder: Path, names: list[str]) -> None:
    for i, rel in enumerate(names):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"clip {i}".encode())


def record_all(catalog: Catalog, folder: Path) -> list[str]:
    """Every file of ``folder`` recorded present with a made-up sha256; the walk's order."""
    scan = scan_folder(folder, RULES, time.time() + 1)
    catalog.record_scan(folder, [(f, f"{i:064x}") for i, f in enumerate(scan.files)], [], 1.0)
    return [f.rel_path for f in scan.files]


def merged(catalog: Catalog, folder: Path, target: str | None = None) -> FolderScan:
    with closing(catalog.recorded_in_order(folder, target)) as rows:
        return scan_changes(folder, RULES, time.time() + 1, {}, rows, target)


def test_the_walk_yields_paths_in_the_catalogs_order(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    build(folder, NAMES)
    with Catalog.open(tmp_path / "state") as catalog:
        walked = record_all(catalog, folder)
        rows = [r[0] for r in catalog.recorded_in_order(folder)]
        assert walked == rows == sorted(NAMES, key=lambda n: n.encode())
        scan = merged(catalog, folder)
        assert scan.ok and scan.as_recorded == len(NAMES)
        assert (scan.files, scan.missing, dict(scan.recorded)) == ((), (), {})
        plan = catalog.db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT rel_path, size, mtime_ns, inode, sha256, present FROM files "
            "WHERE folder = ? ORDER BY rel_path", [str(folder)]).fetchall()
        assert not any("TEMP B-TREE" in row[-1] for row in plan), plan  # the key's order: no sort
        sent: list[str] = []
        catalog.db.conn.set_trace_callback(sent.append)
        list(catalog.recorded_in_order(folder, "a"))
        catalog.db.conn.set_trace_callback(None)
        plan = catalog.db.conn.execute("EXPLAIN QUERY PLAN " + sent[0]).fetchall()
        assert [row[-1] for row in plan] == [  # a range of the key: only the target's rows are read
            "SEARCH files USING INDEX sqlite_autoindex_files_1 (folder=? AND rel_path>? AND rel_path<?)"], plan


def test_missing_changed_and_new_files_are_found_by_the_merge(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    build(folder, NAMES)
    with Catalog.open(tmp_path / "state") as catalog:
        record_all(catalog, folder)
        for gone in ("a-b.mp4", "a/b/c.mp4", "😀.mp4"):
            (folder / gone).unlink()
        (folder / "x/y.mp4").write_bytes(b"rewritten, longer")
        build(folder, ["a/b.mp4", "a.c.mp4"])
        (folder / "skip.part").write_bytes(b"partial")  # excluded: neither seen nor missing
        scan = merged(catalog, folder)
        assert scan.ok
        assert scan.missing == ("a-b.mp4", "a/b/c.mp4", "😀.mp4")
        assert [f.rel_path for f in scan.files] == ["a.c.mp4", "a/b.mp4", "x/y.mp4"]
        assert set(scan.recorded) == {"x/y.mp4"}  # the row of the changed one, for the engine
        assert scan.as_recorded == len(NAMES) - 4
        # Recorded as missing, those rows are not missing again; a file back is seen again.
        catalog.record_changes(folder, [], scan.missing, 2.0)
        build(folder, ["😀.mp4"])
        again = merged(catalog, folder)
        assert again.missing == () and "😀.mp4" in [f.rel_path for f in again.files]


def test_rows_under_an_unreadable_directory_stay_as_recorded(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "drop"
    build(folder, NAMES)
    with Catalog.open(tmp_path / "state") as catalog:
        record_all(catalog, folder)
        (folder / "a.mp4").unlink()
        (folder / "a0/q.mp4").unlink()
        (folder / "a/x.mp4").unlink()
        # Permission bits do not bind root (CI): the directory refuses its listing instead
        # (test_scan.py checks a real chmod-0 directory in an unprivileged child).
        real_scandir, locked = os.scandir, str(folder / "a")

        def scandir(path: str) -> Any:
            if path == locked:
                raise PermissionError(13, "Permission denied", path)
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
        scan = merged(catalog, folder)
        assert scan.unreadable == ("a",)
        assert scan.missing == ("a.mp4", "a0/q.mp4")  # before and after it, not under it


def test_a_target_walks_only_its_path_and_reads_only_its_rows(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    build(folder, NAMES)
    with Catalog.open(tmp_path / "state") as catalog:
        record_all(catalog, folder)
        assert [r[0] for r in catalog.recorded_in_order(folder, "a")] == ["a/b/c.mp4", "a/x.mp4"]
        assert [r[0] for r in catalog.recorded_in_order(folder, "x/y.mp4")] == ["x/y.mp4"]  # not y.mp4-ish
        (folder / "a.mp4").unlink()  # outside the target: not its business
        (folder / "a/x.mp4").unlink()
        build(folder, ["a/new.mp4"])
        scan = merged(catalog, folder, "a")
        assert scan.missing == ("a/x.mp4",) and [f.rel_path for f in scan.files] == ["a/new.mp4"]
        assert scan.as_recorded == 1
        # A single file; a directory gone wholesale (its rows are missing); a file gone.
        assert merged(catalog, folder, "a0.mp4").as_recorded == 1
        for rel in ("x/y/z/deep.mp4", "x/y.z/w.mp4"):
            (folder / rel).unlink()
        (folder / "x/y/z").rmdir()
        (folder / "x/y").rmdir()
        assert merged(catalog, folder, "x/y").missing == ("x/y/z/deep.mp4",)
        assert merged(catalog, folder, "x/y.z/w.mp4").missing == ("x/y.z/w.mp4",)
        # Where a target cannot be walked on its own, the caller walks the folder.
        assert target_walkable(folder, "x/y.z/w.mp4", RULES)
        assert not target_walkable(folder, "gone/w.mp4", RULES)
        assert not target_walkable(folder, ".hidden/w.mp4", RULES)
        assert not target_walkable(folder, "", RULES)


def test_record_changes_writes_only_what_changed(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    with Catalog.open(tmp_path / "state") as catalog:
        files = [LocalFile(folder, f"f{i}.mp4", 10 + i, 1, 100 + i) for i in range(3)]
        catalog.record_scan(folder, [(f, f"{i:064x}") for i, f in enumerate(files)], [], 1.0)
        catalog.record_changes(folder, [(LocalFile(folder, "f3.mp4", 5, 1, 200), "e" * 64)], ["f1.mp4"], 2.0)
        present = {f.rel_path: f.present for f in catalog.files(folder)}
        assert present == {"f0.mp4": True, "f1.mp4": False, "f2.mp4": True, "f3.mp4": True}


def test_name_rules_match_as_fnmatch_does() -> None:
    """The globs' string tests (``*.mp4``, ``.*``, exact names) answer as fnmatch would."""
    patterns = ("*.mp4", "*.MOV", ".*", "thumbs.db", "*", "a*b", "*x*", "[ab].mkv", "clip?.avi", "tmp*", "")
    names = ("a.mp4", "A.MP4", "b.mov", ".hidden", "Thumbs.db", "thumbs.db.mp4", "ab", "axb", "a.mkv",
             "c.mkv", "clip1.avi", "clip12.avi", "tmpfile", "x", "", "mp4")
    for pattern in patterns:
        rules = ScanRules((pattern,), (pattern,), settle_seconds=0)
        for name in names:
            expected = fnmatch.fnmatchcase(name.lower(), pattern.lower())
            assert rules.included(name) == rules.excluded(name) == expected, (pattern, name)


def test_walk_targets_fall_back_to_a_parent_that_can_be_walked(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    build(folder, ["cam1/a.mp4", "cam2/sub/b.mp4", ".hidden/c.mp4"])
    (folder / "link").symlink_to(folder / "cam1", target_is_directory=True)
    config = FolderConfig(folder, ("*.mp4",), (), "none", (), False, "keep", False, False)
    assert walk_targets(config, ["cam1/a.mp4", "cam1/new.mp4", "cam2/sub/b.mp4"]) == (
        "cam1/a.mp4", "cam1/new.mp4", "cam2/sub/b.mp4")
    # A path under another walks once, with the other's subtree.
    assert walk_targets(config, ["cam2/sub/b.mp4", "cam2", "cam2/x.mp4"]) == ("cam2",)
    # Its parent gone (a directory deleted wholesale): walked from the nearest one there.
    assert walk_targets(config, ["cam3/gone/x.mp4"]) == ("cam3",)
    assert walk_targets(config, ["cam2/gone/deeper/x.mp4"]) == ("cam2/gone",)
    # Through a symlink or a hidden directory: from there, which the walk then leaves out
    # as the whole folder's walk would (its rows, if any, missing).
    assert walk_targets(config, ["cam1/a.mp4", "link/a.mp4"]) == ("cam1/a.mp4", "link")
    assert walk_targets(config, [".hidden/c.mp4"]) == (".hidden",)
    with Catalog.open(tmp_path / "state") as catalog:
        assert merged(catalog, folder, "link").as_recorded == 0 and merged(catalog, folder, ".hidden").files == ()
    # The folder itself: the whole folder.
    assert walk_targets(config, ["."]) == walk_targets(config, ["cam1/a.mp4", ""]) == ()
