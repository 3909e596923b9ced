"""Several syncd instances on one account: markers, notes, and telling two apart.

Each syncd has an instance name (config ``instance``, default the host name) and a
random key kept in its catalog. Where the backend lets it (``InstanceMarks``), the
instance keeps a marker on the account: on the videos it holds, and a *note* it
rewrites every few minutes while it runs: ``syncd instance <name>; key <key>; host
<host>; at <unix time>``. A note under our name written by another key within
``CLASH_WINDOW`` means a second syncd uses the same name: both would take the
other's videos for their own. syncd warns (log, ``syncd doctor``) instead of guessing.
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass

from syncd.errors import RemoteError, TransportError
from syncd.remote.base import InstanceMarks, Marks

log = logging.getLogger("syncd.sync.instances")

NOTE_EVERY = 300.0  # seconds between two notes of a running syncd
CLASH_WINDOW = 900.0  # another key's note younger than this: two syncds share a name
_NOTE = re.compile(r"syncd instance (?P<name>\S+); key (?P<key>\S+); host (?P<host>\S*); at (?P<at>\d+)")


@dataclass(frozen=True)
class Note:
    instance: str
    key: str
    host: str
    at: float


def upload_labels(sha256: str, instance: str) -> tuple[str, ...]:
    """The tags a backend that takes tags at upload time records with each video: the proof
    (``ContentEvidence.sha256`` reads it back) and the owner (``read_marks`` reads it back)."""
    return (f"sha256:{sha256}", f"syncd-instance:{instance}")


def make_note(instance: str, key: str, now: float) -> str:
    return f"syncd instance {instance}; key {key}; host {socket.gethostname()}; at {int(now)}"


def parse_note(text: str | None) -> Note | None:
    match = _NOTE.search(text or "")
    if match is None:
        return None
    return Note(match["name"], match["key"], match["host"], float(match["at"]))


def clash(note: Note | None, key: str | None, now: float) -> str | None:
    """A one-line warning if ``note`` is another syncd's, under our name, and recent."""
    if note is None or note.key == key or now - note.at > CLASH_WINDOW:
        return None
    ago = max(0, int(now - note.at))
    return (f"another syncd (host {note.host or '?'}, key {note.key}) wrote the marker of instance "
            f"{note.instance!r} {ago}s ago: two syncds share one instance name and would take each "
            "other's videos for their own; give each its own `instance` in the config "
            "(if this syncd's catalog was just rebuilt, this clears itself within "
            f"{int(CLASH_WINDOW // 60)} minutes)")


def read_marks(marks: InstanceMarks | None) -> tuple[Marks | None, str | None]:
    """(marks, None), or (None, why) if they could not be read; a backend without markers
    (``features().marks`` is None) has none, so nobody else can hold our videos there."""
    if marks is None:
        return Marks(), None
    try:
        return marks.read_marks(), None
    except TransportError:  # the daemon reports an outage itself, once
        return None, "the remote did not answer"
    except RemoteError as exc:
        return None, str(exc)
