"""Login rate limiters: windows, keys, the shared Redis counter, and a Redis outage."""

from __future__ import annotations

import pytest

from app.identity.rate_limit import MemoryRateLimiter, RedisRateLimiter, login_key


def test_memory_window_resets() -> None:
    now = [1000.0]  # a fake clock: no sleeping, no race with a loaded machine
    limiter = MemoryRateLimiter(limit=2, window_s=60, clock=lambda: now[0])
    key = login_key("A@example.org", "10.0.0.1")
    assert limiter.hit(key).allowed and limiter.hit(key).allowed
    now[0] += 20.5
    blocked = limiter.hit(key)
    assert not blocked.allowed and blocked.retry_after_s == 40
    now[0] += 39.4
    assert not limiter.hit(key).allowed
    now[0] += 0.2  # the window has closed
    assert limiter.hit(key).allowed


def test_keys_are_per_email_and_ip_and_hide_the_email() -> None:
    key = login_key(" A@Example.org ", "10.0.0.1")
    assert key == login_key("a@example.org", "10.0.0.1")
    assert key != login_key("a@example.org", "10.0.0.2")
    assert "example" not in key


@pytest.mark.redis
def test_redis_counter_is_shared(redis_url: str, redis_prefix: str) -> None:
    one = RedisRateLimiter(redis_url, 2, prefix=redis_prefix, window_s=60)
    two = RedisRateLimiter(redis_url, 2, prefix=redis_prefix, window_s=60)
    try:
        key = login_key("b@example.org", "10.0.0.1")
        assert one.hit(key).allowed and two.hit(key).allowed
        blocked = one.hit(key)
        assert not blocked.allowed and 1 <= blocked.retry_after_s <= 60
    finally:
        one.close()
        two.close()


def test_redis_outage_fails_open() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", 1, prefix="tsunagu-test:")
    try:
        assert all(limiter.hit("k").allowed for _ in range(3))
    finally:
        limiter.close()
