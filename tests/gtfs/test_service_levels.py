"""Service levels (gtfs-kit) against values computed by hand on a small feed."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path

import h3
import pytest

from gtfs import read_feed
from gtfs.service_levels import TimeBand, compute_service_levels, parse_bands

# Route R1 runs S1 -> S2 -> S3 (1.0 km apart each: 0.009 degrees of latitude is ~1000.8 m);
# trips start 07:00, 07:20, 07:50, 08:30 and 12:00, each 10 minutes long. Route R2 has one trip
# S3 -> S4 at 07:30 (5 minutes). Hand-computed, in the band 07:00-09:00:
#   R1 trips 4, headways 20, 30, 40 min -> min 20, mean 30, max 40;
#   service hours 4 x 10 min = 0.6667 h; km 4 x 2.0 km; first 07:00, last arrival 08:40.
# Whole day: R1 5 trips, 0.8333 h, 10 km, first 07:00, last 12:10.
# Stop S3 in 07:00-09:00: departures 07:10, 07:30 (R2), 07:30, 08:00, 08:40 -> gaps 20, 0, 30, 40.
STOPS = (
    "stop_id,stop_name,stop_lat,stop_lon\n"
    "S1,One,43.000,141.000\n"
    "S2,Two,43.009,141.000\n"
    "S3,Three,43.018,141.000\n"
    "S4,Four,43.027,141.000\n"
)
R1_STARTS = [7 * 60, 7 * 60 + 20, 7 * 60 + 50, 8 * 60 + 30, 12 * 60]


def _hm(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}:00"


def _stop_times() -> str:
    rows = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    for i, m in enumerate(R1_STARTS):
        for k, s in enumerate(("S1", "S2", "S3")):
            rows.append(f"T{i},{_hm(m + 5 * k)},{_hm(m + 5 * k)},{s},{k + 1}")
    rows.append(f"U0,{_hm(450)},{_hm(450)},S3,1")
    rows.append(f"U0,{_hm(455)},{_hm(455)},S4,2")
    return "\n".join(rows) + "\n"


@pytest.fixture
def small_feed(make_feed: Callable[..., Path]) -> Path:
    return make_feed(
        {
            "stops.txt": STOPS,
            "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\n"
            "R1,A,1,Line one,3\nR2,A,2,Line two,3\n",
            "trips.txt": "route_id,service_id,trip_id,direction_id\n"
            + "".join(f"R1,WK,T{i},0\n" for i in range(len(R1_STARTS)))
            + "R2,WK,U0,0\n",
            "stop_times.txt": _stop_times(),
        }
    )


def test_route_headways_hours_and_km_by_hand(small_feed: Path) -> None:
    bands = (TimeBand("day", 0, 24 * 3600), TimeBand("am", 7 * 3600, 9 * 3600))
    sl = compute_service_levels(read_feed(small_feed), dt.date(2030, 1, 7), bands)
    r = sl.routes.set_index(["band", "route_id"])
    am = r.loc[("am", "R1")]
    assert am["num_trips"] == 4
    assert (am["min_headway"], am["mean_headway"], am["max_headway"]) == (20, 30, 40)
    assert am["service_duration"] == pytest.approx(40 / 60)
    # No shapes and no shape_dist_traveled: the straight line along the stops, flagged.
    assert am["service_distance"] == pytest.approx(4 * 2.0016, rel=2e-3)
    assert bool(am["distance_estimated"])
    assert (am["start_time"], am["end_time"]) == ("07:00:00", "08:40:00")
    day = r.loc[("day", "R1")]
    assert day["num_trips"] == 5
    assert day["service_duration"] == pytest.approx(50 / 60)
    assert (day["start_time"], day["end_time"]) == ("07:00:00", "12:10:00")
    assert r.loc[("am", "R2")]["num_trips"] == 1
    assert math.isnan(r.loc[("am", "R2")]["mean_headway"])  # one trip: no headway

    s = sl.stops.set_index(["band", "stop_id"])
    s3 = s.loc[("am", "S3")]
    assert s3["num_trips"] == 5 and s3["num_routes"] == 2
    assert (s3["start_time"], s3["end_time"]) == ("07:10:00", "08:40:00")
    assert s3["max_headway"] == 40 and s3["min_headway"] == 0
    assert s3["mean_headway"] == pytest.approx((20 + 0 + 30 + 40) / 4)


def test_exports_and_hexagons(small_feed: Path) -> None:
    sl = compute_service_levels(read_feed(small_feed), dt.date(2030, 1, 7))
    csv = sl.routes_csv().splitlines()
    assert csv[0].startswith("band,route_id,") and len(csv) == len(sl.routes) + 1
    gj = sl.stops_geojson("day")
    assert {f["properties"]["stop_id"] for f in gj["features"]} == {"S1", "S2", "S3", "S4"}
    assert gj["features"][0]["geometry"]["type"] == "Point"
    lines = sl.routes_geojson("day")["features"]
    r1 = next(f for f in lines if f["properties"]["route_id"] == "R1")
    assert (
        r1["geometry"]["coordinates"][0] == [141.0, 43.0]
        and len(r1["geometry"]["coordinates"]) == 3
    )
    hexes = sl.hexagons("day", resolution=7)
    # Trips calling, summed per cell: 5 + 5 + 6 + 1 over the four stops.
    assert int(hexes["num_trips"].sum()) == 17 and int(hexes["num_stops"].sum()) == 4
    for cell in hexes["h3"]:
        assert h3.get_resolution(cell) == 7
    poly = sl.hexagons_geojson("day", 7)["features"][0]["geometry"]
    assert poly["type"] == "Polygon" and poly["coordinates"][0][0] == poly["coordinates"][0][-1]


def test_no_service_and_bad_bands(small_feed: Path) -> None:
    with pytest.raises(ValueError, match="no trip runs"):
        compute_service_levels(read_feed(small_feed), dt.date(2030, 1, 5))  # a Saturday
    assert parse_bands("am=07:00-09:00, late=22:00-26:30")[1].end_s == 26 * 3600 + 1800
    for bad in ("am", "am=09:00-07:00", "x=07:75-08:00", ""):
        with pytest.raises(ValueError):
            parse_bands(bad)
