"""Validation notices: real feeds' expected notices, and one bad feed per notice code."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gtfs import read_feed, validate_feed

TODAY = dt.date(2030, 6, 1)  # inside BASE_FEED's calendar


def codes_of(make_feed: Callable[..., Path], files: dict[str, str | None]) -> set[str]:
    return validate_feed(read_feed(make_feed(files)), today=TODAY).codes()


def test_base_feed_is_clean(make_feed: Callable[..., Path]) -> None:
    report = validate_feed(read_feed(make_feed()), today=TODAY)
    assert report.notices == []
    assert not report.has_errors


def test_report_json_shape(make_feed: Callable[..., Path]) -> None:
    feed = read_feed(make_feed({"routes.txt": "route_id,agency_id,route_type\nR1,A,3\n"}))
    js = validate_feed(feed, today=TODAY).to_json()
    assert set(js) == {"notices", "summary"}
    n = js["notices"][0]
    assert set(n) == {"code", "severity", "totalNotices", "sampleNotices"}
    assert n["code"] == "route_both_short_and_long_name_missing" and n["severity"] == "ERROR"
    assert n["sampleNotices"][0]["csvRowNumber"] == 2
    assert n["sampleNotices"][0]["routeId"] == "R1"
    assert js["summary"]["counts"]["errors"] == 1


def test_samples_capped_at_five(make_feed: Callable[..., Path]) -> None:
    rows = "".join(f"X{i},WK,T{i}\n" for i in range(12))
    report = validate_feed(
        read_feed(make_feed({"trips.txt": "route_id,service_id,trip_id\n" + rows})), today=TODAY
    )
    fk = report.get("foreign_key_violation")
    assert fk is not None and fk.total >= 12 and len(fk.samples) == 5


ST_HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence"


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"agency.txt": None}, "missing_required_file"),
        ({"calendar.txt": None}, "missing_calendar_and_calendar_date_files"),
        ({"routes.txt": "route_id,route_short_name\nR1,1\n"}, "missing_required_column"),
        (
            {
                "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n,X,35,139\nS1,a,35,139\nS2,b,35.01,139\nS3,c,35.02,139\n"
            },
            "missing_required_field",
        ),
        (
            {"trips.txt": "route_id,service_id,trip_id\nR9,WK,T1\nR1,WK,T2\n"},
            "foreign_key_violation",
        ),
        ({"trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T1\n"}, "duplicate_key"),
        (
            {"stop_times.txt": f"{ST_HEAD}\nT1,8:00,08:00:00,S1,1\nT1,08:05:00,08:05:00,S2,2\n"},
            "invalid_time",
        ),
        (
            {
                "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,2030-01-01,20301231\n"
            },
            "invalid_date",
        ),
        (
            {"routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,1,bus\n"},
            "invalid_integer",
        ),
        (
            {"stops.txt": "stop_id,stop_lat,stop_lon\nS1,north,139\nS2,35,139\nS3,35.1,139\n"},
            "invalid_float",
        ),
        (
            {"stops.txt": "stop_id,stop_lat,stop_lon\nS1,135,139\nS2,35,139\nS3,35.1,139\n"},
            "number_out_of_range",
        ),
        (
            {
                "routes.txt": "route_id,agency_id,route_short_name,route_type,route_color\nR1,A,1,3,red\n"
            },
            "invalid_color",
        ),
        (
            {
                "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Ag,www.example.com,Asia/Tokyo\n"
            },
            "invalid_url",
        ),
        (
            {
                "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Ag,https://a.jp,Tokyo/Japan\n"
            },
            "invalid_timezone",
        ),
        (
            {
                "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,20301231,20300101\n"
            },
            "start_and_end_range_out_of_order",
        ),
        (
            {
                "stop_times.txt": f"{ST_HEAD}\nT1,08:00:00,08:10:00,S1,1\nT1,08:05:00,08:05:00,S2,2\nT2,08:00:00,08:00:00,S1,1\nT2,08:05:00,08:05:00,S2,2\n"
            },
            "stop_time_with_arrival_before_previous_departure_time",
        ),
        (
            {
                "stop_times.txt": f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,08:05:00,,S2,2\nT1,08:10:00,08:10:00,S3,3\nT2,08:00:00,08:00:00,S1,1\nT2,08:05:00,08:05:00,S2,2\n"
            },
            "stop_time_with_only_arrival_or_departure_time",
        ),
        (
            {
                "stop_times.txt": f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,,,S2,2\nT2,08:00:00,08:00:00,S1,1\nT2,08:05:00,08:05:00,S2,2\n"
            },
            "missing_trip_edge",
        ),
        (
            {
                "stop_times.txt": f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,08:00:00,08:00:00,S3,2\nT2,08:00:00,08:00:00,S1,1\nT2,08:00:30,08:00:30,S2,2\n"
            },
            None,
        ),
        (
            {
                "stop_times.txt": f"{ST_HEAD},shape_dist_traveled\nT1,08:00:00,08:00:00,S1,1,0\nT1,08:05:00,08:05:00,S2,2,500\nT1,08:10:00,08:10:00,S3,3,400\nT2,08:00:00,08:00:00,S1,1,\nT2,08:05:00,08:05:00,S2,2,\n"
            },
            "decreasing_or_equal_stop_time_distance",
        ),
        (
            {"routes.txt": "route_id,agency_id,route_type\nR1,A,3\n"},
            "route_both_short_and_long_name_missing",
        ),
        (
            {
                "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,a,https://a.jp,Asia/Tokyo\nB,b,https://b.jp,UTC\n"
            },
            "inconsistent_agency_timezone",
        ),
        (
            {"routes.txt": "route_id,agency_id,route_short_name,route_type,my_field\nR1,A,1,3,x\n"},
            "unknown_column",
        ),
        (
            {
                "stop_times.txt": f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT2,08:00:00,08:00:00,S1,1\nT2,08:05:00,08:05:00,S2,2\n"
            },
            "unusable_trip",
        ),
        (
            {
                "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\nS1,a,35,139,0,S2\nS2,b,35,139,0,\nS3,c,35.01,139,0,\n"
            },
            "parent_station_not_a_station",
        ),
        (
            {
                "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,a,,\nS2,b,35,139\nS3,c,35.01,139\n"
            },
            "stop_without_location",
        ),
    ],
)
def test_bad_feed_gives_notice(
    make_feed: Callable[..., Path], files: dict[str, str | None], code: str | None
) -> None:
    codes = codes_of(make_feed, files)
    if code is None:
        # 1 km in 0 s at 08:00 -> 08:00 is allowed one minute of rounding; 60 km/h: no notice.
        assert "fast_travel_between_consecutive_stops" not in codes
    else:
        assert code in codes, codes


def test_trip_without_stop_times_is_unusable(make_feed: Callable[..., Path]) -> None:
    trips = "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR1,WK,T3\n"
    n = validate_feed(read_feed(make_feed({"trips.txt": trips})), today=TODAY).get("unusable_trip")
    assert n is not None and n.total == 1 and n.samples[0]["tripId"] == "T3"


def test_departure_before_arrival(make_feed: Callable[..., Path]) -> None:
    st = f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,08:06:00,08:05:00,S2,2\nT2,08:00:00,08:00:00,S1,1\nT2,08:05:00,08:05:00,S2,2\n"
    codes = codes_of(make_feed, {"stop_times.txt": st})
    assert "stop_time_with_departure_before_arrival_time" in codes


def test_fast_travel(make_feed: Callable[..., Path]) -> None:
    far = "stop_id,stop_name,stop_lat,stop_lon\nS1,a,35,139\nS2,b,35.5,139\nS3,c,35.6,139\n"
    st = f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,08:02:00,08:02:00,S2,2\nT2,08:00:00,08:00:00,S1,1\nT2,09:00:00,09:00:00,S2,2\n"
    report = validate_feed(
        read_feed(make_feed({"stops.txt": far, "stop_times.txt": st})), today=TODAY
    )
    n = report.get("fast_travel_between_consecutive_stops")
    assert n is not None and n.total == 1 and n.samples[0]["tripId"] == "T1"
    assert n.samples[0]["speedKmh"] > 1000


def test_expiry_notices(make_feed: Callable[..., Path]) -> None:
    fi = "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date\nP,https://p.jp,ja,20300101,20300110\n"
    report = validate_feed(read_feed(make_feed({"feed_info.txt": fi})), today=dt.date(2031, 3, 1))
    assert {
        "expired_calendar",
        "feed_expiration_date7_days",
        "service_beyond_feed_end_date",
    } <= report.codes()
    assert not report.has_errors  # warnings do not block publishing
    report = validate_feed(read_feed(make_feed({"feed_info.txt": fi})), today=dt.date(2029, 12, 20))
    assert "feed_expiration_date30_days" in report.codes()
    assert "expired_calendar" not in report.codes()


def test_cairns_expected_notices(gtfs_dir: Path) -> None:
    """Cairns: 65 intermediate stop times with both times blank (legal: interpolated), so no
    error; its 2014 calendar has expired; it has no feed_info so no feed expiry notice."""
    path = gtfs_dir / "au_cairns.zip"
    with zipfile.ZipFile(path) as zf:
        raw = list(csv.DictReader(io.StringIO(zf.read("stop_times.txt").decode("utf-8-sig"))))
    blank = [r for r in raw if r["arrival_time"] == "" and r["departure_time"] == ""]
    assert len(blank) == 65  # the data README's figure, counted from the raw file
    assert not [r for r in raw if (r["arrival_time"] == "") != (r["departure_time"] == "")]
    report = validate_feed(read_feed(path), today=dt.date(2026, 1, 1))
    assert not report.has_errors
    interp = report.get("interpolated_stop_times")
    assert interp is not None and interp.total == len(blank)
    assert interp.samples
    raw_keys = {(r["trip_id"], int(r["stop_sequence"])) for r in blank}
    assert {(s["tripId"], s["stopSequence"]) for s in interp.samples} <= raw_keys
    assert "expired_calendar" in report.codes()
    for code in (
        "missing_trip_edge",
        "stop_time_with_only_arrival_or_departure_time",
        "feed_expiration_date7_days",
    ):
        assert code not in report.codes()
    # Inside its validity nothing but the interpolation info remains.
    report = validate_feed(read_feed(gtfs_dir / "au_cairns.zip"), today=dt.date(2014, 7, 1))
    assert report.codes() == {"interpolated_stop_times"}


def test_cobblinc_flex_expected_notices(gtfs_dir: Path) -> None:
    """feed_info says 2021-10-18..2021-11-11 while calendar.txt runs to 2022-01-19: the
    feed has expired by feed_info, its service runs past that end date, and (today) the
    calendar has expired too. Its zone stop_times reference locations.geojson ids through
    stop_id (pre-adoption Flex draft): not foreign-key violations."""
    feed = read_feed(gtfs_dir / "us_cobblinc_flex.zip")
    report = validate_feed(feed, today=dt.date(2026, 1, 1))
    assert {
        "feed_expiration_date7_days",
        "expired_calendar",
        "service_beyond_feed_end_date",
    } <= report.codes()
    assert "foreign_key_violation" not in report.codes()
    assert "missing_trip_edge" not in report.codes()
    assert not report.has_errors
    unknown = report.get("unknown_column")
    assert unknown is not None
    # During its feed_info range it is only 30 days from expiry.
    report = validate_feed(feed, today=dt.date(2021, 10, 20))
    assert "feed_expiration_date30_days" in report.codes()
    assert "expired_calendar" not in report.codes()


@pytest.mark.parametrize(
    "name", ["jp_donan_bus_muroran.zip", "jp_kumagaya_yuyubus.zip", "us_nyc_subway_2routes.zip"]
)
def test_real_feeds_have_no_errors(gtfs_dir: Path, name: str) -> None:
    report = validate_feed(read_feed(gtfs_dir / name), today=dt.date(2020, 6, 1))
    assert not report.has_errors, [n.to_json() for n in report.notices]
