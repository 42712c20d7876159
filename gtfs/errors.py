"""The typed error raised when a feed cannot be read at all."""

from __future__ import annotations

from typing import Any


class FeedError(Exception):
    """A feed that cannot be read (not a zip, unsafe entries, too large, undecodable...).

    ``code`` is a snake_case notice code in the style of MobilityData's gtfs-validator, so an
    API can answer it as ``{"error": {"code": ..., "message": ..., "details": ...}}``.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}
