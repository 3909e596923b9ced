"""The local search index: segment vectors for cosine ranking, plus full text.

Storage (``<state_dir>/search/``), one *generation* of two append-only files:

* ``vectors-N.f32``: every stored segment vector as it came from the remote, one
  row of ``dim`` little-endian float32 after another (a plain memory-mappable matrix);
* ``vectors-N.norm``: one float32 per row, its L2 norm, so cosine needs no extra pass.

The catalog is the truth about which rows are live: each video owns one contiguous
range (``mirror_videos.row_start/row_count``); a re-pulled or dropped video leaves dead
rows behind, and ``compact`` rewrites the live ones into generation N+1 once dead rows
pass a quarter of the file, switching files and ranges in one catalog transaction.
Vectors are appended and fsynced *before* the catalog points at them, so a crash
leaves at worst unreferenced rows (dead space), never a range pointing at garbage.

Why float32 and not float16 storage: numpy has no fast float16 matrix-vector product
(float16 → float32 conversion costs ~2 s per query over 200,000 x 1024 here), while a
float32 memory-mapped matrix-vector product over the same rows takes ~60-90 ms.

Ranking: below ``EXACT_ROWS`` live rows (or when the rows a filter admits are few) an
exact float32 scan; above, the approximate index of ``ann.py`` (usearch, int8, memory-
mapped) proposes candidates, over-fetched in proportion to the share of indexed rows a
filter admits, and they are re-ranked exactly against the float32 rows. Rows appended
since the ANN index was last refreshed are scanned exactly, so a query never waits for
the index and never misses a new video; a missing or corrupt ANN index means an exact scan
until the mirror job (the one writer, ``refresh_ann``) has rebuilt it.

Full text (names, paths, collections, metadata) is an FTS5 table in the catalog.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from pathlib import Path

from syncd.store.catalog import Catalog
from syncd.errors import SyncdError
from syncd.mirror.ann import AnnIndex, AnnUnavailable
from syncd.mirror.atomic import fsync_dir
from syncd.store.records import IndexHead, IndexSnapshot, SegmentInfo
from syncd.remote.base import Segment

# numpy (~0.1 CPU-s at start-up) is imported by the functions that compute with it: `syncd
# status`, and a pass with nothing to index, never load it (tests/test_startup.py).
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]

log = logging.getLogger("syncd.mirror")

SEARCH_DIR = "search"
DTYPE = "<f4"  # little-endian float32, as numpy names it
ITEMSIZE = 4  # its bytes
COMPACT_SHARE = 0.25  # compact once dead rows pass this share of the file...
COMPACT_MIN_ROWS = 4096  # ...and this many rows (a few videos' churn is not worth a rewrite)
EXACT_ROWS = 20_000  # at or below this many live (or admitted) rows, rank exactly: ~10 ms
RERANK = 20  # candidates re-ranked exactly per result wanted, from each part (top-10: 200)...
MIN_CANDIDATES = 200  # ...and at least this many
MAX_OVERFETCH = 50  # a filter admitting under 1/50 of the indexed rows: scan its rows exactly
_GENERATION = re.compile(r"^vectors-(\d+)\.(f32|norm)$")
_ANY_GENERATION = re.compile(r"^(vectors-\d+)\.")
_WORD = re.compile(r"\w+", re.UNICODE)


class SearchIndexError(SyncdError):
    """The query cannot be answered by this index (e.g. another embedding dimension)."""


@dataclass(frozen=True)
class VectorHit:
    video_id: str
    index: int  # segment index within the video
    score: float  # cosine similarity


class VectorFiles:
    """One generation: ``<base>.f32`` (rows x dim) and ``<base>.norm`` (rows)."""

    def __init__(self, directory: Path, base: str, dim: int) -> None:
        self.directory, self.base, self.dim = directory, base, dim
        self.vectors = directory / f"{base}.f32"
        self.norms = directory / f"{base}.norm"

    @property
    def row_bytes(self) -> int:
        return self.dim * ITEMSIZE

    def rows(self) -> int:
        """Complete rows present in both files (a torn tail from a crash is not a row)."""
        try:
            return min(self.vectors.stat().st_size // self.row_bytes, self.norms.stat().st_size // ITEMSIZE)
        except FileNotFoundError:
            return 0

    def append(self, matrix: Matrix) -> int:
        """Append rows (and their norms), fsync both files; return the first new row."""
        return self.append_blocks([matrix])[0]

    def append_blocks(self, blocks: Iterable[Matrix]) -> list[int]:
        """Append several blocks of rows with one fsync; return each block's first row."""
        import numpy as np
        self.directory.mkdir(parents=True, exist_ok=True)
        start = self.rows()
        firsts: list[int] = []
        with open(self.vectors, "ab") as vec, open(self.norms, "ab") as nrm:
            for fh, width in ((vec, self.row_bytes), (nrm, ITEMSIZE)):
                fh.truncate(start * width)  # drop a torn tail left by a crash
                fh.seek(start * width)
            row = start
            for block in blocks:
                rows = np.ascontiguousarray(block, dtype=DTYPE)
                vec.write(rows.tobytes())
                nrm.write(np.linalg.norm(rows.astype(np.float64), axis=1).astype(DTYPE).tobytes())
                firsts.append(row)
                row += rows.shape[0]
            for fh in (vec, nrm):
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(self.directory)
        return firsts

    def open(self, *, populate: bool = False) -> tuple[Matrix, Matrix]:
        """Memory-map (vectors, norms); raises FileNotFoundError if this generation is gone.

        ``populate`` maps every page up front (MAP_POPULATE): a query reads them all, and
        one kernel pass is much cheaper than a page fault per 4 KiB (~40 ms at 800 MB).
        """
        import numpy as np
        rows = self.rows()
        if rows == 0:
            if not self.vectors.exists():
                raise FileNotFoundError(self.vectors)
            return np.zeros((0, self.dim), DTYPE), np.zeros(0, DTYPE)
        vectors = _map(self.vectors, rows * self.row_bytes, populate).reshape(rows, self.dim)
        norms = _map(self.norms, rows * ITEMSIZE, populate)
        return vectors, norms

    def read(self, start: int, count: int) -> Matrix:
        """Rows ``start .. start + count - 1`` as an array of their own."""
        import numpy as np
        data = np.fromfile(self.vectors, dtype=DTYPE, count=count * self.dim, offset=start * self.row_bytes)
        if data.size != count * self.dim:
            raise FileNotFoundError(f"{self.vectors}: rows {start}+{count} are missing")
        return data.reshape(count, self.dim)

    def remove(self) -> None:
        self.vectors.unlink(missing_ok=True)
        self.norms.unlink(missing_ok=True)


def _map(path: Path, length: int, populate: bool) -> Matrix:
    import numpy as np
    flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), length, flags=flags, prot=mmap.PROT_READ)
    return np.frombuffer(mapped, dtype=DTYPE, count=length // ITEMSIZE)


def _generation(base: str | None) -> int:
    match = _GENERATION.match(f"{base}.f32") if base else None
    return int(match.group(1)) if match else 0


class SearchIndex:
    """Segment vectors + full text for every mirrored video. Readers (``syncd search``)
    only call ``query``/``text_query``; the mirror job is the one writer."""

    def __init__(self, catalog: Catalog, directory: Path, *, clock: Callable[[], float] = time.time,
                 exact_rows: int = EXACT_ROWS) -> None:
        self.catalog = catalog
        self.directory = directory
        self.clock = clock
        self.exact_rows = exact_rows  # rank exactly at or below this many rows (and keep no ANN index)
        self.last_method = ""  # how the last query was ranked: "exact" or "ann" (for tests and benchmarks)
        self._mapped: tuple[str, Matrix, Matrix] | None = None  # kept across queries
        self._lazy: tuple[str, Matrix, Matrix] | None = None  # mapped without MAP_POPULATE: rows re-ranked
        self._ann: AnnIndex | None = None
        self._snap: tuple[tuple[int, int], IndexSnapshot, dict[str, int]] | None = None
        # Full-text rows of a mirror run's videos as last written (the mirror job is the one
        # writer): read once a run (``read_texts``), so checking 10,000 quiet videos' rows
        # costs one query, not one each, and a run over one slice holds that slice's.
        self._texts: dict[str, tuple[str, str, str, str]] | None = None

    # ----------------------------------------------------------------- writing
    def _current(self) -> VectorFiles | None:
        snap = self.catalog.mirror_index_snapshot(())
        return VectorFiles(self.directory, snap.vectors, snap.dim) if snap.vectors else None

    def _new_generation(self, dim: int) -> VectorFiles:
        current = self._current()
        base = f"vectors-{_generation(current.base if current else None) + 1}"
        files = VectorFiles(self.directory, base, dim)
        files.remove()  # a crashed compaction may have left a partial one
        AnnIndex(self.directory, base, dim).remove()
        files.directory.mkdir(parents=True, exist_ok=True)
        files.vectors.touch()
        files.norms.touch()
        return files

    def put(self, video_id: str, segments: Sequence[Segment]) -> None:
        """Store (or replace) a video's segments and vectors."""
        import numpy as np
        infos = [SegmentInfo(video_id, i, s.start, s.end, s.option, s.scope) for i, s in enumerate(segments)]
        self.put_matrix(video_id, infos, np.asarray([s.vector for s in segments], dtype=DTYPE))

    def put_matrix(self, video_id: str, infos: Sequence[SegmentInfo], matrix: Matrix) -> None:
        """``put`` with the vectors already as a (segments x dim) matrix."""
        if not infos:
            self.catalog.mirror_set_vectors(video_id, infos, 0, 0, self.clock())
            return
        files = self._current()
        if files is None or files.dim != matrix.shape[1]:
            if files is not None:
                log.warning("embedding dimension changed (%d → %d); rebuilding the search index",
                            files.dim, matrix.shape[1])
            files = self._new_generation(int(matrix.shape[1]))
            self.catalog.mirror_reset_vectors(files.base, files.dim)
        start = files.append(matrix)
        self.catalog.mirror_set_vectors(video_id, infos, start, len(infos), self.clock())

    def dim(self) -> int:
        """The vector length of the current files (0 before the first)."""
        return self.catalog.mirror_index_snapshot(()).dim

    def vectors(self, video_id: str) -> tuple[list[SegmentInfo], Matrix] | None:
        """A video's stored segments and vectors (what its ``.syncd.emb`` holds)."""
        import numpy as np
        video = self.catalog.mirror_video(video_id)
        files = self._current()
        if video is None or video.embeddings_at is None:
            return None
        segments = self.catalog.mirror_segments(video_id)
        if video.row_count == 0 or files is None:
            return segments, np.zeros((0, files.dim if files else 0), DTYPE)
        return segments, files.read(video.row_start, video.row_count)

    def verify(self) -> bool:
        """Check the vector files still hold every live row; if not (deleted, truncated),
        reset them so the mirror pulls the embeddings again. True if they were fine."""
        head = self.catalog.mirror_index_head()  # the rows' end, not every range: a start costs the same at any size
        if not head.vectors or not head.live:
            return True
        if VectorFiles(self.directory, head.vectors, head.dim).rows() >= head.end:
            return True
        log.warning("search index vectors are missing or short; embeddings will be pulled again")
        files = self._new_generation(head.dim)
        self.catalog.mirror_reset_vectors(files.base, files.dim)
        return False

    def compact(self, *, force: bool = False) -> bool:
        """Rewrite the live rows into a new generation once enough rows are dead."""
        head = self.catalog.mirror_index_head()  # the totals first: every range only to compact
        if not head.vectors:
            return False
        old = VectorFiles(self.directory, head.vectors, head.dim)
        total = old.rows()
        dead = total - head.live
        if not force and (dead < COMPACT_MIN_ROWS or dead < total * COMPACT_SHARE):
            return False
        snap = self.catalog.mirror_index_snapshot()
        live = sum(snap.counts)
        matrix, _ = old.open()
        new = self._new_generation(snap.dim)
        firsts = new.append_blocks(
            matrix[start:start + count] for start, count in zip(snap.starts, snap.counts, strict=True)
        )
        self.catalog.mirror_relocate(dict(zip(snap.video_ids, firsts, strict=True)), new.base, new.dim)
        old.remove()
        AnnIndex(self.directory, old.base, old.dim).remove()  # row numbers changed: the next refresh builds anew
        log.info("search index compacted: %d live rows kept, %d dead rows dropped", live, dead)
        return True

    def remove_stale_files(self) -> None:
        """Delete vector files of other generations (a crash mid-compaction leaves one)."""
        current = self._current()
        keep = {current.vectors.name, current.norms.name} if current else set()
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            if _GENERATION.match(name) and name not in keep:
                (self.directory / name).unlink(missing_ok=True)
            generation = _ANY_GENERATION.match(name)
            if generation and ".ann" in name and (current is None or generation.group(1) != current.base):
                (self.directory / name).unlink(missing_ok=True)  # the ANN index of another generation
        if current is not None:
            AnnIndex(self.directory, current.base, current.dim).remove_unlisted()

    def refresh_ann(self, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Bring the ANN index up to the vector files (the mirror job calls this after its
        changes): index new live rows, forget dead ones, rebuild a missing or corrupt index.
        Below ``exact_rows`` live rows there is none (an exact scan is as quick)."""
        head = self.catalog.mirror_index_head()
        if not head.vectors:
            return False
        ann = AnnIndex(self.directory, head.vectors, head.dim)
        if head.live <= self.exact_rows:
            if ann.manifest_path.exists():
                ann.remove()
            return False
        vectors, _ = VectorFiles(self.directory, head.vectors, head.dim).open()

        def live_from(first: int) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]]:
            # The ranges the index has not settled, not every video's (a library of a million).
            snap = self.catalog.mirror_index_snapshot(from_row=first)
            if snap.vectors != head.vectors:
                raise SearchIndexError("the vector files changed during the refresh")  # one writer: never
            return _live_rows(snap)

        return ann.refresh(vectors, live_from, should_stop=should_stop)

    def set_text(self, video_id: str, *, name: str, paths: Sequence[str], collections: Collection[str],
                 metadata: str) -> None:
        text = (name, "\n".join(paths), "\n".join(sorted(collections)), metadata)
        if self._texts is not None and self._texts.get(video_id) == text:
            return
        self.catalog.mirror_fts_set(video_id, *text)  # compares with the stored row itself
        if self._texts is not None:
            self._texts[video_id] = text

    def read_texts(self, video_ids: Collection[str] | None) -> None:
        """Read the full-text rows of these videos (None: all) in one query, for ``set_text``
        to compare against; forgets those read before (a run's, so memory stays the run's)."""
        self._texts = self.catalog.mirror_fts_texts(video_ids)

    def drop(self, video_id: str) -> None:
        """Forget a video: its rows, segments and full text (its vectors become dead rows)."""
        self.catalog.mirror_drop_video(video_id)
        if self._texts is not None:
            self._texts.pop(video_id, None)

    # ----------------------------------------------------------------- reading
    def snapshot(self, video_ids: Collection[str] | None = None) -> IndexSnapshot:
        return self.catalog.mirror_index_snapshot(video_ids)

    def query(self, vector: Sequence[float] | Matrix, k: int,
              video_ids: Collection[str] | None = None) -> list[VectorHit]:
        """The ``k`` segments most cosine-similar to ``vector``, best first (ties: by row)."""
        if video_ids is None and k > 0 and not self._snap_current():
            hits = self._fresh_ann_query(vector, k)
            if hits is not None:
                return hits
        for _attempt in range(3):
            snap = self._snapshot(video_ids)
            if not snap.vectors or not snap.video_ids or k <= 0:
                return []
            try:
                matrix, norms = self._open(snap.vectors, snap.dim, snap.starts[-1] + snap.counts[-1],
                                           sum(snap.counts))  # ranges come in row order
                break
            except FileNotFoundError:
                continue  # compacted between the snapshot and the open: read again
        else:
            raise SearchIndexError("the search index changed during the query; try again")
        query = _unit(vector, snap.dim)
        if query is None:
            return []
        if sum(snap.counts) > self.exact_rows:
            try:
                hits = self._ann_top_k(matrix, norms, query, SnapshotRanges(snap), k)
            except AnnUnavailable as exc:
                log.debug("search: exact scan (%s)", exc)
                hits = None
            if hits is not None:
                self.last_method = "ann"
                return hits
        self.last_method = "exact"
        return _top_k(matrix, norms, query, snap, k)

    def _snap_current(self) -> bool:
        return self._snap is not None and self._snap[0] == self.catalog.mirror_index_version()

    def _fresh_ann_query(self, vector: Sequence[float] | Matrix, k: int) -> list[VectorHit] | None:
        """An unfiltered ANN query without reading every video's row range: the live
        totals, then the owners of the candidate rows only (an index seek each), so a
        one-shot ``syncd search`` costs the same at 1,000 or 1,000,000 videos. None: take
        the snapshot path (few rows: exact; no usable ANN index; compacted meanwhile)."""
        head = self.catalog.mirror_index_head()
        if not head.vectors or head.live <= self.exact_rows:
            return None
        try:
            matrix, norms = self._open(head.vectors, head.dim, head.end, head.live)
        except FileNotFoundError:
            return None
        query = _unit(vector, head.dim)
        if query is None:
            return []
        try:
            hits = self._ann_top_k(matrix, norms, query, CatalogRanges(self.catalog, head), k)
        except (AnnUnavailable, _Relocated) as exc:
            log.debug("search: the snapshot path (%s)", exc)
            return None
        if hits is not None:
            self.last_method = "ann"
        return hits

    def _snapshot(self, video_ids: Collection[str] | None) -> IndexSnapshot:
        """The catalog's live row ranges, read again only after a commit; a filter picks
        from them (one SQL query with thousands of ids costs more than a dict lookup each)."""
        version = self.catalog.mirror_index_version()
        if self._snap is None or self._snap[0] != version:
            full = self.catalog.mirror_index_snapshot()
            self._snap = (version, full, {v: i for i, v in enumerate(full.video_ids)})
        _, full, position = self._snap
        if video_ids is None:
            return full
        chosen = sorted(position[v] for v in video_ids if v in position)
        return IndexSnapshot(full.vectors, full.dim, tuple(full.video_ids[i] for i in chosen),
                             tuple(full.starts[i] for i in chosen), tuple(full.counts[i] for i in chosen))

    def _open(self, vectors: str, dim: int, needed: int, live: int) -> tuple[Matrix, Matrix]:
        """The mapped vector files, reused while they still hold the ``needed`` rows.
        Mapped whole up front (MAP_POPULATE) only for an exact scan: above ``exact_rows``
        an ANN re-rank reads a few hundred rows, and every process would otherwise read
        gigabytes first."""
        populate = live <= self.exact_rows
        for cached in (self._mapped, self._lazy if not populate else None):
            if cached is not None and cached[0] == vectors and cached[1].shape[0] >= needed:
                return cached[1], cached[2]
        matrix, norms = VectorFiles(self.directory, vectors, dim).open(populate=populate)
        if matrix.shape[0] < needed:
            raise SearchIndexError("the search index vectors are shorter than the catalog says; "
                                   "run `syncd sync` to repair them")
        if populate:
            self._mapped = (vectors, matrix, norms)
        else:
            self._lazy = (vectors, matrix, norms)
        return matrix, norms

    def _ann_top_k(self, matrix: Matrix, norms: Matrix, query: Matrix, ranges: LiveRanges,
                   k: int) -> list[VectorHit] | None:
        """Top ``k`` by ANN candidates re-ranked exactly; None: scan exactly instead (the
        filter admits too few of the indexed rows for over-fetching to pay)."""
        import numpy as np
        if self._ann is None or self._ann.base != ranges.vectors or self._ann.dim != ranges.dim:
            self._ann = AnnIndex(self.directory, ranges.vectors, ranges.dim)
        live = ranges.live
        is_live = ranges.is_live
        manifest = self._ann.views()[0]
        share = live / max(manifest.size(), 1)  # of the indexed rows, how many may answer
        if share * MAX_OVERFETCH < 1:
            return None
        # Rows appended since the last refresh are not in the ANN index: rank them exactly.
        tail = ranges.rows_from(manifest.rows)
        if len(tail) > EXACT_ROWS:
            return None
        fetch = math.ceil(max(k * RERANK, MIN_CANDIDATES) / min(share, 1.0))
        while True:
            manifest, found, more = self._ann.candidates(query, fetch)
            found = found[is_live(found)]
            if len(found) >= min(k, live - len(tail)):
                break
            if not more or fetch >= manifest.size():
                return None  # the graph gave no more: only a scan makes the top-k complete
            fetch *= 4  # the filter admitted fewer than expected: ask again, wider
        rows = np.unique(np.concatenate([found, ranges.rows_from(manifest.rows)]))
        if rows.size == 0:
            return []
        with np.errstate(divide="ignore", invalid="ignore"):
            row_norms = norms[rows]
            scores = np.where(row_norms > 0, (matrix[rows] @ query) / row_norms, 0.0).astype(np.float32)
        best = np.lexsort((rows, -scores))[:k]
        owners = ranges.owners(rows[best])
        return [VectorHit(video_id, int(row) - start, float(scores[b]))
                for b, row, (video_id, start) in zip(best, rows[best], owners, strict=True)]

    def text_query(self, text: str, k: int, video_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        """(video_id, score) by full text over names, paths, collections, metadata."""
        words = _WORD.findall(text.lower())
        if not words or k <= 0:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))
        return self.catalog.mirror_fts_search(match, k, video_ids)


def _top_k(matrix: Matrix, norms: Matrix, query: Matrix, snap: IndexSnapshot, k: int) -> list[VectorHit]:
    import numpy as np
    starts = np.array(snap.starts, dtype=np.int64)
    counts = np.array(snap.counts, dtype=np.int64)
    offsets = np.cumsum(counts) - counts  # where each range starts among the live rows
    live = int(counts.sum())
    if live == matrix.shape[0] and np.array_equal(starts, offsets):
        # Every row is live, in order (the common case): no gathering at all.
        scores, row_norms = matrix @ query, norms
    else:
        rows = np.arange(live, dtype=np.int64) + np.repeat(starts - offsets, counts)
        # Mostly live: one product over the whole mapped file beats gathering rows.
        scores = (matrix @ query)[rows] if live * 2 >= matrix.shape[0] else matrix[rows] @ query
        row_norms = norms[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(row_norms > 0, scores / row_norms, 0.0).astype(np.float32)
    k = min(k, live)
    best = np.argpartition(-scores, k - 1)[:k] if k < live else np.arange(live)
    best = best[np.lexsort((best, -scores[best]))]
    which = np.searchsorted(offsets, best, side="right") - 1
    return [
        VectorHit(snap.video_ids[w], int(pos - offsets[w]), float(scores[pos]))
        for pos, w in zip(best, which, strict=True)
    ]


class _Relocated(Exception):
    """The vector files changed generation during a query (compaction): row numbers moved."""


class LiveRanges(Protocol):
    """Which rows are live and whose they are: from a snapshot of every range, or asked of
    the catalog row by row (``CatalogRanges``)."""

    vectors: str
    dim: int
    live: int

    def is_live(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]: ...

    def rows_from(self, first: int) -> npt.NDArray[np.int64]: ...

    def owners(self, rows: npt.NDArray[np.int64]) -> list[tuple[str, int]]:
        """(video_id, its first row) of each row, all live."""
        ...


class SnapshotRanges:
    """Every live range, read at once (a long-running reader keeps it between commits)."""

    def __init__(self, snap: IndexSnapshot) -> None:
        assert snap.vectors is not None
        self.vectors, self.dim, self.live = snap.vectors, snap.dim, sum(snap.counts)
        self._snap = snap
        self.is_live = _live_rows(snap)

    def rows_from(self, first: int) -> npt.NDArray[np.int64]:
        return _rows_from(self._snap, first)

    def owners(self, rows: npt.NDArray[np.int64]) -> list[tuple[str, int]]:
        import numpy as np
        starts = np.asarray(self._snap.starts, dtype=np.int64)
        which = np.searchsorted(starts, rows, side="right") - 1
        return [(self._snap.video_ids[w], int(starts[w])) for w in which]


class CatalogRanges:
    """Live rows asked of the catalog for the candidates only: one batched statement per
    round of candidates (an index seek each), remembered for the rest of the query."""

    def __init__(self, catalog: Catalog, head: IndexHead) -> None:
        assert head.vectors is not None
        self.vectors, self.dim, self.live = head.vectors, head.dim, head.live
        self._catalog = catalog
        self._owners: dict[int, tuple[str, int] | None] = {}

    def _lookup(self, rows: npt.NDArray[np.int64]) -> None:
        unknown = [int(r) for r in rows if int(r) not in self._owners]
        if not unknown:
            return
        found = self._catalog.mirror_row_owners(self.vectors, unknown)
        if found is None:
            raise _Relocated(self.vectors)
        for row in unknown:
            self._owners[row] = found.get(row)

    def is_live(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        import numpy as np
        self._lookup(rows)
        return np.fromiter((self._owners[int(r)] is not None for r in rows), dtype=np.bool_, count=len(rows))

    def rows_from(self, first: int) -> npt.NDArray[np.int64]:
        import numpy as np
        ranges = self._catalog.mirror_ranges_from(first, EXACT_ROWS + 1)
        for video_id, start, count in ranges:  # their owners are known now
            for row in range(max(start, first), start + count):
                self._owners[row] = (video_id, start)
        pieces = [np.arange(max(s, first), s + c, dtype=np.int64) for _, s, c in ranges]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.int64)

    def owners(self, rows: npt.NDArray[np.int64]) -> list[tuple[str, int]]:
        self._lookup(rows)
        return [owner for r in rows if (owner := self._owners[int(r)]) is not None]


def _unit(vector: Sequence[float] | Matrix, dim: int) -> Matrix | None:
    """The query as a unit vector; None for a zero vector (nothing is similar to it)."""
    import numpy as np
    query = np.asarray(vector, dtype=np.float32)
    if query.shape != (dim,):
        raise SearchIndexError(f"query embedding has {query.size} dimensions, the index {dim}")
    length = float(np.linalg.norm(query))
    return None if length == 0.0 else query / length


def _live_rows(snap: IndexSnapshot) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]]:
    """A test of row numbers against the snapshot's live ranges."""
    import numpy as np
    starts = np.asarray(snap.starts, dtype=np.int64)
    ends = starts + np.asarray(snap.counts, dtype=np.int64)

    def is_live(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        which = np.searchsorted(starts, rows, side="right") - 1
        inside = which >= 0
        return inside & (rows < ends[np.where(inside, which, 0)])

    return is_live


def _rows_from(snap: IndexSnapshot, first: int) -> npt.NDArray[np.int64]:
    """Live rows numbered ``first`` or above."""
    import numpy as np
    pieces = [np.arange(max(s, first), s + c, dtype=np.int64)
              for s, c in zip(snap.starts, snap.counts, strict=True) if s + c > first]
    return np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
