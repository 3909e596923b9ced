"""Progress displays for ``syncd sync`` (the ``SyncProgress`` interface of
``syncd.sync.progress``), and log lines that never land on top of them.

* On a terminal: a live display drawn by ``rich``. While new files are hashed, a
  line with files seen, hashed, bytes, rate and ETA. One line per file in flight
  (bytes of total, %, rate, ETA), a total line (bytes, %, rate, ETA, files done
  and left), and, while ``sync --wait`` waits for the remote, one line per file
  still processing. Log records are printed through the same console, so they
  appear above the live lines instead of over them.
* Elsewhere (a pipe, journald, CI): plain lines, one per finished upload and at
  most one per ``interval`` seconds in between (the scan's and the hashing's too).

Everything goes to stderr: stdout carries only the command's result.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from syncd.cli.messages import middle
from syncd.sync.progress import NullProgress, ScanMeter, SyncProgress, Waiting, hash_totals
from syncd.units import format_duration, format_size

if TYPE_CHECKING:
    from syncd.sync.scan import ScanProgress

SHOWN_WAITING = 8  # files listed while waiting; the rest are counted
SCAN_REDRAW = 0.1  # seconds: a first pass hashes thousands of small files a second
FINISHING = "finishing: writing sidecars and the search index"


def waiting_line(files: Sequence[Waiting]) -> str:
    """One line: how many files the remote is still working on, and the first few."""
    if not files:
        return FINISHING
    shown = [f"{f.path} {f.doing}{'' if f.percent is None else f' {f.percent:.0f}%'}" for f in files[:3]]
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    return f"waiting for the remote on {len(files)} file(s): {', '.join(shown)}{more}"


class _Totals:
    """Byte and file counts across a command (several passes, so a file may be tried
    again), shared by both displays."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sizes: dict[str, int] = {}  # every file planned, by path
        self.got: dict[str, int] = {}  # bytes of each counted as sent (its size once done)
        self.done: set[str] = set()

    @property
    def files_total(self) -> int:
        return len(self.sizes)

    @property
    def files_done(self) -> int:
        return len(self.done)

    @property
    def bytes_total(self) -> int:
        return sum(self.sizes.values())

    @property
    def bytes_done(self) -> int:
        return sum(self.got.values())

    def plan(self, files: Sequence[tuple[str, int]]) -> None:
        for path, size in files:
            self.sizes[path] = size

    def start(self, path: str, size: int) -> None:
        self.sizes[path] = size
        self.got[path] = 0  # a new attempt starts counting afresh
        self.done.discard(path)

    def add(self, path: str, n: int) -> None:
        self.got[path] = min(self.sizes.get(path, 0), self.got.get(path, 0) + n)

    def finish(self, path: str, ok: bool) -> None:
        if ok:
            # A resumed upload sends only its missing parts; a direct one reports no parts.
            self.got[path] = self.sizes.get(path, 0)
            self.done.add(path)


class _RateColumn(ProgressColumn):
    """Bytes per second in syncd's units (MiB/s), like every other size syncd prints."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{format_size(int(speed))}/s", style="progress.data.speed")


class _LiveProgress(Progress):
    """rich's Progress plus the 'waiting for the remote' lines under it."""

    waiting_lines: list[str] = []  # replaced, never mutated

    def get_renderables(self) -> Iterator[RenderableType]:
        table = self.make_tasks_table([t for t in self.tasks if t.visible])
        if self.waiting_lines:
            yield Group(table, *(Text(line, no_wrap=True, overflow="ellipsis") for line in self.waiting_lines))
        else:
            yield table


class TerminalProgress:
    """The live display on a terminal (see the module docstring)."""

    def __init__(self, console: Console, log_handler: logging.Handler | None = None) -> None:
        self.console = console
        self.log_handler = log_handler  # printing through ``console`` while the display is up
        self.totals = _Totals()
        self.live = _LiveProgress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            DownloadColumn(binary_units=True),
            TaskProgressColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            refresh_per_second=4,
        )
        self.total_task: TaskID | None = None
        self.tasks: dict[str, TaskID] = {}
        self.hash_task: TaskID | None = None
        self._scan_drawn = 0.0

    def __enter__(self) -> TerminalProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # rich's stop draws the display once more, then erases it: a record a worker thread
        # printed in between was erased instead, and left a progress line on the screen.
        # Holding the log handler's lock, such a record waits and prints once it is gone.
        if self.log_handler is None:
            self.live.stop()
            return
        self.log_handler.acquire()
        try:
            self.live.stop()
        finally:
            self.log_handler.release()

    def _name_width(self) -> int:
        return max(12, min(40, self.console.width - 70))

    def _total(self) -> None:
        t = self.totals
        left = t.files_total - t.files_done
        description = middle(f"total: {t.files_done} done, {left} left", self._name_width())
        if self.total_task is None:
            self.total_task = self.live.add_task(description, total=t.bytes_total)
        self.live.update(self.total_task, description=description, total=t.bytes_total, completed=t.bytes_done)

    def uploads_planned(self, files: Sequence[tuple[str, int]]) -> None:
        with self.totals.lock:
            self.totals.plan(files)
            self._total()

    def file_started(self, path: str, size: int) -> None:
        with self.totals.lock:
            self.totals.start(path, size)
            self.live.waiting_lines = []
            self.tasks[path] = self.live.add_task(middle(path, self._name_width()), total=size)
            self._total()
            self.live.refresh()  # drawn at once, however short the upload

    def file_bytes(self, path: str, n: int) -> None:
        with self.totals.lock:
            self.totals.add(path, n)
            task = self.tasks.get(path)
            if task is not None:
                self.live.advance(task, n)
            self._total()

    def file_finished(self, path: str, ok: bool) -> None:
        with self.totals.lock:
            self.totals.finish(path, ok)
            task = self.tasks.pop(path, None)
            if task is not None:
                self.live.remove_task(task)
            self._total()
            self.live.refresh()

    def phase(self, text: str) -> None:
        with self.totals.lock:
            self.live.waiting_lines = [text]
            self.live.refresh()

    def scanning(self, counts: ScanProgress) -> None:
        """A 'hashing' bar (bytes, rate, ETA from rich's columns) while there is hashing
        to do; the files seen in its description."""
        now = time.monotonic()
        done = counts.hashed >= counts.to_hash
        if not done and now - self._scan_drawn < SCAN_REDRAW:
            return
        self._scan_drawn = now
        with self.totals.lock:
            if done:
                if self.hash_task is not None:
                    self.live.remove_task(self.hash_task)
                    self.hash_task = None
                self.live.waiting_lines = [f"scanning: {counts.files_seen:,} file(s) seen"]
                return
            files, size = hash_totals(counts)  # a first pass's whole tree, once counted
            description = middle(f"hashing {counts.hashed:,} of {files:,} "
                                 f"({counts.files_seen:,} seen)", self._name_width())
            if self.hash_task is None:
                self.live.waiting_lines = []
                self.hash_task = self.live.add_task(description, total=size)
                self.live.refresh()  # drawn at once, however short the hashing
            self.live.update(self.hash_task, description=description, total=size, completed=counts.bytes_hashed)

    def waiting(self, files: Sequence[Waiting]) -> None:
        width = max(20, self.console.width - 40)
        lines = [
            f"  {middle(f.path, width)}  {f.doing}{'' if f.percent is None else f' {f.percent:.0f}%'}"
            for f in files[:SHOWN_WAITING]
        ]
        if len(files) > SHOWN_WAITING:
            lines.append(f"  … and {len(files) - SHOWN_WAITING} more")
        header = f"waiting for the remote on {len(files)} file(s):" if files else FINISHING
        with self.totals.lock:
            self.live.waiting_lines = [header, *lines]
            self.live.refresh()


class PlainProgress:
    """Plain lines for a pipe or journald (see the module docstring)."""

    def __init__(self, stream: TextIO, interval: float = 10.0) -> None:
        self.stream = stream
        self.interval = interval
        self.totals = _Totals()
        self.started = time.monotonic()
        self._last_line = time.monotonic()  # the first periodic line comes after one interval
        self._last_waiting: tuple[tuple[str, str], ...] = ()
        self._scan: tuple[ScanProgress, ScanMeter] | None = None

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _say(self, line: str) -> None:
        self._last_line = time.monotonic()
        self.stream.write(line + "\n")
        self.stream.flush()

    def _overall(self) -> str:
        t = self.totals
        pct = 100 * t.bytes_done / t.bytes_total if t.bytes_total else 100.0
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = t.bytes_done / elapsed
        left = t.bytes_total - t.bytes_done
        eta = f", about {format_duration(max(1, round(left / rate)))} left" if rate > 0 and left > 0 else ""
        return (f"{format_size(t.bytes_done)} of {format_size(t.bytes_total)} ({pct:.0f}%), "
                f"{format_size(int(rate))}/s{eta}; {t.files_done} of {t.files_total} file(s) done")

    def uploads_planned(self, files: Sequence[tuple[str, int]]) -> None:
        with self.totals.lock:
            self.totals.plan(files)

    def file_started(self, path: str, size: int) -> None:
        with self.totals.lock:
            self.totals.start(path, size)

    def file_bytes(self, path: str, n: int) -> None:
        with self.totals.lock:
            self.totals.add(path, n)
            if time.monotonic() - self._last_line >= self.interval:
                self._say(f"uploading: {self._overall()}")

    def file_finished(self, path: str, ok: bool) -> None:
        with self.totals.lock:
            size = self.totals.sizes.get(path, 0)
            self.totals.finish(path, ok)
            verb = "uploaded" if ok else "not uploaded"
            self._say(f"{verb} {path} ({format_size(size)}); {self._overall()}")

    def phase(self, text: str) -> None:
        # Only a slow step is worth a line of its own (hashing a large first batch, say).
        with self.totals.lock:
            if time.monotonic() - self._last_line >= self.interval:
                self._say(text)

    def scanning(self, counts: ScanProgress) -> None:
        if self._scan is None or self._scan[0] is not counts:  # a new pass's scan
            self._scan = (counts, ScanMeter())
        meter = self._scan[1]
        meter.update(counts)
        with self.totals.lock:
            if time.monotonic() - self._last_line >= self.interval:
                self._say(meter.line(counts))

    def waiting(self, files: Sequence[Waiting]) -> None:
        # A new line when a file moves on to another step, else once per interval:
        # percentages alone change at every poll.
        steps = tuple((f.path, f.doing) for f in files)
        with self.totals.lock:
            if steps != self._last_waiting or time.monotonic() - self._last_line >= self.interval:
                self._last_waiting = steps
                self._say(waiting_line(files))


class ConsoleLogHandler(logging.Handler):
    """Log records printed through the live display's console: above the progress
    lines, never over them."""

    def __init__(self, console: Console, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.console = console
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, emoji=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


@contextmanager
def progress_display(*, quiet: bool, stream: TextIO | None = None, interval: float = 10.0) -> Iterator[SyncProgress]:
    """The display for one ``syncd sync``: live on a terminal, plain lines otherwise,
    nothing with ``quiet``. While it is shown, syncd's log handler prints through it."""
    stream = stream or sys.stderr
    if quiet:
        yield NullProgress()
        return
    if not stream.isatty():
        with PlainProgress(stream, interval) as plain:
            yield plain
        return
    console = Console(file=stream)
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == "syncd-stderr"]
    through = ConsoleLogHandler(console, ours[0].formatter if ours else None)
    through.set_name("syncd-stderr")
    if ours:
        through.setLevel(ours[0].level)
    root.handlers[:] = [h for h in root.handlers if h not in ours] + [through]
    try:
        with TerminalProgress(console, log_handler=through) as live:
            yield live
    finally:
        root.handlers[:] = [h for h in root.handlers if h is not through] + ours
