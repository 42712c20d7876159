"""Who is making a request."""

from __future__ import annotations

from dataclasses import dataclass

from app.identity.roles import Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a user id (token ``sub``), an email when known, and roles."""

    user_id: str
    email: str | None
    roles: frozenset[str]

    def has_any(self, *roles: str) -> bool:
        """True when the caller holds one of ``roles``; ``admin`` holds every role."""
        return Role.ADMIN.value in self.roles or any(r in self.roles for r in roles)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN.value in self.roles
