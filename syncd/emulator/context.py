"""What every emulator's handler context holds in common: the ``Clock``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """Wall time plus an offset the admin API can advance (skips waits in tests).

    The offset is persisted by the owner (``on_change``) so a restart on the same data
    directory does not move recorded timestamps into the future.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self.on_change: Callable[[float], None] | None = None

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def set_offset(self, offset: float) -> None:
        with self._lock:
            self._offset = offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._offset += seconds
            offset = self._offset
        if self.on_change is not None:
            self.on_change(offset)
        return offset
