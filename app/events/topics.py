"""Topic names and glob-like topic patterns.

A topic is a dotted name such as ``fleet.vehicle.v12`` or ``user.42.trip``. A pattern may hold
``*``, which matches any run of characters *including dots* (the same rule as Redis
``PSUBSCRIBE``), so ``fleet.*`` matches every topic under ``fleet.`` at any depth.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["InvalidTopicError", "check_pattern", "check_topic", "matches"]

_TOPIC_RE = re.compile(r"^[A-Za-z0-9_\-:]+(\.[A-Za-z0-9_\-:]+)*$")
_PATTERN_RE = re.compile(r"^[A-Za-z0-9_\-:*]+(\.[A-Za-z0-9_\-:*]+)*$")
MAX_TOPIC_LENGTH = 200


class InvalidTopicError(ValueError):
    """A topic or pattern that is empty, too long or holds characters outside the alphabet."""


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid concrete topic name (no wildcard), else raise."""
    if not isinstance(topic, str) or len(topic) > MAX_TOPIC_LENGTH or not _TOPIC_RE.match(topic):
        raise InvalidTopicError(
            f"invalid topic {topic!r}: dotted words of letters, digits, '_', '-', ':'"
        )
    return topic


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` if it is a valid topic pattern (``*`` allowed), else raise."""
    if (
        not isinstance(pattern, str)
        or len(pattern) > MAX_TOPIC_LENGTH
        or not _PATTERN_RE.match(pattern)
    ):
        raise InvalidTopicError(
            f"invalid topic pattern {pattern!r}: dotted words of letters, digits, "
            "'_', '-', ':' and '*'"
        )
    return pattern


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the glob-like ``pattern`` (``*`` = any characters)."""
    if "*" not in pattern:
        return pattern == topic
    return _compile(pattern).match(topic) is not None
