"""`syncd doctor`: check a config end to end and say what is wrong in plain words.

One line per check, ``✓`` or ``✗``: the config loads; each folder exists, can be
read (and written, when remote deletions move files to the trash); the state
directory is writable; an API key is present; the remote answers and accepts
the key; no other syncd uses this instance name (``syncd.sync.instances``). Nothing is changed: no state directory is created, no lock is taken.

A folder is not walked (at a million files that is minutes): its guard is checked live
(mounted, a directory, readable, marker), and what it holds comes from the catalog, read
only: the files tracked there and the engine's last scan of it (empty files, files still
being written, subfolders it could not read), with when that scan ran
(``syncd.sync.folder_health``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from syncd.store.catalog import CATALOG_FILE, Catalog, CatalogError, ScanSummary, peek_meta
from syncd.config import Config, FolderConfig, load_config
from syncd.errors import AuthError, ConfigError, ForbiddenError, NotFoundError, RemoteError, TransportError
from syncd.sync.instances import CLASH_WINDOW, clash, parse_note
from syncd.cli.messages import transport_reason
from syncd.models import TRASH_DIR
from syncd.remote import open_remote
from syncd.sync.folder_health import FolderHealth, folder_health
from syncd.units import rough_duration

OK, BAD = "✓", "✗"


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{OK if self.ok else BAD} {self.text}"


def run_checks(config_path: Path, environ: Mapping[str, str]) -> list[Check]:
    try:
        config = load_config(config_path, environ, require_key=False)
    except ConfigError as exc:
        return [Check(False, f"config: {exc}")]
    checks = [Check(True, f"config {config.source} is valid")]
    summaries, tracked = stored_scans(config.state_dir)
    healths = folder_health(config.folders, summaries, tracked, time.time())
    checks += [check_folder(folder, health) for folder, health in zip(config.folders, healths, strict=True)]
    checks.append(check_state_dir(config.state_dir))
    key = check_key(config_path, environ, config)
    checks.append(key)
    checks.append(check_remote(config) if key.ok else Check(False, "remote: not checked, as there is no API key"))
    if key.ok and checks[-1].ok:
        checks.append(check_instance(load_config(config_path, environ)))
    return checks


def doctor(config_path: Path, environ: Mapping[str, str], say: Callable[[str], None] = print) -> int:
    """Print every check; 0 if all passed, else 1."""
    checks = run_checks(config_path, environ)
    for check in checks:
        say(str(check))
    bad = sum(not c.ok for c in checks)
    say("all checks passed" if not bad else f"{bad} problem(s) found")
    return 0 if not bad else 1


def stored_scans(state_dir: Path) -> tuple[dict[str, ScanSummary], dict[str, int]]:
    """The catalog's last scan of each folder and its present files per folder, read only
    (no catalog, or one this syncd cannot read yet: none)."""
    if not (state_dir / CATALOG_FILE).is_file():
        return {}, {}
    try:
        with Catalog.open_readonly(state_dir) as catalog:
            return catalog.scan_summaries(), {folder: n for folder, (n, _) in catalog.done_counts().items()}
    except (CatalogError, sqlite3.Error):
        return {}, {}


def check_folder(folder: FolderConfig, health: FolderHealth) -> Check:
    """The folder guard, live; the rest as the last scan found it."""
    scanned = "" if health.scanned_at is None else (
        f"last scanned {rough_duration(health.scanned_ago or 0.0)} ago, at "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(health.scanned_at))}")
    if health.problem is not None:
        as_of = f" ({scanned})" if health.unreadable and scanned else ""
        return Check(False, f"folder {health.problem}{as_of}")
    if folder.on_remote_delete != "keep" and not os.access(folder.path, os.W_OK | os.X_OK):
        return Check(False, f"folder {folder.path}: readable but not writable; on_remote_delete: "
                            f"{folder.on_remote_delete} needs to move or remove files (into {TRASH_DIR}), "
                            "so grant write access or set on_remote_delete: keep")
    if health.scanned_at is None:
        return Check(True, f"folder {folder.path}: readable; not scanned yet (the next `syncd sync`, "
                           "or the daemon, scans it)")
    notes = "".join(f", {note}" for note in health.notes)
    return Check(True, f"folder {folder.path}: readable, {health.tracked} file(s) tracked{notes}; {scanned}")


def check_state_dir(state_dir: Path) -> Check:
    if not state_dir.exists():
        parent = next((p for p in state_dir.parents if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK | os.X_OK):
            return Check(True, f"state dir {state_dir}: does not exist yet; syncd will create it")
        return Check(False, f"state dir {state_dir}: does not exist, and {parent} is not writable to create it")
    if not state_dir.is_dir():
        return Check(False, f"state dir {state_dir}: is not a directory")
    try:
        with tempfile.TemporaryFile(dir=state_dir, prefix=".syncd-doctor-"):
            pass
    except OSError as exc:
        return Check(False, f"state dir {state_dir}: not writable ({exc.strerror or exc})")
    holder = _lock_holder(state_dir / "syncd.service.lock")
    running = f"; a syncd (pid {holder}) is running on it" if holder else ""
    return Check(True, f"state dir {state_dir}: writable{running}")


def _lock_holder(path: Path) -> str | None:
    """The pid in a held lock file, without taking the lock for longer than a try."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 64).decode(errors="replace").strip() or "?"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_key(config_path: Path, environ: Mapping[str, str], config: Config) -> Check:
    try:
        keyed = load_config(config_path, environ, require_key=True)
    except ConfigError as exc:
        return Check(False, f"API key: {str(exc).removeprefix(f'{config_path}: ')}")
    return Check(True, f"API key: found in {keyed.remote.api_key_source}")


def check_remote(config: Config) -> Check:
    cfg = config
    url = cfg.remote.base_url
    # One quick try: a doctor that hangs in retries is no help.
    remote = open_remote(replace(cfg.remote, max_retries=0, timeout=min(cfg.remote.timeout, 10.0)))
    try:
        seen = remote.check()
    except TransportError as exc:
        return Check(False, f"remote {url}: cannot reach it ({transport_reason(str(exc))}); "
                            "is the service up and remote.base_url right?")
    except (AuthError, ForbiddenError) as exc:
        return Check(False, f"remote {url}: answers, but rejected the API key from {cfg.remote.api_key_source} "
                            f"({exc.message})")
    except NotFoundError:
        return Check(False, f"remote {url}: answered 404 for the API; is remote.base_url right?")
    except RemoteError as exc:
        return Check(False, f"remote {url}: {exc}")
    finally:
        remote.close()
    return Check(True, f"remote {url}: reachable, API key accepted ({seen})")


def check_instance(config: Config, now: float | None = None) -> Check:
    """Warn when another syncd wrote our instance's marker note recently (or a sync saw it)."""
    now = time.time() if now is None else now
    name = config.instance
    meta = peek_meta(config.state_dir, ("instance_key", "instance_clash"))
    seen = meta.get("instance_clash", "")
    at, _, problem = seen.partition(" ")
    if at.isdigit() and now - int(at) <= CLASH_WINDOW:
        return Check(False, f"instance {name!r}: {problem}")
    remote = open_remote(replace(config.remote, max_retries=0, timeout=min(config.remote.timeout, 10.0)))
    try:
        marks = remote.features().marks
        if marks is None:
            return Check(True, f"instance {name!r}: this backend keeps no instance markers")
        if not remote.features().instance_notes:
            return Check(True, f"instance {name!r}: this backend keeps no per-instance note, so another syncd "
                               "using this name cannot be detected (give each syncd its own `instance`)")
        note = marks.read_note(name)
    except RemoteError as exc:
        return Check(False, f"instance {name!r}: cannot read its marker ({exc})")
    finally:
        remote.close()
    other = clash(parse_note(note), meta.get("instance_key"), now)
    if other is not None:
        return Check(False, f"instance {name!r}: {other}")
    return Check(True, f"instance {name!r}: no other syncd uses this name")
