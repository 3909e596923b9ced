"""Prometheus metrics for the daemon (``metrics.listen``), with prometheus-client.

Everything lives in this object's own ``CollectorRegistry``, never the library's
global default one, so two daemons in one process (the demo, tests) never clash.
The daemon updates the gauges after each pass; scraping never touches the catalog.

    syncd_files{state}                                   tracked files by state (done, uploading, ...)
    syncd_uploaded_bytes_total                           bytes sent to the remote
    syncd_uploaded_files_total                           files whose upload completed
    syncd_errors_total{kind}                             action, folder, blocked, remote_unreachable,
                                                         key_rejected, internal, config_reload
    syncd_queue_depth                                    changed paths waiting for a pass
    syncd_last_successful_pass_timestamp_seconds{folder} when a pass last scanned the folder cleanly
    syncd_pass_duration_seconds                          histogram of pass durations
    syncd_remote_up                                      1 while the remote answers, else 0
    process_*                                            CPU, RSS, open files of this process
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from syncd.sync.report import TERMINAL

log = logging.getLogger("syncd.service.metrics")

# Listed up front so every state shows (as 0) from the first scrape on.
FILE_STATES = ("new", "uploading", "processing", "pipelines", "collecting", *sorted(TERMINAL), "ambiguous")
ERROR_KINDS = ("action", "folder", "blocked", "remote_unreachable", "key_rejected", "internal", "config_reload")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.files = Gauge("syncd_files", "Tracked files by state.", ["state"], registry=r)
        self.uploaded_bytes = Counter("syncd_uploaded_bytes", "Bytes uploaded to the remote.", registry=r)
        self.uploaded_files = Counter("syncd_uploaded_files", "Files uploaded to the remote.", registry=r)
        self.errors = Counter("syncd_errors", "Errors by kind.", ["kind"], registry=r)
        self.queue_depth = Gauge("syncd_queue_depth", "Changed paths waiting for a pass.", registry=r)
        self.last_pass = Gauge(
            "syncd_last_successful_pass_timestamp_seconds",
            "Unix time of the last pass that scanned the folder without problems.",
            ["folder"],
            registry=r,
        )
        self.pass_seconds = Histogram(
            "syncd_pass_duration_seconds",
            "Duration of reconcile passes.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=r,
        )
        self.remote_up = Gauge("syncd_remote_up", "1 while the remote answers, else 0.", registry=r)
        for state in FILE_STATES:
            self.files.labels(state).set(0)
        for kind in ERROR_KINDS:
            self.errors.labels(kind)
        self.remote_up.set(1)

    def add_bytes(self, n: int) -> None:
        self.uploaded_bytes.inc(n)

    def error(self, kind: str, n: int = 1) -> None:
        if n:
            self.errors.labels(kind).inc(n)

    def set_file_states(self, counts: Mapping[str, int]) -> None:
        for state in {*FILE_STATES, *counts}:
            self.files.labels(state).set(counts.get(state, 0))

    def passed(self, folders: Iterable[str], when: float) -> None:
        for folder in folders:
            self.last_pass.labels(folder).set(when)


@dataclass
class MetricsServer:
    """The /metrics HTTP endpoint; ``close()`` frees the port (a reload may move it)."""

    listen: tuple[str, int]
    server: WSGIServer
    thread: threading.Thread

    @classmethod
    def start(cls, metrics: Metrics, listen: tuple[str, int]) -> MetricsServer:
        host, port = listen
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
        log.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)
        return cls(listen, server, thread)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
