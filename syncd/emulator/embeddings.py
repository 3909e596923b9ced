"""Deterministic, meaningful 1024-d embeddings.

* Every word (lowercased, split on non-alphanumerics) has a fixed pseudo-random unit vector
  seeded by a hash of the word, independent of any emulator setting.
* A text's embedding is the normalised sum of its words' vectors.
* A video segment's embedding is the normalised sum of the video name's word vectors, the
  vectors of a synthetic per-segment caption (a few words from ``VOCABULARY`` drawn from a
  hash of ``video_id`` + segment index) and a small per-segment noise vector.

So a query sharing words with a video's name lands nearer that video's segments, and one
sharing caption words lands nearest the segments with those captions. Captions are exposed
by the admin API so tests can compute the expected best hit.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DIM = 1024
CAPTION_WORDS = 3
NOISE_WEIGHT = 0.35

VOCABULARY = (
    "forklift", "loading", "dock", "gate", "person", "truck", "pallet", "door", "car",
    "night", "rain", "worker", "helmet", "van", "parking", "fence", "shelf", "box",
    "corridor", "bicycle", "dog", "smoke", "crowd", "ladder",
)

_WORD = re.compile(r"[a-z0-9]+")

Vector = npt.NDArray[np.float64]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _seed(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big")


def _unit(seed_label: str, dim: int = DIM) -> Vector:
    vec = np.random.default_rng(_seed(seed_label)).standard_normal(dim)
    return vec / np.linalg.norm(vec)


def _normalise(vec: Vector) -> Vector:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def hhmmss(seconds: float) -> str:
    total = int(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def to_json(vec: Vector) -> list[float]:
    """Rounded for compact JSON; cosine ranking is unaffected at this precision."""
    return [round(float(x), 6) for x in vec]


@dataclass(frozen=True)
class Segment:
    index: int
    segment_id: str
    start: float
    end: float
    caption: str
    vector: Vector

    @property
    def start_hms(self) -> str:
        return hhmmss(self.start)

    @property
    def end_hms(self) -> str:
        # Round the end up so a 12.5 s video's last segment ends at 00:00:13, never before it.
        return hhmmss(math.ceil(self.end))


class Embedder:
    """Word-vector cache plus per-video segment cache (bounded)."""

    def __init__(self, max_videos: int = 512, dim: int = DIM) -> None:
        self._lock = threading.Lock()
        self.dim = dim
        self._words: dict[str, Vector] = {}
        self._videos: OrderedDict[tuple[str, str, float, float], list[Segment]] = OrderedDict()
        self._max_videos = max_videos

    def set_dim(self, dim: int) -> None:
        """Another embedding backend server-side (the doc's EMBED_BACKEND): every vector
        from now on has ``dim`` dimensions."""
        with self._lock:
            self.dim = dim
            self._words.clear()
            self._videos.clear()

    def word(self, word: str) -> Vector:
        with self._lock:
            vec = self._words.get(word)
        if vec is None:
            vec = _unit(f"word:{word}", self.dim)
            with self._lock:
                if len(self._words) > 50_000:
                    self._words.clear()
                self._words[word] = vec
        return vec

    def text(self, text: str) -> Vector:
        tokens = words(text)
        if not tokens:
            # No alphanumerics at all: still deterministic, just unrelated to everything.
            return _unit(f"text:{text}", self.dim)
        return _normalise(np.sum([self.word(w) for w in tokens], axis=0))

    @staticmethod
    def caption(video_id: str, index: int) -> str:
        rng = np.random.default_rng(_seed(f"caption:{video_id}:{index}"))
        picked = rng.choice(len(VOCABULARY), size=CAPTION_WORDS, replace=False)
        return " ".join(VOCABULARY[i] for i in picked)

    def segments(self, video_id: str, name: str, duration: float,
                 segment_seconds: float) -> list[Segment]:
        """One segment per ``segment_seconds`` of ``duration`` (at least one)."""
        key = (video_id, name, float(duration), float(segment_seconds))
        with self._lock:
            cached = self._videos.get(key)
            if cached is not None:
                self._videos.move_to_end(key)
                return cached
        count = max(1, math.ceil(duration / segment_seconds - 1e-9))
        name_vec = np.sum([self.word(w) for w in words(name)] or [np.zeros(self.dim)], axis=0)
        out: list[Segment] = []
        for i in range(count):
            caption = self.caption(video_id, i)
            vec = name_vec + np.sum([self.word(w) for w in caption.split()], axis=0)
            vec = vec + NOISE_WEIGHT * _unit(f"noise:{video_id}:{i}", self.dim)
            start = i * segment_seconds
            end = min((i + 1) * segment_seconds, max(duration, start))
            out.append(Segment(i, str(uuid.uuid5(uuid.UUID(video_id), f"segment-{i}")),
                               start, end, caption, _normalise(vec)))
        with self._lock:
            self._videos[key] = out
            while len(self._videos) > self._max_videos:
                self._videos.popitem(last=False)
        return out

    def forget(self, video_id: str) -> None:
        with self._lock:
            for key in [k for k in self._videos if k[0] == video_id]:
                del self._videos[key]


def projection(vectors: Vector) -> Vector:
    """Deterministic 2-D projection onto two fixed random directions, min-max scaled to [0, 1].

    Stands in for the service's UMAP; only the output contract (x, y in [0, 1]) matters.
    """
    dim = vectors.shape[1]
    axes = np.stack([_unit("projection:x", dim), _unit("projection:y", dim)], axis=1)
    points = vectors @ axes
    lo = points.min(axis=0)
    span = points.max(axis=0) - lo
    span[span == 0] = 1.0
    scaled = (points - lo) / span
    scaled[:, points.max(axis=0) - lo == 0] = 0.5
    return np.asarray(scaled, dtype=np.float64)
