"""Command line: parse arguments, call one function, print. No sync logic here.

Exit status: 0 success; 1 something failed or was refused (files, guards,
the remote); 2 bad config or usage; 3 another syncd holds the state directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from syncd import __version__
from syncd.catalog import Catalog
from syncd.config import Config, load_config, resolve_config_path
from syncd.errors import ConfigError, LockedError, SyncdError
from syncd.lock import StateLock
from syncd.logs import setup_logging
from syncd.models import MARKER_FILE
from syncd.units import format_size, parse_duration

log = logging.getLogger("syncd")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncd", description="Keep video folders in sync with a remote video service.")
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    parser.add_argument("-c", "--config", help="config file (default: $SYNCD_CONFIG, else ./config.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # The same two options after the command too (`syncd run -c FILE`, as the units have it);
    # SUPPRESS: a command that does not repeat them keeps what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002 - argparse's name
        return sub.add_parser(name, help=help, parents=[common])

    p = command("sync", help="one full pass over every folder, then exit")
    p.add_argument("--wait", action="store_true", help="keep going until every file is done or failed")
    p.add_argument("--timeout", type=float, default=None, help="with --wait: give up after SECONDS")
    p.add_argument("--dry-run", action="store_true", help="print every change the pass would make; make none")
    p.add_argument("--allow-mass-delete", action="store_true", help="override safety.max_delete_percent once")

    p = command("status", help="counts by state and the files not yet done")
    p.add_argument("--json", action="store_true", help="every tracked file as a JSON array")

    p = command("log", help="the journal of remote-changing actions")
    p.add_argument("-n", "--lines", type=int, default=50)

    p = command("restore", help="upload again a file whose video was deleted on the remote")
    p.add_argument("path")

    p = command("trash", help="list or empty the trash of remotely deleted files")
    trash = p.add_subparsers(dest="trash_command", metavar="ACTION")
    trash.add_parser("list", help="list trashed files", parents=[common])
    empty = trash.add_parser("empty", help="delete trashed files", parents=[common])
    empty.add_argument("--older-than", default="0s", help="only files trashed longer ago than this (e.g. 30d)")

    p = command("init-folder", help=f"create the {MARKER_FILE} marker in a folder")
    p.add_argument("path")

    p = command("search", help="search every mirrored video (by meaning, locally; or --offline by text)")
    p.add_argument("query")
    p.add_argument("--collection", help="only videos in this collection")
    p.add_argument("--folder", help="only videos under this folder")
    p.add_argument("--top-k", type=int, default=10, help="how many hits (default 10)")
    p.add_argument("--json", action="store_true", help="the hits as a JSON array")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--offline", action="store_true", help="full text only; needs neither the remote nor the key")
    mode.add_argument("--remote", action="store_true", help="the remote's own search over the same videos")

    p = command("ask", help="ask a question about a video, by its local path")
    p.add_argument("path")
    p.add_argument("question")
    p.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    p.add_argument("--history", metavar="FILE", help="the conversation so far (JSON list of role/content); "
                   "the question and answer are appended to it")

    command("run", help="run as a daemon: watch the folders, sync on change and on a schedule")

    command("doctor", help="check the config end to end: folders, state dir, key, remote")

    p = command("demo", help="run the whole product against the built-in emulator (under a minute)")
    p.add_argument("--dir", help="work in this directory (default: a new temporary one)")

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
    except SyncdError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
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
    setup_logging("debug" if args.verbose else config.log_level)
    return config


@contextmanager
def _session(config: Config, **engine_args: object) -> Iterator[tuple[Catalog, object]]:
    """Lock the state dir, open the catalog and the remote, yield an Engine."""
    from syncd.engine import Engine
    from syncd.remote import open_remote

    with StateLock(config.state_dir), Catalog.open(config.state_dir) as catalog:
        remote = open_remote(config.remote, config.upload.direct_upload_below)
        try:
            yield catalog, Engine(config, catalog, remote, **engine_args)  # type: ignore[arg-type]
        finally:
            remote.close()


class Progress:
    """Files and bytes on one self-overwriting line, only on a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.bytes = 0
        self.started = time.monotonic()
        self._last = 0.0

    def add(self, n: int) -> None:
        self.bytes += n
        now = time.monotonic()
        if self.enabled and now - self._last > 0.2:
            self._last = now
            rate = self.bytes / max(now - self.started, 1e-6)
            self.stream.write(f"\r  uploaded {format_size(self.bytes)} ({format_size(int(rate))}/s)   ")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.bytes:
            self.stream.write("\n")


# ----------------------------------------------------------------- commands
def cmd_sync(args: argparse.Namespace) -> int:
    config = _config(args)
    progress = Progress()
    with _session(config, dry_run=args.dry_run, allow_mass_delete=args.allow_mass_delete,
                  on_bytes=progress.add) as (_catalog, engine):
        outcome = engine.sync(wait=args.wait, timeout=args.timeout)  # type: ignore[attr-defined]
    progress.done()
    last = outcome.reports[-1]
    if args.dry_run:
        print(f"dry run: {len(last.plan.actions)} change(s) planned, none made")
        for action in last.plan.actions:
            print(f"  would {action.describe()}")
        for path in last.plan.settling:
            print(f"  would upload {path} once settled (if its content is new)")
        for deferred in last.plan.deferred:
            print(f"  would wait: {deferred.describe()}")
    uploaded = sum(r.result.uploaded_files for r in outcome.reports)
    sent = sum(r.result.uploaded_bytes for r in outcome.reports)
    counts = Counter(s.state for s in outcome.statuses)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no files"
    print(f"{len(outcome.statuses)} file(s): {summary}; uploaded {uploaded} file(s), {format_size(sent)}")
    notes = [n for r in outcome.reports for n in (*r.plan.notes, *r.result.notes)]
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    waiting = last.plan.waiting_summary()
    if waiting and not args.dry_run:
        print(f"{waiting} (nothing is deleted while they could hold the content; sync again once they settle)")
        for deferred in last.plan.deferred:
            print(f"  {deferred.describe()}")
    failures = outcome.failures
    for line in failures:
        print(f"FAILED: {line}", file=sys.stderr)
    if outcome.timed_out:
        for status in outcome.pending:
            print(f"TIMEOUT: {status.path}: still {status.state}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if failures else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from syncd.engine import file_statuses

    config = _config(args, require_key=False)
    with Catalog.open(config.state_dir) as catalog:
        statuses = file_statuses(config, catalog)
        blocked = catalog.get_meta("blocked") or ""
        deferred = catalog.get_meta("deferred") or ""
    if args.json:
        print(json.dumps([s.as_json() for s in statuses], indent=2))
        return EXIT_OK
    counts = Counter(s.state for s in statuses)
    print(f"{len(statuses)} tracked file(s)")
    for state, n in sorted(counts.items()):
        print(f"  {state:<15} {n}")
    if blocked:
        print(f"\nBLOCKED: {blocked}")
    if deferred:
        summary, *details = deferred.splitlines()
        print(f"\nWAITING: {summary}")
        for line in details:
            print(f"  {line}")
    pending = [s for s in statuses if s.state != "done"]
    if pending:
        print()
        print(f"{'STATE':<15} {'PIPELINES':<34} PATH")
        for s in pending:
            steps = " ".join(f"{k}:{v[0]}{'' if v[1] is None else f'({v[1]:.0f}%)'}" for k, v in s.steps.items()
                             if k in ("transcoding", "analyse", "search-process"))
            print(f"{s.state:<15} {steps:<34} {s.path}")
            if s.error:
                print(f"{'':<15} error: {s.error}")
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    config = _config(args, require_key=False)
    with Catalog.open(config.state_dir) as catalog:
        for entry in catalog.journal(args.lines):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))
            detail = f"  ({entry.detail})" if entry.detail else ""
            print(f"{when}  {entry.action:<22} {entry.outcome:<12} {entry.target}{detail}")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    config = _config(args)
    path = Path(args.path).resolve()
    with _session(config) as (catalog, engine):
        engine.observe()  # type: ignore[attr-defined]
        record = catalog.find_file(path)
        if record is None or record.sha256 is None:
            raise SyncdError(f"{path}: not a tracked file (is it in a watched folder and fully written?)")
        content = catalog.content(record.sha256)
        if content is None or content.state != "remote_deleted":
            raise SyncdError(f"{path}: nothing to restore; its video was not deleted on the remote")
        catalog.restore_content(record.sha256)
        catalog.log("restore", str(path), "ok", "tombstone lifted; uploading again")
        outcome = engine.sync()  # type: ignore[attr-defined]
    state = next((s.state for s in outcome.statuses if s.path == str(path)), "unknown")
    print(f"{path}: restored; now {state}")
    return EXIT_FAILED if outcome.failures else EXIT_OK


def _usage_error(message: str) -> int:
    """A bad argument: one line, exit 2, nothing done."""
    print(f"syncd: {message}", file=sys.stderr)
    return EXIT_CONFIG


def cmd_trash(args: argparse.Namespace) -> int:
    from syncd.trash import empty_trash, list_trash

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
    from syncd.remote import open_remote

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
            open_remote=lambda: open_remote(config.remote),
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
    from syncd.remote import open_remote
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

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    remote = open_remote(config.remote)
    try:
        answer = ask(remote, video_id, args.question, history, stream=args.stream, write=write)
    finally:
        remote.close()
        print()
    if history_file is not None:
        save_history(history_file, [*history, ChatMessage("user", args.question), ChatMessage("assistant", answer)])
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from syncd.demo import run_demo

    setup_logging("debug" if args.verbose else "warning")
    return run_demo(Path(args.dir) if args.dir else None)


def cmd_run(args: argparse.Namespace) -> int:
    from syncd.daemon import run_daemon

    return run_daemon(_config(args), keep_log_level=args.verbose)


def cmd_doctor(args: argparse.Namespace) -> int:
    from syncd.doctor import doctor

    return doctor(resolve_config_path(args.config, os.environ), os.environ)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
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
}
