"""Run every validator over a feed."""

from __future__ import annotations

import datetime as dt

from gtfs.feed import Feed
from gtfs.notices import NoticeSink
from gtfs.validation.report import ValidationReport


def validate_feed(feed: Feed, *, today: dt.date | None = None) -> ValidationReport:
    """Validate ``feed``; ``today`` (default: the current UTC date) dates the expiry checks."""
    sink = NoticeSink()
    sink.extend(feed.read_notices)
    today = today or dt.datetime.now(dt.UTC).date()
    return ValidationReport(
        sink.notices(), {"feed_id": feed.feed_id, "validated_for": today.isoformat()}
    )
