"""GTFS-Realtime over HTTP: ingest TripUpdates (operator), the public fleet export, polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2 as pb

from app.feeds.registry import FeedRegistry
from gtfs.realtime import FleetTrip, FleetVehicle, StopEta, parse_feed
from tests.app.conftest import TestUser, assert_error

PB = {"Content-Type": "application/x-protobuf"}


def _delay_message(reg: FeedRegistry, delay: int) -> tuple[bytes, int]:
    """A TripUpdate delaying a real Muroran trip running on the demo service date."""
    net = reg.network
    tt = net.timetable
    assert tt is not None and net.service_date is not None
    t = int(np.flatnonzero(tt.active_trips(net.service_date) & (np.diff(tt.trip_st_ptr) > 5))[0])
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(time.time())
    e = m.entity.add()
    e.id = "late-bus"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    e.trip_update.trip.start_date = net.service_date.strftime("%Y%m%d")
    stu = e.trip_update.stop_time_update.add()
    stu.stop_sequence = int(tt.st_stop_sequence[tt.trip_st_ptr[t] + 2])
    stu.departure.delay = delay
    return m.SerializeToString(), t


def test_ingest_trip_updates_and_export_fleet(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    c = make_app_client(demo=True)
    reg: FeedRegistry = c.app.state.services.feeds  # type: ignore[attr-defined]
    operator = auth(make_user(roles=("operator",), client=c), client=c)
    resident = auth(make_user(roles=("resident",), client=c), client=c)
    body, t = _delay_message(reg, 420)

    assert_error(c.post("/api/v1/realtime/trip-updates", content=body, headers=PB), 401)
    assert_error(
        c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **resident}), 403
    )
    assert_error(
        c.post(
            "/api/v1/realtime/trip-updates", content=b"\xff\x00junk", headers={**PB, **operator}
        ),
        422,
        "invalid_gtfs_rt",
    )
    assert_error(
        c.post("/api/v1/realtime/trip-updates", content=b"", headers={**PB, **operator}),
        422,
        "empty_body",
    )

    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **operator})
    assert r.status_code == 200, r.text
    assert r.json()["overlay"]["matched"] == 1 and r.json()["overlay"]["trips_updated"] == 1
    status = c.get("/api/v1/realtime/status").json()
    assert status["ingested"] == 1 and status["overlay"]["trips_updated"] == 1

    # The overlay the router reads: +420 s from the third stop on, the schedule before.
    rt = reg.realtime_state()
    tt = reg.network.timetable
    assert tt is not None
    a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
    np.testing.assert_array_equal(rt.departure[a : a + 2], tt.st_departure[a : a + 2])
    np.testing.assert_array_equal(rt.departure[a + 2 : b], tt.st_departure[a + 2 : b] + 420)

    # A second source adds to the first; a new feed from a source replaces only its own.
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    e = m.entity.add()
    e.id = "cancelled"
    day = reg.network.service_date
    assert day is not None
    e.trip_update.trip.trip_id = str(tt.trip_ids[np.flatnonzero(tt.active_trips(day))[-1]])
    e.trip_update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    url = "/api/v1/realtime/trip-updates"
    r = c.post(f"{url}?source=agency2", content=m.SerializeToString(), headers={**PB, **operator})
    assert r.json()["overlay"]["trips_cancelled"] == 1
    assert r.json()["overlay"]["trips_updated"] == 1
    empty = pb.FeedMessage()
    empty.header.gtfs_realtime_version = "2.0"
    r = c.post(url, content=empty.SerializeToString(), headers={**PB, **operator})
    assert r.json()["overlay"]["trips_updated"] == 0
    assert r.json()["overlay"]["trips_cancelled"] == 1
    assert c.get("/api/v1/realtime/status").json()["sources"] == ["agency2", "default"]
    assert_error(c.post(f"{url}?source=../x", content=body, headers={**PB, **operator}), 422)

    # Public export of the on-demand fleet: another provider replaces the dispatcher's.
    r = c.get("/api/v1/realtime/vehicle-positions.pb")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    demo_vans = {v.vehicle_id for v in c.app.state.services.dispatcher.vehicles()}  # type: ignore[attr-defined]
    assert {v.vehicle_id for v in parse_feed(r.content).vehicles} == demo_vans

    def fleet() -> tuple[list[Any], list[Any]]:
        return (
            [FleetVehicle("van-1", 42.315, 140.974, int(time.time()), bearing=45.0)],
            [
                FleetTrip(
                    "run-7", "van-1", etas=(StopEta("0991_A", arrival=int(time.time()) + 300),)
                )
            ],
        )

    reg.fleet_provider = fleet
    vp = parse_feed(c.get("/api/v1/realtime/vehicle-positions.pb").content)
    assert [v.vehicle_id for v in vp.vehicles] == ["van-1"] and vp.vehicles[0].bearing == 45.0
    tu = parse_feed(c.get("/api/v1/realtime/trip-updates.pb").content)
    assert tu.trip_updates[0].trip.trip_id == "run-7"
    assert tu.trip_updates[0].stop_time_updates[0].stop_id == "0991_A"


class _FeedHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rt_server() -> Iterator[tuple[str, type[_FeedHandler]]]:
    handler = type("H", (_FeedHandler,), {})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/tu.pb", handler
    srv.shutdown()
    srv.server_close()


def test_poll_url_feeds_the_overlay(
    make_app_client: Callable[..., TestClient], rt_server: tuple[str, type[_FeedHandler]]
) -> None:
    url, handler = rt_server
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = 1_700_000_000
    e = m.entity.add()
    e.id = "x"
    e.trip_update.trip.trip_id = "somewhere"
    e.trip_update.delay = 60
    handler.body = m.SerializeToString()
    c = make_app_client(realtime_poll_url=url, realtime_poll_interval_s=0.05)
    reg: FeedRegistry = c.app.state.services.feeds  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30  # liveness bound, not a speed claim
    while reg.realtime.ingested == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    status = c.get("/api/v1/realtime/status").json()
    assert status["ingested"] >= 1 and status["feed_timestamp"] == 1_700_000_000
    (poller,) = status["pollers"]
    assert poller["url"] == url and poller["polls"] >= 1
    assert poller["last_error"] is None
    assert status["sources"] == ["poll"]

    # Several URLs (TripUpdates, VehiclePositions, Alerts apart): one poller and source each;
    # an unreachable one reports its error without disturbing the others.
    urls = f"{url}?kind=trip-updates, http://127.0.0.1:9/down.pb"
    c2 = make_app_client(realtime_poll_url=urls, realtime_poll_interval_s=0.05)
    reg2: FeedRegistry = c2.app.state.services.feeds  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30  # liveness bound, not a speed claim
    while (
        reg2.realtime.ingested == 0 or reg2.pollers[1].failures == 0
    ) and time.monotonic() < deadline:
        time.sleep(0.02)
    status = c2.get("/api/v1/realtime/status").json()
    assert status["sources"] == ["poll-1"]
    assert [p["url"] for p in status["pollers"]] == [
        f"{url}?kind=trip-updates",
        "http://127.0.0.1:9/down.pb",
    ]
    assert status["pollers"][1]["failures"] >= 1 and status["pollers"][1]["last_error"]


def test_posted_trip_updates_reach_every_worker(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    c1 = make_app_client(feeds_sync_interval_s=0.05)
    c2 = make_app_client(feeds_sync_interval_s=0.05)
    headers = auth(make_user(roles=("operator",), client=c1), client=c1)
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = 1_700_000_123
    r = c1.post(
        "/api/v1/realtime/trip-updates?source=city",
        content=m.SerializeToString(),
        headers={**PB, **headers},
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30  # liveness bound, not a speed claim
    while c2.get("/api/v1/realtime/status").json()["ingested"] == 0:
        assert time.monotonic() < deadline, "worker 2 never saw the feed"
        time.sleep(0.05)
    status = c2.get("/api/v1/realtime/status").json()
    assert status["sources"] == ["city"] and status["feed_timestamp"] == 1_700_000_123
    time.sleep(0.2)  # several more sync rounds: the same file is not ingested again
    assert c1.get("/api/v1/realtime/status").json()["ingested"] == 1
    assert c2.get("/api/v1/realtime/status").json()["ingested"] == 1


def test_vehicles_and_alerts_as_json(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
    shared_data: Any,
) -> None:
    c = app_client
    headers = {**PB, **auth(make_user(roles=("operator",)))}
    kc = (shared_data / "gtfs-rt" / "us_king_county_vehicle_positions_1.pb").read_bytes()
    assert c.post(
        "/api/v1/realtime/trip-updates?source=kcm", content=kc, headers=headers
    ).is_success
    vehicles = c.get("/api/v1/realtime/vehicles").json()["vehicles"]
    assert len(vehicles) == 627
    # The same file as a multipart upload (the operator console's form).
    form_headers = {"Authorization": headers["Authorization"]}
    r = c.post(
        "/api/v1/realtime/trip-updates?source=kcm",
        files={"file": ("kc.pb", kc, "application/octet-stream")},
        headers=form_headers,
    )
    assert r.status_code == 200, r.text
    assert_error(
        c.post(
            "/api/v1/realtime/trip-updates",
            data={"other": "x"},
            files={"nope": ("a.pb", b"x", "application/octet-stream")},
            headers=form_headers,
        ),
        422,
        "file_missing",
    )
    assert len(c.get("/api/v1/realtime/vehicles").json()["vehicles"]) == 627 and {
        v["source"] for v in vehicles
    } == {"kcm"}
    assert all(v["route_id"] for v in vehicles)

    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    e = m.entity.add()
    e.id = "snow"
    e.alert.effect = pb.Alert.REDUCED_SERVICE
    e.alert.informed_entity.add().route_id = "100310"
    period = e.alert.active_period.add()
    period.start = 1_000
    period.end = 2_000
    for lang, text in (("ja", "大雪のため減便"), ("en", "Reduced service (snow)")):
        tr = e.alert.header_text.translation.add()
        tr.language, tr.text = lang, text
    r = c.post(
        "/api/v1/realtime/trip-updates?source=city", content=m.SerializeToString(), headers=headers
    )
    assert r.is_success
    ja = c.get("/api/v1/realtime/alerts", params={"lang": "ja", "at": 1500}).json()["alerts"]
    assert [(a["id"], a["header"], a["effect"]) for a in ja] == [
        ("snow", "大雪のため減便", "REDUCED_SERVICE")
    ]
    assert ja[0]["informed_entities"] == [{"route_id": "100310"}]
    en = c.get("/api/v1/realtime/alerts", params={"lang": "en", "at": 1500}).json()["alerts"]
    assert en[0]["header"] == "Reduced service (snow)"
    assert c.get("/api/v1/realtime/alerts", params={"at": 5000}).json()["alerts"] == []
    assert_error(c.get("/api/v1/realtime/alerts", params={"at": "soon"}), 422)
    # The KC vehicles (another source) are still there.
    assert len(c.get("/api/v1/realtime/vehicles").json()["vehicles"]) == 627


def test_delay_changes_what_a_plan_query_finds(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    """Asked for after a bus's scheduled departure, /plan cannot use that bus; once a
    TripUpdate says it runs 7 minutes late, the same query rides it at its realtime time."""
    c = make_app_client(demo=True)
    reg: FeedRegistry = c.app.state.services.feeds  # type: ignore[attr-defined]
    operator = auth(make_user(roles=("operator",), client=c), client=c)
    body, t = _delay_message(reg, 420)  # +420 s from the trip's third stop on
    tt = reg.network.timetable
    day = reg.network.service_date
    assert tt is not None and day is not None
    a = int(tt.trip_st_ptr[t])
    p = int(tt.trip_pattern[t])
    stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
    board, alight = str(tt.stop_ids[stops[3]]), str(tt.stop_ids[stops[-1]])
    sched = int(tt.st_departure[a + 3])
    ask = sched + 120  # two minutes after it left on schedule, five before it really leaves
    params: dict[str, str | int] = {
        "fromPlace": board,
        "toPlace": alight,
        "date": day.isoformat(),
        "time": f"{ask // 3600:02d}:{ask % 3600 // 60:02d}",
        "numItineraries": 5,
    }
    trip_id = str(tt.trip_ids[t])

    def legs_on_trip() -> list[dict[str, Any]]:
        r = c.get("/api/v1/plan", params=params)
        assert r.status_code == 200, r.text
        return [
            leg
            for it in r.json()["plan"]["itineraries"]
            for leg in it["legs"]
            if leg.get("tripId") == trip_id
        ]

    assert legs_on_trip() == []  # gone, by the schedule
    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **operator})
    assert r.status_code == 200, r.text
    legs = legs_on_trip()
    assert legs, "the late bus is not offered"
    leg = legs[0]
    assert leg["realTime"] is True and leg["departureDelay"] == 420
    assert leg["startTime"] - leg["scheduledStartTime"] == 420_000


def _message(
    reg: FeedRegistry,
    trips: dict[str, tuple[int, int]],
    *,
    differential: bool,
    deleted: tuple[str, ...] = (),
    ts: int = 1_700_000_000,
) -> bytes:
    """A FeedMessage: entity id -> (compiled trip, delay from its first stop)."""
    tt = reg.network.timetable
    assert tt is not None
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = ts
    if differential:
        m.header.incrementality = pb.FeedHeader.DIFFERENTIAL
    for eid, (t, delay) in trips.items():
        e = m.entity.add()
        e.id = eid
        e.trip_update.trip.trip_id = str(tt.trip_ids[t])
        e.trip_update.delay = delay
    for eid in deleted:
        e = m.entity.add()
        e.id = eid
        e.is_deleted = True
    return m.SerializeToString()


def _trip_delays(reg: FeedRegistry, trips: list[int]) -> list[int]:
    """The realtime delay at the first stop of each trip in the overlay."""
    rt = reg.realtime_state()
    tt = reg.network.timetable
    assert rt is not None and tt is not None
    return [int(rt.delay[tt.trip_st_ptr[t]]) for t in trips]


def test_differential_messages_upsert_and_delete_by_entity_id(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    c = make_app_client(demo=True)
    reg: FeedRegistry = c.app.state.services.feeds  # type: ignore[attr-defined]
    headers = {**PB, **auth(make_user(roles=("operator",), client=c), client=c)}
    tt, day = reg.network.timetable, reg.network.service_date
    assert tt is not None and day is not None
    t1, t2, t3 = (int(x) for x in np.flatnonzero(tt.active_trips(day))[:3])
    url = "/api/v1/realtime/trip-updates?source=city"

    def post(body: bytes) -> dict[str, Any]:
        r = c.post(url, content=body, headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    full = post(_message(reg, {"a": (t1, 60), "b": (t2, 120)}, differential=False))
    assert full["incrementality"] == "FULL_DATASET" and full["upserted"] == 2
    assert _trip_delays(reg, [t1, t2, t3]) == [60, 120, 0]
    # Upsert "a", add "c"; "b" is not mentioned and keeps its delay (it used to be dropped).
    r = post(_message(reg, {"a": (t1, 300), "c": (t3, 30)}, differential=True, ts=1_700_000_010))
    assert (r["incrementality"], r["upserted"], r["deleted"]) == ("DIFFERENTIAL", 2, 0)
    assert r["overlay"]["trips_updated"] == 3
    assert _trip_delays(reg, [t1, t2, t3]) == [300, 120, 30]
    # Delete "b": its trip is back on schedule.
    r = post(_message(reg, {}, differential=True, deleted=("b",), ts=1_700_000_020))
    assert r["deleted"] == 1 and r["notices"] == []
    assert _trip_delays(reg, [t1, t2, t3]) == [300, 0, 30]
    # Deleting an unknown entity changes nothing and says so.
    r = post(_message(reg, {}, differential=True, deleted=("nope",), ts=1_700_000_030))
    assert r["deleted"] == 0 and r["notices"] == [
        "is_deleted entity 'nope' is not in the state: no-op"
    ]
    assert _trip_delays(reg, [t1, t2, t3]) == [300, 0, 30]
    # A late-delivered older differential is refused; a FULL_DATASET replaces everything.
    r = post(_message(reg, {"a": (t1, 1)}, differential=True, ts=1_600_000_000))
    assert r["ignored"] is True and _trip_delays(reg, [t1]) == [300]
    post(_message(reg, {"b": (t2, 45)}, differential=False, ts=1_700_000_040))
    assert _trip_delays(reg, [t1, t2, t3]) == [0, 45, 0]
    last = c.get("/api/v1/realtime/status").json()["last_messages"]["city"]
    assert last["incrementality"] == "FULL_DATASET" and last["upserted"] == 1


def test_differential_messages_posted_to_two_workers_merge(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    """Each worker merges onto the spooled state of the source (under a file lock), so
    differentials posted to different workers add up instead of replacing each other."""
    c1 = make_app_client(feeds_sync_interval_s=0.05)
    c2 = make_app_client(feeds_sync_interval_s=0.05)
    reg1: FeedRegistry = c1.app.state.services.feeds  # type: ignore[attr-defined]
    reg2: FeedRegistry = c2.app.state.services.feeds  # type: ignore[attr-defined]
    headers = {**PB, **auth(make_user(roles=("operator",), client=c1), client=c1)}

    def tu_message(eid: str, ts: int, *, differential: bool = True) -> bytes:
        m = pb.FeedMessage()
        m.header.gtfs_realtime_version = "2.0"
        m.header.timestamp = ts
        if differential:
            m.header.incrementality = pb.FeedHeader.DIFFERENTIAL
        e = m.entity.add()
        e.id = eid
        e.trip_update.trip.trip_id = f"trip-{eid}"
        return m.SerializeToString()

    url = "/api/v1/realtime/trip-updates?source=city"
    assert c1.post(url, content=tu_message("a", 10, differential=False), headers=headers).is_success
    assert c2.post(url, content=tu_message("b", 11), headers=headers).is_success
    assert c1.post(url, content=tu_message("c", 12), headers=headers).is_success

    def ids(reg: FeedRegistry) -> list[str]:
        return sorted(tu.entity_id for tu in reg.realtime.feeds["city"].trip_updates)

    # Each worker learns the other's differential through the spool's sync rounds: wait for
    # both (worker 1 may still lack "b" when worker 2 already has everything).
    deadline = time.monotonic() + 30  # liveness bound, not a speed claim
    while ids(reg1) != ["a", "b", "c"] or ids(reg2) != ["a", "b", "c"]:
        assert time.monotonic() < deadline, f"worker 1 has {ids(reg1)}, worker 2 {ids(reg2)}"
        time.sleep(0.05)


def test_entities_not_restated_expire(tmp_path: Any) -> None:
    from app.feeds.realtime import RealtimeHub

    now = [1_000.0]
    hub = RealtimeHub(spool_dir=tmp_path, max_age_s=60.0, clock=lambda: now[0])

    def message(eid: str, *, differential: bool) -> bytes:
        m = pb.FeedMessage()
        m.header.gtfs_realtime_version = "2.0"
        if differential:
            m.header.incrementality = pb.FeedHeader.DIFFERENTIAL
        e = m.entity.add()
        e.id = eid
        e.trip_update.trip.trip_id = eid
        return m.SerializeToString()

    hub.ingest_bytes(message("old", differential=False), "s")
    now[0] = 1_050.0
    hub.ingest_bytes(message("new", differential=True), "s")
    assert [tu.entity_id for tu in hub.feeds["s"].trip_updates] == ["old", "new"]
    now[0] = 1_070.0  # "old" was last stated 70 s ago, "new" 20 s ago
    assert [tu.entity_id for tu in hub.feeds["s"].trip_updates] == ["new"]
    assert hub.status()["trip_updates"] == 1
    # Another worker adopting the spool keeps each entity's own time, and expires alike.
    other = RealtimeHub(spool_dir=tmp_path, max_age_s=60.0, clock=lambda: now[0])
    assert other.sync_from_disk() == 1
    assert [tu.entity_id for tu in other.feeds["s"].trip_updates] == ["new"]
    now[0] = 1_200.0
    assert other.feeds["s"].trip_updates == () and hub.feeds["s"].trip_updates == ()
    # A spooled snapshot older than max_age is not adopted at all.
    assert RealtimeHub(spool_dir=tmp_path, max_age_s=1e-9).sync_from_disk() == 0


def test_hub_version_grows_with_every_change_of_the_overlays(tmp_path: Any) -> None:
    """The version keys the planner's cached query set-ups: it must grow with a message, a
    snapshot adopted from another worker and an expiry, and stay put otherwise."""
    from app.feeds.realtime import RealtimeHub

    now = [1_000.0]
    hub = RealtimeHub(spool_dir=tmp_path, max_age_s=60.0, clock=lambda: now[0])
    other = RealtimeHub(spool_dir=tmp_path, max_age_s=60.0, clock=lambda: now[0])
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    e = m.entity.add()
    e.id = "late"
    e.trip_update.trip.trip_id = "late"
    v0 = hub.version
    assert hub.version == v0 and hub.snapshots() == {} and hub.version == v0
    hub.ingest_bytes(m.SerializeToString(), "s")
    v1 = hub.version
    assert v1 > v0 and hub.version == v1  # reading does not change it
    before = other.version
    assert other.sync_from_disk() == 1 and other.version > before  # another worker's message
    now[0] = 1_070.0  # the entity was last stated 70 s ago: reading the version expires it
    assert hub.version > v1 and hub.feeds["s"].trip_updates == ()
