"""Reading a local video's duration (for matching against the remote) and capture metadata
(sent at upload to a backend that takes it), with PyAV, imported only when called."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from syncd.models import Capture

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


# Container tags that hold the camera's model and the place (ISO 6709), as phones and
# cameras write them (QuickTime/MP4 user data read by FFmpeg).
_MODEL_TAGS = ("com.apple.quicktime.model", "com.android.model", "model", "camera_model")
_MAKE_TAGS = ("com.apple.quicktime.make", "com.android.manufacturer", "make")
_LOCATION_TAGS = ("com.apple.quicktime.location.ISO6709", "location", "location-eng")
_ISO6709 = re.compile(r"^\s*(?P<lat>[+-]\d+(?:\.\d+)?)(?P<lon>[+-]\d+(?:\.\d+)?)")


def probe_capture(path: Path) -> Capture:
    """When, with what and where ``path`` was shot: the container's ``creation_time`` (else
    the file's mtime), camera model and ISO 6709 location where its tags have them.
    PyAV is imported here, not when the sync path imports this module."""
    tags: dict[str, str] = {}
    try:
        import av

        with av.open(str(path)) as container:
            for stream in container.streams:
                tags.update({k: str(v) for k, v in stream.metadata.items()})
            tags.update({k: str(v) for k, v in container.metadata.items()})  # the container's win
    except Exception as exc:  # noqa: BLE001 - an unreadable file has no tags: mtime only
        log.debug("cannot read tags of %s: %s", path, exc)
    taken = parse_creation_time(tags.get("creation_time"))
    if taken is None:
        try:
            taken = path.stat().st_mtime
        except OSError:
            taken = None
    model = _first_tag(tags, _MODEL_TAGS)
    make = _first_tag(tags, _MAKE_TAGS)
    if model and make and not model.lower().startswith(make.lower()):
        model = f"{make} {model}"
    lat, lon = parse_iso6709(_first_tag(tags, _LOCATION_TAGS))
    return Capture(taken_at=taken, camera_model=model, latitude=lat, longitude=lon)


def _first_tag(tags: dict[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for name in names:
        value = lowered.get(name.lower(), "").strip()
        if value:
            return value
    return None


def parse_creation_time(value: str | None) -> float | None:
    """``2024-05-01T10:20:30.000000Z`` (FFmpeg's form) → Unix time; None if unreadable
    or the zero date some encoders write."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return None if when.year < 1971 else when.timestamp()


def parse_iso6709(value: str | None) -> tuple[float | None, float | None]:
    """``+48.8577+002.2950+035.000/`` → (48.8577, 2.295); (None, None) if absent or out of range."""
    match = _ISO6709.match(value or "")
    if match is None:
        return None, None
    lat, lon = float(match["lat"]), float(match["lon"])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return lat, lon
