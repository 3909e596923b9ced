"""``EmulatorBase``: the lifecycle every emulator shares (bind, serve in a background thread,
stop and join, context manager) and the runtime controls that are the same for all of them
(faults, clock, request log). A backend's emulator supplies its store, context, routes and
``ServerHooks`` in ``_open``."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from syncd.emulator.config import Faults
from syncd.emulator.context import Clock
from syncd.emulator.embeddings import Embedder
from syncd.emulator.faults import FaultInjector
from syncd.emulator.requestlog import RequestLog
from syncd.emulator.routing import Router
from syncd.emulator.server import (App, HttpServer, ServerContext, ServerHooks, base_url_for,
                                   serve_in_background, stop_serving)

log = logging.getLogger("syncd.emulator")


class BaseConfig(Protocol):
    """The settings the shared lifecycle reads (every backend's config has them)."""

    data_dir: Path
    host: str
    port: int
    keepalive_seconds: float
    faults: Faults
    seed: int


class BaseStore(Protocol):
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def close(self) -> None: ...


class BaseContext(ServerContext, Protocol):
    """What the lifecycle and the HTTP plumbing need from a backend's handler context."""

    @property
    def store(self) -> BaseStore: ...


Cfg = TypeVar("Cfg", bound=BaseConfig)
C = TypeVar("C", bound=BaseContext)


class EmulatorBase(Generic[Cfg, C]):
    """One emulator instance on one loopback port.

    Faults, the request log, the embedder and the clock offset live on this object, so they
    survive a ``stop()`` / ``start()`` cycle; records are re-read from the data directory.
    """

    #: Named in the "listening" log line.
    service = "emulator"

    def __init__(self, config: Cfg) -> None:
        self.config = config
        self._faults = FaultInjector(config.faults, config.seed)
        self._requests = RequestLog()
        self._clock = Clock()
        self._embedder = Embedder()
        self._ctx: C | None = None
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    def _open(self) -> tuple[C, Router, ServerHooks]:
        """Open the store and build this backend's context, routes and hooks."""
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind, then serve in a background thread; returns once the socket is listening."""
        if self._server is not None:
            raise RuntimeError("emulator already running")
        cfg = self.config
        server = HttpServer((cfg.host, cfg.port), cfg.keepalive_seconds)
        try:
            ctx, router, hooks = self._open()
        except BaseException:
            server.server_close()
            raise
        store = ctx.store
        stored_offset = store.get_meta("clock_offset")
        if stored_offset is not None:
            self._clock.set_offset(max(self._clock.offset, float(stored_offset)))
        self._clock.on_change = lambda offset: store.set_meta("clock_offset", repr(offset))
        self._server, self._ctx = server, ctx
        server.app = App(ctx, router, self.base_url, hooks)
        self._thread = serve_in_background(server)
        log.info("%s listening on %s (data dir %s)", self.service, self.base_url, cfg.data_dir)

    def stop(self) -> None:
        """Stop accepting, close every connection, join all threads, close the database."""
        server, thread, ctx = self._server, self._thread, self._ctx
        if server is None:
            return
        assert ctx is not None
        ctx.stopping.set()
        stop_serving(server, thread)
        self._clock.on_change = None
        ctx.store.close()
        self._server = self._thread = self._ctx = None
        log.info("%s stopped", self.service)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return base_url_for(self.config.host, self.port)

    def _need_ctx(self) -> C:
        if self._ctx is None:
            raise RuntimeError("emulator not running")
        return self._ctx

    # -- runtime control (same as the shared admin API) -------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults.faults

    def set_faults(self, faults: Faults) -> None:
        self._faults.set(faults)

    def advance_clock(self, seconds: float) -> float:
        return self._clock.advance(seconds)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._requests.since(since)

    def clear_requests(self) -> int:
        return self._requests.clear()
