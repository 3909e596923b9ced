"""Counted, not timed: what one call allocates (tracemalloc), and the rows a catalog's
reads hand back (``rows_read``)."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

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


@contextmanager
def rows_read(catalog: Any) -> Iterator[list[int]]:
    """The number of rows each of the catalog's reads (``Catalog._rows``) returns in the
    block, one entry a statement."""
    counts: list[int] = []
    real_rows = catalog._rows

    def counted(sql: str, params: object = ()) -> list[dict[str, object]]:
        rows = real_rows(sql, params)
        counts.append(len(rows))
        return rows  # type: ignore[no-any-return]

    catalog._rows = counted
    try:
        yield counts
    finally:
        catalog._rows = real_rows
