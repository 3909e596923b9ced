"""Whether a synced folder can be trusted this pass: the scan (``syncd.sync``) and the
puller (``syncd.mirror``) both ask before they read or write in it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from syncd.models import MARKER_FILE


def folder_problem(folder: Path, require_marker: bool) -> str | None:
    """Why a folder cannot be trusted this pass, or None."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return f"{folder}: folder is missing (unmounted disk or removed card?); nothing there is treated as deleted"
    except OSError as exc:
        return f"{folder}: cannot access folder: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder}: not a directory"
    if not os.access(folder, os.R_OK | os.X_OK):
        return f"{folder}: folder is not readable"
    if require_marker and not (folder / MARKER_FILE).is_file():
        return f"{folder}: marker {MARKER_FILE} is missing (run `syncd init-folder {folder}` if this is the right folder)"
    return None
