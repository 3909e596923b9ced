"""Generate short real video clips (H.264 MP4) with PyAV, for the demo and tests."""

from __future__ import annotations

import os
import random
from pathlib import Path

import av
import numpy as np


def make_clip(path: Path, *, seconds: float = 2.0, width: int = 160, height: int = 120,
              fps: int = 10, seed: int = 0, keyframe_every: int | None = None,
              tags: dict[str, str] | None = None) -> Path:
    """Write a clip of moving coloured bars; ``seed`` makes each clip's bytes distinct;
    ``keyframe_every`` frames a keyframe (else the encoder's default, a few per clip at most);
    ``tags``: container metadata (e.g. ``creation_time``, ``location``, ``model``).

    Written to a temporary name and renamed, so a watcher never sees half a clip.
    """
    rng = random.Random(seed)
    base = np.array([rng.randrange(256) for _ in range(3)], dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "use_metadata_tags"} if tags else None) as container:
        container.metadata.update(tags or {})
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if keyframe_every:
            stream.gop_size = keyframe_every
        xs = np.arange(width)
        for i in range(max(1, int(seconds * fps))):
            bars = ((xs + i * 4 + seed * 7) // 16 % 2 * 80).astype(np.uint8)
            frame = np.empty((height, width, 3), dtype=np.uint8)
            frame[:] = base
            frame[:, :, i % 3] = bars
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path
