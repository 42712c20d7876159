"""Who may subscribe to which topic patterns."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.events.topics import InvalidTopicError, matches
from app.events.visibility import (
    MAX_PATTERNS,
    allowed_namespaces,
    expand_me,
    forbidden_patterns,
    may_subscribe,
    parse_topics,
)


@dataclass(frozen=True)
class Who:
    user_id: str
    roles: frozenset[str]


RESIDENT = Who("u1", frozenset({"resident"}))
NO_ROLES = Who("u9", frozenset())
DISPATCHER = Who("d1", frozenset({"dispatcher"}))
OPERATOR = Who("o1", frozenset({"operator"}))
ADMIN = Who("a1", frozenset({"admin"}))


@pytest.mark.parametrize(
    ("who", "pattern", "ok"),
    [
        (RESIDENT, "public.*", True),
        (RESIDENT, "public.alerts", True),
        (NO_ROLES, "public.*", True),
        (RESIDENT, "user.u1.*", True),
        (RESIDENT, "user.u1.trip.*", True),
        (RESIDENT, "user.u1", True),
        (RESIDENT, "user.u2.*", False),
        (RESIDENT, "user.u1x.*", False),  # another user whose id starts with u1
        (RESIDENT, "user.u*", False),
        (RESIDENT, "user.*", False),
        (RESIDENT, "*", False),
        (RESIDENT, "public*", False),  # would match 'publicity.x'
        (RESIDENT, "fleet.*", False),
        (RESIDENT, "dispatch.*", False),
        (RESIDENT, "feeds.*", False),
        (DISPATCHER, "fleet.*", True),
        (DISPATCHER, "dispatch.request.*", True),
        (DISPATCHER, "feeds.*", False),
        (DISPATCHER, "user.u1.*", False),
        (OPERATOR, "fleet.*", True),
        (OPERATOR, "feeds.*", True),
        (OPERATOR, "feeds.muroran.status", True),
        (OPERATOR, "internal.*", False),
        (ADMIN, "*", True),
        (ADMIN, "user.u1.*", True),
        (ADMIN, "internal.metrics", True),
    ],
)
def test_may_subscribe(who: Who, pattern: str, ok: bool) -> None:
    assert may_subscribe(who, pattern) is ok


def test_allowed_patterns_only_match_visible_topics() -> None:
    """Soundness check: no allowed pattern of a resident matches a topic it must not see."""
    hidden = ["user.u2.trip", "user.u10.x", "fleet.v1", "dispatch.r1", "feeds.f", "publicity.x"]
    candidates = ["public.*", "user.u1.*", "user.u1", "*", "user.*", "user.u1*", "p*", "*.trip"]
    for pattern in candidates:
        if may_subscribe(RESIDENT, pattern):
            assert not any(matches(pattern, t) for t in hidden), pattern


def test_allowed_namespaces() -> None:
    assert allowed_namespaces(RESIDENT) == ["public", "user.u1"]
    assert allowed_namespaces(OPERATOR) == ["public", "user.o1", "fleet", "dispatch", "feeds"]
    assert allowed_namespaces(ADMIN) is None
    assert forbidden_patterns(DISPATCHER, ["fleet.*", "feeds.*", "user.u1.*"]) == [
        "feeds.*",
        "user.u1.*",
    ]


def test_expand_me_and_parse_topics() -> None:
    assert expand_me("user.me.*", "u1") == "user.u1.*"
    assert expand_me("user.me", "u1") == "user.u1"
    assert expand_me("user.meadow.*", "u1") == "user.meadow.*"
    assert parse_topics(" public.* , user.me.*,public.*,", "u1") == ["public.*", "user.u1.*"]
    with pytest.raises(ValueError, match="at least one"):
        parse_topics(" , ", "u1")
    with pytest.raises(InvalidTopicError):
        parse_topics("public.*,bad topic", "u1")
    with pytest.raises(ValueError, match="at most"):
        parse_topics(",".join(f"public.t{i}" for i in range(MAX_PATTERNS + 1)), "u1")


@pytest.mark.parametrize(
    ("pattern", "topic", "ok"),
    [
        ("fleet.*", "fleet.v1", True),
        ("fleet.*", "fleet.vehicle.v1.position", True),
        ("fleet.*", "fleet", False),
        ("fleet.*", "fleetx.v1", False),
        ("*.alerts", "public.alerts", True),
        ("user.*.trip", "user.u1.trip", True),
        ("a.b", "a.b", True),
        ("a.b", "a.bc", False),
        ("a+b", "aab", False),  # regex characters are literal
    ],
)
def test_matches(pattern: str, topic: str, ok: bool) -> None:
    assert matches(pattern, topic) is ok
