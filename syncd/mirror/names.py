"""Remote names made safe as one local path component.

A remote name is whatever another client typed: ``../../etc/x.mp4``, names with
``/`` or ``\\``, NUL and other control characters, a lone ``..``, hundreds of
bytes. ``safe_component`` keeps only the last path component, drops control
characters, leading dots (hidden files are never scanned) and trailing dots and
spaces, and caps the length; the result is never empty, ``.`` or ``..``.
``contained`` is the final check that a path built from it stays in its folder.
"""

from __future__ import annotations

import fnmatch
import os
import re
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 200  # below NAME_MAX (255), leaving room for ".1" and sidecar suffixes
_SEPARATORS = re.compile(r"[/\\]+")
_CONTAINERS = (  # (magic at offset, extension) to name a pulled file that had no extension
    (4, b"ftypqt", ".mov"),
    (4, b"ftyp", ".mp4"),
    (0, b"\x1a\x45\xdf\xa3", ".mkv"),
    (0, b"RIFF", ".avi"),
)


def _printable(text: str) -> str:
    # Cc: control characters (NUL, newline, DEL...); Cf: invisible format characters
    # (bidi overrides can disguise an extension).
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))


def safe_component(name: str, fallback: str) -> str:
    """One safe file or directory name from a remote name; ``fallback`` if nothing is left."""
    cleaned = _printable(unicodedata.normalize("NFC", name))
    parts = [p for p in _SEPARATORS.split(cleaned) if p.strip(" .")]
    candidate = parts[-1] if parts else ""
    candidate = candidate.strip().lstrip(".").rstrip(" .").strip()
    if not candidate:
        candidate = fallback
    return _cap(candidate)


def _cap(name: str) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot and stem and len(ext.encode()) <= 16 else ""
    body = name[: len(name) - len(suffix)] if suffix else name
    while len((body + suffix).encode()) > MAX_NAME_BYTES:
        body = body[:-1]
    return body.rstrip(" .") + suffix


def sniff_extension(head: bytes) -> str:
    """A container extension from a file's first bytes (``.mp4`` when unknown)."""
    for offset, magic, ext in _CONTAINERS:
        if head[offset:offset + len(magic)] == magic:
            return ext
    return ".mp4"


def contained(folder: Path, path: Path) -> bool:
    """``path`` resolves (symlinks followed) to somewhere inside ``folder``."""
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    return real != real_folder and os.path.commonpath([real_folder, real]) == real_folder


def matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    """The scan's rule (``syncd.sync.scan``): shell patterns, case-insensitive, on the file name."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)
