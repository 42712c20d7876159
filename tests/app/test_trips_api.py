"""Trips (issue #9): an itinerary's on-demand legs booked all or none, held and confirmed,
cancelled, expired by the sweeper; TOMP states of the trip and of its legs; idempotent
retries; every error path. One app process (``LocalGateway``), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import create_db_engine
from app.dispatch.gateway import Booked
from app.errors import ApiError
from app.events.visibility import may_subscribe
from app.identity.principal import Principal
from app.models.dispatch import RideRecord, ZoneStateRecord
from app.models.trip import Trip
from app.trips import store
from app.trips.service import RIDE_LEG_STATE, LegState, TripService, request_hash
from app.trips.sweeper import sweep_once
from dispatch.vehicle import VEHICLE_TYPES
from tests.app.conftest import ZONE, A, B, assert_error, both_backends, services_of
from tests.app.trips_helpers import (
    TRIPS,
    flex_leg,
    itinerary,
    plan_rides,
    quote_for,
    transit_leg,
    walk_leg,
)

pytestmark = both_backends

FLEET = "/api/v1/fleet"
C = {"lat": 42.335, "lon": 140.965}


@pytest.fixture(autouse=True)
def forget_saved_state(database_url: str) -> Iterator[None]:
    """The session's PostgreSQL database outlives a test and every app start restores the
    saved zones: forget zones, rides and trips after each test."""
    yield
    if database_url:
        engine = create_db_engine(database_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.delete(Trip))
                conn.execute(sa.delete(RideRecord))
                conn.execute(sa.delete(ZoneStateRecord))
        finally:
            engine.dispose()


class Env:
    """A zone with one vehicle, a dispatcher's headers, the client."""

    def __init__(self, client: TestClient, boss: dict[str, str], vehicle_id: str) -> None:
        self.client = client
        self.boss = boss
        self.vehicle_id = vehicle_id

    def plan(self) -> list[str]:
        return plan_rides(self.client, self.boss, self.vehicle_id)


def _setup(
    client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    vehicle_type: str = "van",
    shift_s: float = 8 * 3600,
) -> Env:
    boss = auth(make_user(roles=("dispatcher",)))
    r = client.post(f"{FLEET}/zones", json=ZONE, headers=boss)
    assert r.status_code == 201, r.text
    body = {
        "vehicle_id": "veh-1",
        "zone_id": "muroran",
        "vehicle_type": vehicle_type,
        "depot": A,
        "shift_end": time.time() + shift_s,
    }
    r = client.post(f"{FLEET}/vehicles", json=body, headers=boss)
    assert r.status_code == 201, r.text
    return Env(client, boss, "veh-1")


def _post(
    client: TestClient,
    headers: dict[str, str],
    itin: dict[str, Any],
    confirm: bool | None = None,
    key: str | None = None,
) -> Any:
    body: dict[str, Any] = {"itinerary": itin}
    if confirm is not None:
        body["confirm"] = confirm
    h = {**headers, **({"Idempotency-Key": key} if key else {})}
    return client.post(TRIPS, json=body, headers=h)


class Spy:
    """Records what the app publishes (the bus still delivers it)."""

    def __init__(self, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        bus = services_of(client).bus
        real = bus.publish

        async def publish(topic: str, data: dict[str, Any]) -> Any:
            self.events.append((topic, data))
            return await real(topic, data)

        monkeypatch.setattr(bus, "publish", publish)

    def trip_events(self, user_id: str) -> list[dict[str, Any]]:
        return [d for t, d in self.events if t == f"user.{user_id}.trip"]


def _flex_ids(trip: dict[str, Any]) -> list[str]:
    return [leg["rideId"] for leg in trip["legs"] if leg.get("onDemand")]


# --- booking ------------------------------------------------------------------------------------
def test_book_confirms_every_on_demand_leg_and_shows_live_rides(
    app_client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _setup(app_client, make_user, auth)
    alice, bob = make_user(), make_user()
    ha, hb = auth(alice), auth(bob)
    spy = Spy(app_client, monkeypatch)
    q1 = quote_for(app_client, alice.id, A, B)
    q2 = quote_for(app_client, alice.id, B, C, earliest_pickup=time.time() + 3600)
    itin = itinerary(walk_leg(), flex_leg(q1), transit_leg(), flex_leg(q2))
    r = _post(app_client, ha, itin)
    assert r.status_code == 201, r.text
    trip = r.json()
    assert trip["state"] == "CONFIRMED" and trip["expiresAt"] is None
    assert [leg["mode"] for leg in trip["legs"]] == ["WALK", "FLEX", "BUS", "FLEX"]
    flex = [trip["legs"][1], trip["legs"][3]]
    assert [leg["rideId"] for leg in flex] == [q1["request_id"], q2["request_id"]]
    for leg, q in zip(flex, (q1, q2), strict=True):
        assert leg["legState"] == "NOT_STARTED" and leg["rideStatus"] == "assigned"
        assert leg["vehicleId"] == "veh-1"
        assert leg["pickupWindow"]["start"] <= leg["startTime"] <= leg["pickupWindow"]["end"]
        assert leg["latestArrivalTime"] == round(q["latest_arrival"] * 1000)
    assert trip["legs"][2] == transit_leg() | {
        k: trip["legs"][2][k] for k in ("startTime", "endTime")
    }
    assert sorted(set(env.plan())) == sorted([q1["request_id"], q2["request_id"]])
    # Read back: mine (newest first), by id; another resident sees nothing, a dispatcher all.
    older = _post(app_client, ha, itinerary(transit_leg()))
    assert older.status_code == 201 and older.json()["state"] == "CONFIRMED"
    mine = app_client.get(TRIPS, headers=ha).json()["trips"]
    assert [t["id"] for t in mine] == [older.json()["id"], trip["id"]]
    got = app_client.get(f"{TRIPS}/{trip['id']}", headers=ha).json()
    assert got["state"] == "CONFIRMED" and _flex_ids(got) == _flex_ids(trip)
    assert app_client.get(TRIPS, headers=hb).json()["trips"] == []
    assert_error(app_client.get(f"{TRIPS}/{trip['id']}", headers=hb), 404, "not_found")
    assert app_client.get(f"{TRIPS}/{trip['id']}", headers=env.boss).status_code == 200
    events = spy.trip_events(alice.id)
    assert [e["type"] for e in events] == ["trip.confirmed", "trip.confirmed"]
    assert events[0]["trip_id"] == trip["id"] and events[0]["state"] == "CONFIRMED"


def test_itinerary_without_on_demand_leg_is_saved_confirmed(
    app_client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No dispatcher involved at all: even one that is not running.
    monkeypatch.setattr(services_of(app_client), "dispatch", None)
    h = auth(make_user())
    r = _post(app_client, h, itinerary(walk_leg(), transit_leg()))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "CONFIRMED"
    assert [leg["mode"] for leg in r.json()["legs"]] == ["WALK", "BUS"]
    assert "legState" not in r.json()["legs"][1]


def test_leg_states_follow_the_ride(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    env = _setup(app_client, make_user, auth)
    alice = make_user()
    ha = auth(alice)
    q = quote_for(app_client, alice.id, A, B)
    trip = _post(app_client, ha, itinerary(flex_leg(q))).json()
    rid = q["request_id"]
    url = f"{TRIPS}/{trip['id']}"
    ev = f"{FLEET}/vehicles/veh-1/events"

    def leg_state() -> str:
        return str(app_client.get(url, headers=ha).json()["legs"][0]["legState"])

    assert leg_state() == "NOT_STARTED"
    assert app_client.post(ev, json={"type": "position", **A}, headers=env.boss).status_code == 200
    r = app_client.post(ev, json={"type": "boarded", "ride_id": rid}, headers=env.boss)
    assert r.status_code == 200, r.text
    assert leg_state() == "IN_USE"
    # A ride under way cannot be cancelled: nothing changes.
    assert_error(app_client.delete(url, headers=ha), 409, "not_cancellable")
    assert app_client.get(url, headers=ha).json()["state"] == "CONFIRMED"
    r = app_client.post(ev, json={"type": "alighted", "ride_id": rid}, headers=env.boss)
    assert r.status_code == 200, r.text
    assert leg_state() == "FINISHED"


def test_ride_status_to_leg_state_mapping() -> None:
    assert RIDE_LEG_STATE == {
        "pending": LegState.NOT_STARTED,
        "assigned": LegState.NOT_STARTED,
        "onboard": LegState.IN_USE,
        "completed": LegState.FINISHED,
        "cancelled": LegState.CANCELLED,
        "no_show": LegState.CANCELLED,
        "rejected": LegState.CANCELLED,
    }


# --- all or none ---------------------------------------------------------------------------------
def test_second_leg_refused_releases_the_first(
    app_client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _setup(app_client, make_user, auth)
    alice, bob = make_user(), make_user()
    ha = auth(alice)
    spy = Spy(app_client, monkeypatch)
    q1 = quote_for(app_client, alice.id, A, B)
    # Unknown quote, someone else's quote, a quote already booked: each refuses the trip.
    unknown = {**quote_for(app_client, alice.id, B, C), "quote_id": "no-such-quote"}
    bobs = quote_for(app_client, bob.id, B, C)
    for second in (unknown, bobs):
        q1 = quote_for(app_client, alice.id, A, B)
        r = _post(app_client, ha, itinerary(flex_leg(q1), transit_leg(), flex_leg(second)))
        err = assert_error(r, 409, "quote_unknown")
        trip = err["details"]["trip"]
        assert trip["state"] == "REJECTED" and err["details"]["leg"] == 2
        assert trip["error"]["code"] == "quote_unknown"
        assert [leg["legState"] for leg in trip["legs"] if leg.get("onDemand")] == [
            "CANCELLED",
            "CANCELLED",
        ]
        # The first leg was booked, then released: the vehicle no longer plans it.
        assert q1["request_id"] not in env.plan()
        ride = app_client.get(f"/api/v1/rides/{q1['request_id']}", headers=ha).json()
        assert ride["status"] == "cancelled"
    assert env.plan() == []
    types = [e["type"] for e in spy.trip_events(alice.id)]
    assert types == ["trip.rejected", "trip.rejected"]
    assert spy.trip_events(alice.id)[0]["reason"] == "quote_unknown"
    # A quote can be booked once: a second trip with it is refused, the first one kept.
    q3 = quote_for(app_client, alice.id, A, B)
    assert _post(app_client, ha, itinerary(flex_leg(q3))).status_code == 201
    q4 = quote_for(app_client, alice.id, B, C)
    err = assert_error(
        _post(app_client, ha, itinerary(flex_leg(q4), flex_leg(q3))), 409, "already_booked"
    )
    assert err["details"]["leg"] == 1
    assert sorted(set(env.plan())) == [q3["request_id"]]
    # Its quote id with a fresh request id: the dispatcher has no such quote any more.
    q5 = quote_for(app_client, alice.id, B, C)
    reused = {**flex_leg(q3), "bookingRequestId": uuid.uuid4().hex}
    assert_error(_post(app_client, ha, itinerary(flex_leg(q5), reused)), 409, "quote_unknown")
    assert sorted(set(env.plan())) == [q3["request_id"]]


def test_refusal_carries_the_dispatchers_reason_and_new_quote(
    app_client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _setup(app_client, make_user, auth)
    alice = make_user()
    q1, q2 = quote_for(app_client, alice.id, A, B), quote_for(app_client, alice.id, B, C)
    g = services_of(app_client).dispatch
    real = g.book_quote

    async def refuse_second(quote_id: str, user_id: str) -> Booked:
        if quote_id == q2["quote_id"]:
            raise ApiError(
                409,
                "quote_changed",
                "the offer changed",
                {"reason": "quote_changed", "new_quote": {"quote_id": "nq"}},
            )
        return await real(quote_id, user_id)

    monkeypatch.setattr(g, "book_quote", refuse_second)
    err = assert_error(_post(app_client, auth(alice), itinerary(flex_leg(q1), flex_leg(q2))), 409)
    assert err["code"] == "quote_changed" and err["details"]["new_quote"] == {"quote_id": "nq"}
    assert env.plan() == []


def test_dispatcher_failure_rejects_the_trip_and_releases(
    app_client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _setup(app_client, make_user, auth)
    alice = make_user()
    q1, q2 = quote_for(app_client, alice.id, A, B), quote_for(app_client, alice.id, B, C)
    g = services_of(app_client).dispatch
    real = g.book_quote

    async def broken(quote_id: str, user_id: str) -> Booked:
        if quote_id == q2["quote_id"]:
            raise ConnectionError("redis went away")
        return await real(quote_id, user_id)

    monkeypatch.setattr(g, "book_quote", broken)
    err = assert_error(
        _post(app_client, auth(alice), itinerary(flex_leg(q1), flex_leg(q2))),
        503,
        "dispatch_unavailable",
    )
    assert err["details"]["trip"]["state"] == "REJECTED"
    assert env.plan() == []


def test_dispatcher_not_running_answers_503(
    app_client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _setup(app_client, make_user, auth)
    alice = make_user()
    q = quote_for(app_client, alice.id, A, B)
    monkeypatch.setattr(services_of(app_client), "dispatch", None)
    assert_error(_post(app_client, auth(alice), itinerary(flex_leg(q))), 503, "unavailable")
    assert app_client.get(TRIPS, headers=auth(alice)).json()["trips"] == []


# --- hold, confirm, cancel, expire -------------------------------------------------------------
def test_hold_then_confirm_then_cancel(
    app_client: TestClient,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _setup(app_client, make_user, auth)
    alice, bob = make_user(), make_user()
    ha, hb = auth(alice), auth(bob)
    spy = Spy(app_client, monkeypatch)
    q = quote_for(app_client, alice.id, A, B)
    before = time.time()
    r = _post(app_client, ha, itinerary(flex_leg(q)), confirm=False)
    assert r.status_code == 201, r.text
    held = r.json()
    hold_s = services_of(app_client).settings.trip_hold_s
    assert held["state"] == "PENDING" and held["legs"][0]["legState"] == "NOT_STARTED"
    assert before + hold_s - 5 <= held["expiresAt"] / 1000 <= time.time() + hold_s + 5
    # The hold really reserves the seat.
    assert q["request_id"] in env.plan()
    url = f"{TRIPS}/{held['id']}"
    assert_error(app_client.post(f"{url}/confirm", headers=hb), 404, "not_found")
    assert_error(app_client.post(f"{url}/confirm", headers=env.boss), 404, "not_found")
    r = app_client.post(f"{url}/confirm", headers=ha)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "CONFIRMED" and r.json()["expiresAt"] is None
    assert app_client.post(f"{url}/confirm", headers=ha).status_code == 200  # idempotent
    assert_error(app_client.delete(url, headers=hb), 404, "not_found")
    r = app_client.delete(url, headers=ha)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "CANCELLED"
    assert r.json()["legs"][0]["legState"] == "CANCELLED"
    assert env.plan() == []
    assert_error(app_client.delete(url, headers=ha), 409, "not_cancellable")
    assert_error(app_client.post(f"{url}/cancel", headers=ha), 409, "not_cancellable")
    assert_error(app_client.post(f"{url}/confirm", headers=ha), 409, "not_pending")
    types = [e["type"] for e in spy.trip_events(alice.id)]
    assert types == ["trip.confirmed", "trip.cancelled"]
    # A hold cancelled with POST .../cancel by a dispatcher.
    q = quote_for(app_client, alice.id, A, B)
    held = _post(app_client, ha, itinerary(flex_leg(q)), confirm=False).json()
    r = app_client.post(f"{TRIPS}/{held['id']}/cancel", headers=env.boss)
    assert r.status_code == 200 and r.json()["state"] == "CANCELLED"
    assert env.plan() == []


def test_hold_expires_by_the_sweeper_and_cannot_be_confirmed(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_app_client(trip_hold_s=1.0, trip_sweep_interval_s=0.2)
    env = _setup(client, make_user, auth)
    alice = make_user(client=client)
    ha = auth(alice, client)
    spy = Spy(client, monkeypatch)
    q = quote_for(client, alice.id, A, B)
    held = _post(client, ha, itinerary(flex_leg(q)), confirm=False).json()
    assert held["state"] == "PENDING" and q["request_id"] in env.plan()
    engine = services_of(client).engine
    trip_id = uuid.UUID(held["id"])
    # The sweeper itself (no read resolves it): the row becomes EXPIRED, the ride cancelled.
    end = time.monotonic() + 60
    while (row := store.get_trip(engine, trip_id)) is not None and row.state != "EXPIRED":
        assert time.monotonic() < end, "the sweeper never expired the hold"
        time.sleep(0.05)
    assert env.plan() == []
    end = time.monotonic() + 60
    while (row := store.get_trip(engine, trip_id)) is not None and row.release_pending:
        assert time.monotonic() < end
        time.sleep(0.05)
    err = assert_error(client.post(f"{TRIPS}/{held['id']}/confirm", headers=ha), 409, "expired")
    assert err["details"]["trip"]["state"] == "EXPIRED"
    assert err["details"]["trip"]["legs"][0]["legState"] == "CANCELLED"
    assert_error(client.delete(f"{TRIPS}/{held['id']}", headers=ha), 409, "not_cancellable")
    assert [e["type"] for e in spy.trip_events(alice.id)] == ["trip.expired"]


def test_confirm_after_the_hold_expires_before_a_sweep(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    client = make_app_client(trip_hold_s=0.5, trip_sweep_interval_s=3600.0)
    env = _setup(client, make_user, auth)
    alice = make_user(client=client)
    ha = auth(alice, client)
    q = quote_for(client, alice.id, A, B)
    held = _post(client, ha, itinerary(flex_leg(q)), confirm=False).json()
    assert q["request_id"] in env.plan()
    time.sleep(0.6)  # past the hold, and no sweep for an hour: the confirm itself expires it
    assert_error(client.post(f"{TRIPS}/{held['id']}/confirm", headers=ha), 409, "expired")
    assert env.plan() == []
    assert client.get(f"{TRIPS}/{held['id']}", headers=ha).json()["state"] == "EXPIRED"


def test_release_refused_by_a_busy_dispatcher_is_retried_by_the_sweeper(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_app_client(trip_sweep_interval_s=3600.0)
    env = _setup(client, make_user, auth)
    alice = make_user(client=client)
    ha = auth(alice, client)
    q = quote_for(client, alice.id, A, B)
    trip = _post(client, ha, itinerary(flex_leg(q))).json()
    services = services_of(client)
    g = services.dispatch
    real = g.cancel

    async def busy(ride_id: str) -> dict[str, Any]:
        raise ApiError(503, "dispatch_busy", "no owner answered")

    monkeypatch.setattr(g, "cancel", busy)
    r = client.delete(f"{TRIPS}/{trip['id']}", headers=ha)
    assert r.status_code == 200 and r.json()["state"] == "CANCELLED"
    row = store.get_trip(services.engine, uuid.UUID(trip["id"]))
    assert row is not None and row.release_pending and q["request_id"] in env.plan()
    svc = TripService(services)
    # Still busy at the next sweep: still to release.
    assert client.portal.call(sweep_once, svc) == 1  # type: ignore[union-attr]
    row = store.get_trip(services.engine, row.id)
    assert row is not None and row.release_pending and q["request_id"] in env.plan()
    monkeypatch.setattr(g, "cancel", real)
    # A row another process is releasing (its claim runs a while) is left to it.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    store.update_trip(services.engine, row.id, states=["CANCELLED"], claimed_until=later)
    assert client.portal.call(sweep_once, svc) == 0  # type: ignore[union-attr]
    assert q["request_id"] in env.plan()
    store.update_trip(services.engine, row.id, states=["CANCELLED"], claimed_until=None)
    assert client.portal.call(sweep_once, svc) == 1  # type: ignore[union-attr]
    assert env.plan() == []
    row = store.get_trip(services.engine, row.id)
    assert row is not None and not row.release_pending


def test_queued_leg_202_keeps_the_trip_pending_until_its_ride_is_booked(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cluster gateway answers 202 when a zone is being taken over (real case in
    test_trips_cluster.py); here the local gateway books, and answers and reads "pending"
    until the test lets the ride show."""
    client = make_app_client(trip_sweep_interval_s=3600.0)
    env = _setup(client, make_user, auth)
    alice = make_user(client=client)
    ha = auth(alice, client)
    g = services_of(client).dispatch
    real_book, real_ride = g.book_quote, g.ride
    hidden: set[str] = set()
    refused: set[str] = set()

    async def queued(quote_id: str, user_id: str) -> Booked:
        res = await real_book(quote_id, user_id)
        hidden.add(res.body["ride_id"])
        return Booked(202, {"request_id": res.body["ride_id"], "status": "pending"})

    async def ride(ride_id: str) -> tuple[str, dict[str, Any]] | None:
        found = await real_ride(ride_id)
        if found is not None and ride_id in refused:
            return found[0], {"ride_id": ride_id, "status": "rejected", "reason": "zone_removed"}
        if found is not None and ride_id in hidden:
            return found[0], {**found[1], "status": "pending"}
        return found

    monkeypatch.setattr(g, "book_quote", queued)
    monkeypatch.setattr(g, "ride", ride)
    q = quote_for(client, alice.id, A, B)
    r = _post(client, ha, itinerary(flex_leg(q)))
    assert r.status_code == 202, r.text
    trip = r.json()
    assert trip["state"] == "PENDING" and trip["legs"][0]["bookingState"] == "pending"
    url = f"{TRIPS}/{trip['id']}"
    assert client.get(url, headers=ha).json()["state"] == "PENDING"
    # Confirming while queued answers 202: confirmed as soon as the ride is booked.
    assert client.post(f"{url}/confirm", headers=ha).status_code == 202
    hidden.clear()
    got = client.get(url, headers=ha).json()
    assert got["state"] == "CONFIRMED" and got["legs"][0]["legState"] == "NOT_STARTED"
    # A queued leg refused later rejects the trip (and releases the others).
    q1, q2 = quote_for(client, alice.id, A, B), quote_for(client, alice.id, B, C)
    r = _post(client, ha, itinerary(flex_leg(q1), flex_leg(q2)))
    assert r.status_code == 202, r.text
    refused.add(q2["request_id"])
    assert client.portal.call(sweep_once, TripService(services_of(client))) == 1  # type: ignore[union-attr]
    got = client.get(f"{TRIPS}/{r.json()['id']}", headers=ha).json()
    assert got["state"] == "REJECTED" and got["error"]["code"] == "zone_removed"
    assert q1["request_id"] not in env.plan()


# --- idempotency -------------------------------------------------------------------------------
def test_retry_with_the_same_key_returns_the_same_booking(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    env = _setup(app_client, make_user, auth)
    alice, bob = make_user(), make_user()
    ha, hb = auth(alice), auth(bob)
    q = quote_for(app_client, alice.id, A, B)
    itin = itinerary(flex_leg(q))
    first = _post(app_client, ha, itin, key="k-1")
    again = _post(app_client, ha, itin, key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert env.plan().count(q["request_id"]) == 2  # one pick-up, one drop-off: booked once
    # Same key, another body: refused; another user's key space is their own.
    assert_error(
        _post(app_client, ha, itin, confirm=False, key="k-1"), 422, "idempotency_key_reused"
    )
    qb = quote_for(app_client, bob.id, A, B)
    rb = _post(app_client, hb, itinerary(flex_leg(qb)), key="k-1")
    assert rb.status_code == 201 and rb.json()["id"] != first.json()["id"]
    # A refused booking is refused again, identically, without a second attempt.
    bad = itinerary(flex_leg({**quote_for(app_client, alice.id, B, C), "quote_id": "gone"}))
    e1 = assert_error(_post(app_client, ha, bad, key="k-2"), 409, "quote_unknown")
    e2 = assert_error(_post(app_client, ha, bad, key="k-2"), 409, "quote_unknown")
    assert e1["details"]["trip"]["id"] == e2["details"]["trip"]["id"]
    assert len(app_client.get(TRIPS, headers=ha).json()["trips"]) == 2


def test_concurrent_retries_with_one_key_book_once(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    env = _setup(app_client, make_user, auth)
    alice = make_user()
    ha = auth(alice)
    q = quote_for(app_client, alice.id, A, B)
    itin = itinerary(flex_leg(q))
    n = 8
    gate = threading.Barrier(n)
    answers: list[Any] = []

    def send() -> None:
        gate.wait()
        answers.append(_post(app_client, ha, itin, key="same"))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * n, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert env.plan().count(q["request_id"]) == 2
    assert len(app_client.get(TRIPS, headers=ha).json()["trips"]) == 1


def test_retry_while_the_first_attempt_runs_and_after_it_crashed(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    client = make_app_client(trip_idempotency_wait_s=0.3, trip_sweep_interval_s=3600.0)
    env = _setup(client, make_user, auth)
    alice = make_user(client=client)
    ha = auth(alice, client)
    q = quote_for(client, alice.id, A, B)
    itin = itinerary(flex_leg(q))
    # The row a first attempt writes before booking, in another process that then died.
    services = services_of(client)
    legs = [
        {
            "index": 0,
            "quote_id": q["quote_id"],
            "ride_id": q["request_id"],
            "booking": "none",
            "released": False,
        }
    ]
    row = store.insert_trip(
        services.engine,
        Trip(
            user_id=alice.id,
            idempotency_key="k",
            request_hash=request_hash(itin, True),
            state="PENDING",
            confirm_requested=True,
            in_progress=True,
            itinerary=itin,
            legs=legs,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        ),
    )
    assert_error(_post(client, ha, itin, key="k"), 409, "in_progress")
    # Its process died after booking the leg: past the hold, the retry finds it expired and
    # the ride released.
    assert (
        client.portal.call(services.dispatch.book_quote, q["quote_id"], alice.id).status_code == 201
    )  # type: ignore[union-attr]
    assert q["request_id"] in env.plan()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert store.update_trip(services.engine, row.id, states=["PENDING"], expires_at=past)
    err = assert_error(_post(client, ha, itin, key="k"), 409, "expired")
    assert err["details"]["trip"]["id"] == str(row.id)
    assert env.plan() == []


# --- concurrency: the last seats --------------------------------------------------------------
def test_fifty_residents_compete_for_the_last_seats(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    """One car whose shift leaves time for a single run: its seats are all there is. 50
    residents quote, then book at once: no seat is sold twice, every answer is definite."""
    env = _setup(app_client, make_user, auth, vehicle_type="car", shift_s=25 * 60)
    seats = VEHICLE_TYPES["car"].seats
    users = [make_user() for _ in range(50)]
    headers = [auth(u) for u in users]
    quotes = [quote_for(app_client, u.id, A, B) for u in users]
    gate = threading.Barrier(len(users))
    answers: dict[int, Any] = {}

    def book(i: int) -> None:
        gate.wait()
        answers[i] = _post(app_client, headers[i], itinerary(flex_leg(quotes[i])))

    threads = [threading.Thread(target=book, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(a.status_code for a in answers.values())
    assert set(codes) <= {201, 409}, [a.text for a in answers.values() if a.status_code >= 500]
    won = {i for i, a in answers.items() if a.status_code == 201}
    for i, a in answers.items():
        if i in won:
            assert a.json()["state"] == "CONFIRMED"
        else:
            assert a.json()["error"]["details"]["trip"]["state"] == "REJECTED"
    assert len(won) == seats, codes
    plan = app_client.get(f"{FLEET}/vehicles/{env.vehicle_id}", headers=env.boss).json()["plan"]
    assert sorted({s["ride_id"] for s in plan}) == sorted(quotes[i]["request_id"] for i in won)
    load = peak = 0
    for s in plan:
        load += 1 if s["kind"] == "pickup" else -1
        peak = max(peak, load)
    assert peak <= seats
    # Sold out indeed: one more rider finds no seat.
    late = make_user()
    r = app_client.post(
        "/api/v1/rides/quote", json={"origin": A, "destination": B}, headers=auth(late)
    )
    assert_error(r, 409, "no_vehicle_available")


# --- bad input -------------------------------------------------------------------------------
def test_bad_requests_answer_clear_4xx(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    _setup(app_client, make_user, auth)
    alice = make_user()
    h = auth(alice)
    q = quote_for(app_client, alice.id, A, B)
    good = flex_leg(q)
    no_quote = {k: v for k, v in good.items() if k != "bookingQuoteId"}
    no_request = {k: v for k, v in good.items() if k != "bookingRequestId"}
    for body in (
        {},
        {"itinerary": {}},
        {"itinerary": {"legs": []}},
        {"itinerary": {"legs": "WALK"}},
        {"itinerary": {"legs": [{"from": {}}]}},
        {"itinerary": {"legs": [{"mode": ""}]}},
        {"itinerary": {"legs": [no_quote]}},
        {"itinerary": {"legs": [no_request]}},
        {"itinerary": {"legs": [{**good, "bookingQuoteId": 7}]}},
        {
            "itinerary": {
                "legs": [{**good, "mode": "BUS", "onDemand": True, "bookingQuoteId": None}]
            }
        },
        {"itinerary": {"legs": [good, good]}},
        {"itinerary": {"legs": [good, {**good, "bookingQuoteId": "other"}]}},
        {"itinerary": itinerary(good), "confirm": "maybe"},
        {"itinerary": itinerary(good), "extra": 1},
        {"itinerary": [good]},
        {"itinerary": {"legs": [good] * 51}},
    ):
        assert_error(app_client.post(TRIPS, json=body, headers=h), 422, "validation_error")
    r = app_client.post(
        TRIPS, content=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    assert_error(r, 400, "malformed_json")
    assert_error(app_client.post(TRIPS, json={"itinerary": itinerary(good)}), 401)
    assert_error(_post(app_client, h, itinerary(good), key="x" * 201), 422, "validation_error")
    assert_error(app_client.get(f"{TRIPS}/not-a-uuid", headers=h), 422, "validation_error")
    assert_error(app_client.get(f"{TRIPS}/{uuid.uuid4()}", headers=h), 404, "not_found")
    assert_error(app_client.delete(f"{TRIPS}/{uuid.uuid4()}", headers=h), 404, "not_found")
    assert_error(app_client.post(f"{TRIPS}/{uuid.uuid4()}/confirm", headers=h), 404, "not_found")
    assert_error(app_client.get(TRIPS), 401)
    # Nothing was booked by any of them.
    assert app_client.get(TRIPS, headers=h).json()["trips"] == []
    r = _post(app_client, h, itinerary(good))
    assert r.status_code == 201, r.text


def test_confirm_of_a_trip_being_booked_answers_in_progress(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    alice = make_user()
    h = auth(alice)
    itin = itinerary(walk_leg())
    row = store.insert_trip(
        services_of(app_client).engine,
        Trip(
            user_id=alice.id,
            request_hash=request_hash(itin, False),
            state="PENDING",
            in_progress=True,
            itinerary=itin,
            legs=[],
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        ),
    )
    assert_error(app_client.post(f"{TRIPS}/{row.id}/confirm", headers=h), 409, "in_progress")
    assert_error(app_client.delete(f"{TRIPS}/{row.id}", headers=h), 409, "in_progress")


# --- events ------------------------------------------------------------------------------------
def test_residents_may_subscribe_to_their_own_trip_topic_only() -> None:
    me = Principal(user_id="u1", email=None, roles=frozenset({"resident"}))
    assert may_subscribe(me, "user.u1.trip")
    assert not may_subscribe(me, "user.u2.trip")
    assert not may_subscribe(me, "user.*.trip")


def test_trip_events_reach_the_riders_subscription(
    app_client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    alice = make_user()
    bus = services_of(app_client).bus

    async def receive() -> dict[str, Any]:
        sub = bus.subscribe([f"user.{alice.id}.trip"])
        try:
            await asyncio.to_thread(_post, app_client, auth(alice), itinerary(transit_leg()))
            event = await asyncio.wait_for(sub.__anext__(), 30)
            return dict(event.data)
        finally:
            sub.close()

    data = app_client.portal.call(receive)  # type: ignore[union-attr]
    assert data["type"] == "trip.confirmed" and data["state"] == "CONFIRMED"
