"""The dispatcher console's API (#13): a dispatcher sees the open rides by place and rider,
each vehicle's plan with its load, KPIs and at-risk alerts; moves a ride, cancels with a
reason, marks a no-show, takes a vehicle out of service and back, adds a vehicle, finds a
resident by telephone and books in their account; every action (refusals too) is in the
audit log with who did it. A resident gets 403 everywhere; bad input a 4xx. The actions also
go through the zone owner's queue when scaled out (Redis + PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from app.dispatch.console import kpis, phone_digits, risk_of
from tests.app.conftest import ZONE, A, B, assert_error, services_of
from tests.app.test_dispatch_cluster import (  # noqa: F401  (fixtures)
    Cluster,
    cluster,
    fresh_pg_url,
    warm_kernels,
)

D = "/api/v1/dispatcher"
C = {"lat": 42.32, "lon": 140.975}


def _fleet(client: TestClient, h: dict[str, str], vans: tuple[str, ...]) -> None:
    r = client.post("/api/v1/fleet/zones", json=ZONE, headers=h)
    assert r.status_code == 201, r.text
    for vid in vans:
        r = client.post(
            "/api/v1/fleet/vehicles",
            json={
                "vehicle_id": vid,
                "zone_id": "muroran",
                "vehicle_type": "van",
                "depot": A,
                "shift_end": time.time() + 8 * 3600,
            },
            headers=h,
        )
        assert r.status_code == 201, r.text


def _book(client: TestClient, h: dict[str, str], **kw: Any) -> dict[str, Any]:
    body = {"request": {"origin": A, "destination": B, **kw}}
    r = client.post("/api/v1/rides", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _other(vid: str) -> str:
    return "van-2" if vid == "van-1" else "van-1"


def test_a_resident_gets_403_and_the_role_named(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    h = auth(make_user())
    for path in ("/rides", "/vehicles", "/kpis", "/alerts", "/audit", "/residents?q=abc"):
        err = assert_error(app_client.get(D + path, headers=h), 403, "forbidden")
        assert "dispatcher" in err["message"]
    r = app_client.post(f"{D}/rides/x/cancel", json={"reason": "r"}, headers=h)
    assert_error(r, 403, "forbidden")
    assert_error(app_client.get(D + "/rides"), 401)


def test_dispatcher_sees_moves_cancels_marks_and_everything_is_audited(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = make_user(roles=("dispatcher",), display_name="Sato Dispatch")
    hb = auth(boss)
    _fleet(app_client, hb, ("van-1", "van-2"))
    alice = make_user(display_name="Alice Tanaka")
    ha = auth(alice)
    ride = _book(app_client, ha, earliest_pickup=time.time() + 1200)

    # The request list names the rider and the places, not ids only.
    r = app_client.get(f"{D}/rides", headers=hb)
    assert r.status_code == 200, r.text
    [row] = [x for x in r.json()["rides"] if x["ride_id"] == ride["ride_id"]]
    assert row["rider"]["display_name"] == "Alice Tanaka"
    assert row["pickup_place"]["lat"] == pytest.approx(A["lat"])
    assert "name_ja" in row["pickup_place"] and row["risk"] is None
    # The vehicle's plan: two stops, load 1 after the pick-up, 0 after the drop-off.
    r = app_client.get(f"{D}/vehicles", headers=hb)
    v = next(x for x in r.json()["vehicles"] if x["vehicle_id"] == ride["vehicle_id"])
    assert [s["kind"] for s in v["plan"]] == ["pickup", "dropoff"]
    assert [s["load_after"]["seats"] for s in v["plan"]] == [1, 0]
    assert v["plan"][0]["rider"]["display_name"] == "Alice Tanaka" and v["in_service"]

    # Move the ride to the other van.
    dst = _other(ride["vehicle_id"])
    r = app_client.post(
        f"{D}/rides/{ride['ride_id']}/reassign", json={"vehicle_id": dst}, headers=hb
    )
    assert r.status_code == 200, r.text
    assert r.json()["ride"]["vehicle_id"] == dst
    assert r.json()["audit"]["actor_id"] == boss.id
    # Refusals and bad input.
    url = f"{D}/rides/{ride['ride_id']}"
    assert_error(app_client.post(f"{url}/reassign", json={"vehicle_id": "nope"}, headers=hb), 404)
    assert_error(app_client.post(f"{url}/reassign", json={"vehicle_id": dst}, headers=hb), 409)
    assert_error(app_client.post(f"{url}/reassign", json={}, headers=hb), 422)
    assert_error(app_client.post(f"{url}/cancel", json={}, headers=hb), 422)
    assert_error(app_client.post(f"{url}/cancel", json={"reason": ""}, headers=hb), 422)
    assert_error(app_client.post(f"{D}/rides/nope/cancel", json={"reason": "x"}, headers=hb), 404)
    r = app_client.post(f"{url}/no-show", json={}, headers=hb)
    assert_error(r, 409, "no_show_too_early")
    # Cancel with a reason: the rider sees it on their ride.
    r = app_client.post(f"{url}/cancel", json={"reason": "road closed"}, headers=hb)
    assert r.status_code == 200, r.text
    mine = app_client.get(f"/api/v1/rides/{ride['ride_id']}", headers=ha).json()
    assert mine["status"] == "cancelled" and mine["status_reason"] == "road closed"

    # The audit log: who did what, refusals included, newest first.
    r = app_client.get(f"{D}/audit", params={"target_id": ride["ride_id"]}, headers=hb)
    entries = r.json()["entries"]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("cancel", "done"),
        ("no_show", "no_show_too_early"),
        ("reassign", "same_vehicle"),
        ("reassign", "unknown_vehicle"),
        ("reassign", "done"),
    ]
    assert {e["actor_id"] for e in entries} == {boss.id}
    assert entries[0]["reason"] == "road closed" and entries[0]["actor_email"] == boss.email

    # A vehicle out of service: its waiting ride goes to the other van; back in service.
    ride2 = _book(app_client, ha, earliest_pickup=time.time() + 1200)
    vid = ride2["vehicle_id"]
    body = {"action": "out_of_service", "reason": "flat tyre"}
    r = app_client.post(f"{D}/vehicles/{vid}/service", json=body, headers=hb)
    assert r.status_code == 200, r.text
    assert r.json()["moved"] == {ride2["ride_id"]: _other(vid)}
    assert r.json()["vehicle"]["in_service"] is False
    r = app_client.post(f"{D}/vehicles/{vid}/service", json=body, headers=hb)
    assert_error(r, 409, "out_of_service")
    bad = {"action": "fly", "reason": "x"}
    assert_error(app_client.post(f"{D}/vehicles/{vid}/service", json=bad, headers=hb), 422)
    back = {"action": "in_service"}
    r = app_client.post(f"{D}/vehicles/{vid}/service", json=back, headers=hb)
    assert r.status_code == 200 and r.json()["vehicle"]["in_service"] is True
    r = app_client.post(f"{D}/vehicles/nope/service", json=back, headers=hb)
    assert_error(r, 404)

    # A vehicle added to a shift.
    van3 = {
        "vehicle_id": "van-3",
        "zone_id": "muroran",
        "depot": C,
        "shift_end": time.time() + 3600,
        "reason": "extra shift",
    }
    r = app_client.post(f"{D}/vehicles", json=van3, headers=hb)
    assert r.status_code == 201, r.text
    assert r.json()["audit"]["action"] == "add_vehicle"
    assert_error(app_client.post(f"{D}/vehicles", json=van3, headers=hb), 409)

    # KPIs: three requests today, one ended (cancelled): served share 0.
    k = app_client.get(f"{D}/kpis", headers=hb).json()
    assert k["requests"] == 2 and k["served_share"] == 0.0
    assert k["occupancy"] == 0.0 and k["at_risk"] == 0 and k["late"] == 0


def test_phone_booking_in_the_residents_account(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    boss = make_user(roles=("dispatcher",))
    hb = auth(boss)
    _fleet(app_client, hb, ("van-1",))
    grandma = make_user(display_name="Hanako Suzuki")
    hg = auth(grandma)
    r = app_client.patch("/api/v1/users/me", json={"phone": "0143-22-1234"}, headers=hg)
    assert r.status_code == 200 and r.json()["phone"] == "0143221234"
    bad = app_client.patch("/api/v1/users/me", json={"phone": "call me"}, headers=hg)
    assert_error(bad, 422)
    # Found by the number however it is written, and by name.
    for q in ("22 1234", "(0143) 22-1234", "suzuki"):
        r = app_client.get(f"{D}/residents", params={"q": q}, headers=hb)
        assert [x["user_id"] for x in r.json()["residents"]] == [grandma.id], q
    assert_error(app_client.get(f"{D}/residents", params={"q": "x"}, headers=hb), 422)
    r = app_client.get(f"{D}/residents", params={"q": "%%"}, headers=hb)  # not a wildcard
    assert r.status_code == 200 and r.json()["residents"] == []
    body = {"request": {"origin": A, "destination": B}, "reason": "called at 9:02"}
    r = app_client.post(f"{D}/residents/{grandma.id}/rides", json=body, headers=hb)
    assert r.status_code == 201, r.text
    ride_id = r.json()["ride"]["ride_id"]
    assert r.json()["audit"]["action"] == "book_on_behalf"
    # The ride is in her account, not the dispatcher's.
    assert ride_id in [
        x["ride_id"] for x in app_client.get("/api/v1/rides", headers=hg).json()["rides"]
    ]
    assert app_client.get("/api/v1/rides", headers=hb).json()["rides"] == []
    e = app_client.get(f"{D}/audit", params={"target_id": grandma.id}, headers=hb).json()
    assert e["entries"][0]["details"]["ride_id"] == ride_id
    assert e["entries"][0]["actor_id"] == boss.id
    missing = f"{D}/residents/00000000-0000-0000-0000-000000000000/rides"
    assert_error(app_client.post(missing, json=body, headers=hb), 404, "user_not_found")
    assert_error(app_client.post(f"{D}/residents/nope/rides", json=body, headers=hb), 422)


def test_no_show_once_the_window_opened(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    hb = auth(make_user(roles=("dispatcher",)))
    _fleet(app_client, hb, ("van-1",))
    # The van waits at A: a ride from A now has its window open at once.
    ride = _book(app_client, auth(make_user()))
    assert ride["pickup_window"][0] <= time.time() + 1.0
    time.sleep(max(0.0, ride["pickup_window"][0] - time.time()))
    url = f"{D}/rides/{ride['ride_id']}/no-show"
    r = app_client.post(url, json={"reason": "nobody at the door"}, headers=hb)
    assert r.status_code == 200, r.text
    assert r.json()["ride"]["status"] == "no_show"
    v = app_client.get(f"{D}/vehicles", headers=hb).json()["vehicles"][0]
    assert v["plan"] == []
    assert_error(app_client.post(url, json={}, headers=hb), 409, "not_no_show")


def test_alert_when_the_vehicle_falls_behind(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    hb = auth(make_user(roles=("dispatcher",)))
    _fleet(app_client, hb, ("van-1",))
    ride = _book(app_client, auth(make_user()))
    assert app_client.get(f"{D}/alerts", headers=hb).json()["alerts"] == []
    # The van reports a position at the zone's far corner: it cannot reach the pick-up in
    # its window any more.
    far = {"type": "position", "lat": 42.345, "lon": 141.005}
    r = app_client.post("/api/v1/fleet/vehicles/van-1/events", json=far, headers=hb)
    assert r.status_code == 200, r.text
    alerts = app_client.get(f"{D}/alerts", headers=hb).json()["alerts"]
    assert [(a["ride_id"], a["risk"]) for a in alerts] == [(ride["ride_id"], "late")]
    assert app_client.get(f"{D}/kpis", headers=hb).json()["late"] == 1


def test_risk_and_kpis_by_hand() -> None:
    base = {"pickup_window": [100.0, 700.0], "latest_arrival": 2000.0, "eta_dropoff": 1000.0}
    assert risk_of({**base, "status": "assigned", "eta_pickup": 500.0}) is None
    assert risk_of({**base, "status": "assigned", "eta_pickup": 650.0}) == "at_risk"
    assert risk_of({**base, "status": "assigned", "eta_pickup": 701.0}) == "late"
    assert (
        risk_of({**base, "status": "onboard", "eta_pickup": 9e9, "eta_dropoff": 2001.0}) == "late"
    )
    assert risk_of({**base, "status": "completed", "eta_pickup": 9e9}) is None
    rides = [
        {"ride_id": "a", "status": "completed", "booked_at": 10.0, "picked_up_at": 400.0,
         "requested_pickup": 100.0, "seats": 1, "wheelchairs": 0},
        {"ride_id": "b", "status": "onboard", "booked_at": 20.0, "picked_up_at": 300.0,
         "requested_pickup": 200.0, "seats": 2, "wheelchairs": 1},
        {"ride_id": "c", "status": "no_show", "booked_at": 30.0, "seats": 1, "wheelchairs": 0},
        {"ride_id": "old", "status": "completed", "booked_at": 1.0, "seats": 1, "wheelchairs": 0},
    ]  # fmt: skip
    vehicles = [
        {"onboard": ["b"], "seats": 8, "wheelchair_spaces": 1, "in_service": True},
        {"onboard": [], "seats": 4, "wheelchair_spaces": 0, "in_service": False},
    ]
    k = kpis(rides, vehicles, since=5.0)
    assert k["requests"] == 3 and k["served_share"] == 0.5
    assert k["mean_wait_s"] == pytest.approx((300.0 + 100.0) / 2)
    assert k["occupancy"] == pytest.approx(3 / 9) and k["vehicles_in_service"] == 1
    assert phone_digits("+81 143-22-1234") == "+81143221234"


@pytest.mark.postgres
@pytest.mark.redis
def test_actions_go_through_the_zone_owner_when_scaled_out(
    cluster: Cluster,  # noqa: F811  (the fixture imported above)
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    app = cluster()
    boss = make_user(roles=("dispatcher",), client=app)
    hb = auth(boss, app)
    _fleet(app, hb, ("van-1", "van-2"))
    rider = make_user(client=app)
    hr = auth(rider, app)
    ride = _book(app, hr, earliest_pickup=time.time() + 1200)
    dst = _other(ride["vehicle_id"])
    url = f"{D}/rides/{ride['ride_id']}"
    r = app.post(f"{url}/reassign", json={"vehicle_id": dst}, headers=hb)
    assert r.status_code == 200 and r.json()["ride"]["vehicle_id"] == dst, r.text
    rows = app.get(f"{D}/rides", headers=hb).json()["rides"]
    assert [x["vehicle_id"] for x in rows if x["ride_id"] == ride["ride_id"]] == [dst]
    r = app.post(f"{D}/vehicles/{dst}/service", json={"action": "to_depot"}, headers=hb)
    assert r.status_code == 200, r.text
    assert r.json()["moved"] == {ride["ride_id"]: ride["vehicle_id"]}
    r = app.post(f"{url}/cancel", json={"reason": "storm"}, headers=hb)
    assert r.status_code == 200 and r.json()["ride"]["status_reason"] == "storm", r.text
    body = {"request": {"origin": A, "destination": B}}
    r = app.post(f"{D}/residents/{rider.id}/rides", json=body, headers=hb)
    assert r.status_code == 201, r.text
    actions = [e["action"] for e in app.get(f"{D}/audit", headers=hb).json()["entries"]]
    assert actions == ["book_on_behalf", "cancel", "to_depot", "reassign"]
    # A booking queued while its zone changes owner is listed as pending, by its rider.
    settings = services_of(app).settings
    queued: dict[str, Any] = {"ride_id": "q-1", "status": "pending", "zone_id": "muroran"}
    queued |= {"origin": [A["lat"], A["lon"]], "destination": [B["lat"], B["lon"]]}
    queued |= {"pickup_window": [time.time(), time.time()], "booked_at": time.time()}
    with redis.Redis.from_url(settings.redis_url) as rc:
        key = f"{settings.redis_prefix}dispatch.pending"
        rc.hset(key, "q-1", json.dumps({"user_id": rider.id, "ride": queued}))
    rows = app.get(f"{D}/rides", headers=hb).json()["rides"]
    [row] = [x for x in rows if x["ride_id"] == "q-1"]
    assert row["status"] == "pending" and row["rider"]["user_id"] == rider.id
