"""The daemon's remote-health state machine (syncd/service/health.py), on plain numbers."""

from __future__ import annotations

from syncd.service.health import RemoteHealth, RemoteState


def test_away_backs_off_doubling_to_the_cap_then_recovers() -> None:
    health = RemoteHealth(backoff_start=1.0, backoff_cap=5.0, key_retry=600.0)
    first = health.went_away(100.0)
    assert first.changed and first.probe_at == 101.0 and health.state is RemoteState.AWAY
    assert not health.went_away(100.5).changed  # another failure in the same outage
    assert [health.probe_failed(t).probe_at for t in (101.0, 103.0, 107.0, 112.0)] == [103.0, 107.0, 112.0, 117.0]
    back = health.recovered(117.0)
    assert back.changed and back.was is RemoteState.AWAY and back.down_for == 17.0 and back.probe_at is None
    assert health.up and health.backoff == 1.0
    assert not health.recovered(118.0).changed


def test_a_rejected_key_is_probed_on_its_own_clock() -> None:
    health = RemoteHealth(backoff_start=1.0, backoff_cap=60.0, key_retry=600.0)
    rejected = health.key_rejected(10.0)
    assert rejected.changed and rejected.probe_at == 610.0 and rejected.was is RemoteState.UP
    assert not health.key_rejected(20.0).changed
    assert health.recovered(700.0).was is RemoteState.REJECTED
    health.went_away(800.0)
    assert health.probe_failed(801.0).probe_at == 803.0
    health.reset()
    assert health.up and health.backoff == 1.0
