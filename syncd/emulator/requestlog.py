"""The in-memory request log served by ``/_admin/requests``.

Entries hold the path without its query string (so no URL signature) and the derived user
id, never the API key.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class LogEntry:
    seq: int  # in the order requests were answered
    time: float  # when the request arrived (emulator clock)
    method: str
    path: str
    status: int | None  # None when the connection was dropped without an answer
    user_id: str | None
    retry_after: str | None
    fault: str | None
    bytes_in: int
    duration_ms: float
    code: str | None = None  # business code in the answer's body (memories.ai), if any


class RequestLog:
    def __init__(self, maxlen: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)
        self._seq = 0

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def add(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            entries = [e for e in self._entries if e.seq > seq]
        return [asdict(e) for e in sorted(entries, key=lambda e: e.seq)]

    def clear(self) -> int:
        """Forget all entries; sequence numbers keep rising so ``since`` stays valid."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count
