"""``GET /api/v1/plan`` and ``/api/v1/stops`` on the demo city (Muroran), end to end."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from routing.itinerary import decode_polyline
from tests.app.conftest import settings_for

DAY = "2020-06-01"  # a Monday inside the Muroran feed


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(Path(tmp_path_factory.mktemp("plan")) / "data", demo=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def stops(client: TestClient) -> dict[str, dict]:  # type: ignore[type-arg]
    gj = client.get("/api/v1/network/geojson").json()
    return {
        f["properties"]["stop_id"]: f for f in gj["features"] if f["properties"]["kind"] == "stop"
    }


def _ll(stop: dict) -> str:  # type: ignore[type-arg]
    lon, lat = stop["geometry"]["coordinates"]
    return f"{lat},{lon}"


def test_plan_between_stops_is_otp_shaped(client: TestClient, stops: dict) -> None:  # type: ignore[type-arg]
    r = client.get(
        "/api/v1/plan",
        params={"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "error" not in body
    its = body["plan"]["itineraries"]
    assert 1 <= len(its) <= 3
    start = body["plan"]["date"]
    for it in its:
        assert it["startTime"] >= start
        assert it["duration"] == (it["endTime"] - it["startTime"]) // 1000
        legs = it["legs"]
        assert legs[0]["from"]["stopId"] == "0016_A" or legs[0]["mode"] == "WALK"
        assert legs[-1]["to"]["stopId"] == "0082_C" or legs[-1]["mode"] == "WALK"
        transit = [leg for leg in legs if leg["transitLeg"]]
        assert transit
        for leg in transit:
            assert leg["mode"] == "BUS"
            for key in ("routeId", "tripId", "agencyName", "headsign", "intermediateStops"):
                assert key in leg
            assert leg["startTime"] < leg["endTime"]
            assert leg["from"]["departure"] == leg["startTime"]
            assert leg["to"]["arrival"] == leg["endTime"]
            pts = decode_polyline(leg["legGeometry"]["points"])
            assert len(pts) >= 2
            assert abs(pts[0][0] - leg["from"]["lat"]) < 1e-4
            assert abs(pts[-1][0] - leg["to"]["lat"]) < 1e-4
            assert leg["legGeometry"]["geojson"]["type"] == "LineString"
            assert leg["realTime"] is False and leg["departureDelay"] == 0
        # Legs chain in time.
        for a, b in itertools.pairwise(legs):
            assert a["endTime"] <= b["startTime"]
    # The first itinerary departs at the earliest arrival (sorted by arrival).
    ends = [it["endTime"] for it in its]
    assert ends == sorted(ends)


def test_walk_steps_are_documented_and_absent_legs_carry_none(
    client: TestClient,
    stops: dict,  # type: ignore[type-arg]
) -> None:
    """Turn-by-turn ``steps`` are in the schema's leg (OTP's shape): a walk leg's steps add up
    to its distance; a ride has no ``steps`` key, not ``"steps": null``."""
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert "steps" in schema["Leg"]["properties"]
    step = schema["WalkStepOut"]["properties"]
    for key in ("relativeDirection", "absoluteDirection", "streetName", "distance"):
        assert key in step
    r = client.get(
        "/api/v1/plan",
        params={
            "fromPlace": _ll(stops["0016_A"]),
            "toPlace": "0082_C",
            "date": DAY,
            "time": "08:00",
        },
    )
    assert r.status_code == 200, r.text
    legs = [leg for it in r.json()["plan"]["itineraries"] for leg in it["legs"]]
    walks = [leg for leg in legs if leg["mode"] == "WALK"]
    rides = [leg for leg in legs if leg["transitLeg"]]
    assert walks and rides
    for leg in walks:
        if leg["steps"]:  # a walk of no length (a change at one stop) has no step
            assert leg["steps"][0]["relativeDirection"] == "DEPART"
        total = sum(st["distance"] for st in leg["steps"])
        assert total == pytest.approx(leg["distance"], abs=1)
    assert any(leg["steps"] for leg in walks)
    assert all("steps" not in leg for leg in rides)


def test_plan_from_coordinates_and_japanese_readings(client: TestClient, stops: dict) -> None:  # type: ignore[type-arg]
    r = client.get(
        "/api/v1/plan",
        params={
            "fromPlace": _ll(stops["0016_A"]),
            "toPlace": _ll(stops["0082_C"]),
            "date": DAY,
            "time": "8:00am",
            "locale": "ja",
        },
    )
    body = r.json()
    assert r.status_code == 200 and body["plan"]["itineraries"], body
    leg = next(leg for leg in body["plan"]["itineraries"][0]["legs"] if leg["transitLeg"])
    assert leg["from"]["name"] == "ドック前"
    assert leg["from"].get("nameReading")  # GTFS-JP ja-Hrkt reading
    assert all("ぁ" <= c <= "ゟ" or c in "ー・ " for c in leg["from"]["nameReading"])


def test_arrive_by_arrives_in_time(client: TestClient) -> None:
    r = client.get(
        "/api/v1/plan",
        params={
            "fromPlace": "0016_A",
            "toPlace": "0082_C",
            "date": DAY,
            "time": "09:00",
            "arriveBy": "true",
        },
    )
    body = r.json()
    its = body["plan"]["itineraries"]
    assert its
    assert all(it["endTime"] <= body["plan"]["date"] for it in its)
    starts = [it["startTime"] for it in its]
    assert starts == sorted(starts, reverse=True)


def test_mode_filter_and_wheelchair(client: TestClient) -> None:
    base = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00"}
    r = client.get("/api/v1/plan", params={**base, "mode": "RAIL,WALK"})
    body = r.json()
    assert r.status_code == 200
    assert body["error"]["id"] == "NO_TRANSIT_CONNECTION"
    # Muroran's trips do not declare wheelchair access: none may be used.
    r = client.get("/api/v1/plan", params={**base, "wheelchair": "true"})
    assert all(
        not leg["transitLeg"] for it in r.json()["plan"]["itineraries"] for leg in it["legs"]
    )


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"fromPlace": "nope", "toPlace": "0082_C"}, 404, "unknown_stop"),
        ({"fromPlace": "0016_A", "toPlace": "91,10"}, 400, "invalid_place"),
        ({"fromPlace": "nan,nan", "toPlace": "0082_C"}, 400, "invalid_place"),
        ({"fromPlace": "1e5,3", "toPlace": "0082_C"}, 400, "invalid_place"),
        ({"fromPlace": "0016_A", "toPlace": "0082_C", "date": "2020-13-45"}, 400, "invalid_date"),
        ({"fromPlace": "0016_A", "toPlace": "0082_C", "time": "25:99"}, 400, "invalid_time"),
        ({"fromPlace": "0016_A", "toPlace": "0082_C", "time": "noon"}, 400, "invalid_time"),
        ({"fromPlace": "0016_A", "toPlace": "0082_C", "mode": "SPACESHIP"}, 400, "invalid_mode"),
        ({"fromPlace": "0016_A", "toPlace": "0082_C", "walkSpeed": "0"}, 422, "validation_error"),
        (
            {"fromPlace": "0016_A", "toPlace": "0082_C", "maxTransfers": "-1"},
            422,
            "validation_error",
        ),
        ({"fromPlace": "0016_A"}, 422, "validation_error"),
        ({"fromPlace": " ", "toPlace": "0082_C"}, 400, "invalid_place"),
    ],
)
def test_bad_input_is_a_clear_4xx(client: TestClient, params: dict, status: int, code: str) -> None:  # type: ignore[type-arg]
    r = client.get("/api/v1/plan", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("params", "error_id"),
    [
        ({"date": "2030-01-01"}, "OUTSIDE_SERVICE_PERIOD"),
        ({"fromPlace": "35.68,139.76"}, "LOCATION_NOT_ACCESSIBLE"),  # Tokyo: no stop nearby
        ({"toPlace": "35.68,139.76"}, "LOCATION_NOT_ACCESSIBLE"),
        (
            {"time": "23:59", "searchWindow": "0", "maxTransfers": "0", "toPlace": "0016_B"},
            None,
        ),
    ],
)
def test_unservable_queries_answer_an_otp_error(
    client: TestClient,
    params: dict,
    error_id: str | None,  # type: ignore[type-arg]
) -> None:
    q = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00", **params}
    r = client.get("/api/v1/plan", params=q)
    assert r.status_code == 200, r.text
    body = r.json()
    if error_id is None:
        assert "error" in body or body["plan"]["itineraries"]
        return
    assert body["error"]["id"] == error_id
    assert body["error"]["msg"]
    assert body["plan"]["itineraries"] == []


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01", "1899-12-31", "2200-01-01"])
def test_a_date_beyond_the_supported_range_is_invalid(client: TestClient, date: str) -> None:
    """Well formed but beyond 1900..2199 (#10: 9999-12-31 and 0001-01-01 were a 500,
    OverflowError): 400 invalid_date naming the range."""
    q = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": date, "time": "08:00"}
    r = client.get("/api/v1/plan", params=q)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_date" and "1900-01-01" in err["message"], err
    assert err["details"] == {"param": "date"}


@pytest.mark.parametrize("date", ["1900-01-01", "2199-12-31"])
def test_dates_at_the_ends_of_the_range_are_outside_the_service_period(
    client: TestClient, date: str
) -> None:
    q = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": date, "time": "23:30"}
    r = client.get("/api/v1/plan", params=q)
    assert r.status_code == 200, r.text
    assert r.json()["error"]["id"] == "OUTSIDE_SERVICE_PERIOD"


def test_stop_search_by_name_and_kana(client: TestClient) -> None:
    r = client.get("/api/v1/stops", params={"q": "室蘭駅"})
    names = [s["name"] for s in r.json()["stops"]]
    assert names and all("室蘭駅" in n for n in names)
    reading = r.json()["stops"][0]["nameReading"]
    assert reading
    # Searching the reading (in katakana too) finds the same stop.
    kata = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in reading)
    for q in (reading, kata):
        hits = client.get("/api/v1/stops", params={"q": q}).json()["stops"]
        assert r.json()["stops"][0]["stopId"] in [h["stopId"] for h in hits]
    assert client.get("/api/v1/stops", params={"q": "zzzz-no-such"}).json()["stops"] == []
    assert client.get("/api/v1/stops", params={"q": ""}).status_code == 422


def test_grouped_stop_search_lists_each_place_once_with_its_routes(client: TestClient) -> None:
    """A place picker's list (#13): the station once, not once per platform, with the names of
    the routes calling at any of its platforms."""
    flat = client.get("/api/v1/stops", params={"q": "ひがしむろらん"}).json()["stops"]
    assert [s["stopId"] for s in flat].count("0262_B") == 1 and len(flat) > 3
    r = client.get("/api/v1/stops", params={"q": "ひがしむろらん", "group": "true"})
    assert r.status_code == 200, r.text
    places = r.json()["stops"]
    ids = [s["stopId"] for s in places]
    assert len(ids) == len(set(ids))
    names = [s["name"] for s in places]
    assert names.count("東室蘭駅東口") == 1
    east = places[names.index("東室蘭駅東口")]
    assert east["stopId"] == "0262" and east["parentStation"] is None
    # Its platforms 0262_B and 0262_E are served; the routes are theirs.
    assert east["served"] and east["routes"] and all(isinstance(n, str) for n in east["routes"])
    flat_ids = {s["stopId"] for s in flat}
    assert not {"0262_B", "0262_E"} & set(ids) and {"0262_B", "0262_E"} <= flat_ids


def test_nearest_stops_by_h3(client: TestClient, stops: dict) -> None:  # type: ignore[type-arg]
    lon, lat = stops["0082_C"]["geometry"]["coordinates"]
    r = client.get("/api/v1/stops/nearest", params={"lat": lat, "lon": lon, "radius": 300})
    got = r.json()["stops"]
    assert "0082_C" in [s["stopId"] for s in got if s["distance"] < 1]
    d = [s["distance"] for s in got]
    assert d == sorted(d) and d[-1] <= 300
    # Brute force over every stop agrees on the set within the radius.
    import math

    def hav(a: float, b: float, c: float, e: float) -> float:
        p1, p2 = math.radians(a), math.radians(c)
        h = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(e - b) / 2) ** 2
        )
        return 2 * 6371008.8 * math.asin(math.sqrt(h))

    brute = sorted(
        sid
        for sid, f in stops.items()
        if hav(lat, lon, f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0]) <= 300
    )
    r = client.get(
        "/api/v1/stops/nearest", params={"lat": lat, "lon": lon, "radius": 300, "limit": 100}
    )
    assert set(brute) <= {s["stopId"] for s in r.json()["stops"]}
    assert client.get("/api/v1/stops/nearest", params={"lat": 35.68, "lon": 139.76}).json() == {
        "stops": []
    }
    assert client.get("/api/v1/stops/nearest", params={"lat": 95, "lon": 0}).status_code == 422


def test_departures_board(client: TestClient) -> None:
    r = client.get(
        "/api/v1/stops/0082_C/departures", params={"date": DAY, "time": "08:00", "limit": 10}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    deps = body["departures"]
    assert deps and body["stop"]["stopId"] == "0082_C"
    times = [d["departure"] for d in deps]
    assert times == sorted(times)
    t0 = int(dt.datetime(2020, 6, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp())
    assert all(t0 * 1000 <= t <= (t0 + 3 * 3600) * 1000 for t in times)
    assert all(d["departureDelay"] == 0 and not d["cancelled"] for d in deps)
    assert client.get("/api/v1/stops/nope/departures").status_code == 404
    r = client.get("/api/v1/stops/0082_C/departures", params={"time": "99:00"})
    assert r.status_code == 400


def test_realtime_delay_reaches_departures_and_plan(
    make_app_client: Any, make_user: Any, auth: Any
) -> None:
    """A TripUpdate POSTed by an operator shows on the departures board and in /plan."""
    import time as _time

    import numpy as np
    from google.transit import gtfs_realtime_pb2 as pb

    c = make_app_client(demo=True)
    reg = c.app.state.services.feeds
    net = reg.network
    tt = net.timetable
    seq = getattr(tt, "st_stop_sequence", None)
    if seq is None or len(seq) != tt.n_stop_times:
        seq = net.st_stop_sequence
    t = int(np.flatnonzero(tt.active_trips(net.service_date) & (np.diff(tt.trip_st_ptr) > 6))[0])
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(_time.time())
    e = m.entity.add()
    e.id = "late-bus"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    e.trip_update.trip.start_date = net.service_date.strftime("%Y%m%d")
    stu = e.trip_update.stop_time_update.add()
    stu.stop_sequence = int(seq[tt.trip_st_ptr[t] + 2])
    stu.departure.delay = 420
    body = m.SerializeToString()
    PB = {"Content-Type": "application/x-protobuf"}
    operator = make_user(roles=("operator",), client=c)
    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **auth(operator, c)})
    assert r.status_code == 200, r.text
    day = net.service_date.isoformat()
    p = int(tt.trip_pattern[t])
    stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
    a = int(tt.trip_st_ptr[t])
    board, alight = str(tt.stop_ids[stops[3]]), str(tt.stop_ids[stops[-1]])
    sched = int(tt.st_departure[a + 3])
    hhmm = f"{(sched - 60) // 3600:02d}:{(sched - 60) % 3600 // 60:02d}"
    r = c.get(f"/api/v1/stops/{board}/departures", params={"date": day, "time": hhmm, "limit": 50})
    row = next(d for d in r.json()["departures"] if d["tripId"] == str(tt.trip_ids[t]))
    assert row["realTime"] is True and row["departureDelay"] == 420
    assert row["departure"] - row["scheduledDeparture"] == 420_000
    r = c.get(
        "/api/v1/plan",
        params={"fromPlace": board, "toPlace": alight, "date": day, "time": hhmm,
                "numItineraries": 5},
    )  # fmt: skip
    legs = [
        leg
        for it in r.json()["plan"]["itineraries"]
        for leg in it["legs"]
        if leg.get("tripId") == str(tt.trip_ids[t])
    ]
    assert legs and all(leg["realTime"] and leg["departureDelay"] == 420 for leg in legs)


@pytest.mark.parametrize(
    "params",
    [
        {"fromPlace": "0016_A", "toPlace": "0016_A"},
        {"fromPlace": "42.34,140.95", "toPlace": "42.34,140.95"},
        {"time": "47:59"},
        {"time": "00:00", "arriveBy": "true"},
        {"maxWalkDistance": "0", "fromPlace": "42.3401,140.953"},
        {"numItineraries": "20", "searchWindow": "21600"},
        {"wheelchair": "true", "arriveBy": "true"},
        {"mode": "WALK"},
        {"mode": "BUS", "maxTransfers": "0", "minTransferTime": "3600"},
        {"walkSpeed": "5", "maxWalkDistance": "20000"},
        {"fromPlace": "Home::42.3401,140.953", "toPlace": "muroran:0082_C"},
        {"date": "06-01-2020"},
        {"locale": "en"},
    ],
)
def test_edge_queries_never_fail(client: TestClient, params: dict) -> None:  # type: ignore[type-arg]
    q = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00", **params}
    r = client.get("/api/v1/plan", params=q)
    assert r.status_code < 500, r.text
    body = r.json()
    if r.status_code == 200:
        assert body["plan"]["itineraries"] or body["error"]["id"]
        for it in body["plan"]["itineraries"]:
            assert it["endTime"] >= it["startTime"]


def test_itineraries_carry_co2_and_the_criterion_keeps_the_cleanest(client: TestClient) -> None:
    """Every itinerary reports OTP 2's ``emissionsPerPerson.co2`` (grams, sum of its legs);
    with ``optimizeCo2`` the cleanest riding itinerary is among the answers."""
    base = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00"}
    plain = client.get("/api/v1/plan", params=base).json()["plan"]["itineraries"]
    r = client.get("/api/v1/plan", params={**base, "optimizeCo2": "true", "numItineraries": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["requestParameters"]["optimizeCo2"] is True
    green = body["plan"]["itineraries"]
    assert len(green) == 1
    for it in plain + green:
        legs = it["legs"]
        assert it["emissionsPerPerson"]["co2"] == sum(
            leg["emissionsPerPerson"]["co2"] for leg in legs if leg["transitLeg"]
        )
        assert it["emissionsPerPerson"]["unit"] == "g"
        # The same door-to-door trip by car (130 g/km, MLIT) and the saving against it.
        assert it["carCo2"]["unit"] == "g" and it["carCo2"]["distance"] > 0
        assert it["carCo2"]["co2"] == round(0.130 * it["carCo2"]["distance"])
        assert it["co2Saving"]["co2"] == it["carCo2"]["co2"] - it["emissionsPerPerson"]["co2"]
        for leg in legs:
            assert leg["emissionsPerPerson"]["unit"] == "g"
            if leg["transitLeg"]:
                # Muroran is all bus (MLIT: 57 g per passenger-km); legs follow stop to stop.
                assert leg["emissionsPerPerson"]["co2"] > 0
                assert leg["emissionsPerPerson"]["co2"] <= 0.057 * leg["distance"] * 1.05 + 1
            else:
                assert leg["emissionsPerPerson"]["co2"] == 0
    riding = [it for it in plain if any(leg["transitLeg"] for leg in it["legs"])]
    assert green[0]["emissionsPerPerson"]["co2"] <= min(
        it["emissionsPerPerson"]["co2"] for it in riding
    )
    r = client.get("/api/v1/plan", params={**base, "optimizeCo2": "maybe"})
    assert r.status_code == 422


def test_osm_path_gives_the_planner_street_walking(shared_data: Path, tmp_path: Path) -> None:
    """With ``settings.osm_path`` the plan API walks on the OSM graph (straight lines only as
    the fallback) and times transfers on it; an unreadable extract leaves the straight-line
    model, never an error."""
    from types import SimpleNamespace

    import gtfs
    from app.api.plan import _build
    from routing.planner import FallbackWalk
    from routing.street.osm_access import OsmWalkAccess
    from routing.street.straight_line import StraightLineAccess

    tt = gtfs.compile_timetable(gtfs.read_feed(shared_data / "gtfs" / "us_terre_haute.zip"))
    network = SimpleNamespace(timetable=tt, versions=[])
    pbf = shared_data / "osm" / "us_terre_haute.osm.pbf"
    services = SimpleNamespace(settings=SimpleNamespace(osm_path=pbf), feeds=None)
    planner = _build(services, network).planner
    walk = planner.walk
    assert isinstance(walk, FallbackWalk) and isinstance(walk.primary, OsmWalkAccess)
    # Transfers between stops were re-timed on the streets (never shorter, some longer).
    assert planner.tt is not tt
    assert (planner.tt.transfer_s >= tt.transfer_s).all()
    assert (planner.tt.transfer_s > tt.transfer_s).any()
    assert (planner.data.forward.transfer_s.sum()) > 0
    # A walk between two stops follows streets: longer than the crow flies, many vertices.
    a, b = 0, 1
    _, meters, coords = walk.walk(
        float(tt.stop_lat[a]), float(tt.stop_lon[a]), float(tt.stop_lat[b]), float(tt.stop_lon[b])
    )
    crow = StraightLineAccess(tt.stop_lat, tt.stop_lon)
    _, crow_m, crow_coords = crow.walk(
        float(tt.stop_lat[a]), float(tt.stop_lon[a]), float(tt.stop_lat[b]), float(tt.stop_lon[b])
    )
    assert len(coords) > len(crow_coords) and meters != crow_m
    bad = tmp_path / "broken.osm.pbf"
    bad.write_bytes(b"not a pbf")
    services = SimpleNamespace(settings=SimpleNamespace(osm_path=bad), feeds=None)
    assert isinstance(_build(services, network).planner.walk, StraightLineAccess)


def test_departures_outside_the_feed_say_why(client: TestClient) -> None:
    r = client.get("/api/v1/stops/0082_C/departures", params={"date": "2030-01-01"})
    assert r.status_code == 200
    body = r.json()
    assert body["departures"] == []
    assert body["error"]["id"] == "OUTSIDE_SERVICE_PERIOD" and body["error"]["msg"]
    ok = client.get("/api/v1/stops/0082_C/departures", params={"date": DAY, "time": "08:00"})
    assert ok.json()["departures"] and "error" not in ok.json()


# --- realtime of yesterday's and tomorrow's runs ------------------------------------------------
_NIGHT_FEED: dict[str, str] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nN,Night,https://n.example,Asia/Tokyo\n",
    # 5-6 km apart: walking never beats the bus.
    "stops.txt": (
        "stop_id,stop_name,stop_lat,stop_lon\n"
        "N1,North,35.0000,139.0000\nN2,Middle,35.0500,139.0000\nN3,South,35.1000,139.0000\n"
    ),
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nNR,N,N,Night,3\n",
    "trips.txt": "route_id,service_id,trip_id\nNR,ALL,NIGHT\n",
    # Every night: N1 23:40, N2 00:02 (24:02), N3 00:15 (24:15).
    "stop_times.txt": (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "NIGHT,23:40:00,23:40:00,N1,1\nNIGHT,24:02:00,24:02:00,N2,2\n"
        "NIGHT,24:15:00,24:15:00,N3,3\n"
    ),
    "calendar.txt": (
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        "ALL,1,1,1,1,1,1,1,20300101,20301231\n"
    ),
}


def _night_trip_update(
    start_date: str, *, delay_s: int = 0, skip_seq: int = 0, delay_seq: int = 3
) -> bytes:
    """A TripUpdate of the night run of ``start_date`` (YYYYMMDD): ``delay_s`` late from stop
    ``delay_seq`` on, or skipping stop ``skip_seq``."""
    from google.transit import gtfs_realtime_pb2 as pb

    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    e = m.entity.add()
    e.id = f"night-{start_date}"
    e.trip_update.trip.trip_id = "NIGHT"
    e.trip_update.trip.start_date = start_date
    if delay_s:
        stu = e.trip_update.stop_time_update.add()
        stu.stop_sequence = delay_seq
        stu.arrival.delay = delay_s
        if delay_seq < 3:  # the last stop has no departure
            stu.departure.delay = delay_s
    if skip_seq:
        stu = e.trip_update.stop_time_update.add()
        stu.stop_sequence = skip_seq
        stu.schedule_relationship = pb.TripUpdate.StopTimeUpdate.SKIPPED
    return bytes(m.SerializeToString())


def _night_network(
    make_app_client: Any, make_user: Any, auth: Any, tmp_path: Path
) -> tuple[TestClient, dict[str, str]]:
    """An app serving the night feed (published over the API) and an operator's headers."""
    from tests.gtfs.conftest import write_zip

    c = make_app_client()
    operator = make_user(roles=("operator",), client=c)
    op: dict[str, str] = auth(operator, c)
    zpath = write_zip(tmp_path / "night.zip", dict(_NIGHT_FEED))
    with zpath.open("rb") as f:
        r = c.post(
            "/api/v1/feeds/night/versions",
            files={"file": ("night.zip", f, "application/zip")},
            headers=op,
        )
    assert r.status_code == 201, r.text
    r = c.post(f"/api/v1/feeds/night/versions/{r.json()['id']}/publish", headers=op)
    assert r.status_code == 200, r.text
    return c, op


def test_plan_sees_yesterdays_run_past_midnight_in_realtime(
    make_app_client: Any, make_user: Any, auth: Any, tmp_path: Path
) -> None:
    """Wednesday 00:00 from N2 to N3 rides Tuesday's night run (its stop times past midnight):
    a delay or a skip announced for Tuesday's run must change Wednesday's early answer."""
    c, op = _night_network(make_app_client, make_user, auth, tmp_path)
    params = {"fromPlace": "N2", "toPlace": "N3", "date": "2030-01-02", "time": "00:00"}

    def first_ride() -> dict[str, Any]:
        r = c.get("/api/v1/plan", params={**params, "numItineraries": 1})
        assert r.status_code == 200, r.text
        its = r.json()["plan"]["itineraries"]
        assert its, r.json()
        return next(leg for leg in its[0]["legs"] if leg["transitLeg"])

    midnight = int(dt.datetime(2030, 1, 2, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()) * 1000
    leg = first_ride()
    assert leg["serviceDate"] == "2030-01-01" and not leg["realTime"]
    assert leg["endTime"] - midnight == 15 * 60_000
    PB = {"Content-Type": "application/x-protobuf"}
    # Tuesday's run is 10 minutes late at N3: Wednesday's 00:00 answer arrives at 00:25.
    body = _night_trip_update("20300101", delay_s=600)
    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **op})
    assert r.status_code == 200, r.text
    leg = first_ride()
    assert leg["serviceDate"] == "2030-01-01" and leg["realTime"]
    assert leg["endTime"] - midnight == 25 * 60_000 and leg["arrivalDelay"] == 600
    # Arrive-by 00:20 on Wednesday: the late run no longer makes it; Wednesday's own run (N2 at
    # Thursday 00:02) is too late as well, so nothing leaves after Tuesday's 00:02 in time.
    r = c.get("/api/v1/plan", params={**params, "time": "00:20", "arriveBy": "true"})
    assert r.status_code == 200, r.text
    its = r.json()["plan"]["itineraries"]
    assert not [leg for it in its for leg in it["legs"] if leg["transitLeg"]], its
    # Tuesday's run skips N2 instead: Wednesday 00:00 rides Wednesday's own run (Thursday 00:02).
    body = _night_trip_update("20300101", skip_seq=2)
    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **op})
    assert r.status_code == 200, r.text
    leg = first_ride()
    assert leg["serviceDate"] == "2030-01-02"
    assert leg["startTime"] - midnight == (24 * 3600 + 120) * 1000


def _setup_stats() -> dict[str, int]:
    """The query set-up cache of the planner serving the last query."""
    from app.api import plan as plan_api

    cur = plan_api._current
    assert cur is not None
    return cur.planner.data.setup_cache.stats()


def test_plan_reuses_its_realtime_set_up_until_a_message_changes_it(
    make_app_client: Any, make_user: Any, auth: Any, tmp_path: Path
) -> None:
    """Repeated /plan queries share one query set-up; a realtime message invalidates it."""
    c, op = _night_network(make_app_client, make_user, auth, tmp_path)
    params = {"fromPlace": "N2", "toPlace": "N3", "date": "2030-01-02", "time": "00:00"}
    midnight = int(dt.datetime(2030, 1, 2, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()) * 1000

    def arrival(**extra: str) -> int:
        r = c.get("/api/v1/plan", params={**params, "numItineraries": 1, **extra})
        assert r.status_code == 200, r.text
        its = r.json()["plan"]["itineraries"]
        return int(its[0]["endTime"]) - midnight

    assert arrival() == 15 * 60_000
    first = _setup_stats()
    assert first["misses"] >= 1
    # Same query (and another time of the same day): the set-up is reused, nothing rebuilt.
    assert arrival() == 15 * 60_000
    assert arrival(time="00:01") == 15 * 60_000
    second = _setup_stats()
    assert second["misses"] == first["misses"] and second["hits"] >= first["hits"] + 2
    # Tuesday's run is 10 minutes late: the next query builds a new set-up and sees it.
    body = _night_trip_update("20300101", delay_s=600)
    PB = {"Content-Type": "application/x-protobuf"}
    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **op})
    assert r.status_code == 200, r.text
    assert arrival() == 25 * 60_000
    third = _setup_stats()
    assert third["misses"] > second["misses"]
    # The previous version's set-up is gone, the new one is reused.
    assert third["entries"] == 1
    assert arrival() == 25 * 60_000
    assert _setup_stats()["misses"] == third["misses"]


def test_departures_board_shows_yesterdays_late_run_after_midnight(
    make_app_client: Any, make_user: Any, auth: Any, tmp_path: Path
) -> None:
    """Wednesday's early board at N2 lists Tuesday's night run (24:02): its realtime is in
    Tuesday's overlay, not in Wednesday's."""
    c, op = _night_network(make_app_client, make_user, auth, tmp_path)
    midnight = int(dt.datetime(2030, 1, 2, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()) * 1000
    params = {"date": "2030-01-02", "time": "00:00", "window": 3600}

    def board() -> list[dict[str, Any]]:
        r = c.get("/api/v1/stops/N2/departures", params=params)
        assert r.status_code == 200, r.text
        rows: list[dict[str, Any]] = r.json()["departures"]
        return rows

    (row,) = board()
    assert row["serviceDate"] == "2030-01-01" and not row["realTime"]
    assert row["departure"] - midnight == 2 * 60_000 and row["departureDelay"] == 0
    PB = {"Content-Type": "application/x-protobuf"}
    body = _night_trip_update("20300101", delay_s=420, delay_seq=2)
    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **op})
    assert r.status_code == 200, r.text
    (row,) = board()
    assert row["serviceDate"] == "2030-01-01" and row["realTime"]
    assert row["departure"] - midnight == 9 * 60_000 and row["departureDelay"] == 420
    assert row["scheduledDeparture"] - midnight == 2 * 60_000 and not row["cancelled"]
    # Tuesday's run skipping N2 shows as cancelled there; Wednesday's own run is unchanged.
    body = _night_trip_update("20300101", skip_seq=2)
    r = c.post("/api/v1/realtime/trip-updates", content=body, headers={**PB, **op})
    assert r.status_code == 200, r.text
    (row,) = board()
    assert row["serviceDate"] == "2030-01-01" and row["cancelled"]
    params["time"] = "23:30"
    (row,) = board()
    assert row["serviceDate"] == "2030-01-02" and not row["realTime"] and not row["cancelled"]


class _Hub:
    """A realtime hub stand-in: its version moves by ``step`` on every read (or fails)."""

    def __init__(self, step: int, fail: bool = False) -> None:
        self.n, self.step, self.fail = 7, step, fail

    @property
    def version(self) -> int:
        if self.fail:
            raise RuntimeError("hub down")
        self.n += self.step
        return self.n


class _Registry:
    def __init__(self, hub: _Hub) -> None:
        self.realtime = hub

    def realtime_state(self, day: dt.date) -> Any:
        return SimpleNamespace(service_date=day)


@pytest.mark.parametrize(
    ("hub", "version"),
    [(_Hub(0), 7), (_Hub(1), None), (_Hub(0, fail=True), None)],
    ids=["stable", "message-while-reading", "failing-hub"],
)
def test_plan_reads_the_realtime_version_of_exactly_its_overlays(
    hub: _Hub, version: int | None
) -> None:
    """A version is given to the planner (keying its cached set-up) only when it did not move
    while the three overlays were read."""
    from app.api.plan import realtime_days_versioned

    day = dt.date(2030, 1, 2)
    rts, got = realtime_days_versioned(SimpleNamespace(feeds=_Registry(hub)), day)
    assert [rt.service_date for rt in rts] == [
        day - dt.timedelta(days=1),
        day,
        day + dt.timedelta(days=1),
    ]
    assert got == version
    assert realtime_days_versioned(SimpleNamespace(feeds=None), day) == ([], None)


def test_healthier_minutes_put_more_walking_first(client: TestClient, stops: dict) -> None:  # type: ignore[type-arg]
    """``healthierMinutes=N``: the itinerary walking the most within N minutes of the fastest
    arrival comes first, marked with what it costs and gives; the fastest is still offered."""
    base = {
        "fromPlace": _ll(stops["0016_A"]),
        "toPlace": _ll(stops["0082_C"]),
        "date": DAY,
        "time": "08:00",
    }
    plain = client.get("/api/v1/plan", params=base).json()
    assert plain["requestParameters"]["healthierMinutes"] == 0
    fastest = plain["plan"]["itineraries"][0]
    assert all("healthier" not in it for it in plain["plan"]["itineraries"])
    r = client.get("/api/v1/plan", params={**base, "healthierMinutes": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["requestParameters"]["healthierMinutes"] == 10
    its = body["plan"]["itineraries"]
    first = its[0]
    gain = first["healthier"]
    assert gain["extraWalkTime"] > 0 and gain["extraTime"] <= 600
    assert first["walkTime"] == fastest["walkTime"] + gain["extraWalkTime"]
    assert first["endTime"] == fastest["endTime"] + gain["extraTime"] * 1000
    assert [it for it in its[1:] if "healthier" in it] == []
    assert fastest["endTime"] in [it["endTime"] for it in its[1:]]
    for bad in ("31", "-1", "x"):
        r = client.get("/api/v1/plan", params={**base, "healthierMinutes": bad})
        assert r.status_code == 422, r.text


def test_two_regions_plan_apart_and_a_cross_region_plan_is_a_4xx(
    tmp_path: Path, shared_data: Path
) -> None:
    """Muroran (the demo) and Kumagaya published as two regions (#13): each /plan runs in its
    own city's network, never mixing them; places in both cities answer 422; Muroran's stop
    ids and its network are unchanged by Kumagaya's publish."""
    settings = settings_for(tmp_path / "data", demo=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        reg = c.app.state.services.feeds  # type: ignore[attr-defined]
        muroran = reg.network
        before = c.get("/api/v1/stops/0016_A").json()
        v = reg.upload_file("kumagaya", shared_data / "gtfs" / "jp_kumagaya_yuyubus.zip")
        assert v.region == "kumagaya", v.summary
        reg.publish("kumagaya", v.id)
        assert reg.networks["muroran"] is muroran and reg.network is muroran  # the larger
        assert c.get("/api/v1/stops/0016_A").json() == before
        info = c.get("/api/v1/network").json()
        assert [n["network"] for n in info["networks"]] == ["kumagaya", "muroran"]
        assert info["network"] == "muroran" and info["missing"] == []
        assert {f["feed_id"]: f["network"] for f in info["feeds"]} == {
            "muroran": "muroran",
            "kumagaya": "kumagaya",
        }
        gj = c.get("/api/v1/network/geojson", params={"feed": "kumagaya"}).json()
        kuma = {
            f["properties"]["stop_id"]: f
            for f in gj["features"]
            if f["properties"]["kind"] == "stop"
        }
        assert kuma and all(f["geometry"]["coordinates"][1] < 37 for f in kuma.values())
        first, last = sorted(kuma)[0], sorted(kuma)[-1]

        r = c.get(
            "/api/v1/plan",
            params={"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00"},
        )
        assert r.status_code == 200 and r.json()["requestParameters"]["city"] == "muroran"
        assert r.json()["plan"]["itineraries"], r.text
        r = c.get(
            "/api/v1/plan",
            params={
                "fromPlace": _ll(kuma[first]),
                "toPlace": last,
                "date": "2024-06-03",
                "time": "09:00",
                "maxWalkDistance": 20000,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["requestParameters"]["city"] == "kumagaya"
        legs = [leg for it in body["plan"]["itineraries"] for leg in it["legs"]]
        assert legs, body.get("error")
        for leg in legs:
            for end in (leg["from"], leg["to"]):
                assert end.get("stopId") is None or end["stopId"] in kuma, end
                assert 35 < end["lat"] < 37  # Saitama, never Hokkaido

        cross = c.get("/api/v1/plan", params={"fromPlace": "0016_A", "toPlace": _ll(kuma[first])})
        assert cross.status_code == 422, cross.text
        err = cross.json()["error"]
        assert err["code"] == "different_networks"
        assert err["details"]["networks"] == ["muroran", "kumagaya"]
        cross = c.get("/api/v1/plan", params={"fromPlace": last, "toPlace": "0082_C"})
        assert cross.status_code == 422 and cross.json()["error"]["code"] == "different_networks"
        unknown = c.get(
            "/api/v1/plan", params={"fromPlace": "0016_A", "toPlace": "0082_C", "city": "x"}
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_network"
        # An explicit city plans there: Kumagaya's stop is not a Muroran stop.
        r = c.get(
            "/api/v1/plan", params={"fromPlace": "0016_A", "toPlace": last, "city": "muroran"}
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_stop"

        near = c.get(
            "/api/v1/stops/nearest",
            params=dict(zip(("lat", "lon"), map(float, _ll(kuma[first]).split(",")), strict=True)),
        )
        assert near.status_code == 200 and near.json()["stops"][0]["stopId"] == first
        found = c.get("/api/v1/stops", params={"q": "駅", "feed": "kumagaya"}).json()["stops"]
        assert found and all(s["stopId"] in kuma for s in found)
