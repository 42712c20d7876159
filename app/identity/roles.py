"""The roles a user can hold."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Roles known to Tsunagu. ``admin`` passes every role check."""

    RESIDENT = "resident"
    DISPATCHER = "dispatcher"
    OPERATOR = "operator"
    COMPANY_ADMIN = "company_admin"
    HEALTH_STAFF = "health_staff"
    CITY_STAFF = "city_staff"
    CITY_PLANNER = "city_planner"
    ADMIN = "admin"


ALL_ROLES: frozenset[str] = frozenset(r.value for r in Role)
