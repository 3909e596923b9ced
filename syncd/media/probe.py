"""Reading a local video's duration (PyAV), for matching against the remote."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("syncd.media.probe")


def probe_duration(path: Path) -> float | None:
    """Seconds, or None when the file is not a readable video."""
    try:
        import av

        with av.open(str(path)) as container:
            if container.duration is not None:
                return float(container.duration) / av.time_base
            stream = container.streams.video[0] if container.streams.video else None
            if stream is not None and stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except Exception as exc:  # noqa: BLE001 - any decoder error means "unknown"
        log.debug("cannot probe %s: %s", path, exc)
    return None
