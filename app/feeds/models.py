"""The ``feed_versions`` table: every GTFS upload, its validation outcome and lifecycle status.

Status flow: ``uploaded`` → ``invalid`` (unreadable, or ERROR notices) | ``valid`` (compiled) →
``published`` (part of the served network) → ``archived`` (replaced by a newer publish or a
rollback; can be published again).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow

FeedStatus = Literal["uploaded", "invalid", "valid", "published", "archived"]
STATUSES: tuple[str, ...] = ("uploaded", "invalid", "valid", "published", "archived")


class FeedVersion(SQLModel, table=True):
    """One uploaded version of one feed (``feed_id`` names the feed across versions)."""

    __tablename__ = "feed_versions"

    # An integer id so operators can type it (``tsunagu feed publish muroran 3``).
    id: int | None = Field(default=None, primary_key=True)
    feed_id: str = Field(max_length=64, index=True)
    # The region (network) the feed belongs to: feeds of one region are merged into one
    # network, other regions are served apart. None: the feed's own id (see ``region``).
    network: str | None = Field(default=None, max_length=64, index=True)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )
    published_at: dt.datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
    uploaded_by: str | None = Field(default=None, max_length=320)
    filename: str = Field(default="", max_length=255)
    size_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    sha256: str = Field(default="", max_length=64, index=True)
    status: str = Field(default="uploaded", max_length=16, index=True)
    error_count: int = 0
    warning_count: int = 0
    info_count: int = 0
    # {"code", "message"} when the feed could not be read at all.
    failure: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    # Top notice codes by severity, e.g. {"ERROR": {"foreign_key_violation": 3}}.
    summary: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    # {"stops", "routes", "trips", "stop_times", "patterns", "shapes"}.
    counts: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    service_start: dt.date | None = None
    service_end: dt.date | None = None

    @property
    def region(self) -> str:
        """The network this version is served in: its ``network``, else its feed's id."""
        return self.network or self.feed_id

    def to_json(self) -> dict[str, Any]:
        """The API shape of a version."""
        return {
            "id": self.id,
            "feed_id": self.feed_id,
            "network": self.region,
            "status": self.status,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "uploaded_by": self.uploaded_by,
            "filename": self.filename,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "error_count": self.error_count,
            "warning_count": self.warning_count,
            "info_count": self.info_count,
            "failure": self.failure,
            "summary": self.summary,
            "counts": self.counts,
            "service_start": self.service_start.isoformat() if self.service_start else None,
            "service_end": self.service_end.isoformat() if self.service_end else None,
        }
