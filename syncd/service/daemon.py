"""`syncd run`: the long-running daemon. Wires config, catalog, remote, watcher and
timers together; owns the one worker thread that reconciles.

Threads, and what each may do:

* **worker** (one): the only thread that calls ``Engine.run_pass`` (or, while the
  remote is away, ``Engine.observe``), so one path writes the catalog. A burst of
  10,000 files is a few passes; uploads inside a pass share ``upload.concurrency``.
* **watcher** (watchdog): files changed paths with due times in ``Pending``.
* **scheduler** (APScheduler, ``timers.start_periodic``): rescan and remote poll only
  *ask* the worker for a pass; it also pings the systemd watchdog. A rescan walks the
  folders (the listing is the poll's job) and runs midway between two polls (when
  ``rescan`` is a multiple of ``remote_poll``), so the walk and the listing do not
  land in the same minute.
* **supervisor** (the thread calling ``run``; the main thread under ``syncd run``):
  signals, start-up, shutdown.

A remote poll with no event since the last pass does not walk the watched folders
(``Watcher.intact``; the engine still checks each folder's guard), and an event walks
only the folder it came from: an idle daemon over 100,000 files spends a poll on what
is in flight remotely, and little else.

The worker sleeps (``timers.Timers``) until the earliest of: a changed path's due time (not sooner
than ``debounce`` after the previous pass), a request from a timer, an unsettled
file's settle time (longer for a path that changed after it had settled), a
vanished file's ``delete_grace`` expiry, the plan's own revisit time (a deletion's
wait for unsettled files running out), a follow-up while
videos are processing remotely, or a probe of a remote that went away.

Remote away (no answer, 502/503/504): one line in the log, then passes become
observe-only (scan, hash, catalog) while a cheap probe retries with exponential
backoff (1 s doubling, capped at min(60 s, ``schedule.remote_poll``)); when it
answers, a pass catches up as a poll does (the complete listing only if the deletion
check is due: an outage proves no deletion). Key rejected (401/403): logged as
an error, observe-only, re-checked every 10 minutes or on reload; the process
keeps running so systemd does not restart-loop on a configuration problem.

Stop (SIGTERM/SIGINT): set ``stop_event``. The executor starts no new part, the
parts in flight finish and are recorded (the rest resume from ``list-parts``), and
new remote calls fail at once. The catalog commits per step, so it is consistent
at any point; the worker gets ``stop_deadline`` seconds before the process exits
regardless. Reload (SIGHUP): the worker re-reads the config between passes; a
config that does not load is refused and the old one keeps running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from syncd import __version__
from syncd.store.catalog import Catalog
from syncd.config import Config, load_config
from syncd.sync.deletion_check import listing_due
from syncd.sync.engine import Engine, EngineOptions, PassReport
from syncd.errors import AuthError, ConfigError, ForbiddenError, RemoteError, SyncdError
from syncd.sync.executor import FatalRemoteError
from syncd.sync.progress import ScanLog
from syncd.service.lock import StateLock
from syncd.service.logs import setup_logging
from syncd.service.metrics import Metrics, MetricsServer
from syncd.service.notify import Notifier
from syncd.service.health import RemoteHealth, RemoteState
from syncd.remote import open_remote, remote_identity
from syncd.remote.base import Remote
from syncd.remote.outage import OutageGuard
from syncd.sync.report import TERMINAL, FileStatus, file_statuses, status_overview
from syncd.units import format_duration, format_size
from syncd.service.timers import Timers, reschedule_periodic, start_periodic
from syncd.service.watcher import Pending, Taken, Watcher

if TYPE_CHECKING:
    from syncd.ui.server import UiServer

#: How soon the main thread acts on a received signal (it polls; see ``_install_signals``).
SIGNAL_POLL = 0.2
log = logging.getLogger("syncd.service.daemon")

EXIT_OK, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class Timings:
    """The daemon's own clocks (the config's are in ``schedule``); the demo shortens some."""

    debounce: float = 0.5  # least gap between event-triggered passes
    stop_deadline: float = 9.0  # SIGTERM → exit, whatever is still running
    backoff_start: float = 1.0  # remote away: first probe after this...
    backoff_cap: float = 60.0  # ...doubling up to this (and never beyond schedule.remote_poll)
    key_rejected_retry: float = 600.0
    internal_retry: float = 30.0  # an unexpected error in a pass: try again after this
    followup_start: float = 1.0  # videos processing remotely: poll after this...
    followup_cap: float = 30.0  # ...growing 1.5x per idle pass up to this (and schedule.remote_poll)
    max_settle_checks: int = 10_000  # unsettled files stat'ed after a pass to time the next one
    mirror_defer_cap: float = 120.0  # the mirror waits for a quiet moment at most this long (``_defer_mirror``)
    mirror_forced_run: float = 10.0  # a mirror run the cap forced works this long before it yields (``_mirror_yields``)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        environ: Mapping[str, str] | None = None,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
        timings: Timings | None = None,
        keep_log_level: bool = False,
        rebind: bool = False,
    ) -> None:
        self.config = config
        self.rebind = rebind  # `syncd run --rebind`: the catalog may belong to another address
        self.environ = os.environ if environ is None else environ  # for reloads: key variables, $STATE_DIRECTORY
        self.notifier = notifier or Notifier.from_environ(self.environ)
        self.metrics = metrics or Metrics()
        self.timings = timings or Timings()
        self.keep_log_level = keep_log_level  # -v beats the config's log_level, on reload too
        self.stop_event = threading.Event()
        self.pending = Pending(config.upload.settle_seconds, self.timings.debounce)
        self.watcher = Watcher(self.pending)
        self._reload = threading.Event()
        self._signals: deque[int] = deque()  # received by the handler, handled by the main thread
        # "scan": the rescan timer; "poll": the remote-poll timer; "start": start-up and
        # reload (a whole pass, streams and imports tended; the complete listing if due:
        # ``_start_needs_listing``); "listing": the complete listing now (a reload that
        # changed the remote, the folders or pulling).
        self._demands: set[str] = set()
        self._demand_lock = threading.Lock()
        self._progress = threading.Condition()
        self.passes = 0
        # Files by state after the last pass (done ones counted in SQL): no status object per
        # file is kept, so a million tracked files cost the daemon nothing between passes.
        self.counts: Counter[str] = Counter()
        self.crashed = False
        # Owned by the worker once running.
        self._catalog: Catalog | None = None
        self._guard: OutageGuard | None = None
        self._probe: Remote | None = None
        self._engine: Engine | None = None
        self._timers = Timers(followup_start=self.timings.followup_start, followup_cap=self.timings.followup_cap,
                              max_settle_checks=self.timings.max_settle_checks)
        self._health = RemoteHealth(self.timings.backoff_start, self._backoff_cap(), self.timings.key_rejected_retry)
        self._last_pass_end = float("-inf")
        # Monotonic start of the last pass that read the complete listing; at start-up, from
        # the catalog's record (``run``), so a restart does not read it again before it is due.
        self._last_listing_at = float("-inf")
        self._listing_wanted = False  # a reload asked for the complete listing and none was read since
        self._mirror_deferred_since: float | None = None  # monotonic: the first pass that deferred the mirror
        self._mirror_forced_until = 0.0  # monotonic: a run the cap forced does not yield before this
        # The catalog's change counter when ``statuses`` were last built (None: build anew).
        self._statuses_at: tuple[int, int] | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._metrics_server: MetricsServer | None = None
        self._ui_server: UiServer | None = None
        self._worker: threading.Thread | None = None

    # ================================================================ lifecycle
    def run(self, *, install_signals: bool = True) -> int:
        """Run until stopped; the exit status. Raises LockedError if another syncd holds the state dir."""
        lock = StateLock(self.config.state_dir).acquire()
        try:
            catalog = Catalog.open(self.config.state_dir)
            try:
                catalog.bind_remote(remote_identity(self.config.remote), rebind=self.rebind)
            except ConfigError:
                catalog.close()
                raise
            self._catalog = catalog
            self._last_listing_at = monotonic_of(catalog.listing_read_at())
            if install_signals:
                self._install_signals()
            finished = True
            try:
                self._open_remote()
                finished = self._serve()
            finally:
                if install_signals:
                    # Stopped: the process exits next. A further SIGTERM (or ^C) asks for the
                    # stop already done, so it is ignored. Restoring the default handler (as
                    # Python's own shutdown does for a handler it runs) would let it kill
                    # the process instead, with a misleading exit status.
                    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                        signal.signal(signum, signal.SIG_IGN)
                if finished:
                    self._close_remote()
                    catalog.close()
            if not finished:
                # The worker is still inside a step. Every catalog write is one transaction and
                # every part is recorded as it lands, so leaving now loses nothing but time.
                log.warning("in-flight work did not stop within %s; exiting anyway (it resumes on the next start)",
                            format_duration(self.timings.stop_deadline))
                if install_signals:
                    logging.shutdown()
                    os._exit(EXIT_FAILED)
                return EXIT_FAILED
            return EXIT_FAILED if self.crashed else EXIT_OK
        finally:
            lock.release()

    def request_stop(self) -> None:
        self.stop_event.set()
        self.pending.wake.set()

    def request_reload(self) -> None:
        self._reload.set()
        self.pending.wake.set()

    @property
    def statuses(self) -> list[FileStatus]:
        """Every file's status, read from the catalog when asked (the demo asks); none
        before the first pass (the catalog may not exist yet)."""
        if self.passes == 0:
            return []
        with Catalog.open_readonly(self.config.state_dir) as catalog:
            return file_statuses(self.config, catalog)

    def wait_until(self, predicate: Callable[[list[FileStatus]], bool], timeout: float) -> bool:
        """Block until a pass leaves statuses for which ``predicate`` holds (for the demo)."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while not predicate(self.statuses):
                left = deadline - time.monotonic()
                if left <= 0 or self.stop_event.is_set():
                    return False
                self._progress.wait(min(left, 0.5))
        return True

    def _install_signals(self) -> None:
        # The handler only records the signal; the main thread acts on it (``_handle_signals``).
        # Python runs a handler in the main thread between bytecodes, possibly while that thread
        # holds an Event's internal lock inside ``wait()``: setting an Event from the handler
        # could then wait on that lock forever.
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self._signals.append(signum)  # deque.append takes no Python-level lock

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, on_signal)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                self.request_reload()
            elif self.stop_event.is_set():
                log.info("%s: already stopping", name)
            else:
                log.info("stopping (%s): letting in-flight parts finish", name)
                self.request_stop()

    def _serve(self) -> bool:
        """Start everything, wait for a stop, shut down. False if the worker outlived the deadline."""
        worker = threading.Thread(target=self._work, name="syncd-worker", daemon=True)
        self._worker = worker
        try:
            self._start_metrics()
            self._start_ui()
            self.watcher.start(self.config.folders)  # before the first pass: no event falls in between
            self._scheduler = self._start_scheduler()
            self._demand("start")  # reconcile once before waiting on events
            worker.start()
            cfg = self.config
            log.info(
                "syncd %s running: watching %s; rescan every %s, remote poll every %s, remote deletion "
                "check every %s; state in %s",
                __version__, ", ".join(str(f.path) for f in cfg.folders), format_duration(cfg.schedule.rescan),
                format_duration(cfg.schedule.remote_poll), format_duration(cfg.schedule.deletion_check),
                cfg.state_dir,
            )
            self.notifier.ready(f"watching {len(cfg.folders)} folder(s); first pass")
            while not self.stop_event.wait(SIGNAL_POLL):
                self._handle_signals()
        finally:
            self.request_stop()
            self.notifier.stopping()
            stopping_at = time.monotonic()
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
            self.watcher.stop()
            if worker.is_alive():
                worker.join(max(0.0, self.timings.stop_deadline - (time.monotonic() - stopping_at)))
            if self._metrics_server is not None:
                self._metrics_server.close()
            if self._ui_server is not None:
                self._ui_server.close()
        if worker.is_alive():
            return False
        log.info("stopped")
        return True

    def _start_ui(self) -> None:
        """The web UI (ui.listen), read-only beside the sync; a failure to serve it is logged,
        not fatal: syncing matters more than the page."""
        if self.config.ui.listen is None:
            return
        from syncd.ui.server import UiServer, url  # Starlette and uvicorn load only when the UI is on

        try:
            self._ui_server = UiServer.start(self.config, self.config.ui.listen)
            log.info("serving the web UI on %s", url(self.config.ui.listen))
        except SyncdError as exc:
            log.error("%s", exc)

    def _start_scheduler(self) -> BackgroundScheduler:
        interval = self.notifier.watchdog_interval
        return start_periodic(self.config.schedule, self._demand,
                              (interval, self._ping_watchdog) if interval else None)

    def _ping_watchdog(self) -> None:
        # A dead worker stops the pings, so systemd restarts a daemon that no longer syncs.
        if self._worker is not None and self._worker.is_alive():
            self.notifier.watchdog()

    def _demand(self, *kinds: str) -> None:
        with self._demand_lock:
            self._demands.update(kinds)
        self.pending.wake.set()

    def _take_demands(self) -> set[str]:
        with self._demand_lock:
            taken, self._demands = self._demands, set()
        return taken

    # ----------------------------------------------------------------- remote
    def _open_remote(self) -> None:
        cfg = self.config
        remote = open_remote(cfg.remote, cfg.upload.direct_upload_below, sleep=self._sleep)
        self._guard = OutageGuard(remote, self.stop_event)
        # Probes get no HTTP retries: the daemon's backoff is the retry.
        self._probe = open_remote(replace(cfg.remote, max_retries=0), sleep=self._sleep)
        assert self._catalog is not None
        self._engine = Engine(
            EngineOptions.from_config(cfg), self._catalog, self._guard.remote,
            delete_grace=cfg.safety.delete_grace,  # a move's other half may show up late
            on_bytes=self.metrics.add_bytes,
            stop_event=self.stop_event,
            on_progress=ScanLog(),  # a long first pass says how far it got, once a minute
        )

    def _close_remote(self) -> None:
        for remote in (self._guard.remote if self._guard else None, self._probe):
            if remote is not None:
                remote.close()

    def _sleep(self, seconds: float) -> None:
        self.stop_event.wait(seconds)  # HTTP retry waits end early on SIGTERM

    def _probe_ok(self) -> bool:
        """One cheap request. True if the remote answers and accepts the key."""
        assert self._probe is not None and self._guard is not None
        now = time.monotonic()
        try:
            self._probe.check()
        except (AuthError, ForbiddenError) as exc:
            self._key_rejected(f"the remote rejected the API key from {self.config.remote.api_key_source} ({exc})")
            return False
        except RemoteError as exc:
            if self._remote is RemoteState.AWAY:
                self._timers.set_due("probe", self._health.probe_failed(now).probe_at or now)
                log.debug("remote still unreachable (%s); next try in %s", exc, format_duration(self._health.backoff))
            else:
                self._went_away(str(exc))
            return False
        back = self._health.recovered(now)
        if back.changed:
            log.info("remote %s again after %s; catching up", "reachable" if back.was is RemoteState.AWAY
                     else "accepts the API key", format_duration(back.down_for))
        self._guard.reset()
        self._timers.cancel("probe")
        self.metrics.remote_up.set(1)
        return True

    def _backoff_cap(self) -> float:
        return max(self.timings.backoff_start, min(self.timings.backoff_cap, self.config.schedule.remote_poll))

    @property
    def _remote(self) -> RemoteState:
        return self._health.state

    def _went_away(self, reason: str) -> None:
        now = time.monotonic()
        away = self._health.went_away(now)
        if away.changed:
            self.metrics.error("remote_unreachable")
            log.warning("remote unreachable (%s); still watching and cataloguing; retrying with backoff", reason)
            self.notifier.status(f"remote unreachable since {time.strftime('%H:%M:%S')}; retrying")
        self.metrics.remote_up.set(0)
        self._timers.set_due("probe", away.probe_at or now)

    def _key_rejected(self, message: str) -> None:
        now = time.monotonic()
        rejected = self._health.key_rejected(now)
        if rejected.changed:
            self.metrics.error("key_rejected")
            log.error("%s. Still watching and cataloguing; checking again every %s. Fix the key, then reload "
                      "(systemctl reload syncd) or restart.", message.removesuffix("; stopping"),
                      format_duration(self.timings.key_rejected_retry))
            self.notifier.status("API key rejected by the remote; fix it and reload")
        self.metrics.remote_up.set(0)
        self._timers.set_due("probe", rejected.probe_at or now)

    # ================================================================= worker
    def _work(self) -> None:
        try:
            while not self.stop_event.is_set():
                self._sleep_until_due()
                if self.stop_event.is_set():
                    break
                if self._reload.is_set():
                    self._reload.clear()
                    self._apply_reload()
                self._step()
        except BaseException:
            log.exception("the worker stopped on an unexpected error; exiting")
            self.crashed = True
            self.request_stop()

    def _next_due(self, now: float) -> float | None:
        with self._demand_lock:
            if self._demands:
                return now
        candidates = [t for t in (self._timers.earliest(),) if t is not None]
        due = self.pending.next_due()
        if due is not None:
            candidates.append(max(due, self._last_pass_end + self.timings.debounce))
        return min(candidates) if candidates else None

    def _sleep_until_due(self) -> None:
        self._timers.sleep_until_due(self.pending.wake, self._next_due,
                                     lambda: self.stop_event.is_set() or self._reload.is_set())

    def _step(self) -> None:
        now = time.monotonic()
        demands = self._take_demands()
        if "poll" in demands and now - self._last_listing_at < self.config.schedule.remote_poll / 2:
            demands.discard("poll")  # a pass just read the listing (the remote came back): nothing to add
        changed = self.pending.take_paths(now)  # whatever is due rides along with any pass
        fired = self._timers.fire(now)
        self.metrics.queue_depth.set(self.pending.depth)
        if self._remote is RemoteState.UP and ("start" in demands or fired & {"imports", "streams"}):
            self._tend_extras(streams="start" in demands or "streams" in fired)
        fired -= {"imports", "streams"}  # theirs alone: no pass for them
        if not (demands or changed or fired):
            return
        # Before the walk, so that a folder's walk never precedes its watch.
        fresh = self.watcher.ensure(self.config.folders)
        # The complete listing (remote deletions) has its own, slower schedule, start-up
        # included; a poll in between reads only what is in flight, and new videos at the
        # listing's newest end.
        deletion_check_due = listing_due(self._last_listing_at, self.config.schedule.deletion_check, now)
        if "listing" in demands:
            self._listing_wanted = True  # until one is read: a failed read is tried again by polls
        with_listing = "listing" in demands or ("poll" in demands and (deletion_check_due or self._listing_wanted)) or (
            "start" in demands and self._start_needs_listing(now))
        newest = bool(demands & {"poll", "start"}) and not with_listing
        if self._remote is not RemoteState.UP:
            if "probe" not in fired or not self._probe_ok():
                if demands or changed or fired - {"probe"}:
                    self._observe_only()
                return
            # Back: catch up as a poll does. The complete listing follows its schedule (an
            # outage proves no deletion, and a flapping network must not read a million
            # videos each time it comes back), unless it is due or recovery waits for it.
            with_listing = self._listing_wanted or self._start_needs_listing(now)
            newest = not with_listing
        unchanged = self._unchanged(demands, changed, fired, fresh)
        self._pass(with_listing, unchanged, self._changed_paths(demands, changed, fired, unchanged | fresh),
                   grace_ran_out="grace" in fired, newest=newest)

    def _start_needs_listing(self, now: float) -> bool:
        """Whether a start-up (or reload) pass reads the complete listing: when the deletion
        check is due by the catalog's record (never read, or ``deletion_check`` ago), and
        whenever a one-shot ``syncd sync`` would (``Engine.listing_due``: a new or lost
        catalog's recovery waits for it; pulling on a backend that cannot list from the
        newest end). At 1,000,000 videos the listing costs ~90 CPU-s: a restart must
        not pay it every time."""
        assert self._engine is not None
        return listing_due(self._last_listing_at, self.config.schedule.deletion_check, now) or \
            self._engine.listing_due()

    def _unchanged(self, demands: set[str], changed: Taken, fired: set[str], fresh: frozenset[Path]) -> frozenset[Path]:
        """The folders this pass need not walk again: watched, and no event came in them
        (a remote poll over a quiet tree costs no walk; one new file walks its folder
        only, and there only its paths: ``_changed_paths``). A rescan, a retry or a
        revisit walks them all; a folder watched only from now on (a disk mounted later)
        is walked all the same. The engine walks the files a folder's last scan left
        unsettled anyway, which covers the settle timer."""
        if "scan" in demands or fired & {"retry", "revisit"}:
            return frozenset()
        touched = changed.folders(f.path for f in self.config.folders)
        if touched is None:  # more changes than Pending keeps by name: any folder may have changed
            return frozenset()
        return self.watcher.intact() - fresh - touched

    def _changed_paths(self, demands: set[str], changed: Taken, fired: set[str],
                       skip: frozenset[Path]) -> dict[Path, frozenset[str]]:
        """For each folder to walk (not in ``skip``) whose watch is intact, the paths,
        relative to it, where events came: the engine walks only those (one new file in a
        million walks its directory, not the library). Paths still pending ride along
        (see ``Pending.waiting``). A folder with an event on itself, a rescan, a retry, a
        revisit or more changes than ``Pending`` keeps by name walk whole."""
        if "scan" in demands or fired & {"retry", "revisit"} or changed.unnamed:
            return {}
        waiting = self.pending.waiting()
        if waiting.unnamed:
            return {}
        paths = changed.paths + waiting.paths
        intact = self.watcher.intact()
        result: dict[Path, frozenset[str]] = {}
        for folder in self.config.folders:
            if folder.path in skip or folder.path not in intact:
                continue
            root = str(folder.path).rstrip(os.sep)
            if any(p.rstrip(os.sep) == root for p in paths):
                continue  # the folder itself: walk it all
            inside = [p[len(root) + 1:] for p in paths if p.startswith(root + os.sep)]
            if inside and all(inside) and any(p.startswith(root + os.sep) for p in changed.paths):
                result[folder.path] = frozenset(p.replace(os.sep, "/") for p in inside)
        return result

    def _pass(self, with_listing: bool, unchanged: frozenset[Path],
              changed: Mapping[Path, frozenset[str]] | None = None, *, grace_ran_out: bool = False,
              newest: bool = False) -> None:
        assert self._engine is not None and self._guard is not None
        started = time.monotonic()
        try:
            report = self._engine.run_pass(with_listing=with_listing, unchanged=unchanged, changed=changed,
                                           newest=newest, defer_mirror=self._defer_mirror,
                                           mirror_yield=self._mirror_should_yield)
        except FatalRemoteError as exc:
            self._key_rejected(str(exc))
            return
        except RemoteError as exc:  # a step that lets remote failures through
            if self.stop_event.is_set():
                return
            if self._guard.outage is not None:
                self._went_away(self._guard.outage)
            else:
                log.warning("pass stopped by the remote (%s); trying again in %s", exc,
                            format_duration(self.timings.internal_retry))
                self.metrics.error("action")
                self._timers.after("retry", self.timings.internal_retry)
            return
        except Exception:  # a bug or local trouble (disk full): log it, keep the daemon up
            if self.stop_event.is_set():
                log.debug("pass ended early while stopping", exc_info=True)
                return
            log.exception("pass failed; trying again in %s", format_duration(self.timings.internal_retry))
            self.metrics.error("internal")
            self._timers.after("retry", self.timings.internal_retry)
            return
        finally:
            self._last_pass_end = time.monotonic()
            self.metrics.pass_seconds.observe(self._last_pass_end - started)
        outage = self._guard.outage is not None and not self.stop_event.is_set()
        if report.listing_ok:
            self._last_listing_at = started
            self._listing_wanted = False
        if outage:
            self._went_away(str(self._guard.outage))
        self._after_pass(report, self._last_pass_end - started, outage, grace_ran_out)

    def _defer_mirror(self) -> bool:
        """Whether this pass leaves the mirror step to a later one: while files wait for a
        pass (events, or still settling) or videos are processing remotely, for at most
        ``mirror_defer_cap``.
        A mirror run reads every done file and video (at 100,000 files ~33 CPU-s), and
        every catalog change makes one due: a new clip used to cost two (after its upload,
        and once processed), and a file arriving meanwhile waited for each. Its video
        cannot be mirrored before it is processed anyway; the pass that sees it done (or
        the cap) runs the mirror once for all of them."""
        assert self._engine is not None
        now = time.monotonic()
        if self.pending.depth or self._engine.settling() or self._engine.in_flight():
            if self._mirror_deferred_since is None:
                self._mirror_deferred_since = now
            if now - self._mirror_deferred_since < self.timings.mirror_defer_cap:
                return True
            self._mirror_forced_until = now + self.timings.mirror_forced_run
        self._mirror_deferred_since = None
        return False

    def _has_work(self) -> bool:
        """Whether something waits for the worker (a changed path, a demand, a timer due, a
        stop or reload): the mirror's verification of every sidecar (a process's first
        mirror run, ~33 CPU-s at 100,000 videos) stops between two slices for it, and the
        ``mirror`` timer brings it back after (``_after_pass``)."""
        if self.pending.depth or self.stop_event.is_set() or self._reload.is_set():
            return True
        with self._demand_lock:
            if self._demands:
                return True
        due = self._timers.earliest()
        return due is not None and due <= time.monotonic()
    def _mirror_should_yield(self) -> bool:
        """Whether a mirror run in progress stops, between two videos or two slices of its
        check of every sidecar: the worker has other work (``_has_work``). The run keeps
        what it did and goes on once the mirror is no longer deferred (``_defer_mirror``):
        a first catch-up over a million videos takes hours, and a file arriving meanwhile
        would otherwise wait for all of it. A run the cap forced first works
        ``mirror_forced_run`` seconds, so a steady stream of files cannot starve the mirror."""
        return time.monotonic() >= self._mirror_forced_until and self._has_work()

    def _tend_extras(self, *, streams: bool) -> None:
        """Beside the passes: poll unfinished ``syncd import``s (landing their videos) and, on
        start-up and reload, make the running live streams the configured ones."""
        from syncd.mirror.imports import Importer
        from syncd.service.streams import StreamKeeper

        assert self._catalog is not None and self._guard is not None
        remote = self._guard.remote
        try:
            if streams:
                ok = StreamKeeper(self._catalog, remote).reconcile(self.config.streams)
                self._timers.set_due("streams", None if ok else time.monotonic() + self.timings.internal_retry)
            importer = Importer(self.config, self._catalog, remote)
            if streams:
                importer.recover()
            due = importer.poll_due()
            self._timers.set_due("imports", None if due is None else time.monotonic() + max(0.0, due - time.time()))
        except (AuthError, ForbiddenError) as exc:
            self._key_rejected(f"the remote rejected the API key from {self.config.remote.api_key_source} ({exc})")
        except Exception as exc:  # noqa: BLE001 - the remote, or local trouble: try again later, keep syncing
            log.warning("imports/streams: %s; trying again in %s", exc, format_duration(self.timings.internal_retry))
            log.debug("imports/streams failed", exc_info=True)
            again = time.monotonic() + self.timings.internal_retry
            self._timers.set_due("imports", again)
            if streams:
                self._timers.set_due("streams", again)

    def _observe_only(self) -> None:
        """Remote away: still scan, hash and record, so catching up later uploads at once."""
        assert self._engine is not None
        try:
            scans, _problems, hashed = self._engine.observe()
        except Exception:
            log.exception("scan failed; trying again in %s", format_duration(self.timings.internal_retry))
            self._timers.after("retry", self.timings.internal_retry)
            return
        finally:
            self._last_pass_end = time.monotonic()
        if hashed:
            log.info("catalogued %d new file version(s) while the remote is %s", hashed, self._remote.value)
        self._timers.schedule_settle(scans, self.config.upload.settle_seconds)

    def _after_pass(self, report: PassReport, seconds: float, outage: bool, grace_ran_out: bool) -> None:
        assert self._engine is not None
        # A status is made of catalog rows and the config alone: a pass over a settled
        # tree that changed no row (the usual poll or rescan) reuses the last counts
        # rather than count again.
        version = self._engine.catalog.changes
        quiet = (version == self._statuses_at and not report.plan.actions and not report.hashed
                 and not report.result.failed and _all_terminal(self.counts))
        if quiet:
            log.debug("quiet pass in %.1fs: %d file(s), nothing changed", seconds, sum(self.counts.values()))
            counts = self.counts
        else:
            self._statuses_at = version  # read before counting: a later write counts again
            counts = status_overview(self.config, self._engine.catalog, self._engine.features, pending_limit=0).counts
        result = report.result
        # During an outage every remote step fails the same way: one line said so already.
        for line in result.failed:
            log.log(logging.DEBUG if outage else logging.WARNING, "%s", line)
        for line in report.problems:  # folder and hashing problems: said here, once per pass
            log.log(logging.DEBUG if outage else logging.WARNING, "%s", line)
        if outage and result.failed:
            log.info("%d remote step(s) wait for the remote to answer", len(result.failed))
        m = self.metrics
        m.set_file_states(counts)
        m.uploaded_files.inc(result.uploaded_files)
        m.error("action", len(result.failed))
        m.error("folder", len(report.problems))
        m.error("blocked", len(report.plan.blocked))
        m.passed([str(s.folder) for s in report.scans if s.ok], time.time())
        m.queue_depth.set(self.pending.depth)
        changes = [a for a in report.plan.actions if a.kind != "ForgetFile"]
        for action in changes:
            log.debug("%s", action.describe())
        if changes or result.failed or report.plan.unlisted:
            counted = Counter(a.kind for a in changes) + Counter(report.plan.unlisted)  # later slices: counted only
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counted.items()) if kind != "ForgetFile")
            log.info("pass in %.1fs: %s; sent %s; %d failed", seconds, kinds or "no changes",
                     format_size(result.uploaded_bytes), len(result.failed))
        elif not quiet:  # nothing done, but the catalog had changed: the counts were read again
            log.debug("pass in %.1fs: nothing to do; %d file(s) counted again", seconds, sum(counts.values()))
        timers = self._timers
        timers.schedule_settle(report.scans, self.config.upload.settle_seconds)
        timers.schedule_revisit(report.plan.revisit_at)
        # A quiet pass leaves the grace times as they were: look again only if the grace
        # timer is set, or fired for this pass (its pass may have come a moment early).
        grace = self.config.safety.delete_grace
        if grace > 0 and (not quiet or grace_ran_out or "grace" in timers):
            timers.schedule_grace(self._engine.catalog.missing_since(), grace)
        mirror = getattr(report, "mirror", None)  # the mirror step's report, when it ran
        timers.schedule_followup(not _all_terminal(counts) or bool(mirror and mirror.pending),
                                 bool(changes or report.hashed), self.config.schedule.remote_poll)
        # The mirror run stopped between two slices for other work: go on after it.
        timers.set_due("mirror", time.monotonic() + self.timings.debounce if mirror and mirror.unfinished else None)
        self.notifier.status(self._status_line(counts))
        with self._progress:
            self.passes += 1
            self.counts = counts
            self._progress.notify_all()

    def _status_line(self, counts: Counter[str]) -> str:
        total = sum(counts.values())
        parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        remote = "" if self._remote is RemoteState.UP else f"; remote {self._remote.value}"
        return f"{total} file(s): {parts or 'none'}{remote}"

    # ================================================================= reload
    def _apply_reload(self) -> None:
        self.notifier.reloading()
        source = self.config.source
        try:
            new = load_config(source, self.environ)
        except ConfigError as exc:
            self._refuse_reload(str(exc))
            return
        if new.state_dir != self.config.state_dir:
            self._refuse_reload(f"{source}: state_dir: cannot change while running ({self.config.state_dir} → "
                                f"{new.state_dir}); restart syncd to move it")
            return
        if new.metrics.listen != self.config.metrics.listen and self._metrics_server is not None:
            self._metrics_server.close()
            self._metrics_server = None
        old = self.config
        self.config = new
        if not self.keep_log_level:
            setup_logging(new.log_level)
        self._close_remote()
        self._open_remote()
        # Maybe a new key or address (and poll interval): count it as up and try at once.
        self._health = RemoteHealth(self.timings.backoff_start, self._backoff_cap(), self.timings.key_rejected_retry)
        self._timers.cancel("probe")
        self.metrics.remote_up.set(1)
        if new.upload.settle_seconds != old.upload.settle_seconds:
            self.pending.settle = new.upload.settle_seconds
            self.pending.clear()  # the full pass below covers whatever was pending
        self._statuses_at = None  # folders and policies may differ: build statuses anew
        if self._scheduler is not None:
            reschedule_periodic(self._scheduler, new.schedule)
        if self._metrics_server is None:
            self._start_metrics()
        if self._ui_server is not None:  # the UI reads folders and policies from the config: serve the new one
            self._ui_server.close()
            self._ui_server = None
        self._start_ui()
        # A whole pass, as at start-up. The complete listing follows its schedule, unless the
        # reload changed what it is read for: the remote, the folders, or pulling.
        changed_remote = remote_identity(old.remote) != remote_identity(new.remote) or \
            old.remote.api_key.reveal() != new.remote.api_key.reveal()
        changed_folders = [f.path for f in old.folders] != [f.path for f in new.folders]
        self._demand("start", *(["listing"] if changed_remote or changed_folders
                                or old.mirror.pull_remote != new.mirror.pull_remote else []))
        log.info("config reloaded from %s", source)
        self.notifier.ready(f"config reloaded; watching {len(new.folders)} folder(s)")

    def _refuse_reload(self, message: str) -> None:
        log.error("config reload refused, still running the previous config: %s", message)
        self.metrics.error("config_reload")
        self.notifier.ready("config reload refused; running the previous config")

    def _start_metrics(self) -> None:
        listen = self.config.metrics.listen
        if listen is None:
            return
        try:
            self._metrics_server = MetricsServer.start(self.metrics, listen)
        except OSError as exc:
            # Metrics are optional: a taken port must not stop syncing.
            log.error("cannot serve metrics on %s:%d: %s", listen[0], listen[1], exc.strerror or exc)


def run_daemon(config: Config, *, keep_log_level: bool = False, rebind: bool = False) -> int:
    """``syncd run``: the daemon in this process, signals included."""
    return Daemon(config, keep_log_level=keep_log_level, rebind=rebind).run()


def monotonic_of(wall: float | None) -> float:
    """A wall-clock time in the past (the catalog's) on this process's monotonic clock;
    -inf for None ("never"). A time ahead of the wall clock (it was set back) counts as now."""
    if wall is None:
        return float("-inf")
    return time.monotonic() - max(0.0, time.time() - wall)


def _all_terminal(counts: Counter[str]) -> bool:
    """Every file done, failed for good or deleted on the remote (nothing to poll for)."""
    return all(state in TERMINAL for state, n in counts.items() if n)
