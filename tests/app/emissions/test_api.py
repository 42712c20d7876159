"""The emissions API in the main process: recording taken itineraries and monthly ledgers.

Expected values are computed by hand (see test_calculator for the factors): a 5.0 km bus
ride is 57 x 5.0 = 285 g; a lone van ride over 42.30 -> 42.32 is 559 g, a 2 km rail leg 34 g.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models.dispatch import RideRecord
from app.models.trip import Trip
from tests.app.conftest import TestUser, assert_error, services_of
from tests.app.emissions.helpers import itinerary, leg, ride

Auth = Callable[..., dict[str, str]]
# 2026-12-03 09:00 Asia/Tokyo = 00:00 UTC
DEC3 = int(dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC).timestamp())
# 2026-11-30 23:30 Asia/Tokyo = 14:30 UTC: November in the city, whatever UTC says
NOV30_LATE = int(dt.datetime(2026, 11, 30, 14, 30, tzinfo=dt.UTC).timestamp())


def bus_trip(t0_s: int) -> dict[str, Any]:
    ms = t0_s * 1000
    return itinerary(
        leg("WALK", 42.300, 42.302, 300.0, ms, ms + 240_000),
        leg("BUS", 42.302, 42.342, 5000.0, ms + 300_000, ms + 1_200_000),
        leg("WALK", 42.342, 42.3435, 200.0, ms + 1_200_000, ms + 1_380_000),
    )


def test_record_and_ledger(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    me, other = make_user(), make_user()
    r = app_client.post(
        "/api/v1/emissions/trips", json={"itinerary": bus_trip(DEC3)}, headers=auth(me)
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["co2"] == {"co2": 285, "unit": "g"}
    assert body["carCo2"]["co2"] == 817 and body["co2Saving"]["co2"] == 532
    assert body["month"] == "2026-12"
    assert body["legs"][1]["factor"]["value"] == 57
    # the same itinerary again: once only
    again = app_client.post(
        "/api/v1/emissions/trips", json={"itinerary": bus_trip(DEC3)}, headers=auth(me)
    )
    assert assert_error(again, 409, "already_recorded")["details"]["id"] == body["id"]
    # late on 30 November in Japan (already 1 December nowhere): November's ledger
    r = app_client.post(
        "/api/v1/emissions/trips", json={"itinerary": bus_trip(NOV30_LATE)}, headers=auth(me)
    )
    assert r.status_code == 201 and r.json()["month"] == "2026-11"

    ledger = app_client.get("/api/v1/emissions/me/ledger?month=2026-12", headers=auth(me)).json()
    assert ledger["trips"] == 1 and ledger["co2"] == {"co2": 285, "unit": "g"}
    assert ledger["co2Saving"]["co2"] == 532
    # a resident sees only their own ledger
    theirs = app_client.get("/api/v1/emissions/me/ledger?month=2026-12", headers=auth(other)).json()
    assert theirs["trips"] == 0 and theirs["co2"]["co2"] == 0
    # nor can they delete my trip
    assert_error(
        app_client.delete(f"/api/v1/emissions/trips/{body['id']}", headers=auth(other)),
        404,
        "not_found",
    )
    assert (
        app_client.delete(f"/api/v1/emissions/trips/{body['id']}", headers=auth(me)).status_code
        == 200
    )
    gone = app_client.get("/api/v1/emissions/me/ledger?month=2026-12", headers=auth(me)).json()
    assert gone["trips"] == 0


def test_refusals(app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth) -> None:
    me = make_user()
    url = "/api/v1/emissions/trips"
    assert_error(app_client.post(url, json={"itinerary": bus_trip(DEC3)}), 401, "token_missing")
    future = int(dt.datetime.now(dt.UTC).timestamp()) + 3 * 3600
    assert_error(
        app_client.post(url, json={"itinerary": bus_trip(future)}, headers=auth(me)),
        422,
        "not_taken_yet",
    )
    flex = itinerary(
        {**leg("FLEX", 42.3, 42.31, 1500.0, DEC3 * 1000, DEC3 * 1000 + 1), "onDemand": True}
    )
    assert_error(
        app_client.post(url, json={"itinerary": flex}, headers=auth(me)), 422, "on_demand_leg"
    )
    odd = itinerary(leg("ZEPPELIN", 42.3, 42.31, 1500.0, DEC3 * 1000, DEC3 * 1000 + 1))
    assert_error(
        app_client.post(url, json={"itinerary": odd}, headers=auth(me)), 422, "unknown_mode"
    )
    assert_error(
        app_client.post(url, json={"itinerary": {"legs": []}}, headers=auth(me)),
        422,
        "invalid_itinerary",
    )
    no_times = itinerary(
        {k: v for k, v in leg("BUS", 42.3, 42.31, 1500.0, 0, 0).items() if k != "startTime"}
    )
    assert_error(
        app_client.post(url, json={"itinerary": no_times}, headers=auth(me)),
        422,
        "invalid_itinerary",
    )
    assert app_client.post(url, json={"nothing": 1}, headers=auth(me)).status_code == 422
    for month in ("2026-13", "december", "2026-1"):
        r = app_client.get(f"/api/v1/emissions/me/ledger?month={month}", headers=auth(me))
        assert_error(r, 400, "invalid_month")
    assert_error(app_client.get("/api/v1/emissions/me/ledger"), 401, "token_missing")
    assert_error(
        app_client.delete(f"/api/v1/emissions/trips/{uuid.uuid4()}", headers=auth(me)), 404
    )


def test_factors_public(app_client: TestClient) -> None:
    body = app_client.get("/api/v1/emissions/factors").json()
    assert body["modes"]["CAR"]["value"] == 130 and body["modes"]["CAR"]["year"] == "FY2019"
    assert body["fuels"]["diesel"]["unit"] == "kg-CO2/L"


def _save_ride(client: TestClient, user_id: str, r: dict[str, Any]) -> None:
    with Session(services_of(client).engine) as db:
        db.add(
            RideRecord(
                ride_id=r["ride_id"],
                user_id=user_id,
                zone_id="z",
                vehicle_id=r["vehicle_id"],
                status=r["status"],
                booked_at=r["booked_at"],
                ride=r,
            )
        )
        db.commit()


def test_ledger_of_rides_and_booked_trips(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    me, b, c = make_user(), make_user(), make_user()
    # 1. a ride booked on its own, shared with two other riders the whole way: 559.42 / 3
    shared = [
        ride(f"s{i}-{uuid.uuid4().hex[:6]}", "van-1", 42.30, 42.32, DEC3 + 3600, DEC3 + 4200)
        for i in range(3)
    ]
    for who, r in zip((me, b, c), shared, strict=True):
        _save_ride(app_client, who.id, r)
    # 2. a booked trip: a lone van ride (42.30 -> 42.32, 559 g) then 2 km of rail (34 g)
    alone = ride(f"a-{uuid.uuid4().hex[:6]}", "van-2", 42.30, 42.32, DEC3 + 7200, DEC3 + 7800)
    _save_ride(app_client, me.id, alone)
    ms = (DEC3 + 7200) * 1000
    it = itinerary(
        {
            **leg("FLEX", 42.30, 42.32, 2300.0, ms, ms + 600_000),
            "onDemand": True,
            "bookingRequestId": alone["ride_id"],
        },
        leg("RAIL", 42.32, 42.337, 2000.0, ms + 900_000, ms + 1_200_000),
    )
    with Session(services_of(app_client).engine) as db:
        db.add(
            Trip(
                user_id=me.id,
                request_hash="x" * 64,
                state="CONFIRMED",
                itinerary=it,
                legs=[
                    {"index": 0, "quote_id": "q", "ride_id": alone["ride_id"], "booking": "booked"}
                ],
            )
        )
        # a trip still pending is no completed trip
        db.add(Trip(user_id=me.id, request_hash="y" * 64, state="PENDING", itinerary=it, legs=[]))
        db.commit()

    ledger = app_client.get("/api/v1/emissions/me/ledger?month=2026-12", headers=auth(me)).json()
    kinds = [(e["kind"], e["co2"]["co2"]) for e in ledger["entries"]]
    assert kinds == [("ride", 186), ("trip", 559 + 34)]
    assert ledger["co2"]["co2"] == 186 + 593
    # by car: the ride's 42.30 -> 42.32 (130 x 2.22390 x 1.3 = 375.84) and the trip's
    # 42.30 -> 42.337 (130 x 4.11422 x 1.3 = 695.30)
    assert [e["carCo2"]["co2"] for e in ledger["entries"]] == [376, 695]
    assert ledger["carCo2"]["co2"] == 376 + 695
    assert ledger["co2Saving"]["co2"] == 1071 - 779
    assert ledger["entries"][1]["legs"][0]["factor"]["sharedBy"] == [1]
    assert ledger["entries"][0]["legs"][0]["factor"]["sharedBy"] == [3]
    # November holds none of it
    nov = app_client.get("/api/v1/emissions/me/ledger?month=2026-11", headers=auth(me)).json()
    assert nov["trips"] == 0
    # another rider of the shared van sees only their own share
    theirs = app_client.get("/api/v1/emissions/me/ledger?month=2026-12", headers=auth(b)).json()
    assert [(e["kind"], e["co2"]["co2"]) for e in theirs["entries"]] == [("ride", 186)]

    r = app_client.get("/api/v1/emissions/me/ledger?month=2026-12&format=csv", headers=auth(me))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["kind", "id", "start_time"]
    assert [row[0] for row in rows[1:]] == ["ride", "trip", "total"]
    assert rows[-1][6:] == ["779", "1071", "292"]
