"""Which pipeline attempts are doomed to fail.

A video whose name matches ``fail_name_glob`` always fails ``fail_pipeline``. Otherwise
each attempt fails with probability ``fail_share``, drawn from a hash of (seed, video id,
pipeline, attempt): reproducible, independent of request order, and a re-initiated attempt
gets a fresh draw so it can succeed.
"""

from __future__ import annotations

import fnmatch
import hashlib

from syncd.emulator.mikshi.config import EmulatorConfig


def doom(config: EmulatorConfig, video_id: str, name: str, pipeline: str,
         attempt: int) -> str | None:
    """The error message if this attempt of ``pipeline`` fails, else None."""
    if pipeline != config.fail_pipeline:
        return None
    if config.fail_name_glob is not None and fnmatch.fnmatchcase(name, config.fail_name_glob):
        return f"{pipeline} failed: simulated failure for names matching {config.fail_name_glob!r}"
    if config.fail_share <= 0:
        return None
    digest = hashlib.sha256(f"{config.seed}:{video_id}:{pipeline}:{attempt}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2 ** 64
    if draw < config.fail_share:
        return f"{pipeline} failed: simulated random failure (attempt {attempt})"
    return None
