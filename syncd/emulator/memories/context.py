"""Everything a memories.ai handler needs, bundled per emulator instance (no module globals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from syncd.emulator.auth import KeyRing
from syncd.emulator.context import Clock
from syncd.emulator.embeddings import Embedder
from syncd.emulator.faults import FaultInjector
from syncd.emulator.memories import envelope
from syncd.emulator.memories.config import MemoriesConfig
from syncd.emulator.memories.ratelimit import WindowLimiter
from syncd.emulator.memories.store import MemoriesStore
from syncd.emulator.requestlog import RequestLog
from syncd.emulator.wire import Request


@dataclass
class MemoriesContext:
    config: MemoriesConfig
    store: MemoriesStore
    clock: Clock
    embedder: Embedder
    faults: FaultInjector
    requests: RequestLog
    keys: KeyRing
    limiter: WindowLimiter
    stopping: threading.Event = field(default_factory=threading.Event)

    def now(self) -> float:
        return self.clock.now()

    def charge(self, req: Request, amount: int = 1) -> None:
        """Take credits or refuse with 0402 (v1) / 402 (v2)."""
        assert req.user_id is not None
        if not self.store.charge(req.user_id, amount):
            raise envelope.error_for(req.path, envelope.NO_CREDITS, 402, envelope.CREDITS_MSG)
