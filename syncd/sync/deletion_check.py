"""When the complete remote listing is due, and the words that say when it was read.

The complete listing is what proves a remote deletion (with the video's own 404 or
null); it costs a request per page of the whole remote library, so a one-shot
``syncd sync`` reads it, like the daemon, once every ``schedule.deletion_check``,
judged from when the catalog last recorded one (``Catalog.listing_read_at``); the
daemon asks ``listing_due`` too, on its monotonic clock, starting from the catalog's
record (so a restart does not read it before it is due).
``syncd status`` and ``syncd sync`` say it with the same words.
"""

from __future__ import annotations

import time

from syncd.units import format_duration, rough_duration

CHECK_NOW = "`syncd sync --check-deletions` checks now"


def listing_due(read_at: float | None, every: float, now: float) -> bool:
    """Whether the complete listing is due: never read, or read ``every`` seconds ago.
    ``read_at`` and ``now`` on one clock: the catalog's wall clock for ``syncd sync``, the
    daemon's monotonic one (where ``-inf`` is "never")."""
    return read_at is None or now - read_at >= every


def deletion_check_words(read_at: float | None, every: float, now: float) -> str:
    """``last checked 12m ago (2026-12-02 05:00:01); next check in 48m (every 1h:
    schedule.deletion_check; `syncd sync --check-deletions` checks now)``."""
    if read_at is None:
        return f"last checked never; the next `syncd sync` (or the daemon) checks (every {format_duration(every)}: "\
               "schedule.deletion_check)"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(read_at))
    left = read_at + every - now
    upcoming = f"next check in {rough_duration(left)}" if left > 0 else "next check at the next sync"
    return (f"last checked {rough_duration(now - read_at)} ago ({when}); {upcoming} "
            f"(every {format_duration(every)}: schedule.deletion_check; {CHECK_NOW})")

