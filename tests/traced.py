"""Memory counted, not timed: what one call allocates, traced by tracemalloc."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def traced(call: Callable[[], T]) -> tuple[T, int, int]:
    """``call``'s result, the bytes it left held, and its peak, both above the start.
    Log records are muted meanwhile: pytest's capture would keep a few per request and
    count them. Every thread's allocations count (an in-process emulator's too)."""
    gc.collect()
    logging.disable(logging.INFO)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = call()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)
    return result, held - before, peak - before
