"""Password hashing cost and its bound on concurrent hashes (#10)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher

from app.identity.passwords import HASH_NICE, MAX_CONCURRENT_HASHES, Passwords


def test_production_cost_is_owasp_argon2id() -> None:
    h = Passwords().hash("correct horse battery")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert Passwords().verify(h, "correct horse battery")
    assert not Passwords().verify(h, "wrong horse battery")


def test_hash_of_the_old_default_cost_verifies_and_is_rehashed() -> None:
    old = PasswordHasher().hash("correct horse battery")  # RFC 9106 low-memory: m=64 MiB, p=4
    pw = Passwords()
    assert pw.verify(old, "correct horse battery")
    assert pw.needs_rehash(old)
    assert not pw.needs_rehash(pw.hash("correct horse battery"))


def test_bad_or_missing_hash_never_verifies() -> None:
    pw = Passwords(fast=True)
    assert not pw.verify(None, "anything-at-all")
    assert not pw.verify("not-a-hash", "anything-at-all")


class _CountingHasher:
    """Stands in for argon2's hasher: records how many calls run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def _enter(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.05)  # hold the slot so that the other threads pile up
        with self.lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._enter()
        return "h"

    def verify(self, password_hash: str, password: str) -> bool:
        self._enter()
        return True


def test_concurrent_hashes_are_bounded() -> None:
    pw = Passwords(fast=True)
    fake = _CountingHasher()
    pw._hasher = fake  # type: ignore[assignment]
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: pw.hash(f"pw-{i}") if i % 2 else pw.verify("h", "p"), range(16)))
    assert fake.peak == MAX_CONCURRENT_HASHES


def test_hashes_run_at_a_lower_cpu_priority_than_requests() -> None:
    """A burst of sign-ups took both cores from the bookings and plans in flight (#10): the
    hashing threads are niced, the caller's thread is not."""
    import os

    pw = Passwords(fast=True)

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    own = niceness()
    assert pw._pool.submit(niceness).result() == min(own + HASH_NICE, 19)
    assert niceness() == own
    assert pw.verify(pw.hash("correct horse"), "correct horse")
    assert not pw.verify(pw.hash("correct horse"), "wrong horse")
