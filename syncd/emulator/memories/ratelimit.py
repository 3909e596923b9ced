"""Per-account, per-endpoint-group rate limits, enforced as a sliding window.

A sliding window ("at most N admitted requests in any W seconds") is the strictest common
reading of "5/s": a client that bursts at a window edge is refused here even where a
fixed-window server would let it through. Only admitted requests count (the doc does not
say whether refused ones do; a client that paces never finds out).
"""

from __future__ import annotations

import threading
from collections import deque

from syncd.units import format_rate, parse_rate


class WindowLimiter:
    def __init__(self, limits: dict[str, str | None]) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, tuple[float, float] | None] = {}
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self.set_limits(limits)

    def set_limits(self, limits: dict[str, str | None]) -> None:
        parsed = {g: (None if v is None else parse_rate(v)) for g, v in limits.items()}
        with self._lock:
            self._limits = parsed
            self._seen.clear()

    def limits(self) -> dict[str, str | None]:
        with self._lock:
            return {g: (None if v is None else format_rate(*v)) for g, v in self._limits.items()}

    def admit(self, account_id: str, group: str, now: float) -> bool:
        """True (and counted) when one more request fits the group's window."""
        with self._lock:
            limit = self._limits.get(group)
            if limit is None:
                return True
            count, window = limit
            seen = self._seen.setdefault((account_id, group), deque())
            while seen and seen[0] <= now - window:
                seen.popleft()
            if len(seen) >= count:
                return False
            seen.append(now)
            return True
