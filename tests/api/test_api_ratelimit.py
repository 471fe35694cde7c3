"""The failure budget per client: a burst, a refill, a bound on memory."""

from __future__ import annotations

from ztsim.api.ratelimit import FailureLimiter


def test_burst_then_refused_until_refilled() -> None:
    limiter = FailureLimiter(10)
    for _ in range(10):
        assert limiter.retry_after("a", 0.0) == 0
        limiter.failed("a", 0.0)
    assert limiter.retry_after("a", 0.0) == 6  # one failure back every 6 s at 10/min
    assert limiter.retry_after("b", 0.0) == 0
    assert limiter.retry_after("a", 6.0) == 0
    limiter.failed("a", 6.0)
    assert limiter.retry_after("a", 6.0) > 0


def test_memory_is_bounded() -> None:
    limiter = FailureLimiter(10, max_clients=100)
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(limiter) <= 100
