"""Password hashing with Argon2id (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
# Bounds the hashing work an attacker can ask for with one request.
MAX_PASSWORD_LENGTH = 256


class Passwords:
    """Hashes and verifies passwords. ``fast=True`` (test environment only) uses the minimum
    Argon2 cost so suites stay quick; production uses argon2-cffi's RFC 9106 defaults."""

    def __init__(self, *, fast: bool = False) -> None:
        self._hasher = (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if fast
            else PasswordHasher()
        )
        # Verified against when the email is unknown, so both cases take the same time.
        self._dummy = self._hasher.hash("tsunagu-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; never raises on a bad or missing hash."""
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
