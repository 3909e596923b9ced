"""Command line: parse arguments, call one function, print. No sync logic here.

Exit status: 0 success; 1 something failed or was refused (files, guards,
the remote); 2 bad config or usage; 3 another syncd holds the state directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from syncd import __version__
from syncd.store.catalog import Catalog
from syncd.config import Config, load_config, resolve_config_path
from syncd.errors import ConfigError, LockedError, RemoteError, SyncdError
from syncd.service.lock import StateLock
from syncd.service.logs import setup_logging
from syncd.cli.messages import DOCTOR_HINT, remote_trouble
from syncd.models import MARKER_FILE
from syncd.units import format_size, parse_duration

if TYPE_CHECKING:
    from syncd.sync.engine import Engine, SyncOutcome
    from syncd.remote.base import Remote
    from syncd.remote.outage import OutageGuard
    from syncd.sync.report import FileStatus, StatusOverview
    from syncd.cli.status_view import StatusFacts

log = logging.getLogger("syncd")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


CONFIG_HELP = "config file (default: $SYNCD_CONFIG, else ./config.yaml)"
VERBOSE_HELP = "debug logging (default: the config's log_level)"
REBIND_HELP = ("the catalog belongs to another backend or address: make it this config's "
               "(only if it is the same account)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncd", description="Keep video folders in sync with a remote video service.")
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    parser.add_argument("-c", "--config", help=CONFIG_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    # The same two options after the command too (`syncd run -c FILE`, as the units have it);
    # SUPPRESS as default: a command that does not repeat them keeps what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002 - argparse's name
        return sub.add_parser(name, help=help, description=help, parents=[common])

    p = command("sync", help="one full pass over every folder, then exit")
    p.add_argument("--wait", action="store_true", help="keep going until every file is done or failed")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="give up after SECONDS in all, saying which files were not done (default: no limit)")
    p.add_argument("--dry-run", action="store_true", help="print every change the pass would make; make none")
    p.add_argument("--allow-mass-delete", action="store_true", help="override safety.max_delete_percent once")
    p.add_argument("--check-deletions", action="store_true",
                   help="read the remote's complete listing now, to find videos deleted there "
                        "(default: once every schedule.deletion_check)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress display, no per-action lines, no info log lines: the summary and problems only")
    p.add_argument("--rebind", action="store_true", help=REBIND_HELP)

    p = command("status", help="backend, folders, collections, counts by state, the files not yet done")
    p.add_argument("--json", action="store_true", help="every tracked file as a JSON array")

    p = command("log", help="the journal of every action: what was started, and how it ended")
    p.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="the last N entries (default: %(default)s)")
    p.add_argument("--path", help="only entries about this file: its uploads, pipelines, collection, trash, restore (default: all)")
    p.add_argument("--action", metavar="NAME", help="only this action, e.g. upload, trash, restore, analyse (default: all)")
    p.add_argument("--since", metavar="WHEN",
                   help="only entries this recent: a duration (2h, 3d) or a date (2026-11-20, '2026-11-20 14:00') "
                   "(default: all)")
    p.add_argument("--json", action="store_true", help="the entries as a JSON array")

    p = command("restore", help="upload again a file whose video was deleted on the remote (also from the trash)")
    p.add_argument("path", help="the file, where it was or inside .syncd-trash")

    p = command("trash", help="list or empty the trash of remotely deleted files")
    trash = p.add_subparsers(dest="trash_command", metavar="ACTION")
    trash.add_parser("list", help="list trashed files", description="list trashed files", parents=[common])
    empty = trash.add_parser("empty", help="delete trashed files", description="delete trashed files",
                             parents=[common])
    empty.add_argument("--older-than", default="0s", metavar="AGE",
                       help="only files trashed longer ago than this, e.g. 30d (default: %(default)s, all)")

    p = command("init-folder", help=f"create the {MARKER_FILE} marker in a folder")
    p.add_argument("path", help="the watched folder")

    p = command("search", help="search every mirrored video (by meaning, locally; or --offline by text)")
    p.add_argument("query", help="what to look for, in words")
    p.add_argument("--collection", metavar="NAME", help="only videos in this collection (default: all)")
    p.add_argument("--folder", metavar="PATH", help="only videos under this folder (default: all)")
    p.add_argument("--top-k", type=int, default=10, metavar="N", help="how many hits (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="the hits as a JSON array")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--offline", action="store_true", help="full text only; needs neither the remote nor the key")
    mode.add_argument("--remote", action="store_true", help="the remote's own search over the same videos")

    p = command("ask", help="ask a question about a video, by its local path")
    p.add_argument("path", help="the video file")
    p.add_argument("question", help="the question, in words")
    p.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    p.add_argument("--history", metavar="FILE", help="the conversation so far (JSON list of role/content); "
                   "the question and answer are appended to it (default: none)")

    p = command("import", help="have the remote fetch videos from web URLs, then download them into a folder")
    p.add_argument("urls", nargs="*", metavar="URL",
                   help="up to 50 post URLs of one platform (none: follow the imports in progress)")
    p.add_argument("--into", metavar="FOLDER[/SUBFOLDER]",
                   help="a watched folder (its path, or its name), optionally a subfolder of it "
                        "(no default: required with URLs)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop waiting after SECONDS; the daemon or the next `syncd import` carries on "
                        "(default: until every video landed or failed)")

    command("streams", help="the live camera streams: configured, running, task id, since")

    p = command("run", help="run as a daemon: watch the folders, sync on change and on a schedule")
    p.add_argument("--rebind", action="store_true", help=REBIND_HELP)

    p = command("ui", help="the web UI: browse, search, play and ask in a browser (read-only)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="where to serve (default: ui.listen, else 127.0.0.1:8470); beyond loopback needs a password")

    command("doctor", help="check the config end to end: folders, state dir, key, remote")

    p = command("demo", help="run the whole product against the built-in emulator (under a minute)")
    p.add_argument("--dir", metavar="DIR", help="work in this directory (default: a new temporary one)")
    p.add_argument("--keep", action="store_true",
                   help="keep the demo's files and state afterwards (default: remove them)")
    p.add_argument("--backend", choices=("mikshi", "memories"), default="mikshi",
                   help="which service's emulator to run against (default: mikshi)")

    sub.add_parser("emulator", help="run the local emulator of the remote API (see `syncd emulator --help`)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        from syncd.emulator.cli import main as emulator_main

        return emulator_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_CONFIG
    handler = COMMANDS.get(args.command)
    if handler is None:
        parser.error(f"unknown command {args.command}")
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except LockedError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except RemoteError as exc:
        # A remote that cannot be reached or refuses the key: one plain line with what to check.
        where = getattr(args, "remote_where", ("the remote", "the configured key"))
        log.debug("remote error", exc_info=True)
        print(f"syncd: {remote_trouble(exc, *where) or exc}", file=sys.stderr)
        return EXIT_FAILED
    except SyncdError as exc:
        from syncd.sync.executor import FatalRemoteError  # loaded already when it is the one raised

        hint = f" ({DOCTOR_HINT})" if isinstance(exc, FatalRemoteError) else ""
        print(f"syncd: {exc}{hint}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("syncd: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"syncd:{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a user sees one line; -v shows the traceback
        log.debug("unexpected error", exc_info=True)
        print(f"syncd: unexpected error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return EXIT_FAILED


# ------------------------------------------------------------------ helpers
def _config(args: argparse.Namespace, *, require_key: bool = True) -> Config:
    path = resolve_config_path(args.config, os.environ)
    config = load_config(path, os.environ, require_key=require_key)
    args.remote_where = (config.remote.base_url, config.remote.api_key_source)  # for remote errors' one line
    quiet = getattr(args, "quiet", False) and config.log_level in ("debug", "info")
    setup_logging("debug" if args.verbose else "warning" if quiet else config.log_level)
    return config


@contextmanager
def _session(config: Config, stop: threading.Event | None = None, rebind: bool = False,
             **engine_args: object) -> Iterator[tuple[Catalog, Engine, OutageGuard]]:
    """Lock the state dir, open the catalog (refusing one that belongs to another remote,
    unless ``rebind``) and the remote, yield an Engine.

    The remote is wrapped in an ``OutageGuard``: once it does not answer, later calls
    fail at once (one outage costs one request's retries, not one per file), and once
    ``stop`` is set (``--timeout``) no new request starts and retry waits end.
    """
    from syncd.sync.engine import Engine, EngineOptions
    from syncd.remote import open_remote, remote_identity
    from syncd.remote.outage import OutageGuard

    stop = stop or threading.Event()

    def sleep(seconds: float) -> None:
        stop.wait(seconds)  # an HTTP retry's wait ends at the --timeout

    with StateLock(config.state_dir), Catalog.open(config.state_dir) as catalog:
        catalog.bind_remote(remote_identity(config.remote), rebind=rebind)
        remote = open_remote(config.remote, config.upload.direct_upload_below, sleep=sleep)
        guard = OutageGuard(remote, stop)
        try:
            engine = Engine(EngineOptions.from_config(config), catalog, guard.remote, stop_event=stop, **engine_args)  # type: ignore[arg-type]
            yield catalog, engine, guard
        finally:
            remote.close()


@contextmanager
def _deadline(stop: threading.Event, seconds: float | None, started: float) -> Iterator[None]:
    """``--timeout``: at the deadline ask the command to stop (no new request, no new
    part); if a request in flight still holds it a moment later, leave anyway. The
    catalog is crash-safe (each change is one transaction), so the next sync resumes."""
    if seconds is None:
        yield
        return
    left = max(0.0, seconds - (time.monotonic() - started))
    soft = threading.Timer(left, stop.set)
    hard = threading.Timer(left + HARD_STOP_AFTER, _leave_now, [seconds])
    for timer in (soft, hard):
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        soft.cancel()
        hard.cancel()


HARD_STOP_AFTER = 0.7  # seconds past --timeout a request in flight may take before syncd leaves


def _leave_now(seconds: float) -> None:
    sys.stdout.flush()
    print(f"TIMEOUT: gave up after {seconds:g}s (--timeout) with a request to the remote still in flight; "
          "the next sync resumes", file=sys.stderr, flush=True)
    os._exit(EXIT_FAILED)


# ----------------------------------------------------------------- commands
def cmd_sync(args: argparse.Namespace) -> int:
    from syncd.cli.console import progress_display
    from syncd.cli.messages import journal_line, outage_line

    started = time.monotonic()
    if args.timeout is not None and args.timeout <= 0:
        return _usage_error("--timeout must be more than 0 seconds")
    config = _config(args)
    stop = threading.Event()
    with ExitStack() as session:
        # The session (lock, catalog) outlives the deadline and the live display: the run's
        # journal lines are read from the catalog a batch at a time as they are printed.
        with _deadline(stop, args.timeout, started), progress_display(quiet=args.quiet or args.dry_run) as progress:
            catalog, engine, guard = session.enter_context(
                _session(config, stop, args.rebind, dry_run=args.dry_run, allow_mass_delete=args.allow_mass_delete,
                         progress=progress))
            first = catalog.last_journal_id()
            left = None if args.timeout is None else max(0.0, args.timeout - (time.monotonic() - started))
            down_since: list[float] = []  # when the remote first failed to answer, across passes

            def try_remote_again() -> None:
                if guard.since is not None:
                    down_since.append(guard.since)
                guard.reset()

            outcome = engine.sync(wait=args.wait, timeout=left, before_pass=try_remote_again,
                                  check_deletions=args.check_deletions)
            outage, since = guard.outage, min([*down_since, guard.since or time.time()])
        timed_out = outcome.timed_out or (args.timeout is not None and stop.is_set())
        last = outcome.reports[-1]
        if args.dry_run:
            print(f"dry run: {last.plan.total} change(s) planned, none made")
            for action in last.plan.actions:
                print(f"  would {action.describe()}")
            if last.plan.unlisted:  # the later slices of a pass over many new files: counted
                kinds = ", ".join(f"{n:,} {UNLISTED_WORDS.get(kind, kind)}" for kind, n in sorted(last.plan.unlisted.items()))
                print(f"  ... and {sum(last.plan.unlisted.values()):,} more: {kinds}")
            for path in last.plan.settling:
                print(f"  would upload {path} once settled (if its content is new)")
            for deferred in last.plan.deferred:
                print(f"  would wait: {deferred.describe()}")
        if not args.quiet:
            for entries in catalog.iter_final_journal(first):
                paths = catalog.video_paths([e.target for e in entries])
                for entry in entries:
                    print(journal_line(entry, paths.get(entry.target), with_time=False))
    print(sync_summary(outcome))
    notes = [n for r in outcome.reports for n in (*r.plan.notes, *r.result.notes)]
    if outcome.deletion_check is not None and not args.quiet:  # -q: the summary and problems only
        notes.append(outcome.deletion_check)
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    waiting = last.plan.waiting_summary()
    if waiting and not args.dry_run:
        print(f"{waiting} (nothing is deleted while they could hold the content; sync again once they settle)")
        for deferred in last.plan.deferred:
            print(f"  {deferred.describe()}")
    failures = outcome.failures
    if outage is not None:
        # Every remote step failed the same way: one line says it all (-v shows each).
        for line in failures:
            log.debug("%s", line)
        failures = [line for line in failures if line in last.plan.blocked]
        print(f"FAILED: {outage_line(outage, since, config.remote.base_url)}", file=sys.stderr)
    for line in failures:
        print(f"FAILED: {line}", file=sys.stderr)
    if timed_out:
        for line in gave_up_on(outcome):
            print(f"TIMEOUT: {line}", file=sys.stderr)
    unconfirmed = not args.dry_run and last.listing_asked and not last.listing_ok
    return EXIT_FAILED if failures or timed_out or outage is not None or unconfirmed else EXIT_OK


# What a dry run says of the actions it counts without listing them.
UNLISTED_WORDS = {"Upload": "upload(s)", "LinkVideo": "link(s) to a remote video proved to hold the file",
                  "ForgetFile": "record(s) of a vanished path to forget"}


def sync_summary(outcome: SyncOutcome) -> str:
    from syncd.sync.report import STATE_WORDS

    counts = outcome.overview.counts
    summary = ", ".join(f"{n} {STATE_WORDS.get(state, state)}" for state, n in sorted(counts.items()) if n) or "no files"
    uploaded = sum(r.result.uploaded_files for r in outcome.reports)
    sent = sum(r.result.uploaded_bytes for r in outcome.reports)
    line = f"{outcome.overview.total} file(s): {summary}; uploaded {uploaded} file(s), {format_size(sent)}"
    skipped = outcome.reports[-1].skipped
    if skipped:
        line += f"; skipped {len(skipped)}: " + ", ".join(f"{path} ({why})" for path, why in skipped)
    return line


def gave_up_on(outcome: SyncOutcome) -> list[str]:
    """Why ``sync --wait`` stopped short: every file it was still waiting on, and why."""
    from syncd.sync.report import STATE_WORDS

    lines = [f"{s.path}: still {STATE_WORDS.get(s.state, s.state)}" + (f" ({s.error})" if s.error else "")
             for s in outcome.pending]
    for scan in outcome.reports[-1].scans:
        lines += [f"{f.path}: still being written (not settled)" for f in scan.files if not f.settled and f.size]
    return lines or ["stopped before the pass finished"]


def cmd_status(args: argparse.Namespace) -> int:
    from syncd.sync.report import iter_file_statuses, status_overview

    config = _config(args, require_key=False)
    # --json is streamed: a million tracked files are never in memory at once; the text
    # counts the done files in SQL and builds rows for the others only.
    with Catalog.open(config.state_dir) as catalog:
        if args.json:
            _print_json_array(s.as_json() for s in iter_file_statuses(config, catalog))
            return EXIT_OK
        facts = _status_facts(config, catalog, status_overview(config, catalog))
    from syncd.cli.status_view import render

    width = shutil.get_terminal_size((100, 24)).columns
    print("\n".join(render(facts, width)))
    # A folder that is missing, unreadable or unmarked: nothing there syncs, say so in the status too.
    return EXIT_OK if facts.folders_ok else EXIT_FAILED


def _tag_summary(config: Config, catalog: Catalog) -> tuple[Counter[str] | None, list[FileStatus]]:
    """Videos per remote tag and the files moved since upload, for a backend that groups by
    tag (a streamed pass over the present files; such a backend uploads about one file a
    minute, so its libraries stay far below the million files a pass must not touch)."""
    from syncd.remote.facts import backend_facts
    from syncd.sync.report import iter_statuses_of

    facts = backend_facts(config.remote.backend)
    if facts.grouping != "tag" or not any(f.collections == "subfolder" for f in config.folders):
        return None, []
    tags: Counter[str] = Counter()
    moved: list[FileStatus] = []
    for status in iter_statuses_of(config.folders, config.upload.max_attempts, catalog, facts):
        if status.remote_tag:
            tags[status.remote_tag] += 1
        if status.tag_differs:
            moved.append(status)
    return tags, moved


def _status_facts(config: Config, catalog: Catalog, overview: StatusOverview) -> StatusFacts:
    from syncd.cli.status_view import StatusFacts
    from syncd.sync.folder_health import folder_health
    from syncd.sync.trash import list_trash

    # The folder guard live (mounted, readable, marker); the rest as the last scan found it
    # (recorded by the engine): a million files are not walked for a status line.
    folders = folder_health(config.folders, catalog.scan_summaries(), overview.tracked, time.time())
    in_collection = Counter(catalog.membership_counts())
    collections = {c.name: in_collection[c.name] for c in catalog.collections()}
    tags, moved = _tag_summary(config, catalog)
    return StatusFacts(
        tags=tags, moved=moved,
        backend=config.remote.backend, base_url=config.remote.base_url, key_source=config.remote.api_key_source,
        folders=folders, collections=collections, counts=overview.counts, pending=overview.pending,
        sizes=overview.sizes,
        sent=catalog.uploaded_bytes(), blocked=catalog.get_meta("blocked") or "",
        waiting=catalog.get_meta("deferred") or "",
        trashed=len(list_trash([f.path for f in config.folders])),
        header_extra=[*_binding_line(config, catalog), _instance_line(config.instance, catalog.get_meta("other_instances")),
                      _deletion_check_line(config, catalog.listing_read_at()),
                      *_import_lines(catalog)],
    )


def _binding_line(config: Config, catalog: Catalog) -> list[str]:
    """A line when the catalog belongs to another remote than the config's (sync refuses it)."""
    from syncd.remote import remote_identity

    bound, configured = catalog.bound_remote(), remote_identity(config.remote)
    if bound is None or bound == configured:
        return []
    return [f"catalog: belongs to {bound}, not to {configured}; syncing is refused until "
            "`syncd sync --rebind` or `syncd run --rebind` (only if it is the same account)"]


def _instance_line(instance: str, recorded: str | None) -> str:
    """``instance: NAME; N remote video(s) belong to other syncd instances (A, B; as of T)``."""
    if not recorded:
        return f"instance: {instance}; other syncd instances on the account: not checked yet"
    count, at, others = recorded.split(" ", 2)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(at)))
    names = "" if others == "-" else f"{others.replace(',', ', ')}; "
    return f"instance: {instance}; {count} remote video(s) belong to other syncd instances ({names}as of {when})"


def _deletion_check_line(config: Config, listing_at: float | None) -> str:
    from syncd.sync.deletion_check import deletion_check_words

    return f"remote deletions: {deletion_check_words(listing_at, config.schedule.deletion_check, time.time())}"


def _print_json_array(items: Iterable[object]) -> None:
    """``json.dumps(list(items), indent=2)``, printed an item at a time."""
    first = True
    for item in items:
        body = json.dumps(item, indent=2).replace("\n", "\n  ")
        sys.stdout.write(f"[\n  {body}" if first else f",\n  {body}")
        first = False
    print("[]" if first else "\n]")


def _import_lines(catalog: Catalog) -> list[str]:
    """``syncd status``: one line per import still in progress."""
    lines = []
    for record in catalog.imports(unfinished=True):
        videos = catalog.import_videos(record.import_id)
        landed = sum(v.state == "landed" for v in videos)
        where = record.folder / record.subdir if record.subdir else record.folder
        lines.append(f"import {record.import_id} in progress: task {record.task_id or '(not answered)'}, "
                     f"{len(record.urls)} URL(s) into {where}; {len(videos)} video(s) seen, {landed} landed")
    return lines


def cmd_import(args: argparse.Namespace) -> int:
    from syncd.mirror.imports import BadImport, Importer
    from syncd.remote import open_remote, remote_identity

    if args.urls and not args.into:
        print("syncd: import: --into FOLDER[/SUBFOLDER] is required with URLs", file=sys.stderr)
        return EXIT_CONFIG
    config = _config(args)
    started = time.monotonic()
    with StateLock(config.state_dir), Catalog.open(config.state_dir) as catalog:
        catalog.bind_remote(remote_identity(config.remote))
        remote = open_remote(config.remote, config.upload.direct_upload_below)
        try:
            importer = Importer(config, catalog, remote, say=lambda line: print(line, flush=True))
            try:
                ours = [importer.start(args.urls, args.into).import_id] if args.urls else []
            except BadImport as exc:
                print(f"syncd: {exc}", file=sys.stderr)
                return EXIT_CONFIG
            importer.recover()
            if not ours:
                ours = [r.import_id for r in importer.unfinished()]
                if not ours:
                    print("no imports in progress")
                    return EXIT_OK
            while (due := importer.poll_due()) is not None and any(
                    r.import_id in ours for r in importer.unfinished()):
                wait = max(0.0, due - time.time())
                if args.timeout is not None and time.monotonic() - started + wait > args.timeout:
                    print(f"TIMEOUT: still importing after {args.timeout:g}s; the daemon (syncd run) or the "
                          "next `syncd import` carries on", file=sys.stderr)
                    return EXIT_FAILED
                time.sleep(wait)
        finally:
            remote.close()
        records = [r for r in catalog.imports() if r.import_id in ours]
        # Every URL brought a video, and every video landed (or was here already).
        complete = all(r.state == "done" and len(r.urls) == sum(v.state in ("landed", "duplicate")
                                                                for v in catalog.import_videos(r.import_id))
                       for r in records)
    return EXIT_OK if complete else EXIT_FAILED


def cmd_streams(args: argparse.Namespace) -> int:
    from syncd.service.streams import stream_rows

    config = _config(args, require_key=False)
    with Catalog.open(config.state_dir) as catalog:
        rows = stream_rows(config, catalog)
    if not rows:
        print("no live streams configured (streams: in the config) or running")
        return EXIT_OK
    print(f"{'CAMERA':<44} {'CONFIGURED':<10} {'RUNNING':<7} {'TASK ID':<36} SINCE")
    for row in rows:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.since)) if row.since else "-"
        print(f"{row.url:<44} {'yes' if row.configured else 'no':<10} {'yes' if row.running else 'no':<7} "
              f"{row.task_id or '-':<36} {since}" + (f"  ({row.note})" if row.note else ""))
    print("running: as recorded in the catalog when syncd started the stream (the service lists none)")
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    from syncd.sync.engine import file_statuses
    from syncd.cli.messages import journal_line

    if args.lines < 1:
        return _usage_error("-n/--lines must be at least 1")
    since = None
    if args.since is not None:
        since = _parse_since(args.since)
        if since is None:
            return _usage_error(f"--since: {args.since!r} is neither a duration (2h, 3d) nor a date (2026-11-20)")
    config = _config(args, require_key=False)
    with Catalog.open(config.state_dir) as catalog:
        paths = {s.video_id: s.path for s in file_statuses(config, catalog) if s.video_id}
        about: list[str] = []
        if args.path is not None:
            wanted = str(Path(args.path).resolve()) if os.path.exists(args.path) else args.path
            # A pipeline is journalled under its video: find the file's video too.
            about = [wanted, *(v for v, p in paths.items() if p == wanted)]
            # ... and the videos it had before (deleted on the remote, then restored).
            earlier = catalog.journal(1_000_000, about=about)
            about += sorted({e.target for e in earlier if not e.target.startswith("/")}
                            | {m for e in earlier for m in re.findall(r"\bvideo ([\w-]+)", e.detail)})
        entries = catalog.journal(args.lines, since=since, action=args.action, about=about)
    if args.json:
        print(json.dumps([{
            "time": e.time, "action": e.action, "outcome": e.outcome, "target": e.target,
            "path": paths.get(e.target, e.target if e.target.startswith("/") else None), "detail": e.detail,
        } for e in entries], indent=2))
        return EXIT_OK
    for entry in entries:
        print(journal_line(entry, paths.get(entry.target)))
    return EXIT_OK


def _parse_since(text: str) -> float | None:
    """``--since``: a duration back from now, or a local date with an optional time."""
    from datetime import datetime

    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def cmd_restore(args: argparse.Namespace) -> int:
    from syncd.sync.report import STATE_WORDS
    from syncd.sync.restore import restore

    config = _config(args)
    with _session(config) as (_catalog, engine, _guard):
        path = restore(engine, Path(args.path).absolute(), lambda line: print(line, file=sys.stderr))
        outcome = engine.sync()
    state = next((s.words for s in outcome.not_done if s.path == str(path)), STATE_WORDS["done"])
    print(f"{path}: restored; now {state}")
    return EXIT_FAILED if outcome.failures else EXIT_OK


INTERACTIVE_RETRIES = 2  # search and ask: a person waits, so a dead remote is said at once


def _interactive_remote(config: Config) -> Remote:
    from syncd.remote import open_remote

    return open_remote(replace(config.remote, max_retries=min(config.remote.max_retries, INTERACTIVE_RETRIES)))


def _usage_error(message: str) -> int:
    """A bad argument: one line, exit 2, nothing done."""
    print(f"syncd: {message}", file=sys.stderr)
    return EXIT_CONFIG


def cmd_trash(args: argparse.Namespace) -> int:
    from syncd.sync.trash import empty_trash, list_trash

    config = _config(args, require_key=False)
    folders = [f.path for f in config.folders]
    if args.trash_command == "empty":
        from syncd.mirror.sidecars import SidecarLayout

        try:
            older_than = parse_duration(args.older_than)
        except ValueError as exc:
            return _usage_error(f"--older-than: {exc}")
        removed = empty_trash(folders, older_than, time.time(),
                              SidecarLayout.from_config(config.mirror).remove)
        print(f"removed {len(removed)} file(s), {format_size(sum(e.size for e in removed))}")
        return EXIT_OK
    entries = list_trash(folders)
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.trashed_at))
        print(f"{when}  {format_size(e.size):>10}  {e.path}")
    print(f"{len(entries)} file(s) in the trash")
    return EXIT_OK


def cmd_init_folder(args: argparse.Namespace) -> int:
    folder = Path(args.path)
    if not folder.is_dir():
        print(f"syncd: {folder}: not a directory", file=sys.stderr)
        return EXIT_FAILED
    (folder / MARKER_FILE).write_text("This folder is synced by syncd. Keep this file.\n")
    print(f"created {folder / MARKER_FILE}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from syncd.mirror.index import SEARCH_DIR, SearchIndex
    from syncd.mirror.search import SearchFilter, folder_argument, format_hits, query_source, run_search

    if args.top_k < 1:
        return _usage_error("--top-k must be at least 1")
    if not args.query.strip():
        return _usage_error("the query is empty")
    config = _config(args, require_key=not args.offline)
    wanted = SearchFilter(args.collection, folder_argument(args.folder) if args.folder else None)
    mode = "offline" if args.offline else "remote" if args.remote else "local"
    with Catalog.open(config.state_dir) as catalog:
        hits = run_search(
            catalog, SearchIndex(catalog, config.state_dir / SEARCH_DIR), args.query, mode=mode,
            top_k=args.top_k, wanted=wanted, source=query_source(config.remote),
            open_remote=lambda: _interactive_remote(config),
        )
    if args.json:
        print(json.dumps([h.as_json() for h in hits], indent=2))
    elif hits:
        print("\n".join(format_hits(hits)))
    elif args.collection is not None or args.folder:
        print("no hits in that collection or folder (check its name with `syncd status`)")
    else:
        print("no hits (nothing mirrored yet? run `syncd sync --wait`)")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    from syncd.mirror.ask import ask, load_history, save_history, video_for_path
    from syncd.remote.base import ChatMessage

    if not args.question.strip():
        return _usage_error("the question is empty")
    config = _config(args)
    history_file = Path(args.history) if args.history else None
    history = load_history(history_file)
    if history_file is not None and not os.access(history_file.parent, os.W_OK):
        # Checked before asking: a question costs credits, and its answer must not be lost.
        return _usage_error(f"--history: cannot write in {history_file.parent}")
    with Catalog.open(config.state_dir) as catalog:
        video_id = video_for_path(catalog, Path(args.path))

    written: list[bool] = []

    def write(text: str) -> None:
        written.append(True)
        sys.stdout.write(text)
        sys.stdout.flush()

    remote = _interactive_remote(config)
    try:
        answer = ask(remote, video_id, args.question, history, stream=args.stream, write=write)
    finally:
        remote.close()
        if written:
            print()  # end the answer's line; nothing at all when no answer came
    if history_file is not None:
        save_history(history_file, [*history, ChatMessage("user", args.question), ChatMessage("assistant", answer)])
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from syncd.cli.demo import run_demo

    setup_logging("debug" if args.verbose else "warning")
    return run_demo(Path(args.dir) if args.dir else None, keep=args.keep, backend=args.backend)


def cmd_run(args: argparse.Namespace) -> int:
    from syncd.service.daemon import run_daemon

    return run_daemon(_config(args), keep_log_level=args.verbose, rebind=args.rebind)


def cmd_ui(args: argparse.Namespace) -> int:
    from syncd.config import UI_DEFAULT_LISTEN, is_loopback, parse_listen
    from syncd.ui.server import serve_until_stopped, url

    config = _config(args, require_key=False)
    if args.listen:
        try:
            listen = parse_listen(args.listen)
        except ValueError as exc:
            return _usage_error(f"--listen: {exc}")
    else:
        listen = config.ui.listen or UI_DEFAULT_LISTEN
    if not is_loopback(listen[0]) and not config.ui.password:
        return _usage_error(f"--listen: {listen[0]} is reachable from other machines: set a password "
                            "($SYNCD_UI_PASSWORD or ui.password_file), or listen on 127.0.0.1")
    Catalog.open_readonly(config.state_dir).close()  # no catalog yet: say so before serving
    serve_until_stopped(config, listen, lambda: print(f"syncd ui: open {url(listen)} (Ctrl-C to stop)", flush=True))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from syncd.cli.doctor import doctor

    return doctor(resolve_config_path(args.config, os.environ), os.environ)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "ui": cmd_ui,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
    "sync": cmd_sync,
    "status": cmd_status,
    "log": cmd_log,
    "restore": cmd_restore,
    "trash": cmd_trash,
    "init-folder": cmd_init_folder,
    "search": cmd_search,
    "ask": cmd_ask,
    "import": cmd_import,
    "streams": cmd_streams,
}
