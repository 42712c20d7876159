"""FULL_DATASET and DIFFERENTIAL messages of one producer (gtfs.realtime.incremental), and the
message encoder they are spooled with."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2 as pb

from gtfs.realtime import (
    Alert,
    InformedEntity,
    RealtimeFeed,
    StopTimeEvent,
    StopTimeUpdate,
    TripDescriptor,
    TripUpdate,
    VehiclePosition,
    parse_feed,
    read_feed_file,
)
from gtfs.realtime.incremental import DIFFERENTIAL, FULL_DATASET, ProducerState
from gtfs.realtime.messages import encode_feed


def _tu(entity_id: str, trip_id: str, delay: int) -> TripUpdate:
    return TripUpdate(entity_id, TripDescriptor(trip_id=trip_id), delay=delay)


def _feed(
    mode: str,
    *tus: TripUpdate,
    deleted: tuple[str, ...] = (),
    ts: int | None = 1_000,
    vehicles: tuple[VehiclePosition, ...] = (),
) -> RealtimeFeed:
    return RealtimeFeed(
        "2.0", mode, ts, trip_updates=tus, vehicles=vehicles, deleted_entity_ids=deleted
    )


def _delays(st: ProducerState) -> dict[str, int | None]:
    return {tu.entity_id: tu.delay for tu in st.snapshot().trip_updates}


def test_full_then_differential_upsert() -> None:
    st = ProducerState()
    r = st.apply(_feed(FULL_DATASET, _tu("a", "T1", 60), _tu("b", "T2", 120)), 10.0)
    assert (r.upserted, r.deleted, r.notices) == (2, 0, ())
    # "a" is replaced, "c" is added, "b" is not mentioned and stays.
    r = st.apply(_feed(DIFFERENTIAL, _tu("a", "T1", 300), _tu("c", "T3", 30), ts=1_010), 20.0)
    assert (r.incrementality, r.upserted, r.deleted) == (DIFFERENTIAL, 2, 0)
    assert _delays(st) == {"a": 300, "b": 120, "c": 30}
    snap = st.snapshot()
    assert snap.incrementality == FULL_DATASET and snap.timestamp == 1_010
    assert st.received_at() == {"a": 20.0, "b": 10.0, "c": 20.0}


def test_differential_replaces_the_whole_entity() -> None:
    st = ProducerState()
    vp = VehiclePosition("a", "bus-1", 42.3, 140.9)
    st.apply(_feed(FULL_DATASET, _tu("a", "T1", 60), vehicles=(vp,)), 1.0)
    assert len(st.snapshot().vehicles) == 1
    # The new entity "a" has only a TripUpdate: the old VehiclePosition part goes with it.
    st.apply(_feed(DIFFERENTIAL, _tu("a", "T1", 90)), 2.0)
    assert st.snapshot().vehicles == () and _delays(st) == {"a": 90}


def test_delete_via_is_deleted_and_unknown_delete() -> None:
    st = ProducerState()
    st.apply(_feed(FULL_DATASET, _tu("a", "T1", 60), _tu("b", "T2", 120)), 1.0)
    r = st.apply(_feed(DIFFERENTIAL, deleted=("b",)), 2.0)
    assert (r.upserted, r.deleted, r.notices) == (0, 1, ())
    assert _delays(st) == {"a": 60}
    r = st.apply(_feed(DIFFERENTIAL, deleted=("ghost",)), 3.0)
    assert r.deleted == 0 and not r.ignored
    assert r.notices == ("is_deleted entity 'ghost' is not in the state: no-op",)
    assert _delays(st) == {"a": 60}


def test_mixing_modes() -> None:
    st = ProducerState()
    # A DIFFERENTIAL first message builds the state from nothing.
    st.apply(_feed(DIFFERENTIAL, _tu("a", "T1", 60)), 1.0)
    st.apply(_feed(DIFFERENTIAL, _tu("b", "T2", 60)), 2.0)
    assert set(_delays(st)) == {"a", "b"}
    # A FULL_DATASET replaces everything, whatever the differentials added.
    r = st.apply(_feed(FULL_DATASET, _tu("c", "T3", 5), deleted=("a",)), 3.0)
    assert _delays(st) == {"c": 5}
    assert r.notices == ("is_deleted entity 'a' in a FULL_DATASET message: ignored",)
    # An empty FULL_DATASET clears the producer.
    st.apply(_feed(FULL_DATASET), 4.0)
    assert len(st) == 0 and st.snapshot().trip_updates == ()


def test_out_of_order_differential_is_ignored() -> None:
    st = ProducerState()
    st.apply(_feed(FULL_DATASET, _tu("a", "T1", 60), ts=2_000), 1.0)
    r = st.apply(_feed(DIFFERENTIAL, _tu("a", "T1", 999), ts=1_999), 2.0)
    assert r.ignored and "older than the state" in r.notices[0]
    assert _delays(st) == {"a": 60}
    # Without a header timestamp there is nothing to compare: applied.
    assert not st.apply(_feed(DIFFERENTIAL, _tu("a", "T1", 7), ts=None), 3.0).ignored
    assert _delays(st) == {"a": 7} and st.timestamp == 2_000


def test_expiry_and_restore() -> None:
    st = ProducerState()
    st.apply(_feed(FULL_DATASET, _tu("a", "T1", 1), _tu("b", "T2", 2)), 100.0)
    st.apply(_feed(DIFFERENTIAL, _tu("b", "T2", 3)), 200.0)
    assert st.oldest() == 100.0
    assert st.expire(before=150.0) == 1
    assert _delays(st) == {"b": 3} and st.oldest() == 200.0
    assert st.expire(before=150.0) == 0
    # A spooled snapshot comes back with each entity's time (unknown ids: the default).
    st.apply(_feed(DIFFERENTIAL, _tu("c", "T3", 4)), 300.0)
    back = ProducerState.restore(st.snapshot(), {"b": 200.0}, default=999.0)
    assert back.received_at() == {"b": 200.0, "c": 999.0}
    assert back.snapshot() == st.snapshot()


def test_encode_round_trip(shared_data: Path) -> None:
    feed = RealtimeFeed(
        "2.0",
        DIFFERENTIAL,
        1_700_000_000,
        trip_updates=(
            TripUpdate(
                "e1",
                TripDescriptor(
                    trip_id="T1",
                    start_time="25:10:00",
                    start_date="20240101",
                    direction_id=1,
                    route_id="R",
                ),
                stop_time_updates=(
                    StopTimeUpdate(stop_sequence=3, arrival=StopTimeEvent(delay=0)),
                    StopTimeUpdate(stop_id="S9", schedule_relationship="SKIPPED"),
                    StopTimeUpdate(
                        stop_id="S10", departure=StopTimeEvent(time=1_700_000_500, uncertainty=30)
                    ),
                ),
                vehicle_id="bus-7",
                timestamp=1_699_999_990,
                delay=-30,
            ),
            TripUpdate("e2", TripDescriptor(trip_id="T2", schedule_relationship="CANCELED")),
        ),
        vehicles=(
            VehiclePosition(
                "e1",
                "bus-7",
                42.25,
                140.5,
                bearing=90.0,
                speed=8.5,
                timestamp=5,
                trip=TripDescriptor(trip_id="T1"),
                stop_id="S9",
                current_stop_sequence=4,
                current_status="IN_TRANSIT_TO",
                occupancy_status="FEW_SEATS_AVAILABLE",
                label="7",
            ),
        ),
        alerts=(
            Alert(
                "al",
                active_periods=((100, None), (None, 300)),
                informed_entities=(
                    InformedEntity(route_id="R", direction_id=0),
                    InformedEntity(trip=TripDescriptor(trip_id="T2"), stop_id="S1"),
                ),
                cause="STRIKE",
                effect="NO_SERVICE",
                header_text={"": "Strike", "ja": "スト"},
                description_text={"en": "No buses"},
                url={"": "https://example.org/a"},
            ),
        ),
        deleted_entity_ids=("gone",),
    )
    data = encode_feed(feed)
    assert parse_feed(data) == feed
    # The parts of "e1" share one FeedEntity, as in the producer's message.
    msg = pb.FeedMessage()
    msg.ParseFromString(data)
    assert [e.id for e in msg.entity] == ["e1", "e2", "al", "gone"]
    assert msg.entity[0].HasField("trip_update") and msg.entity[0].HasField("vehicle")
    # A real feed survives the round trip too.
    real = read_feed_file(shared_data / "gtfs-rt" / "us_king_county_vehicle_positions_1.pb")
    assert parse_feed(encode_feed(real)) == real


@pytest.mark.parametrize("bad", ["SOMETIMES", ""])
def test_encode_rejects_unknown_enum_names(bad: str) -> None:
    with pytest.raises(ValueError):
        encode_feed(_feed(bad))
