"""The approximate-nearest-neighbour index over one generation of vector files (usearch).

Why usearch: one small wheel, HNSW with int8 storage (1 byte a dimension instead of 4),
``Index.view`` memory-maps a saved index (a reader loads nothing into RAM), and keys can
be added and removed after the build. The float32 rows stay the truth: the ANN index only
proposes candidates, which ``SearchIndex`` re-ranks exactly against the float32 file.

Keys are row numbers of the vector file (``vectors-N.f32``). The index of generation N is
a set of files named by a manifest, ``vectors-N.ann.json``:

* **shards**: sealed, immutable indexes over consecutive rows (at most ``SHARD_ROWS``
  each), memory-mapped by readers and never loaded whole except to merge a delta in;
* **delta**: the newest rows (fewer than ``DELTA_ROWS``), small enough that the writer
  loads, changes and saves it on every refresh;
* **projection**: the vectors' main directions (``PROJECTED_SHARE`` of the dimensions,
  fitted once per generation on a sample of its rows). int8 alone is exactly 1/4 of
  float32 and the HNSW graph adds ~150 bytes a vector; projected to 3/4 of the
  dimensions the index is ~0.22 of the float32 matrix, and the exact re-rank undoes
  what the projection blurs.

Every file is written under a new name and then the manifest is replaced (temp file +
rename), so a reader sees the old set or the new one, and a crash leaves the old set plus
unreferenced files (deleted on the next refresh). Rows that died (a video dropped or
re-pulled) are removed from the delta; in sealed shards they stay until the vector files
are compacted into a new generation (its index is built afresh), and readers skip them,
because the catalog, not this index, says which rows are live.

A manifest that is missing, unreadable or names a bad file means "no index": readers
fall back to exact search, and the next refresh rebuilds from the vector files.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncd.mirror.atomic import fsync_dir

# numpy (~0.1 CPU-s at start-up) is imported by the methods that compute with it: a process
# that never builds or searches the index does not load it (tests/test_startup.py).
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from usearch.index import Index

    Rows = npt.NDArray[np.int64]
    Matrix = npt.NDArray[np.float32]
    IsLive = Callable[[Rows], npt.NDArray[np.bool_]]

log = logging.getLogger("syncd.mirror")

SHARD_ROWS = 1 << 20  # a sealed shard's rows: ~1.2 GB in RAM while it is built or merged into
DELTA_ROWS = 1 << 16  # the open delta is sealed (merged into the last shard) past this many rows
CONNECTIVITY = 16  # HNSW "M"
# HNSW "efConstruction". Clustered vectors (a video's segments are near-duplicates) need a
# well-connected graph: at 200,000 segments recall@10 was 0.84 with 64 and 0.996 with 128
# (build 2.2x slower); at 2,000,000 with 64 it was 0.70 (docs/performance-scale.md).
EXPANSION_ADD = 128
EXPANSION_SEARCH = 64  # HNSW "ef" (a search asks for more than this many: usearch widens it)
ADD_CHUNK = 8192  # rows read from the vector file and added at a time
PROJECTED_SHARE = 0.75  # dimensions kept by the projection
PROJECTION_SAMPLE = 50_000  # rows the projection is fitted on (at most)
FORMAT = 1


class AnnUnavailable(Exception):
    """No usable index (missing, corrupt, another dimension): search exactly instead."""


@dataclass
class Part:
    file: str  # file name in the search directory
    start: int  # first row it covers
    end: int  # one past the last row it covers (rows in between may be dead, i.e. absent)
    size: int  # vectors it holds


@dataclass
class Manifest:
    dim: int
    ndim: int = 0  # the index's dimensions (the projection's); 0 = ``dim``
    projection: str = ""  # .npy file: dim x ndim float32; "" = none (too few rows when fitted)
    rows: int = 0  # rows [0, rows) of the vector file were considered (live ones are indexed)
    shards: list[Part] = field(default_factory=list)
    delta: Part | None = None
    format: int = FORMAT

    def parts(self) -> list[Part]:
        return self.shards + ([self.delta] if self.delta else [])

    def size(self) -> int:
        return sum(p.size for p in self.parts())

    @staticmethod
    def parse(text: str) -> Manifest:
        raw = json.loads(text)
        if raw.get("format") != FORMAT:
            raise ValueError(f"unknown index format {raw.get('format')!r}")
        delta = Part(**raw["delta"]) if raw.get("delta") else None
        return Manifest(int(raw["dim"]), int(raw["ndim"]), str(raw["projection"]), int(raw["rows"]),
                        [Part(**p) for p in raw["shards"]], delta)


def _new_index(dim: int) -> Index:
    from usearch.index import Index

    return Index(ndim=dim, metric="cos", dtype="i8", connectivity=CONNECTIVITY,
                 expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)


def _open_part(path: Path, part: Part, dim: int, *, view: bool) -> Index:
    """A saved part, mapped (``view``) or loaded; AnnUnavailable if it is not what the manifest says."""
    from usearch.index import Index

    try:
        meta = Index.metadata(path)
        if not meta or meta.get("dimensions") != dim:
            raise AnnUnavailable(f"{path.name}: not an index of {dim} dimensions")
        index = Index(ndim=dim, metric="cos", dtype="i8", connectivity=CONNECTIVITY,
                      expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
        if view:
            index.view(os.fspath(path))
        else:
            index.load(os.fspath(path))
    except AnnUnavailable:
        raise
    except Exception as exc:  # usearch raises RuntimeError/ValueError on a torn or foreign file
        raise AnnUnavailable(f"{path.name}: {exc}") from exc
    if len(index) != part.size:
        raise AnnUnavailable(f"{path.name}: holds {len(index)} vectors, the manifest says {part.size}")
    return index


class AnnIndex:
    """The ANN files of one vector generation (``base``, e.g. ``vectors-3``)."""

    def __init__(self, directory: Path, base: str, dim: int) -> None:
        self.directory, self.base, self.dim = directory, base, dim
        self.manifest_path = directory / f"{base}.ann.json"
        # (manifest text, manifest, projection, mapped parts), kept across queries
        self._views: tuple[str, Manifest, Matrix | None, list[tuple[Part, Index]]] | None = None

    # ----------------------------------------------------------------- reading
    def read_manifest(self) -> Manifest:
        return self._parse(self._manifest_text())

    def _manifest_text(self) -> str:
        try:
            return self.manifest_path.read_text()
        except FileNotFoundError as exc:
            raise AnnUnavailable("no index yet") from exc

    def _parse(self, text: str) -> Manifest:
        try:
            manifest = Manifest.parse(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise AnnUnavailable(f"{self.manifest_path.name}: {exc}") from exc
        if manifest.dim != self.dim:
            raise AnnUnavailable(f"index of {manifest.dim} dimensions, vectors of {self.dim}")
        return manifest

    def views(self) -> tuple[Manifest, Matrix | None, list[tuple[Part, Index]]]:
        """The current parts, memory-mapped, and the projection; kept while the manifest stays the same."""
        for attempt in range(2):
            text = self._manifest_text()
            if self._views is not None and self._views[0] == text:
                return self._views[1:]
            manifest = self._parse(text)
            try:
                projection = self._load_projection(manifest)
                parts = [(p, _open_part(self.directory / p.file, p, manifest.ndim, view=True))
                         for p in manifest.parts()]
            except AnnUnavailable:
                if attempt or self._manifest_text() == text:
                    raise
                continue  # the writer replaced a file between our reads: read the new manifest
            self._views = (text, manifest, projection, parts)
            return manifest, projection, parts
        raise AnnUnavailable("the index kept changing")

    def _load_projection(self, manifest: Manifest) -> Matrix | None:
        import numpy as np
        if not manifest.projection:
            return None
        try:
            projection = np.load(self.directory / manifest.projection)
        except (OSError, ValueError) as exc:
            raise AnnUnavailable(f"{manifest.projection}: {exc}") from exc
        if projection.shape != (self.dim, manifest.ndim) or projection.dtype != np.float32:
            raise AnnUnavailable(f"{manifest.projection}: not a {self.dim} x {manifest.ndim} projection")
        return np.asarray(projection)

    def candidates(self, query: Matrix, count: int) -> tuple[Manifest, Rows, bool]:
        """Up to ``count`` rows from every part, nearest first by the int8 vectors; and
        whether some part may hold more (it returned all ``count`` asked for)."""
        import numpy as np
        manifest, projection, parts = self.views()
        if projection is not None:
            query = query @ projection
        found: list[Rows] = []
        more = False
        for part, index in parts:
            if part.size == 0:
                continue
            if count >= part.size:
                # All of it: a graph walk may not reach every node, the key list does.
                found.append(np.asarray(index.keys, dtype=np.int64))
                continue
            keys = np.asarray(index.search(query, count, threads=1).keys, dtype=np.int64)
            found.append(keys)
            more = more or len(keys) >= count
        rows = np.concatenate(found) if found else np.zeros(0, np.int64)
        return manifest, rows, more

    # ----------------------------------------------------------------- writing
    def refresh(self, vectors: Matrix, live_from: Callable[[int], IsLive], *,
                should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Bring the index up to ``vectors`` (the generation's rows): add live rows not yet
        indexed, drop dead ones from the delta, seal a full delta. A missing or corrupt
        index is rebuilt. True if anything changed. ``live_from(first)``: a test of which
        rows numbered ``first`` or above are live. Sealed shards are not asked about (a
        query drops their dead rows), so a refresh reads the live ranges from the delta's
        first row on, not every video's: ``live_from(0)`` only for a rebuild."""
        import numpy as np
        self._views = None
        try:
            manifest = self.read_manifest()
            if manifest.rows > vectors.shape[0]:
                raise AnnUnavailable("the index names rows the vector file does not have")
            for shard in manifest.shards:  # mapping checks a sealed shard without reading it
                _open_part(self.directory / shard.file, shard, manifest.ndim, view=True).reset()
            projection = self._load_projection(manifest)
            delta = (_open_part(self.directory / manifest.delta.file, manifest.delta, manifest.ndim, view=False)
                     if manifest.delta else None)
            is_live = live_from(min(manifest.rows, manifest.delta.start if manifest.delta else manifest.rows))
        except AnnUnavailable as exc:
            if self.manifest_path.exists():
                log.warning("search index %s is unusable (%s); rebuilding it from the vector files",
                            self.manifest_path.name, exc)
            is_live = live_from(0)
            manifest, projection, delta = self._fresh(vectors, is_live), None, None
            if manifest.projection:
                projection = self._load_projection(manifest)
        project = (lambda m: np.ascontiguousarray(m)) if projection is None else (lambda m: m @ projection)
        changed = False
        if delta is not None and manifest.delta is not None:
            keys = np.asarray(delta.keys, dtype=np.int64)
            dead = keys[~is_live(keys)] if len(keys) else keys
            if len(dead):
                delta.remove(dead.astype(np.uint64))
                manifest.delta.size = len(delta)
                changed = True
        start = manifest.rows
        for first in range(start, vectors.shape[0], ADD_CHUNK):
            if should_stop():
                break
            rows = np.arange(first, min(first + ADD_CHUNK, vectors.shape[0]), dtype=np.int64)
            rows = rows[is_live(rows)]
            if delta is None:
                delta = _new_index(manifest.ndim)
                manifest.delta = Part("", first, first, 0)
            assert manifest.delta is not None
            if len(rows):
                delta.add(rows.astype(np.uint64), project(vectors[rows]))
            manifest.delta.end = manifest.rows = min(first + ADD_CHUNK, vectors.shape[0])
            manifest.delta.size = len(delta)
            changed = True
            if manifest.delta.end - manifest.delta.start >= SHARD_ROWS:
                self._seal(manifest, delta, vectors, project, merge=False)  # a bulk build: shard by shard
                delta = None
        if delta is not None and manifest.delta is not None and changed:
            if manifest.delta.end - manifest.delta.start >= DELTA_ROWS:
                self._seal(manifest, delta, vectors, project, merge=True)
            else:
                old = manifest.delta.file
                manifest.delta.file = self._save(delta)
                self._write_manifest(manifest, retire=[old])
        self.remove_unlisted()
        return changed

    def _fresh(self, vectors: Matrix, is_live: IsLive) -> Manifest:
        """An empty manifest, with a projection fitted on a sample of the live rows (none
        with too few rows to say which directions matter)."""
        import numpy as np
        self.remove()
        manifest = Manifest(self.dim, self.dim)
        rows = np.linspace(0, vectors.shape[0] - 1, min(PROJECTION_SAMPLE, vectors.shape[0])).astype(np.int64)
        rows = np.unique(rows[is_live(rows)]) if len(rows) else rows
        ndim = max(1, int(self.dim * PROJECTED_SHARE))
        if len(rows) >= 4 * self.dim:
            sample = np.asarray(vectors[rows], dtype=np.float64)
            sample /= np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
            _, directions = np.linalg.eigh(sample.T @ sample)  # uncentred: cosine is about the origin
            projection = np.ascontiguousarray(directions[:, ::-1][:, :ndim], dtype=np.float32)
            manifest.ndim, manifest.projection = ndim, self._save_array(projection)
        self._write_manifest(manifest)
        return manifest

    def _save_array(self, array: Matrix) -> str:
        import numpy as np
        name = f"{self.base}.ann-{uuid.uuid4().hex[:12]}.npy"
        tmp = self.directory / f"{name}.tmp"
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / name)
        return name

    def _seal(self, manifest: Manifest, delta: Index, vectors: Matrix, project: Callable[[Matrix], Matrix], *,
              merge: bool) -> None:
        """Turn the delta into a sealed shard, merged into the last shard if it has room."""
        import numpy as np
        assert manifest.delta is not None
        old_delta = manifest.delta.file
        last = manifest.shards[-1] if manifest.shards else None
        if merge and last is not None and last.end == manifest.delta.start \
                and (manifest.delta.end - last.start) <= SHARD_ROWS:
            shard = _open_part(self.directory / last.file, last, manifest.ndim, view=False)
            keys = np.sort(np.asarray(delta.keys, dtype=np.int64))
            for i in range(0, len(keys), ADD_CHUNK):
                chunk = keys[i:i + ADD_CHUNK]
                shard.add(chunk.astype(np.uint64), project(vectors[chunk]))
            merged = Part(self._save(shard), last.start, manifest.delta.end, len(shard))
            manifest.shards[-1], manifest.delta = merged, None
            self._write_manifest(manifest, retire=[old_delta, last.file])
            return
        manifest.shards.append(Part(self._save(delta), manifest.delta.start, manifest.delta.end, len(delta)))
        manifest.delta = None
        self._write_manifest(manifest, retire=[old_delta])

    def _save(self, index: Index) -> str:
        """Save under a new name (never over a file a reader may have mapped)."""
        name = f"{self.base}.ann-{uuid.uuid4().hex[:12]}.usearch"
        tmp = self.directory / f"{name}.tmp"
        index.save(os.fspath(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / name)
        return name

    def _write_manifest(self, manifest: Manifest, retire: Sequence[str] = ()) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        payload: dict[str, Any] = asdict(manifest)
        with open(tmp, "w") as fh:
            json.dump(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.manifest_path)
        fsync_dir(self.directory)
        for name in retire:
            if name:
                (self.directory / name).unlink(missing_ok=True)  # a reader's mapping outlives the name

    def remove_unlisted(self) -> None:
        """Delete this generation's index files the manifest does not name (a crash's leftovers)."""
        try:
            manifest = self.read_manifest()
            listed = {p.file for p in manifest.parts()} | {manifest.projection}
        except AnnUnavailable:
            listed = set()
        for path in self._files():
            if path.name not in listed:
                path.unlink(missing_ok=True)

    def _files(self) -> Iterator[Path]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(f"{self.base}.ann-"):
                yield self.directory / name

    def remove(self) -> None:
        for path in list(self._files()):
            path.unlink(missing_ok=True)
        self.manifest_path.unlink(missing_ok=True)
        self._views = None

    def nbytes(self) -> int:
        """Bytes on disk of the files the manifest names."""
        manifest = self.read_manifest()
        files = [p.file for p in manifest.parts()] + ([manifest.projection] if manifest.projection else [])
        return sum((self.directory / name).stat().st_size for name in files)
