"""Everything a Mikshi route handler needs, bundled per emulator instance (no module globals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from syncd.emulator.auth import KeyRing
from syncd.emulator.context import Clock
from syncd.emulator.embeddings import Embedder
from syncd.emulator.errors import detail
from syncd.emulator.faults import FaultInjector
from syncd.emulator.mikshi.config import EmulatorConfig
from syncd.emulator.mikshi.signing import Signer
from syncd.emulator.mikshi.store import Store
from syncd.emulator.requestlog import RequestLog


class TtlCache:
    """A small response cache (the service's per-user Redis cache)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[Any, ...], tuple[float, Any]] = {}

    def get(self, key: tuple[Any, ...], max_age: float, now: float) -> Any | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or now - hit[0] >= max_age:
                return None
            return hit[1]

    def put(self, key: tuple[Any, ...], value: Any, now: float) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (now, value)


@dataclass
class Context:
    config: EmulatorConfig
    store: Store
    clock: Clock
    signer: Signer
    embedder: Embedder
    faults: FaultInjector
    requests: RequestLog
    keys: KeyRing
    collections_cache: TtlCache = field(default_factory=TtlCache)
    stopping: threading.Event = field(default_factory=threading.Event)

    def now(self) -> float:
        return self.clock.now()

    def ensure_user(self, user_id: str) -> None:
        self.store.ensure_user(user_id, self.config.credits, self.now())

    def charge(self, user_id: str) -> None:
        """Deduct one credit or answer 402, as the auth-service's deduct_credits does."""
        if not self.store.charge(user_id):
            raise detail(402, "Insufficient credits")

    def refund(self, user_id: str) -> None:
        self.store.refund(user_id)
