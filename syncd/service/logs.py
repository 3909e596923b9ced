"""Logging to stderr; journald-friendly (no timestamps) when run under systemd."""

from __future__ import annotations

import logging
import os
import sys

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def setup_logging(level: str | int = "info") -> None:
    numeric = LEVELS.get(level, logging.INFO) if isinstance(level, str) else level
    under_journald = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_journald else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.set_name("syncd-stderr")
    root = logging.getLogger()
    # Replace only our own handler, so a host's handlers (pytest's, say) survive.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "syncd-stderr"] + [handler]
    root.setLevel(numeric)
    # httpx logs every request line at INFO, pre-signed URLs included: keep it quiet.
    for noisy in ("httpx", "httpcore", "apscheduler", "watchdog"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
