"""A ``Remote`` wrapper for the daemon: notice an outage, and stop paying for it.

Every call is forwarded. Once one fails for want of an answer (no connection,
a timeout, 502/503/504), after the HTTP layer's own retries, the remote counts
as down: later calls fail at once with ``TransportError`` until ``reset()``, so
one outage costs one request's retries, not one per file in the pass. The
daemon reads ``outage`` after each pass and probes before the next.

Once ``stop`` is set, new calls fail at once as well (nothing in flight is cut
off), so SIGTERM never waits behind a queue of status requests.

``features()`` answers the wrapped remote's record with every ability guarded the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from syncd.errors import TransportError, UnavailableError
from syncd.remote.base import ABILITIES, Features, Remote

_PLAIN = frozenset({"close", "description"})


class OutageGuard:
    def __init__(self, remote: Remote, stop: threading.Event) -> None:
        self._remote = remote
        self._stop = stop
        self._lock = threading.Lock()
        self._outage: str | None = None
        self._since: float | None = None

    @property
    def remote(self) -> Remote:
        """This guard, typed as the ``Remote`` it stands in for."""
        return cast(Remote, self)

    @property
    def outage(self) -> str | None:
        """Why the remote counts as down (the first failure's message), or None."""
        with self._lock:
            return self._outage

    @property
    def since(self) -> float | None:
        """When (wall clock) the outage was noticed, or None."""
        with self._lock:
            return self._since

    def reset(self) -> None:
        with self._lock:
            self._outage = None
            self._since = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._remote, name)
        if name in _PLAIN or name.startswith("_") or not callable(attr):
            return attr
        return self._guarded(attr)

    def features(self) -> Features:
        features = self._remote.features()
        guarded: dict[str, Any] = {name: _GuardedAbility(self, getattr(features, name))
                   for name in ABILITIES if getattr(features, name) is not None}
        return replace(features, **guarded)

    def _guarded(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self._stop.is_set():
                raise TransportError("syncd is stopping; request not sent", sent=False)
            outage = self.outage
            if outage is not None:
                raise TransportError(f"remote unreachable, request not sent ({outage})", sent=False)
            try:
                return method(*args, **kwargs)
            except (TransportError, UnavailableError) as exc:
                if not self._stop.is_set():
                    with self._lock:
                        if self._outage is None:
                            self._outage, self._since = str(exc), time.time()
                raise

        return call


class _GuardedAbility:
    """One optional ability of the wrapped remote, its calls guarded like the remote's."""

    def __init__(self, guard: OutageGuard, ability: object) -> None:
        self._guard = guard
        self._ability = ability

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ability, name)
        if name.startswith("_") or not callable(attr):
            return attr
        return self._guard._guarded(attr)
