"""Live camera streams (``streams:`` in the config), kept running like folders are kept in sync.

The service documents no call that lists running streams, so the catalog's ``streams``
table is the only record of what this syncd started: ``reconcile`` compares it with the
config and

* starts a configured stream that has no record (recorded before the request, its task id
  after the answer);
* stops a recorded stream that left the config, or whose options changed (then starts it
  again with the new ones); stopping is safe to repeat, so a stop whose answer was lost is
  simply sent again;
* leaves every other recorded stream alone: a daemon restart does not restart them.

A start whose answer was never recorded (killed in between, or no answer) cannot be told
apart from one that never happened: it is started again, with a warning that the camera
may now be watched twice until the old task ends.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncd.config import Config, StreamConfig, shown_stream_url
from syncd.errors import AuthError, BadRequestError, NotFoundError, RemoteError
from syncd.remote.base import Remote, need
from syncd.store.catalog import Catalog

log = logging.getLogger("syncd.service.streams")


@dataclass(frozen=True)
class StreamRow:
    """One line of ``syncd streams``."""

    url: str  # as shown: a password in it masked
    configured: bool
    running: bool  # recorded as started (the service cannot be asked)
    task_id: str | None
    since: float | None
    note: str = ""


def stream_rows(config: Config, catalog: Catalog) -> list[StreamRow]:
    """The configured streams and the recorded ones, configured first in config order."""
    records = {r.url: r for r in catalog.streams()}
    rows = []
    for stream in config.streams:
        record = records.pop(stream.url, None)
        note = ""
        if record is not None and record.task_id is None:
            note = "start sent, answer not recorded"
        elif record is not None and json.loads(record.options) != stream.options():
            note = "options changed: restarted by the daemon"
        elif record is None:
            note = "not started yet: the daemon starts it"
        rows.append(StreamRow(shown_stream_url(stream.url), True, record is not None and record.task_id is not None,
                              None if record is None else record.task_id,
                              None if record is None else record.started_at, note))
    for record in records.values():
        rows.append(StreamRow(shown_stream_url(record.url), False, record.task_id is not None, record.task_id,
                              record.started_at, "not in the config: the daemon stops it"))
    return rows


class StreamKeeper:
    def __init__(self, catalog: Catalog, remote: Remote, *, clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self.remote = remote
        self.clock = clock

    def reconcile(self, wanted: Sequence[StreamConfig]) -> bool:
        """Make the running set the configured one; False if something is left to retry."""
        records = {r.url: r for r in self.catalog.streams()}
        if not wanted and not records:
            return True  # nothing to do: a backend without streams is never asked
        streams = need(self.remote, self.remote.features().streams, "watch live streams")
        configured = {s.url: s for s in wanted}
        ok = True
        for url, record in records.items():
            want = configured.get(url)
            if want is not None and record.task_id is not None and json.loads(record.options) == want.options():
                continue  # running as configured: left alone
            if record.task_id is None:
                if want is None:  # a start never answered, and no longer wanted
                    self.catalog.stream_stopped(url)
                continue
            try:
                streams.stop_stream(record.task_id)
            except (BadRequestError, NotFoundError) as exc:
                log.info("stream %s (task %s) was already gone: %s", shown_stream_url(url), record.task_id, exc)
            except AuthError:
                raise
            except RemoteError as exc:
                log.warning("cannot stop stream %s (task %s) yet: %s", shown_stream_url(url), record.task_id, exc)
                ok = False
                continue
            self.catalog.stream_stopped(url)
            why = "options changed" if want is not None else "removed from the config"
            self.catalog.log("stream", shown_stream_url(url), "stopped", f"task {record.task_id} ({why})")
            log.info("stopped stream %s (task %s): %s", shown_stream_url(url), record.task_id, why)
        now_recorded = {r.url: r for r in self.catalog.streams()}
        for stream in wanted:
            left = now_recorded.get(stream.url)
            if left is not None and left.task_id is not None:
                continue
            ok = self._start(stream, interrupted=left is not None) and ok
        return ok

    def _start(self, stream: StreamConfig, *, interrupted: bool) -> bool:
        streams = need(self.remote, self.remote.features().streams, "watch live streams")
        shown = shown_stream_url(stream.url)
        if interrupted:
            log.warning("stream %s: an earlier start was sent but its answer never recorded; starting it again "
                        "(the camera may be watched twice until the earlier task ends)", shown)
        self.catalog.stream_starting(stream.url, json.dumps(stream.options()), self.clock())
        try:
            task_id = streams.start_stream(stream.url, stream.options())
        except AuthError:
            raise
        except RemoteError as exc:
            if not exc.retryable:  # refused: provably not started
                self.catalog.stream_stopped(stream.url)
            log.warning("cannot start stream %s: %s", shown, exc)
            self.catalog.log("stream", shown, f"failed: {exc}")
            return False
        self.catalog.stream_started(stream.url, task_id)
        self.catalog.log("stream", shown, "started", f"task {task_id}")
        log.info("started stream %s (task %s)", shown, task_id)
        return True
