"""Run every validator over a feed."""

from __future__ import annotations

import datetime as dt

import numpy as np

from gtfs.feed import Feed
from gtfs.notices import NoticeSink
from gtfs.validation.dates import check_dates
from gtfs.validation.flex_rules import check_flex
from gtfs.validation.references import check_references
from gtfs.validation.report import ValidationReport
from gtfs.validation.structure import check_columns, check_files, check_keys, check_types
from gtfs.validation.transfers import check_transfers
from gtfs.validation.trips import check_stop_times


def _check_routes(feed: Feed, sink: NoticeSink) -> None:
    r = feed.routes
    if r.empty:
        return
    short = feed.column("routes", "route_short_name").astype(str)
    long_ = feed.column("routes", "route_long_name").astype(str)
    both = ((short == "") & (long_ == "")).to_numpy()
    if both.any():
        sink.add_rows(
            "route_both_short_and_long_name_missing",
            r.loc[both, [c for c in ("route_id",) if c in r.columns]],
            filename="routes.txt",
        )


def _check_agencies(feed: Feed, sink: NoticeSink) -> None:
    """All agencies of a feed share one timezone (GTFS: times are in that zone)."""
    tz = feed.column("agency", "agency_timezone").astype(str)
    tz = tz[tz != ""]
    if tz.nunique() > 1:
        first = tz.iloc[0]
        bad = feed.agency.loc[tz.index[(tz != first).to_numpy()]]
        sink.add_rows(
            "inconsistent_agency_timezone",
            bad[[c for c in ("agency_id", "agency_timezone") if c in bad.columns]],
            filename="agency.txt",
            extra={"expected": first},
        )


def _check_stops(feed: Feed, sink: NoticeSink) -> None:
    s = feed.stops
    if s.empty or "stop_id" not in s.columns:
        return
    lt = feed.column("stops", "location_type").astype(str)
    needs_pos = lt.isin(["", "0", "1", "2"]).to_numpy()
    lat = feed.column("stops", "stop_lat").astype(str)
    lon = feed.column("stops", "stop_lon").astype(str)
    missing = needs_pos & ((lat == "") | (lon == "")).to_numpy()
    if missing.any():
        sink.add_rows("stop_without_location", s.loc[missing, ["stop_id"]], filename="stops.txt")
    parent = feed.column("stops", "parent_station").astype(str)
    station_ids = set(s.loc[(lt == "1").to_numpy(), "stop_id"].astype(str))
    # Platforms (0/2/3) must hang under a station (1); boarding areas (4) under a platform.
    bad = ((parent != "") & lt.isin(["", "0", "2", "3"]) & ~parent.isin(station_ids)).to_numpy()
    bad = bad & parent.isin(set(s["stop_id"].astype(str))).to_numpy()  # unknown: foreign key
    if bad.any():
        sink.add_rows(
            "parent_station_not_a_station",
            s.loc[bad, ["stop_id", "parent_station"]],
            filename="stops.txt",
        )


def validate_feed(feed: Feed, *, today: dt.date | None = None) -> ValidationReport:
    """Validate ``feed`` in the manner of MobilityData's gtfs-validator.

    ``today`` (default: the current UTC date) dates the expiry checks. Every check is
    vectorised over whole tables; samples carry the offending row's fields.
    """
    sink = NoticeSink()
    sink.extend(feed.read_notices)
    today = today or dt.datetime.now(dt.UTC).date()
    flex = feed.flex
    sink.extend(flex.notices)
    location_ids = set(flex.zones)
    check_files(feed, sink)
    check_columns(feed, sink)
    check_types(feed, sink)
    check_keys(feed, sink)
    check_references(feed, sink, location_ids)
    _check_routes(feed, sink)
    _check_agencies(feed, sink)
    _check_stops(feed, sink)
    check_stop_times(feed, sink, location_ids)
    check_flex(feed, sink)
    check_transfers(feed, sink)
    check_dates(feed, sink, today)
    ts = feed.typed_stop_times
    n_interp = int(ts.interpolated.sum())
    if n_interp:
        i = np.flatnonzero(ts.interpolated)[:5]
        sink.add(
            "interpolated_stop_times",
            n_interp,
            [
                {
                    "tripId": str(ts.trip_ids[ts.trip_of_row()[k]]),
                    "stopSequence": int(ts.stop_sequence[k]),
                    "interpolatedTime": int(ts.arrival[k]),
                }
                for k in i
            ],
        )
    summary = {
        "feed_id": feed.feed_id,
        "validated_for": today.isoformat(),
        "files": sorted(f"{n}.txt" for n in feed.tables) + sorted(feed.files),
        "counts": {
            "stops": len(feed.stops),
            "routes": len(feed.routes),
            "trips": len(feed.trips),
            "stop_times": len(feed.stop_times),
            "flex_zones": len(flex.zones),
        },
    }
    return ValidationReport(sink.notices(), summary)
