"""On-demand rides over HTTP: a dispatcher sets up a zone and a van, residents quote and book,
see only their own rides, cancel; drivers report events; bad input answers the error shape."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.api.rides import RideRequestIn
from app.db import create_db_engine
from app.models.dispatch import RideRecord, ZoneItemRecord, ZoneStateRecord
from tests.app.conftest import ZONE, A, B, both_backends

pytestmark = both_backends


@pytest.fixture(autouse=True)
def forget_saved_dispatch(database_url: str) -> Iterator[None]:
    """The session's PostgreSQL database outlives a test, and every app start restores the
    saved zones and rides: forget them after each test so tests stay independent."""
    yield
    if database_url:
        engine = create_db_engine(database_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.delete(RideRecord))
                conn.execute(sa.delete(ZoneItemRecord))
                conn.execute(sa.delete(ZoneStateRecord))
        finally:
            engine.dispose()


def _setup(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> dict[str, str]:
    boss = make_user(roles=("dispatcher",))
    h = auth(boss)
    r = app_client.post("/api/v1/fleet/zones", json=ZONE, headers=h)
    assert r.status_code == 201, r.text
    r = app_client.post(
        "/api/v1/fleet/vehicles",
        json={
            "vehicle_id": "van-1",
            "zone_id": "muroran",
            "vehicle_type": "van",
            "depot": A,
            "shift_end": time.time() + 8 * 3600,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    return h


def _error(r: Any, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    if code:
        assert body["error"]["code"] == code


def test_resident_quotes_books_reads_and_cancels(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = _setup(app_client, make_user, auth)
    alice, bob = make_user(), make_user()
    ha, hb = auth(alice), auth(bob)
    q = app_client.post("/api/v1/rides/quote", json={"origin": A, "destination": B}, headers=ha)
    assert q.status_code == 200, q.text
    quote = q.json()
    assert quote["vehicle_id"] == "van-1"
    assert quote["pickup_window"][0] <= quote["eta_pickup"] <= quote["pickup_window"][1]
    # Bob cannot book Alice's quote.
    _error(app_client.post("/api/v1/rides", json={"quote_id": quote["quote_id"]}, headers=hb), 404)
    r = app_client.post("/api/v1/rides", json={"quote_id": quote["quote_id"]}, headers=ha)
    assert r.status_code == 201, r.text
    ride = r.json()
    assert ride["status"] == "assigned"
    rid = ride["ride_id"]
    assert app_client.get(f"/api/v1/rides/{rid}", headers=ha).json()["ride_id"] == rid
    _error(app_client.get(f"/api/v1/rides/{rid}", headers=hb), 404)
    _error(app_client.delete(f"/api/v1/rides/{rid}", headers=hb), 404)
    assert [x["ride_id"] for x in app_client.get("/api/v1/rides", headers=ha).json()["rides"]] == [
        rid
    ]
    assert app_client.get("/api/v1/rides", headers=hb).json()["rides"] == []
    # The dispatcher sees the plan with ETAs.
    v = app_client.get("/api/v1/fleet/vehicles/van-1", headers=boss).json()
    assert [s["kind"] for s in v["plan"]] == ["pickup", "dropoff"]
    # A resident is no dispatcher.
    _error(app_client.get("/api/v1/fleet/vehicles", headers=ha), 403, "forbidden")
    r = app_client.delete(f"/api/v1/rides/{rid}", headers=ha)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    _error(app_client.delete(f"/api/v1/rides/{rid}", headers=ha), 409, "not_cancellable")


def test_one_step_booking_and_driver_events(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = _setup(app_client, make_user, auth)
    ha = auth(make_user())
    r = app_client.post(
        "/api/v1/rides", json={"request": {"origin": A, "destination": B, "seats": 2}}, headers=ha
    )
    assert r.status_code == 201, r.text
    rid = r.json()["ride_id"]
    ev = "/api/v1/fleet/vehicles/van-1/events"
    assert app_client.post(ev, json={"type": "position", **A}, headers=boss).status_code == 200
    assert (
        app_client.post(ev, json={"type": "boarded", "ride_id": rid}, headers=boss).status_code
        == 200
    )
    assert app_client.get(f"/api/v1/rides/{rid}", headers=ha).json()["status"] == "onboard"
    _error(app_client.delete(f"/api/v1/rides/{rid}", headers=ha), 409, "not_cancellable")
    r = app_client.post(ev, json={"type": "alighted", "ride_id": rid}, headers=boss)
    assert r.status_code == 200 and r.json()["plan"] == []
    assert app_client.get(f"/api/v1/rides/{rid}", headers=ha).json()["status"] == "completed"
    _error(app_client.post(ev, json={"type": "alighted", "ride_id": rid}, headers=boss), 409)
    _error(app_client.post(ev, json={"type": "position"}, headers=boss), 422)
    _error(
        app_client.post(
            "/api/v1/fleet/vehicles/ghost/events", json={"type": "position", **A}, headers=boss
        ),
        404,
    )


def test_driver_reports_arrival_and_no_show_rules(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = _setup(app_client, make_user, auth)
    ha = auth(make_user())
    ride = {"origin": B, "destination": A, "earliest_pickup": time.time() + 1800}
    r = app_client.post("/api/v1/rides", json={"request": ride}, headers=ha)
    assert r.status_code == 201, r.text
    rid, opens = r.json()["ride_id"], r.json()["pickup_window"][0]
    ev = "/api/v1/fleet/vehicles/van-1/events"
    # Still at the depot (A), kilometres from the pick-up (B): no no-show yet.
    r = app_client.post(
        ev, json={"type": "no_show", "ride_id": rid, "t": opens + 600}, headers=boss
    )
    _error(r, 409, "no_show_too_far")
    r = app_client.post(ev, json={"type": "arrived", "ride_id": "other"}, headers=boss)
    _error(r, 409, "not_next_stop")
    r = app_client.post(ev, json={"type": "arrived", "ride_id": rid, "t": opens}, headers=boss)
    assert r.status_code == 200, r.text
    assert r.json()["position"] == [B["lat"], B["lon"]]
    assert app_client.get(f"/api/v1/rides/{rid}", headers=ha).json()["arrived_at"] == opens
    r = app_client.post(ev, json={"type": "no_show", "ride_id": rid, "t": opens + 30}, headers=boss)
    _error(r, 409, "no_show_too_early")
    r = app_client.post(
        ev, json={"type": "no_show", "ride_id": rid, "t": opens + 130}, headers=boss
    )
    assert r.status_code == 200, r.text
    assert app_client.get(f"/api/v1/rides/{rid}", headers=ha).json()["status"] == "no_show"


def test_rejections_and_bad_input(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = _setup(app_client, make_user, auth)
    ha = auth(make_user())
    far = {"lat": 35.0, "lon": 139.0}
    _error(
        app_client.post("/api/v1/rides/quote", json={"origin": far, "destination": B}, headers=ha),
        409,
        "outside_zone",
    )
    _error(
        app_client.post("/api/v1/rides/quote", json={"origin": A, "destination": A}, headers=ha),
        409,
        "same_origin_destination",
    )
    _error(
        app_client.post(
            "/api/v1/rides/quote", json={"origin": A, "destination": B, "seats": 9}, headers=ha
        ),
        409,
        "party_too_large",
    )
    _error(
        app_client.post(
            "/api/v1/rides/quote",
            json={"origin": A, "destination": B, "earliest_pickup": time.time() - 7200},
            headers=ha,
        ),
        409,
        "pickup_in_past",
    )
    _error(
        app_client.post(
            "/api/v1/rides/quote",
            json={"origin": {"lat": 99, "lon": 0}, "destination": B},
            headers=ha,
        ),
        422,
        "validation_error",
    )
    _error(
        app_client.post(
            "/api/v1/rides/quote", json={"origin": A, "destination": B, "seats": 0}, headers=ha
        ),
        422,
    )
    _error(app_client.post("/api/v1/rides/quote", json={"origin": A}, headers=ha), 422)
    _error(
        app_client.post(
            "/api/v1/rides/quote",
            content=b"{nope",
            headers={**ha, "Content-Type": "application/json"},
        ),
        400,
        "malformed_json",
    )
    _error(app_client.post("/api/v1/rides", json={}, headers=ha), 422)
    _error(
        app_client.post("/api/v1/rides", json={"quote_id": "nope"}, headers=ha),
        404,
        "quote_unknown",
    )
    _error(app_client.get("/api/v1/rides/nope", headers=ha), 404)
    _error(app_client.post("/api/v1/rides/quote", json={"origin": A, "destination": B}), 401)
    _error(
        app_client.post(
            "/api/v1/fleet/zones",
            json={**ZONE, "zone_id": "x", "geometry": {"type": "Point", "coordinates": [1, 2]}},
            headers=boss,
        ),
        422,
        "invalid_zone",
    )
    _error(app_client.post("/api/v1/fleet/zones", json=ZONE, headers=boss), 409, "zone_exists")
    _error(
        app_client.post(
            "/api/v1/fleet/vehicles",
            json={
                "vehicle_id": "v2",
                "zone_id": "nope",
                "depot": A,
                "shift_end": time.time() + 3600,
            },
            headers=boss,
        ),
        404,
        "unknown_zone",
    )
    _error(
        app_client.post(
            "/api/v1/fleet/vehicles",
            json={"vehicle_id": "v2", "zone_id": "muroran", "depot": A, "shift_end": 0},
            headers=boss,
        ),
        422,
        "invalid_shift",
    )


def test_wheelchair_user_takes_no_seat_unless_seats_given(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    _setup(app_client, make_user, auth)
    ha = auth(make_user())
    quote = "/api/v1/rides/quote"
    # The van has one wheelchair space: a wheelchair user alone takes it and no seat.
    r = app_client.post(
        "/api/v1/rides",
        json={"request": {"origin": A, "destination": B, "wheelchairs": 1}},
        headers=ha,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["seats"], r.json()["wheelchairs"]) == (0, 1)
    # Seats given explicitly are kept (a companion), and no wheelchair means one seat.
    body = {"origin": B, "destination": A, "wheelchairs": 1, "seats": 1}
    r = app_client.post("/api/v1/rides", json={"request": body}, headers=ha)
    assert r.status_code == 201, r.text
    assert (r.json()["seats"], r.json()["wheelchairs"]) == (1, 1)
    r = app_client.post(
        "/api/v1/rides", json={"request": {"origin": A, "destination": B}}, headers=ha
    )
    assert r.status_code == 201, r.text
    assert (r.json()["seats"], r.json()["wheelchairs"]) == (1, 0)
    # Nobody at all is still refused.
    _error(
        app_client.post(
            quote, json={"origin": A, "destination": B, "seats": 0, "wheelchairs": 0}, headers=ha
        ),
        422,
    )
    schema = RideRequestIn.model_json_schema()  # the rule is documented for API clients
    assert "wheelchair" in schema["properties"]["seats"]["description"]


def test_fleet_inputs_are_vetted(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = _setup(app_client, make_user, auth)
    zones, vehicles = "/api/v1/fleet/zones", "/api/v1/fleet/vehicles"
    for hours in ([[7200, 3600]], [[3600, 3600]], [[-60, 3600]], [[0, 2 * 86400 + 1]]):
        r = app_client.post(
            zones, json={**ZONE, "zone_id": "bad", "service_hours": hours}, headers=boss
        )
        _error(r, 422, "validation_error")
        assert "service hours" in r.text
    night = {**ZONE, "zone_id": "night", "service_hours": [[20 * 3600, 30 * 3600]]}
    r = app_client.post(zones, json=night, headers=boss)  # past midnight is fine
    assert r.status_code == 201, r.text
    far = {"lat": 35.0, "lon": 139.0}
    vehicle = {"vehicle_id": "v2", "zone_id": "muroran", "shift_end": time.time() + 3600}
    _error(
        app_client.post(vehicles, json={**vehicle, "depot": far}, headers=boss),
        422,
        "invalid_depot",
    )
    # Just outside the polygon is outside too: the depot is where shifts start and end.
    r = app_client.post(
        vehicles, json={**vehicle, "depot": {"lat": 42.30, "lon": 140.96}}, headers=boss
    )
    _error(r, 422, "invalid_depot")
    assert app_client.post(vehicles, json={**vehicle, "depot": B}, headers=boss).status_code == 201
    ev = "/api/v1/fleet/vehicles/van-1/events"
    # The zone spans lat 42.305-42.345: 1.7 km north is a plausible detour, 6 km is not.
    near = {"type": "position", "lat": 42.36, "lon": 140.98}
    assert app_client.post(ev, json=near, headers=boss).status_code == 200
    r = app_client.post(ev, json={"type": "position", "lat": 42.40, "lon": 140.98}, headers=boss)
    _error(r, 422, "implausible_position")
    _error(app_client.post(ev, json={"type": "position", **far}, headers=boss), 422)
    v = app_client.get("/api/v1/fleet/vehicles/van-1", headers=boss).json()
    assert v["position"] == [42.36, 140.98]  # the refused reports changed nothing
    _error(app_client.post(ev, json={"type": "arrived"}, headers=boss), 422, "validation_error")


def test_implausible_times_and_oversized_zones_are_422(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    """#10: shift_end=1e300 and an event at t=1e300 were accepted; a zone over the whole world
    was a 500 (MemoryError filling it with H3 cells)."""
    boss = _setup(app_client, make_user, auth)
    vehicles, now = "/api/v1/fleet/vehicles", time.time()
    vehicle = {"vehicle_id": "v2", "zone_id": "muroran", "depot": B}
    for times in (
        {"shift_end": 1e300},
        {"shift_end": now + 2 * 366 * 86400},
        {"shift_start": -1e300, "shift_end": now + 3600},
    ):
        r = app_client.post(vehicles, json={**vehicle, **times}, headers=boss)
        _error(r, 422, "invalid_time")
    ev = "/api/v1/fleet/vehicles/van-1/events"
    for t in (1e300, -1e300, now - 2 * 366 * 86400):
        r = app_client.post(ev, json={"type": "position", **B, "t": t}, headers=boss)
        _error(r, 422, "invalid_time")
    assert app_client.get(f"{vehicles}/v2", headers=boss).status_code == 404
    r = app_client.post(ev, json={"type": "position", **B, "t": now + 1}, headers=boss)
    assert r.status_code == 200, r.text

    world = [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]
    country = [[[139, 35], [142, 35], [142, 38], [139, 38], [139, 35]]]  # ~90 000 km2
    for coords in (country, world):  # (old code: the country was accepted)
        r = app_client.post(
            "/api/v1/fleet/zones",
            json={
                **ZONE,
                "zone_id": "huge",
                "geometry": {"type": "Polygon", "coordinates": coords},
            },
            headers=boss,
        )
        _error(r, 422, "invalid_zone")
        assert "exceeds the limit" in r.json()["error"]["message"]


def test_zone_with_meeting_points(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = auth(make_user(roles=("dispatcher",)))
    station = {"point_id": "station", "lat": 42.315, "lon": 140.965, "name": "Station"}
    zone = {**ZONE, "zone_id": "mp", "meeting_points": [station]}
    r = app_client.post("/api/v1/fleet/zones", json=zone, headers=boss)
    assert r.status_code == 201 and r.json()["meeting_points"][0]["point_id"] == "station"
    app_client.post(
        "/api/v1/fleet/vehicles",
        json={
            "vehicle_id": "mp-1",
            "zone_id": "mp",
            "depot": A,
            "shift_end": time.time() + 8 * 3600,
        },
        headers=boss,
    )
    q = app_client.post(
        "/api/v1/rides/quote",
        json={"origin": {"lat": 42.3162, "lon": 140.966}, "destination": B},
        headers=auth(make_user()),
    )
    assert q.status_code == 200, q.text
    assert q.json()["pickup_point"] == [42.315, 140.965]
    bad = {**ZONE, "zone_id": "mp2", "meeting_points": [{**station, "lat": 10.0}]}
    _error(app_client.post("/api/v1/fleet/zones", json=bad, headers=boss), 422, "invalid_zone")
    auto = app_client.post(
        "/api/v1/fleet/zones", json={**ZONE, "zone_id": "mp3", "meeting_points": "h3"}, headers=boss
    )
    assert auto.status_code == 201 and len(auto.json()["meeting_points"]) > 5
