"""Folder scan rules and hashing, on real files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from syncd.sync.hashing import hash_files, sha256_file
from syncd.models import LocalFile
from syncd.sync.scan import ScanRules, folder_problem, scan_folder

RULES = ScanRules(include=("*.mp4", "*.mov"), exclude=(".*", "*.part"), settle_seconds=0)


def touch(path: Path, data: bytes = b"video") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(folder: Path, rules: ScanRules = RULES) -> list[str]:
    scan = scan_folder(folder, rules, time.time() + 1)
    assert scan.ok, scan.error
    return [f.rel_path for f in scan.files]


def test_include_is_case_insensitive_and_excludes_apply(tmp_path: Path) -> None:
    for rel in ("a.mp4", "CAM/B.MP4", "c.mov", "notes.txt", ".hidden.mp4", "d.mp4.part",
                ".cache/e.mp4", ".syncd-trash/old.mp4", "empty.mp4"):
        touch(tmp_path / rel, b"" if rel == "empty.mp4" else b"video")
    scan = scan_folder(tmp_path, RULES, time.time() + 1)
    settled = [f.rel_path for f in scan.files if f.settled]
    assert settled == ["CAM/B.MP4", "a.mp4", "c.mov"]  # empty.mp4 is seen but never settles


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    outside = touch(tmp_path / "outside" / "secret.mp4")
    folder = tmp_path / "drop"
    touch(folder / "real.mp4")
    (folder / "link.mp4").symlink_to(outside)
    (folder / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    assert names(folder) == ["real.mp4"]


def test_settle_rule_uses_the_latest_change(tmp_path: Path) -> None:
    clip = touch(tmp_path / "a.mp4")
    old = time.time() - 3600
    os.utime(clip, (old, old))  # an old mtime (cp -p) does not hide a fresh change
    scan = scan_folder(tmp_path, ScanRules(("*.mp4",), (), settle_seconds=5), time.time())
    assert [f.settled for f in scan.files] == [False]
    later = scan_folder(tmp_path, ScanRules(("*.mp4",), (), settle_seconds=5), time.time() + 6)
    assert [f.settled for f in later.files] == [True]


def test_missing_unreadable_and_unmarked_folders_are_problems(tmp_path: Path) -> None:
    assert "missing" in (folder_problem(tmp_path / "nope", False) or "")
    file = touch(tmp_path / "file")
    assert "not a directory" in (folder_problem(file, False) or "")
    assert ".syncd-folder" in (folder_problem(tmp_path, True) or "")
    assert not scan_folder(tmp_path / "nope", RULES, time.time()).ok


# Root reads a chmod-0 directory through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH. CI runs as
# root, so there the scan runs in a child that drops every capability first (capset(2)):
# still uid 0 and owner of the test's files, but held to their permission bits.
_SCAN_WITHOUT_CAPABILITIES = """
import ctypes, json, sys, time
from pathlib import Path

class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

libc = ctypes.CDLL(None, use_errno=True)
if libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()) != 0:  # _LINUX_CAPABILITY_VERSION_3
    sys.exit(f"capset: errno {ctypes.get_errno()}")
from syncd.sync.scan import ScanRules, scan_folder
scan = scan_folder(Path(sys.argv[1]), ScanRules(("*.mp4",), (), settle_seconds=0), time.time() + 1)
print(json.dumps({"ok": scan.ok, "error": scan.error, "unreadable": list(scan.unreadable),
                  "files": [f.rel_path for f in scan.files]}))
"""


def scan_as_unprivileged(folder: Path) -> dict[str, Any]:
    """ok, error, unreadable and files of a scan of ``folder`` by a process that permission bits bind."""
    if os.geteuid() != 0:
        scan = scan_folder(folder, RULES, time.time() + 1)
        return {"ok": scan.ok, "error": scan.error, "unreadable": list(scan.unreadable),
                "files": [f.rel_path for f in scan.files]}
    child = subprocess.run([sys.executable, "-c", _SCAN_WITHOUT_CAPABILITIES, str(folder)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == 0, child.stderr
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def test_unreadable_subdirectory_is_reported_and_the_rest_still_scanned(tmp_path: Path) -> None:
    touch(tmp_path / "ok.mp4")
    locked = tmp_path / "locked"
    touch(locked / "x.mp4")
    before = scan_as_unprivileged(tmp_path)
    assert before["ok"] and before["unreadable"] == [] and before["files"] == ["locked/x.mp4", "ok.mp4"]
    locked.chmod(0)
    try:
        scan = scan_as_unprivileged(tmp_path)
        assert scan["ok"] and scan["unreadable"] == ["locked"]
        assert scan["files"] == ["ok.mp4"]
    finally:
        locked.chmod(0o755)


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    clip = touch(tmp_path / "a.mp4", data)
    assert sha256_file(clip) == hashlib.sha256(data).hexdigest()


def test_file_vanishing_or_changing_mid_hash_is_reported_not_raised(tmp_path: Path) -> None:
    gone = LocalFile(tmp_path, "gone.mp4", 5, 1, 1)
    clip = touch(tmp_path / "a.mp4")
    st = clip.stat()
    stale = LocalFile(tmp_path, "a.mp4", st.st_size + 1, st.st_mtime_ns, st.st_ino)
    results = list(hash_files([gone, stale]))
    assert [r.sha256 for r in results] == [None, None]
    assert "gone.mp4" in (results[0].error or "") and "changed" in (results[1].error or "")
