"""Per-request fault decisions, seeded so a run is reproducible."""

from __future__ import annotations

import fnmatch
import math
import random
import threading
from dataclasses import dataclass

from syncd.emulator.config import Faults


@dataclass(frozen=True)
class Decision:
    kind: str | None  # None | "drop" | "rate_limit" | "error_500" | "error_503"
    latency_s: float
    retry_after: str | None


def format_retry_after(seconds: float) -> str:
    """Delta-seconds as HTTP has them: a whole number, rounded up ("0" asks for no wait)."""
    return str(math.ceil(seconds))


class FaultInjector:
    def __init__(self, faults: Faults, seed: int) -> None:
        self._lock = threading.Lock()
        self._faults = faults
        self._rng = random.Random(seed)
        self._errors = 0

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults

    def decide(self, path: str) -> Decision:
        with self._lock:
            f = self._faults
            if f.path_glob is not None and not fnmatch.fnmatchcase(path, f.path_glob):
                return Decision(None, 0.0, None)
            # One draw partitions [0, 1) into drop | rate limit | error | none: exact shares.
            u = self._rng.random()
            kind: str | None = None
            if u < f.drop_share:
                kind = "drop"
            elif u < f.drop_share + f.rate_limit_share:
                kind = "rate_limit"
            elif u < f.drop_share + f.rate_limit_share + f.error_share:
                # Cycle so every status shows up even at small shares.
                kind = f"error_{f.error_statuses[self._errors % len(f.error_statuses)]}"
                self._errors += 1
            retry = format_retry_after(f.retry_after) if kind == "rate_limit" else None
            return Decision(kind, f.latency_ms / 1000.0, retry)

    def stream_fails(self) -> bool:
        with self._lock:
            return self._rng.random() < self._faults.stream_error_share
