"""GTFS-Flex v2 on the real CobbLinc feed and on a synthetic v2 feed with location groups."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gtfs import compile_timetable, read_feed, validate_feed
from gtfs.flex import BookingRule


def test_cobblinc_zones_services_and_booking(gtfs_dir: Path) -> None:
    path = gtfs_dir / "us_cobblinc_flex.zip"
    with zipfile.ZipFile(path) as zf:
        gj = json.loads(zf.read("locations.geojson"))
        trips = list(csv.DictReader(io.StringIO(zf.read("trips.txt").decode("utf-8-sig"))))
        st = list(csv.DictReader(io.StringIO(zf.read("stop_times.txt").decode("utf-8-sig"))))

    def secs(t: str) -> int:
        h, m, s = (int(x) for x in t.split(":"))
        return h * 3600 + m * 60 + s

    z1_windows = {
        (secs(r["start_pickup_drop_off_window"]), secs(r["end_pickup_drop_off_window"]))
        for r in st
        if r["stop_id"] == "zone_1"
    }
    feed = read_feed(path)
    flex = feed.flex
    assert sorted(flex.zones) == sorted(f["id"] for f in gj["features"])
    assert len(flex.zones) == 3
    assert len(trips) == 72 and flex.flex_trip_ids == {t["trip_id"] for t in trips}
    z1 = flex.zones["zone_1"]
    assert z1.geometry.geom_type == "Polygon" and z1.name == "Flex Zone 1"
    c = z1.geometry.representative_point()
    assert z1.contains(c.y, c.x) and not z1.contains(0.0, 0.0)
    svc = [s for s in flex.services if s.location_id == "zone_1"]
    assert svc and all(s.service_ids == ("1",) for s in svc)
    assert {(w.start_s, w.end_s) for s in svc for w in s.windows} == z1_windows
    assert min(z1_windows) == (7 * 3600, 7 * 3600 + 1800)
    rule = svc[0].pickup_booking_rule
    assert rule is not None and rule.booking_type == 1
    assert (rule.prior_notice_duration_min, rule.prior_notice_duration_max) == (120, 1440)
    assert rule.phone_number == "(770) 528-1053"
    assert svc[0].drop_off_booking_rule == rule  # read from the draft's dropoff_booking_rule_id
    assert {s.location_id for s in flex.services_at(c.y, c.x)} == {"zone_1"}
    # Service 1 runs Monday-Friday, 2021-10-19..2022-01-19.
    monday = flex.windows_on(svc[0], dt.date(2021, 11, 1))
    assert monday and len(monday) == len(svc[0].windows)
    assert flex.windows_on(svc[0], dt.date(2021, 11, 6)) == []  # Saturday
    assert flex.windows_on(svc[0], dt.date(2023, 1, 2)) == []  # after the calendar
    # Flex trips are not fixed-route trips.
    tt = compile_timetable(feed)
    assert tt.n_trips == 0 and tt.meta["flex_trips"] == 72


def test_booking_rule_notice_periods() -> None:
    same_day = BookingRule("r", 1, prior_notice_duration_min=120, prior_notice_duration_max=1440)
    t = dt.datetime(2030, 1, 1, 12, 0)
    assert same_day.allows(t, t + dt.timedelta(hours=3))
    assert not same_day.allows(t, t + dt.timedelta(minutes=60))  # too short notice
    assert not same_day.allows(t, t + dt.timedelta(days=2))  # too early
    assert not same_day.allows(t, t - dt.timedelta(minutes=1))
    prior = BookingRule("p", 2, prior_notice_last_day=1, prior_notice_last_time=17 * 3600)
    pickup = dt.datetime(2030, 1, 2, 9, 0)
    assert prior.allows(dt.datetime(2030, 1, 1, 16, 59), pickup)
    assert not prior.allows(dt.datetime(2030, 1, 1, 17, 1), pickup)
    assert BookingRule("rt", 0).allows(t, t)


GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {
            "id": "Z",
            "type": "Feature",
            "properties": {"stop_name": "Zone"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[139.0, 35.0], [139.1, 35.0], [139.1, 35.1], [139.0, 35.1], [139.0, 35.0]]
                ],
            },
        }
    ],
}


def test_flex_v2_location_groups_and_location_id(make_feed: Callable[..., Path]) -> None:
    st = (
        "trip_id,stop_id,location_group_id,location_id,stop_sequence,arrival_time,departure_time,"
        "start_pickup_drop_off_window,end_pickup_drop_off_window,pickup_type,drop_off_type,"
        "pickup_booking_rule_id,drop_off_booking_rule_id\n"
        "F1,,,Z,1,,,06:00:00,22:00:00,2,1,B,\n"
        "F1,,,Z,2,,,06:00:00,22:00:00,1,2,,B\n"
        "F2,,G,,1,,,07:00:00,19:00:00,2,2,B,B\n"
        "T1,S1,,,1,08:00:00,08:00:00,,,,,,\nT1,S2,,,2,08:05:00,08:05:00,,,,,,\n"
    )
    files = {
        "locations.geojson": json.dumps(GEOJSON),
        "location_groups.txt": "location_group_id,location_group_name\nG,Group\n",
        "location_group_stops.txt": "location_group_id,stop_id\nG,S1\nG,S3\n",
        "booking_rules.txt": "booking_rule_id,booking_type,prior_notice_last_day,prior_notice_last_time,phone_number\nB,2,1,17:00:00,0123\n",
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,F1\nR1,WK,F2\nR1,WK,T1\n",
        "stop_times.txt": st,
    }
    feed = read_feed(make_feed(files))
    flex = feed.flex
    zone = [s for s in flex.services if s.kind == "zone"]
    group = [s for s in flex.services if s.kind == "group"]
    assert len(zone) == 2  # pickup-only row and drop-off-only row (different rules)
    assert any(s.pickup and not s.drop_off for s in zone)
    assert group[0].stop_ids == ("S1", "S3") and group[0].windows[0].start_s == 7 * 3600
    assert flex.booking_rules["B"].prior_notice_last_time == 17 * 3600
    report = validate_feed(feed, today=dt.date(2030, 6, 1))
    assert not report.has_errors, [n.to_json() for n in report.notices]
    tt = compile_timetable(feed)
    assert tt.trip_ids.tolist() == ["T1"]


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"id": "Z", "geometry": {"type": "Point", "coordinates": [1, 2]}}],
            }
        ),
    ],
)
def test_invalid_geojson_reported(make_feed: Callable[..., Path], bad: str) -> None:
    report = validate_feed(
        read_feed(make_feed({"locations.geojson": bad})), today=dt.date(2030, 6, 1)
    )
    assert "invalid_geojson" in report.codes() and report.has_errors


FLEX_HEAD = "trip_id,location_id,stop_sequence,arrival_time,departure_time,start_pickup_drop_off_window,end_pickup_drop_off_window"


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("F1,Z,1,08:00:00,08:00:00,06:00:00,22:00:00", "forbidden_arrival_or_departure_time"),
        ("F1,Z,1,,,06:00:00,", "missing_pickup_or_drop_off_window"),
        ("F1,Z,1,,,22:00:00,06:00:00", "invalid_pickup_drop_off_window"),
    ],
)
def test_flex_window_rules(make_feed: Callable[..., Path], row: str, code: str) -> None:
    st = f"{FLEX_HEAD}\n{row}\nF1,Z,2,,,06:00:00,22:00:00\nT1,,1,08:00:00,08:00:00,,\n"
    files = {
        "locations.geojson": json.dumps(GEOJSON),
        "trips.txt": "route_id,service_id,trip_id\nR1,WK,F1\nR1,WK,T1\n",
        "stop_times.txt": st,
    }
    report = validate_feed(read_feed(make_feed(files)), today=dt.date(2030, 6, 1))
    assert code in report.codes() and report.has_errors


def test_booking_rule_fields_fit_type(make_feed: Callable[..., Path]) -> None:
    br = "booking_rule_id,booking_type,prior_notice_duration_min,prior_notice_last_day\nOK,1,30,\nBAD,2,,\n"
    report = validate_feed(
        read_feed(make_feed({"booking_rules.txt": br})), today=dt.date(2030, 6, 1)
    )
    n = report.get("invalid_booking_rule")
    assert n is not None and n.total == 1 and n.samples[0]["bookingRuleId"] == "BAD"
