"""Unit tests of the mirror's building blocks: remote-name sanitising, the atomic
writer (including a writer killed mid-write), the sidecar formats, the search index."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from syncd.store.catalog import Catalog
from syncd.mirror.atomic import temp_path, write_atomic
from syncd.mirror.index import COMPACT_MIN_ROWS, SearchIndex, SearchIndexError, VectorFiles
from syncd.mirror.names import contained, matches_any, safe_component, sniff_extension
from syncd.store.records import SegmentInfo
from syncd.mirror.sidecars import SidecarLayout, embeddings_bytes, read_embeddings
from syncd.remote.base import Segment
from tests.conftest import REPO, wait_for

# ------------------------------------------------------------------ names
HOSTILE = [
    ("../../etc/x.mp4", "x.mp4"),
    ("/etc/passwd", "passwd"),
    ("a/b/c.mp4", "c.mp4"),
    ("a\\b\\c.mp4", "c.mp4"),
    ("evil\x00name.mp4", "evilname.mp4"),
    ("line\nbreak\r.mp4", "linebreak.mp4"),
    ("..", "fallback"),
    (".", "fallback"),
    ("../..", "fallback"),
    ("", "fallback"),
    ("   ", "fallback"),
    (".hidden.mp4", "hidden.mp4"),
    ("trailing dots... ", "trailing dots"),
    ("x\u202egnp.mp4", "xgnp.mp4"),  # a right-to-left override cannot disguise the extension
    ("cam 3 / 2026-04-12.mp4", "2026-04-12.mp4"),
]


@pytest.mark.parametrize(("name", "expected"), HOSTILE)
def test_safe_component_keeps_one_harmless_name(name: str, expected: str) -> None:
    got = safe_component(name, fallback="fallback")
    assert got == expected
    assert "/" not in got and "\\" not in got and "\x00" not in got
    assert got not in ("", ".", "..") and not got.startswith(".")


def test_safe_component_caps_length_and_keeps_the_extension() -> None:
    got = safe_component("é" * 300 + ".mp4", fallback="f")
    assert got.endswith(".mp4") and len(got.encode()) <= 200


def test_every_hostile_name_stays_inside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name, _ in HOSTILE:
        for collection in ("", "../..", "a/../../b", "\x00"):
            sub = safe_component(collection, fallback="")
            path = (folder / sub if sub else folder) / safe_component(name, fallback="v")
            assert contained(folder, path), (collection, name, path)
    (folder / "link").symlink_to(tmp_path)
    assert not contained(folder, folder / "link" / "x.mp4"), "a planted symlink must not lead outside"


def test_extension_sniffing_and_pattern_matching() -> None:
    assert sniff_extension(b"\x00\x00\x00\x18ftypisom") == ".mp4"
    assert sniff_extension(b"\x00\x00\x00\x14ftypqt  ") == ".mov"
    assert sniff_extension(b"\x1a\x45\xdf\xa3....") == ".mkv"
    assert sniff_extension(b"garbage") == ".mp4"
    assert matches_any("CLIP.MP4", ("*.mp4",)) and not matches_any("clip", ("*.mp4",))


# ------------------------------------------------------------------ atomic writes
def test_write_atomic_writes_only_changed_bytes(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    assert write_atomic(target, b"one")
    inode = target.stat().st_ino
    assert not write_atomic(target, b"one"), "same bytes: not rewritten"
    assert target.stat().st_ino == inode
    assert not write_atomic(target, iter([b"o", b"ne"])), "same bytes from chunks: not rewritten"
    assert target.stat().st_ino == inode
    assert write_atomic(target, b"two") and target.read_bytes() == b"two"
    assert not temp_path(target).exists()


def test_write_atomic_never_creates_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "unmounted" / "a.json", b"x")
    assert not (tmp_path / "unmounted").exists()
    assert write_atomic(tmp_path / "made" / "a.json", b"x", make_parents=True)


def test_a_source_failing_halfway_leaves_the_old_sidecar(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4.syncd.emb"
    target.write_bytes(b"old sidecar " * 1000)
    before = target.read_bytes()

    def chunks():  # type: ignore[no-untyped-def]
        yield b"new bytes " * 10_000
        raise OSError("the source broke halfway")

    with pytest.raises(OSError, match="halfway"):
        write_atomic(target, chunks())
    assert target.read_bytes() == before
    assert not temp_path(target).exists()


_KILLED_WRITER = """
import sys, time
from pathlib import Path
from syncd.mirror.atomic import write_atomic

def chunks():
    yield b"N" * 200_000
    Path(sys.argv[2]).write_text("halfway")
    time.sleep(60)
    yield b"never"

write_atomic(Path(sys.argv[1]), chunks())
"""


def test_a_writer_killed_mid_write_leaves_the_old_sidecar(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4.syncd.json"
    target.write_bytes(b'{"old": true}\n')
    before = target.read_bytes()
    marker = tmp_path / "halfway"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target), str(marker)], env=env)
    try:
        wait_for(marker.exists, 30, "the writer to be half-way")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert target.read_bytes() == before, "a kill -9 mid-write must leave the old sidecar byte-identical"
    leftover = temp_path(target)
    assert leftover.exists() and leftover.name.startswith("."), "the partial write went to a hidden temp file"
    assert write_atomic(target, b'{"new": true}\n') and not leftover.exists()


@pytest.mark.parametrize("then", ["moved", "removed"])
def test_a_killed_writes_leftover_goes_with_its_video(tmp_path: Path, then: str) -> None:
    """The video is moved or deleted before its sidecar is written again: the temp file
    a kill -9 left is not carried along or forgotten, it is removed."""
    layout = SidecarLayout()
    video = tmp_path / "cam1" / "a.mp4"
    video.parent.mkdir()
    sidecars = layout.paths(video)
    for path in sidecars.all():
        path.write_bytes(b"old")
        temp_path(path).write_bytes(b"the new bytes, never renamed")
    if then == "moved":
        assert layout.move(video, tmp_path / "cam1" / "b.mp4")
    else:
        assert layout.remove(video)
    assert sorted(p.name for p in video.parent.iterdir()) == (
        ["b.mp4.syncd.emb", "b.mp4.syncd.json"] if then == "moved" else [])


# ------------------------------------------------------------------ formats
def test_embeddings_format_is_readable_without_syncd(tmp_path: Path) -> None:
    segments = [SegmentInfo("vid", 0, 0.0, 5.0, "visual", "clip"), SegmentInfo("vid", 1, 5.0, 7.0, "visual", "clip")]
    matrix = np.arange(2 * 4, dtype=np.float32).reshape(2, 4) / 7
    path = tmp_path / "v.mp4.syncd.emb"
    path.write_bytes(embeddings_bytes("vid", segments, matrix))
    # The documented layout, read with the standard library only.
    raw = path.read_bytes()
    assert raw[:8] == b"SYNCDEMB"
    (length,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12:12 + length])
    assert (12 + length) % 64 == 0
    assert header["count"] == 2 and header["dim"] == 4 and header["dtype"] == "float32-le"
    assert header["segments"][1] == {"start": 5.0, "end": 7.0, "option": "visual", "scope": "clip"}
    values = struct.unpack(f"<{2 * 4}f", raw[12 + length:])
    assert np.allclose(np.array(values).reshape(2, 4), matrix)
    parsed = read_embeddings(path)
    assert parsed.video_id == "vid" and parsed.segments == tuple(segments)
    assert np.array_equal(parsed.vectors, matrix)


def test_directory_layout_mirrors_the_absolute_path(tmp_path: Path) -> None:
    layout = SidecarLayout(tmp_path / "sidecars")
    paths = layout.paths(Path("/media/cam/drop/a/b.mp4"))
    assert paths.json == tmp_path / "sidecars/media/cam/drop/a/b.mp4.syncd.json"
    assert paths.emb == tmp_path / "sidecars/media/cam/drop/a/b.mp4.syncd.emb"
    beside = SidecarLayout().paths(Path("/media/cam/drop/a/b.mp4"))
    assert beside.json == Path("/media/cam/drop/a/b.mp4.syncd.json")


# ------------------------------------------------------------------ the index
def _segments(rng: np.random.Generator, n: int, dim: int) -> list[Segment]:
    return [Segment(i * 5.0, i * 5.0 + 5, "visual", "clip", tuple(rng.standard_normal(dim).tolist()))
            for i in range(n)]


def _video(catalog: Catalog, video_id: str) -> None:
    catalog.mirror_details_pulled(video_id, "sha-" + video_id, "{}", 0.0)


def test_index_ranks_like_brute_force_cosine(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    with Catalog(tmp_path / "catalog.db") as catalog:
        index = SearchIndex(catalog, tmp_path / "search")
        stored: dict[str, list[Segment]] = {}
        for v in range(12):
            vid = f"video-{v:02d}"
            _video(catalog, vid)
            stored[vid] = _segments(rng, int(rng.integers(1, 9)), 32)
            index.put(vid, stored[vid])
        query = rng.standard_normal(32).astype(np.float32)
        keys = [(vid, i) for vid, segs in stored.items() for i in range(len(segs))]
        matrix = np.array([stored[v][i].vector for v, i in keys])
        cosine = matrix @ query / np.linalg.norm(matrix, axis=1) / np.linalg.norm(query)
        expected = [keys[i] for i in np.argsort(-cosine)[:7]]
        hits = index.query(query, 7)
        assert [(h.video_id, h.index) for h in hits] == expected
        assert np.allclose([h.score for h in hits], np.sort(cosine)[::-1][:7], atol=1e-5)
        # Filtered to two videos.
        subset = index.query(query, 100, {"video-03", "video-07"})
        assert {h.video_id for h in subset} == {"video-03", "video-07"}
        assert len(subset) == len(stored["video-03"]) + len(stored["video-07"])
        with pytest.raises(SearchIndexError, match="dimensions"):
            index.query(np.ones(8), 3)


def test_index_replaces_drops_compacts_and_repairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    with Catalog(tmp_path / "catalog.db") as catalog:
        index = SearchIndex(catalog, tmp_path / "search")
        for vid in ("a", "b", "c"):
            _video(catalog, vid)
            index.put(vid, _segments(rng, 4, 16))
        replaced = _segments(rng, 2, 16)
        index.put("b", replaced)  # re-pulled: new rows, the old ones are dead
        catalog.mirror_drop_video("c")
        got = index.vectors("b")
        assert got is not None and np.allclose(got[1], np.array([s.vector for s in replaced]))
        before = {(h.video_id, h.index): h.score for h in index.query(replaced[0].vector, 10)}
        assert set(before) == {("a", i) for i in range(4)} | {("b", 0), ("b", 1)}
        old = index.snapshot().vectors
        assert index.compact(force=True)
        snap = index.snapshot()
        assert snap.vectors != old and not (tmp_path / "search" / f"{old}.f32").exists()
        assert VectorFiles(tmp_path / "search", snap.vectors or "", 16).rows() == 6
        after = {(h.video_id, h.index): h.score for h in index.query(replaced[0].vector, 10)}
        assert after == pytest.approx(before)
        assert not index.compact(), f"nothing dead: below {COMPACT_MIN_ROWS} rows it never compacts"
        # Lost vector files: verify() resets them so the mirror pulls embeddings again.
        for f in (tmp_path / "search").iterdir():
            f.unlink()
        assert not index.verify()
        assert all(v.embeddings_at is None for v in catalog.mirror_videos().values())
        assert index.query(replaced[0].vector, 3) == []


def test_a_torn_vector_tail_is_dropped_on_the_next_append(tmp_path: Path) -> None:
    files = VectorFiles(tmp_path, "vectors-1", 4)
    assert files.append(np.ones((2, 4), np.float32)) == 0
    with open(files.vectors, "ab") as fh:
        fh.write(b"\x00" * 7)  # a crash half-way through a row
    assert files.rows() == 2
    assert files.append(np.full((1, 4), 2, np.float32)) == 2
    vectors, norms = files.open()
    assert vectors.shape == (3, 4) and float(vectors[2, 0]) == 2.0 and float(norms[2]) == pytest.approx(4.0)


def test_a_pulled_file_never_replaces_an_existing_one(tmp_path: Path) -> None:
    from syncd.mirror.pull import _free_path, _place

    (tmp_path / "x.mp4").write_bytes(b"mine")
    target = _free_path(tmp_path / "x.mp4")
    assert target == tmp_path / "x.1.mp4"
    download = tmp_path / ".download"
    download.write_bytes(b"theirs")
    _place(download, target)
    download.unlink(missing_ok=True)  # as the puller does once the file is in place
    assert (tmp_path / "x.mp4").read_bytes() == b"mine" and target.read_bytes() == b"theirs"
    download.write_bytes(b"again")
    with pytest.raises(FileExistsError):
        _place(download, target)
    assert target.read_bytes() == b"theirs"


# ------------------------------------------------------------------ the executor's hook
def test_the_sidecar_hook_forgets_one_row_by_its_key_not_by_reading_every_row(tmp_path: Path) -> None:
    """A trashed (moved) or deleted video: its sidecars go with it and its sidecar row is
    forgotten with statements that name its key; no statement reads every row."""
    from syncd.config import load_config
    from syncd.sync.engine import Engine, EngineOptions
    from tests.conftest import KEY, write_config
    from tests.fake_remote import FakeRemote

    drop = tmp_path / "drop"
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", mirror={"embeddings": False}),
                         {"SYNCD_TEST_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog:
        engine = Engine(EngineOptions.from_config(config), catalog, FakeRemote())  # type: ignore[arg-type]
        for i in range(300):
            catalog.mirror_file_written(drop, f"cam/clip{i:03d}.mp4", f"v{i}", f"{i:064x}", None, 1.0)
        trashed, deleted = drop / "cam/clip007.mp4", drop / "cam/clip008.mp4"
        for video in (trashed, deleted):
            video.parent.mkdir(parents=True, exist_ok=True)
            video.write_bytes(b"clip")
            engine.mirror.layout.write(engine.mirror.layout.paths(video).json, b"{}")
        target = drop / ".syncd-trash/cam/clip007.mp4"
        target.parent.mkdir(parents=True)  # the executor moved the video there first
        sent: list[str] = []
        catalog.db.conn.set_trace_callback(sent.append)
        engine.mirror.sidecar_hook("move", trashed, target)
        engine.mirror.sidecar_hook("delete", deleted, None)
        catalog.db.conn.set_trace_callback(None)
        assert engine.mirror.layout.paths(target).json.exists()
        assert not engine.mirror.layout.paths(trashed).json.exists()
        assert not engine.mirror.layout.paths(deleted).json.exists()
        assert {row.path for row in catalog.mirror_files()} == {drop / f"cam/clip{i:03d}.mp4" for i in range(300)
                                                                 if i not in (7, 8)}
    reads = [s for s in sent if "mirror_files" in s and not s.lstrip().upper().startswith("DELETE")]
    assert reads == [], reads
