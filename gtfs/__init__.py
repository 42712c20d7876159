"""GTFS core: read feeds safely, validate them, compile them for routing.

Public API
----------
``read_feed(path, *, limits=None, feed_id=None) -> Feed``
``validate_feed(feed, *, today=None) -> ValidationReport``
``compile_timetable(feeds, *, footpath_radius_m=400.0, footpaths=None) -> CompiledTimetable``

This package never imports ``app``.
"""

from gtfs.compile import compile_timetable
from gtfs.compiled import CompiledTimetable
from gtfs.errors import FeedError
from gtfs.feed import Feed
from gtfs.footpaths import (
    DEFAULT_FOOTPATH_RADIUS_M,
    DETOUR_FACTOR,
    WALK_SPEED_MPS,
    Footpaths,
)
from gtfs.notices import Notice, Severity
from gtfs.reader import ReadLimits, read_feed
from gtfs.validation import ValidationReport, validate_feed

__all__ = [
    "DEFAULT_FOOTPATH_RADIUS_M",
    "DETOUR_FACTOR",
    "WALK_SPEED_MPS",
    "CompiledTimetable",
    "Feed",
    "FeedError",
    "Footpaths",
    "Notice",
    "ReadLimits",
    "Severity",
    "ValidationReport",
    "compile_timetable",
    "read_feed",
    "validate_feed",
]
