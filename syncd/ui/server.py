"""Serving the UI with uvicorn: in the foreground (`syncd ui`) or in a thread of the daemon.

Uvicorn runs in a thread of its own either way (so it installs no signal handlers and
the caller decides how to stop). The socket is bound here, before uvicorn starts, so a
busy port is one clear error rather than a log line from inside the server.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from syncd.config import Config
from syncd.errors import SyncdError
from syncd.remote import open_remote
from syncd.remote.base import Remote
from syncd.ui.app import create_app

log = logging.getLogger("syncd.ui")

REMOTE_TIMEOUT = 15.0  # a page waits at most this long for the remote (thumbnails, HLS, embeddings)


def build_app(config: Config) -> Starlette:
    """The app over ``config``; the remote opened only if there is a key, with few retries
    (a person is waiting; the sync's own client keeps its patient retries)."""
    quick = dataclasses.replace(config.remote, max_retries=1, timeout=min(config.remote.timeout, REMOTE_TIMEOUT))

    def remote() -> Remote:
        return open_remote(quick)

    return create_app(config, open_remote=remote if config.remote.api_key else None)


def bind(listen: tuple[str, int]) -> socket.socket:
    host, port = listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SyncdError(f"cannot serve the UI on {url(listen)}: {exc.strerror or exc}"
                         " (is `syncd run` serving it already? see ui.listen)") from None
    return sock


def url(listen: tuple[str, int]) -> str:
    host, port = listen
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _server(config: Config) -> uvicorn.Server:
    settings = uvicorn.Config(build_app(config), log_level="warning", access_log=False, lifespan="on",
                              timeout_graceful_shutdown=2)
    return uvicorn.Server(settings)


def serve_until_stopped(config: Config, listen: tuple[str, int], ready: Callable[[], None]) -> None:
    """`syncd ui`: serve until SIGINT or SIGTERM, then stop cleanly (exit status 0)."""
    server = UiServer.start(config, listen)
    # The handler only records the signal: setting an Event from it could wait forever on the
    # Event's lock, held by this same (main) thread inside ``wait()``.
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ready()
        while not received:
            time.sleep(0.2)
            if not server.thread.is_alive():
                raise SyncdError("the web UI stopped unexpectedly (see the log)")
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class UiServer:
    """The UI inside the daemon: its own thread and event loop; ``close`` stops it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, listen: tuple[str, int]) -> None:
        self.server, self.thread, self.listen = server, thread, listen

    @classmethod
    def start(cls, config: Config, listen: tuple[str, int]) -> UiServer:
        sock = bind(listen)
        server = _server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="syncd-ui", daemon=True)
        thread.start()
        while not server.started and thread.is_alive():
            time.sleep(0.01)  # startup is the app's lifespan: milliseconds
        if not server.started:
            sock.close()
            raise SyncdError(f"the web UI on {url(listen)} did not start (see the log)")
        return cls(server, thread, listen)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
