"""Client-side pacing: one token bucket per endpoint group, shared by every thread that
uses the same ``RateLimiter``.

Each bucket holds one token and refills every ``period / count`` seconds, so requests of a
group leave at least that far apart. That is the only pacing a strict server-side sliding
window ("at most N in any W seconds") never refuses; a burst allowance would be refused at
the window's edge. A small margin covers the jitter between leaving here and arriving there.

Hand one ``RateLimiter`` to every client of the same account in the process (limits are per
account on memories.ai); there is deliberately no process-global registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from syncd.units import parse_rate

#: Spacing is stretched by this fraction so network jitter cannot squeeze two requests
#: closer together than the server's window allows.
MARGIN = 0.05


class RateLimiter:
    """``acquire(group)`` blocks until a request of ``group`` may leave. Thread-safe.

    ``limits`` maps group -> "count/period" ("5/s", "1/min") or None (not limited).
    Unknown groups are not limited.
    """

    def __init__(self, limits: Mapping[str, str | None], *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval: dict[str, float] = {}
        for group, rate in limits.items():
            if rate is None:
                continue
            count, per = parse_rate(rate)
            self._interval[group] = per / count * (1 + MARGIN)
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def interval(self, group: str) -> float:
        """Seconds between two requests of ``group`` (0 when not limited)."""
        return self._interval.get(group, 0.0)

    def acquire(self, group: str) -> float:
        """Wait for this group's next slot; returns the seconds waited."""
        interval = self._interval.get(group)
        if not interval:
            return 0.0
        with self._lock:  # reserve a slot, then wait outside the lock
            now = self._clock()
            slot = max(now, self._next.get(group, now))
            self._next[group] = slot + interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def penalise(self, group: str) -> None:
        """The server refused anyway: nobody in this process sends for one more interval."""
        interval = self._interval.get(group)
        if not interval:
            return
        with self._lock:
            now = self._clock()
            self._next[group] = max(self._next.get(group, now), now + interval)
