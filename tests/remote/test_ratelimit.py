"""The client's rate limiter on a simulated clock (no real waiting) and rate parsing."""

from __future__ import annotations

import threading

import pytest

from syncd.remote.ratelimit import MARGIN, RateLimiter
from syncd.units import format_rate, parse_rate


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_requests_of_a_group_leave_one_interval_apart() -> None:
    t = FakeTime()
    limiter = RateLimiter({"upload": "1/min", "list": "5/s", "stream": None},
                          clock=t.clock, sleep=t.sleep)
    waits = [limiter.acquire("list") for _ in range(6)]
    assert waits[0] == 0.0
    assert waits[1:] == pytest.approx([0.2 * (1 + MARGIN)] * 5)
    assert limiter.acquire("upload") == 0.0  # groups are independent
    assert limiter.acquire("upload") == pytest.approx(60 * (1 + MARGIN))
    assert limiter.acquire("stream") == 0.0 and limiter.acquire("other") == 0.0


def test_a_refusal_holds_the_group_back_one_interval() -> None:
    t = FakeTime()
    limiter = RateLimiter({"search": "1/s"}, clock=t.clock, sleep=t.sleep)
    limiter.acquire("search")
    t.now += 5  # long idle: the next request could leave at once...
    limiter.penalise("search")  # ...but the service just refused one
    assert limiter.acquire("search") == pytest.approx(1 + MARGIN)


def test_threads_share_the_slots() -> None:
    """Eight threads at one frozen instant each get their own slot, one interval apart."""
    t = FakeTime()
    limiter = RateLimiter({"list": "5/s"}, clock=t.clock, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = limiter.acquire("list")
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(waits) == pytest.approx([i * 0.2 * (1 + MARGIN) for i in range(8)])


@pytest.mark.parametrize("text,expected", [("5/s", (5, 1)), ("1/min", (1, 60)),
                                           ("12/min", (12, 60)), ("30/10s", (30, 10)),
                                           ("2 / h", (2, 3600))])
def test_parse_rate(text: str, expected: tuple[float, float]) -> None:
    assert parse_rate(text) == expected
    assert parse_rate(format_rate(*parse_rate(text))) == expected


@pytest.mark.parametrize("text", ["fast", "5", "0/s", "5/fortnight", "-1/s"])
def test_parse_rate_refuses_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)
