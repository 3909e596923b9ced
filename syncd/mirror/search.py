"""Search every mirrored video: locally by vector or full text, or through the remote.

* ``search_local``: the query is embedded once through the remote's text-embedding
  endpoint and cached in the catalog (keyed by backend URL and exact text), so a
  repeated query costs no credit and needs no network; segments are ranked by cosine
  similarity across every mirrored video (``index.SearchIndex.query``).
* ``search_offline``: full text only (names, paths, collections, metadata); never
  touches the remote. A hit is a whole video.
* ``search_remote``: the remote's own search over the same videos, for comparison (a
  backend that searches its whole library also finds videos with no local file).

Filters (collection, folder) select videos by their mirrored local files.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from syncd.store.catalog import Catalog
from syncd.config import RemoteConfig
from syncd.mirror.index import SearchIndex
from syncd.store.records import MirrorFile
from syncd.remote.base import Remote, format_timestamp, need

REMOTE_MAX_TOP_K = 100  # the remote's documented top_k ceiling


@dataclass(frozen=True)
class SearchFilter:
    collection: str | None = None
    folder: Path | None = None  # absolute; a watched folder or any directory inside one

    def accepts(self, file: MirrorFile) -> bool:
        in_collection = self.collection is None or file.collection == self.collection
        return in_collection and (self.folder is None or file.path.is_relative_to(self.folder))


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float | None  # cosine similarity (vector); full text: -bm25 over the best hit's (1.0 best); None (remote)
    video_id: str
    path: str | None  # the local file shown (first one the filter accepts)
    paths: tuple[str, ...]  # every local file holding the video
    start: float
    end: float
    collection: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": self.score,
            "path": self.path,
            "paths": list(self.paths),
            "video_id": self.video_id,
            "start": self.start,
            "end": self.end,
            "collection": self.collection,
        }


class _Files:
    """Mirrored files by video, and which videos a filter admits."""

    def __init__(self, catalog: Catalog, wanted: SearchFilter) -> None:
        self.by_video: dict[str, list[MirrorFile]] = defaultdict(list)
        for file in catalog.mirror_files():
            if wanted.accepts(file):
                self.by_video[file.video_id].append(file)
        self.filtered = wanted.collection is not None or wanted.folder is not None

    @property
    def allowed(self) -> set[str] | None:
        """None: every indexed video (no filter)."""
        return set(self.by_video) if self.filtered else None

    def hit(self, rank: int, score: float | None, video_id: str, start: float, end: float) -> Hit:
        files = self.by_video.get(video_id, [])
        first = files[0] if files else None
        return Hit(rank, score, video_id, str(first.path) if first else None, tuple(str(f.path) for f in files),
                   start, end, first.collection if first else None)


def query_vector(catalog: Catalog, source: str, text: str,
                 embed: Callable[[str], Sequence[float]], dim: int = 0) -> npt.NDArray[np.float32]:
    """The query's embedding from the cache, else from ``embed`` (one remote call, cached).
    A cached vector of another length than the index's ``dim`` (the remote's embedder
    changed) is fetched again."""
    key = " ".join(text.split())
    cached = catalog.query_embedding(source, key)
    if cached is not None and (not dim or len(cached) == 4 * dim):
        return np.frombuffer(cached, dtype="<f4").copy()
    vector = np.asarray(embed(key), dtype="<f4")
    catalog.set_query_embedding(source, key, vector.tobytes(), time.time())
    return vector


def search_local(catalog: Catalog, index: SearchIndex, vector: npt.NDArray[np.float32], top_k: int,
                 wanted: SearchFilter = SearchFilter()) -> list[Hit]:
    files = _Files(catalog, wanted)
    allowed = files.allowed
    if allowed is not None and not allowed:
        return []
    found = index.query(vector, top_k, allowed)
    segments = catalog.mirror_segments_at((h.video_id, h.index) for h in found)
    hits = []
    for rank, h in enumerate(found, start=1):
        seg = segments.get((h.video_id, h.index))
        hits.append(files.hit(rank, round(h.score, 6), h.video_id, seg.start if seg else 0.0, seg.end if seg else 0.0))
    return hits


def search_offline(catalog: Catalog, index: SearchIndex, text: str, top_k: int,
                   wanted: SearchFilter = SearchFilter()) -> list[Hit]:
    files = _Files(catalog, wanted)
    allowed = files.allowed
    if allowed is not None and not allowed:
        return []
    hits = []
    found = index.text_query(text, top_k, allowed)
    # bm25 of a small library is a tiny number (0.0000 printed): relative to the best hit, it says something.
    best = max((score for _, score in found), default=0.0)
    for rank, (video_id, score) in enumerate(found, start=1):
        video = catalog.mirror_video(video_id)
        facts = json.loads(video.details) if video and video.details else {}
        relative = round(score / best, 4) if best > 0 else 1.0
        hits.append(files.hit(rank, relative, video_id, 0.0, float(facts.get("duration_seconds") or 0.0)))
    return hits


def search_remote(catalog: Catalog, remote: Remote, text: str, top_k: int,
                  wanted: SearchFilter = SearchFilter()) -> list[Hit]:
    """The remote's search. Unfiltered, on a backend that searches its whole library, it
    can find videos with no local file: such a hit has no path (shown as remote only).
    A video the catalog holds but has not mirrored yet is shown at its catalog files."""
    files = _Files(catalog, wanted)
    features = remote.features()
    searcher = need(remote, features.search, "search on the remote")
    whole_library = features.search_library and not files.filtered
    video_ids = [] if whole_library else sorted(files.by_video)
    if not video_ids and not whole_library:
        return []
    found = searcher.search(text, video_ids, top_k=min(top_k, REMOTE_MAX_TOP_K))
    hits = []
    for rank, h in enumerate(found, start=1):
        hit = files.hit(rank, None, h.video_id, h.start, h.end)
        if hit.path is None:
            paths = _catalog_paths(catalog, h.video_id)
            hit = replace(hit, path=paths[0] if paths else None, paths=tuple(paths))
        hits.append(hit)
    return hits


def _catalog_paths(catalog: Catalog, video_id: str) -> list[str]:
    """The present local files holding a video, by the catalog (none: remote only)."""
    content = catalog.content_for_video(video_id)
    if content is None:
        return []
    return sorted(str(f.path) for f in catalog.files_of(content.sha256) if f.present)


def embed_text(remote: Remote, text: str) -> list[float]:
    """A query's embedding, by the remote's embeddings feature."""
    embeddings = need(remote, remote.features().embeddings,
                      "embed a search query (it has no segment embeddings): search with --offline "
                      "(full text over the mirrored metadata) or --remote (its own search)")
    return embeddings.embed_text(text)


def format_hits(hits: Sequence[Hit]) -> list[str]:
    """The table ``syncd search`` prints: rank, score, segment start-end, collection, path."""
    lines = [f"{'#':>3}  {'SCORE':>8}  {'SEGMENT':<17}  {'COLLECTION':<16}  PATH"]
    for h in hits:
        score = "-" if h.score is None else f"{h.score:.4f}"
        span = f"{format_timestamp(h.start)}-{format_timestamp(h.end)}"
        more = f"  (+{len(h.paths) - 1} more)" if len(h.paths) > 1 else ""
        where = h.path or f"(remote only: video {h.video_id})"
        lines.append(f"{h.rank:>3}  {score:>8}  {span:<17}  {h.collection or '-':<16}  {where}{more}")
    return lines


def query_source(remote: RemoteConfig) -> str:
    """The cache key's first half: a query's embedding depends on the backend it came from."""
    return f"{remote.backend} {remote.base_url}"


def folder_argument(value: str) -> Path:
    return Path(os.path.normpath(os.path.abspath(value)))


def run_search(catalog: Catalog, index: SearchIndex, query: str, *, mode: str, top_k: int,
               wanted: SearchFilter, source: str, open_remote: Callable[[], Remote]) -> list[Hit]:
    """``syncd search``: mode ``local`` (vector), ``offline`` (full text) or ``remote``.

    The remote is opened only when needed: never offline, and locally only when the
    query's embedding is not cached yet.
    """
    if mode == "offline":
        return search_offline(catalog, index, query, top_k, wanted)
    opened: list[Remote] = []

    def remote() -> Remote:
        if not opened:
            opened.append(open_remote())
        return opened[0]

    try:
        if mode == "remote":
            return search_remote(catalog, remote(), query, top_k, wanted)
        vector = query_vector(catalog, source, query, lambda text: embed_text(remote(), text), index.dim())
        return search_local(catalog, index, vector, top_k, wanted)
    finally:
        for r in opened:
            r.close()
