"""Password hashing with Argon2id (argon2-cffi).

Cost: OWASP's recommended Argon2id parameters (m = 19 MiB, t = 2, p = 1; OWASP Password Storage
Cheat Sheet), not argon2-cffi's default RFC 9106 "low memory" profile (m = 64 MiB, t = 3, p = 4).
Both are recommended settings; the default cost about 280 ms of CPU on four threads and 64 MiB
per hash, so 200 residents signing up at once on a 2-core server queued for seconds and a
burst of eight concurrent sign-ups added half a gigabyte to the process's peak memory (#10).
At most :data:`MAX_CONCURRENT_HASHES` hashes run at once per process, so the memory they take
is bounded (2 x 19 MiB) and they cannot take every core from the planner. Hashes made with other
parameters still verify and are re-hashed at the next login (``needs_rehash``).

Hashing always runs in a worker thread (the sign-up, login and password routes are plain
``def`` routes, run in Starlette's thread pool); argon2 releases the GIL while it works. The
hashes themselves run in a small pool of their own whose threads have a lower CPU priority
(:data:`HASH_NICE`, Linux: a thread's own niceness): a burst of sign-ups or logins (200
residents signing up in the first seconds of bench.load) took both cores from the bookings and
plans in flight, which then waited a second or more; now a hash waits for idle CPU instead, and
a login under load takes a little longer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
# Bounds the hashing work an attacker can ask for with one request.
MAX_PASSWORD_LENGTH = 256
#: OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
#: Hashes (and verifications) running at once in one process; others wait their turn.
MAX_CONCURRENT_HASHES = 2
#: Niceness the hashing threads add to their own (lower priority than requests' threads).
HASH_NICE = 10


def _lower_thread_priority() -> None:
    """A hashing thread's initialiser: :data:`HASH_NICE` more than it had. On Linux the
    niceness of ``PRIO_PROCESS`` with a thread id is that thread's own; elsewhere a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + HASH_NICE)


class Passwords:
    """Hashes and verifies passwords. ``fast=True`` (test environment only) uses the minimum
    Argon2 cost so suites stay quick; production uses OWASP's recommended Argon2id cost."""

    def __init__(self, *, fast: bool = False) -> None:
        self._hasher = (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if fast
            else PasswordHasher(
                time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM
            )
        )
        # Its size bounds the hashes running at once (memory, cores); its threads yield the
        # CPU to the service's requests (module docstring).
        self._pool = ThreadPoolExecutor(
            MAX_CONCURRENT_HASHES,
            thread_name_prefix="password-hash",
            initializer=_lower_thread_priority,
        )
        # Verified against when the email is unknown, so both cases take the same time.
        self._dummy = self._hasher.hash("tsunagu-dummy-password")

    def hash(self, password: str) -> str:
        return self._pool.submit(self._hasher.hash, password).result()

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; never raises on a bad or missing hash."""
        try:
            ok = self._pool.submit(self._hasher.verify, password_hash or self._dummy, password)
            return ok.result() and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
