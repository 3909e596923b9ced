"""HLS renditions of stored videos: MPEG-TS segments cut by PyAV's (FFmpeg's) HLS muxer.

What an HLS service serves a player: a master playlist naming a media playlist, which
lists MPEG-TS segments (a VOD playlist, ``EXT-X-VERSION:3``: no fMP4). The emulator makes
a video's rendition on its first request by stream copy from the stored object (no
re-encoding, so it is quick): segments start at keyframes and last about
``SEGMENT_SECONDS`` (longer where the source's keyframes are further apart). It is kept
under ``data_dir/hls/<video_id>/`` until the video is deleted through the API.

An object PyAV cannot read as a video, or whose codecs MPEG-TS cannot carry, has no
rendition (``NotPlayable``): the real service would not have transcoded it either.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 2
MEDIA_PLAYLIST = "index.m3u8"
SEGMENT = re.compile(r"^segment-\d{1,6}\.ts$")  # the names the muxer is told to write


class NotPlayable(Exception):
    """The stored object has no HLS rendition (not a video PyAV reads, or not remuxable)."""


def rendition_dir(data_dir: Path, video_id: str) -> Path:
    return data_dir / "hls" / video_id


def remove(data_dir: Path, video_id: str) -> None:
    """Forget a video's rendition (the doc: deleting a video removes its HLS segments)."""
    shutil.rmtree(rendition_dir(data_dir, video_id), ignore_errors=True)


def ensure(data_dir: Path, video_id: str, source: Path) -> Path:
    """The directory holding ``index.m3u8`` and its segments, made from ``source`` if missing.

    Made in a scratch directory and renamed into place, so a reader never sees half a
    rendition; of two concurrent first requests, the second rename loses and is dropped.
    """
    target = rendition_dir(data_dir, video_id)
    if (target / MEDIA_PLAYLIST).is_file():
        return target
    scratch = target.parent / f".tmp-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    try:
        _remux(source, scratch)
        try:
            os.replace(scratch, target)
        except OSError:  # another request put it there first
            if not (target / MEDIA_PLAYLIST).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _remux(source: Path, out_dir: Path) -> None:
    import av  # imported lazily: only needed once a player asks

    options = {"hls_time": str(SEGMENT_SECONDS), "hls_playlist_type": "vod",
               "hls_segment_filename": str(out_dir / "segment-%d.ts")}
    try:
        with av.open(str(source)) as inp:
            if not inp.streams.video:
                raise NotPlayable("no video stream")
            streams = [s for s in inp.streams if s.type in ("video", "audio")]
            with av.open(str(out_dir / MEDIA_PLAYLIST), "w", format="hls", options=options) as out:
                copies = {s.index: out.add_stream_from_template(s) for s in streams}
                for packet in inp.demux(*streams):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.stream = copies[packet.stream.index]
                    out.mux(packet)
    except (av.FFmpegError, ValueError) as exc:
        log.debug("no HLS rendition of %s: %s", source.name, exc)
        raise NotPlayable(str(exc)) from None


def media_playlist(rendition: Path, url_of: Callable[[str], str]) -> str:
    """The media playlist with each segment named by ``url_of(segment name)``."""
    lines = (rendition / MEDIA_PLAYLIST).read_text().splitlines()
    return "".join((url_of(line) if line and not line.startswith("#") else line) + "\n" for line in lines)


def segment_path(rendition: Path, name: str) -> Path | None:
    """A segment of the rendition by its bare name; None for any other name."""
    path = rendition / name
    return path if SEGMENT.match(name) and path.is_file() else None
