"""The daemon's view of the remote, as a small state machine: up, away (unreachable) or
rejecting the key, since when, and when to probe next. No I/O: the daemon logs, notifies
and counts metrics on the transitions this reports.

    UP ──went_away──▶ AWAY ──probe fails──▶ AWAY (backoff doubles, up to the cap)
     ▲                 │
     └───recovered─────┘          any state ──key_rejected──▶ REJECTED (probe every key_retry)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class RemoteState(Enum):
    UP = "up"
    AWAY = "unreachable"
    REJECTED = "key rejected"


@dataclass(frozen=True)
class Transition:
    """What a reported event did: ``changed`` is False when the state was already that
    one; ``probe_at``: when to probe next (None: no probe needed)."""

    changed: bool
    probe_at: float | None
    was: RemoteState
    down_for: float = 0.0  # recovered: how long it was not up


class RemoteHealth:
    def __init__(self, backoff_start: float, backoff_cap: float, key_retry: float) -> None:
        self.backoff_start = backoff_start
        self.backoff_cap = max(backoff_start, backoff_cap)
        self.key_retry = key_retry
        self.state = RemoteState.UP
        self.since = 0.0
        self.backoff = backoff_start

    @property
    def up(self) -> bool:
        return self.state is RemoteState.UP

    def went_away(self, now: float) -> Transition:
        """A call failed for want of an answer (or a probe did, while it was up)."""
        was = self.state
        if was is not RemoteState.AWAY:
            self.state, self.since, self.backoff = RemoteState.AWAY, now, self.backoff_start
        return Transition(was is not RemoteState.AWAY, now + self.backoff, was)

    def probe_failed(self, now: float) -> Transition:
        """A probe found the remote still unreachable: back off further."""
        if self.state is not RemoteState.AWAY:
            return self.went_away(now)
        self.backoff = min(self.backoff * 2, self.backoff_cap)
        return Transition(False, now + self.backoff, RemoteState.AWAY)

    def key_rejected(self, now: float) -> Transition:
        was = self.state
        if was is not RemoteState.REJECTED:
            self.state, self.since = RemoteState.REJECTED, now
        return Transition(was is not RemoteState.REJECTED, now + self.key_retry, was)

    def recovered(self, now: float) -> Transition:
        """A probe or a pass went through: up again."""
        was = self.state
        down_for = now - self.since if was is not RemoteState.UP else 0.0
        self.state, self.backoff = RemoteState.UP, self.backoff_start
        return Transition(was is not RemoteState.UP, None, was, down_for)

    def reset(self) -> None:
        """A reload (maybe a new key or address): count it as up and try at once."""
        self.state, self.backoff = RemoteState.UP, self.backoff_start
