"""Who may subscribe to which topics.

=====================  ==========================================================
namespace              visible to
=====================  ==========================================================
``public.*``           everyone signed in (service alerts)
``user.{user_id}.*``   that user only (and admin); ``user.me.*`` means the caller
``fleet.*``            dispatchers, operators, admin
``dispatch.*``         dispatchers, operators, admin
``feeds.*``            operators, admin
anything else          admin only
=====================  ==========================================================

A requested *pattern* is allowed only if everything it could ever match lies inside a
namespace the caller may see: ``public.*`` is fine for a resident, ``*`` or ``user.*`` is not.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from app.events.topics import check_pattern
from app.identity.roles import Role

__all__ = [
    "MAX_PATTERNS",
    "SubscriberLike",
    "allowed_namespaces",
    "expand_me",
    "forbidden_patterns",
    "may_subscribe",
    "parse_topics",
]

MAX_PATTERNS = 20

# Namespaces beyond the caller's own user.{id} and public, by the roles that unlock them.
_ROLE_NAMESPACES: dict[str, frozenset[str]] = {
    "fleet": frozenset({Role.DISPATCHER, Role.OPERATOR}),
    "dispatch": frozenset({Role.DISPATCHER, Role.OPERATOR}),
    "feeds": frozenset({Role.OPERATOR}),
}


class SubscriberLike(Protocol):
    """What visibility needs of a principal (``app.identity.deps.Principal`` fits)."""

    @property
    def user_id(self) -> str: ...

    @property
    def roles(self) -> Collection[str]: ...


def allowed_namespaces(who: SubscriberLike) -> list[str] | None:
    """Namespace roots ``who`` may subscribe under, or ``None`` meaning everything (admin)."""
    roles = set(who.roles)
    if Role.ADMIN in roles:
        return None
    out = ["public", f"user.{who.user_id}"]
    out += [ns for ns, need in _ROLE_NAMESPACES.items() if roles & need]
    return out


def _inside(pattern: str, root: str) -> bool:
    """Whether every topic matching ``pattern`` is ``root`` or under ``root.``."""
    literal = pattern.split("*", 1)[0]
    if "*" not in pattern:
        return pattern == root or pattern.startswith(root + ".")
    return literal.startswith(root + ".")


def may_subscribe(who: SubscriberLike, pattern: str) -> bool:
    """Whether ``who`` may subscribe to ``pattern`` (already expanded, see :func:`expand_me`)."""
    roots = allowed_namespaces(who)
    if roots is None:
        return True
    return any(_inside(pattern, root) for root in roots)


def forbidden_patterns(who: SubscriberLike, patterns: list[str]) -> list[str]:
    """The patterns of ``patterns`` that ``who`` may not subscribe to."""
    return [p for p in patterns if not may_subscribe(who, p)]


def expand_me(pattern: str, user_id: str) -> str:
    """Replace the ``user.me`` alias by the caller's own ``user.{user_id}``."""
    if pattern == "user.me" or pattern.startswith("user.me."):
        return f"user.{user_id}" + pattern[len("user.me") :]
    return pattern


def parse_topics(raw: str, user_id: str) -> list[str]:
    """Split a comma-separated ``topics`` parameter, expand ``user.me``, validate, dedupe.

    Raises
    ------
    ValueError
        Empty list, too many patterns, or an invalid pattern (message says which).
    """
    out: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        pattern = check_pattern(expand_me(part, user_id))
        if pattern not in out:
            out.append(pattern)
    if not out:
        raise ValueError("give at least one topic pattern, e.g. topics=public.*")
    if len(out) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} topic patterns per stream")
    return out
