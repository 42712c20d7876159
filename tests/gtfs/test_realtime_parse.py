"""GTFS-Realtime parsing on the real samples and on messages built with the bindings."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2 as pb

from gtfs.realtime import RealtimeParseError, parse_feed, read_feed_file


@pytest.fixture(scope="module")
def rt_dir(shared_data: Path) -> Path:
    return shared_data / "gtfs-rt"


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("us_king_county_vehicle_positions_1.pb", 627),
        ("us_king_county_vehicle_positions_2.pb", 570),
    ],
)
def test_king_county_vehicle_positions(rt_dir: Path, name: str, count: int) -> None:
    feed = read_feed_file(rt_dir / name)
    assert len(feed.vehicles) == count
    assert feed.trip_updates == () and feed.alerts == ()
    assert feed.gtfs_realtime_version == "2.0"
    assert feed.incrementality == "FULL_DATASET"
    v = feed.vehicles[0]
    assert v.vehicle_id and v.trip is not None and v.trip.route_id
    assert v.trip.start_date == "20210902"
    assert 47.0 < v.latitude < 48.5 and -123.0 < v.longitude < -121.5
    assert all(x.timestamp is not None for x in feed.vehicles)


def test_bullrunner_vehicle_positions_have_no_trip_id(rt_dir: Path) -> None:
    feed = read_feed_file(rt_dir / "us_bullrunner_vehicle_positions.pb")
    assert len(feed.vehicles) == 10
    assert all(v.trip is not None and v.trip.trip_id is None for v in feed.vehicles)
    assert all(v.trip is not None and v.trip.route_id for v in feed.vehicles)
    # Absent optional fields stay None, never a fake 0.
    assert feed.vehicles[0].speed is None
    assert feed.vehicles[0].bearing == 180.0


@pytest.mark.parametrize("data", [b"", b"not a protobuf at all \xff\xfe", b"\x0a\x00"])
def test_garbage_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(RealtimeParseError):
        parse_feed(data)


def test_alerts_and_trip_updates_fields() -> None:
    msg = pb.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = 1_600_000_000
    a = msg.entity.add()
    a.id = "alert-1"
    al = a.alert
    p = al.active_period.add()
    p.start = 100
    p.end = 200
    ie = al.informed_entity.add()
    ie.route_id = "R1"
    ie.direction_id = 1
    ie2 = al.informed_entity.add()
    ie2.stop_id = "S9"
    al.cause = pb.Alert.CONSTRUCTION
    al.effect = pb.Alert.DETOUR
    for lang, text in (("ja", "迂回運行"), ("en", "Detour")):
        tr = al.header_text.translation.add()
        tr.language = lang
        tr.text = text
    t = msg.entity.add()
    t.id = "tu-1"
    t.trip_update.trip.trip_id = "T1"
    t.trip_update.delay = 60
    stu = t.trip_update.stop_time_update.add()
    stu.stop_sequence = 4
    stu.arrival.time = 1_600_000_100
    d = msg.entity.add()
    d.id = "gone"
    d.is_deleted = True
    feed = parse_feed(msg.SerializeToString())
    assert feed.deleted_entity_ids == ("gone",)
    (alert,) = feed.alerts
    assert alert.cause == "CONSTRUCTION" and alert.effect == "DETOUR"
    assert alert.text("ja") == "迂回運行" and alert.text("en") == "Detour"
    assert alert.informed_entities[0].route_id == "R1"
    assert alert.informed_entities[0].direction_id == 1
    assert alert.informed_entities[1].stop_id == "S9"
    assert alert.is_active(150) and not alert.is_active(250)
    (tu,) = feed.trip_updates
    assert tu.delay == 60 and tu.trip.trip_id == "T1"
    (s,) = tu.stop_time_updates
    assert s.stop_sequence == 4 and s.stop_id is None
    assert s.arrival is not None and s.arrival.time == 1_600_000_100 and s.arrival.delay is None
    assert s.departure is None
