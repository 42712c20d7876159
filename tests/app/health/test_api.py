"""The health API in the main process: checkups, FHIR, risk, consent, audit, watch-over,
privacy."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.health.models import AuditEntry
from app.models.trip import Trip
from tests.app.conftest import TestUser, services_of

Auth = Callable[..., dict[str, str]]
H = "/api/v1/health"
# distinctive values, scanned for outside the health service
CHECKUP = {
    "date": "2026-11-20",
    "height_cm": 168.73,
    "weight_kg": 63.97,
    "systolic": 147.31,
    "diastolic": 91.27,
    "hba1c": 5.43,
    "ldl": 151.37,
    "hdl": 45.71,
    "smoking": "current",
    "age": 55,
    "sex": "male",
}


def _future(days: int = 30) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def _audit_rows(client: TestClient, resident: str) -> int:
    with Session(services_of(client).health.engine) as db:
        return len([a for a in db.exec(_select_audit(resident)).all()])


def _select_audit(resident: str) -> Any:
    from sqlmodel import select

    return select(AuditEntry).where(AuditEntry.resident_id == resident)


def test_checkup_risk_and_fhir_round_trip(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    me = make_user()
    r = app_client.post(f"{H}/me/checkups", json=CHECKUP, headers=auth(me))
    assert r.status_code == 201, r.text
    kinds = sorted(o["kind"] for o in r.json()["observations"])
    assert "bmi" in kinds and "blood_pressure" in kinds
    bmi = next(o for o in r.json()["observations"] if o["kind"] == "bmi")
    assert bmi["value"] == 22.5  # 63.97 / 1.6873^2 = 22.47
    risk = app_client.get(f"{H}/me/risk", headers=auth(me)).json()
    # man 55: 7 + SBP 147 (3) + LDL 151 (2) + HDL 45.7 (1) + smoking (2) = 15 -> 6.0 %
    assert (risk["totalPoints"], risk["risk10y"]["percent"], risk["category"]) == (
        15,
        6.0,
        "medium",
    )
    assert risk["inputs"]["systolic"] == 147.31 and risk["advice"]["messages"]
    bundle = app_client.get(f"{H}/me/fhir", headers=auth(me)).json()
    assert bundle["resourceType"] == "Bundle"
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"]}
    assert {"8302-2", "29463-7", "39156-5", "85354-9", "4548-4", "13457-7", "2085-9"} <= codes
    # the export imports into another resident as the same values
    other = make_user()
    r = app_client.post(f"{H}/me/fhir", json=bundle, headers=auth(other))
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == len(bundle["entry"])
    risk2 = app_client.get(f"{H}/me/risk", headers=auth(other)).json()
    assert risk2["totalPoints"] == 15
    # not enough values: said so, with what is missing
    third = make_user()
    app_client.post(f"{H}/me/checkups", json={"weight_kg": 70}, headers=auth(third))
    r3 = app_client.get(f"{H}/me/risk", headers=auth(third)).json()
    assert r3["available"] is False and "ldl" in r3["missing"]


@pytest.mark.parametrize(
    ("doc", "code", "path"),
    [
        ({"resourceType": "Patient"}, "invalid_bundle", "$.resourceType"),
        ({"resourceType": "Bundle", "type": "history", "entry": []}, "invalid_bundle", "$.type"),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": []},
            "invalid_bundle",
            "$.entry",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Patient"}}],
            },
            "unsupported_resource",
            "$.entry[0].resource",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "final",
                            "effectiveDateTime": "2026-01-01",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                            "valueQuantity": {"value": 63, "code": "[lb_av]"},
                        }
                    }
                ],
            },
            "unit_mismatch",
            "$.entry[0].resource.valueQuantity.code",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "final",
                            "effectiveDateTime": "2026-01-01",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                            "valueQuantity": {"value": 900, "code": "kg"},
                        }
                    }
                ],
            },
            "implausible_value",
            "$.entry[0].resource.valueQuantity.value",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "final",
                            "effectiveDateTime": "2026-01-01",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
                        }
                    }
                ],
            },
            "unknown_code",
            "$.entry[0].resource",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "final",
                            "effectiveDateTime": "soon",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                        }
                    }
                ],
            },
            "invalid_bundle",
            "$.entry[0].resource.effectiveDateTime",
        ),
    ],
)
def test_fhir_import_refusals(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Auth,
    doc: dict[str, Any],
    code: str,
    path: str,
) -> None:
    me = make_user()
    r = app_client.post(f"{H}/me/fhir", json=doc, headers=auth(me))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["details"]["path"] == path
    assert app_client.get(f"{H}/me/observations", headers=auth(me)).json()["observations"] == []


def test_checkup_refusals(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    me = make_user()
    for body, code in (
        ({}, "empty_checkup"),
        ({"systolic": 120}, "invalid_checkup"),
        ({"weight_kg": 5000}, "implausible_value"),
        ({"date": "2999-01-01", "weight_kg": 60}, "invalid_checkup"),
        ({"weight": 60}, "validation_error"),
    ):
        r = app_client.post(f"{H}/me/checkups", json=body, headers=auth(me))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == code
    assert app_client.get(f"{H}/me/risk").status_code == 401


def test_staff_consent_revocation_and_audit(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    admin = make_user(roles=("admin",))
    resident = make_user()
    staff = make_user(roles=("health_staff",))
    outsider = make_user(roles=("health_staff",))
    app_client.post(f"{H}/me/checkups", json=CHECKUP, headers=auth(resident))
    org = app_client.post(
        f"{H}/organisations", json={"name": "Muroran Clinic", "kind": "clinic"}, headers=auth(admin)
    ).json()
    # only an admin adds organisations and members
    assert (
        app_client.post(
            f"{H}/organisations", json={"name": "x", "kind": "clinic"}, headers=auth(staff)
        ).status_code
        == 403
    )
    r = app_client.post(
        f"{H}/organisations/{org['id']}/members", json={"user_id": staff.id}, headers=auth(admin)
    )
    assert r.status_code == 201
    assert (
        app_client.post(
            f"{H}/organisations/{org['id']}/members",
            json={"user_id": staff.id},
            headers=auth(admin),
        ).status_code
        == 409
    )
    assert (
        app_client.post(
            f"{H}/organisations/{uuid.uuid4()}/members",
            json={"user_id": staff.id},
            headers=auth(admin),
        ).status_code
        == 404
    )
    url = f"{H}/residents/{resident.id}/observations"
    # no consent yet: 403, nothing audited
    r = app_client.get(url, headers=auth(staff))
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_consent"
    assert _audit_rows(app_client, resident.id) == 0
    consent = app_client.post(
        f"{H}/me/consents",
        json={
            "recipient": {"type": "organisation", "id": org["id"]},
            "purpose": "records",
            "expires_at": _future(),
        },
        headers=auth(resident),
    )
    assert consent.status_code == 201, consent.text
    cid = consent.json()["id"]
    # the clinic's staff reads (twice) and sees the risk: three audit rows
    for _ in range(2):
        r = app_client.get(url, headers=auth(staff))
        assert r.status_code == 200 and r.json()["latest"]["weight"]["value"] == 63.97
    assert (
        app_client.get(f"{H}/residents/{resident.id}/risk", headers=auth(staff)).json()[
            "totalPoints"
        ]
        == 15
    )
    assert _audit_rows(app_client, resident.id) == 3
    listed = app_client.get(f"{H}/residents", headers=auth(staff)).json()["residents"]
    assert [x["residentId"] for x in listed] == [resident.id]
    # another clinic's staff, the consent's purpose not covering activity or writing: 403
    assert app_client.get(url, headers=auth(outsider)).status_code == 403
    assert (
        app_client.get(f"{H}/residents/{resident.id}/activity", headers=auth(staff)).status_code
        == 403
    )
    assert (
        app_client.post(
            f"{H}/residents/{resident.id}/checkups", json={"weight_kg": 70}, headers=auth(staff)
        ).status_code
        == 403
    )
    assert _audit_rows(app_client, resident.id) == 3
    # the resident sees who read what
    log = app_client.get(f"{H}/me/audit", headers=auth(resident)).json()["entries"]
    assert [(e["actorId"], e["resource"]) for e in log].count((staff.id, "observations")) == 2
    # revoked: 403 at once
    assert (
        app_client.delete(f"{H}/me/consents/{cid}", headers=auth(resident)).json()["state"]
        == "revoked"
    )
    assert app_client.get(url, headers=auth(staff)).status_code == 403
    assert app_client.get(f"{H}/residents", headers=auth(staff)).json()["residents"] == []
    # expired consents give nothing either; bad consents are refused
    for body, status, code in (
        (
            {
                "recipient": {"type": "organisation", "id": org["id"]},
                "purpose": "records",
                "expires_at": "2020-01-01T00:00:00Z",
            },
            422,
            "invalid_expiry",
        ),
        (
            {
                "recipient": {"type": "organisation", "id": org["id"]},
                "purpose": "watch_over",
                "expires_at": _future(),
            },
            422,
            "invalid_purpose",
        ),
        (
            {
                "recipient": {"type": "organisation", "id": str(uuid.uuid4())},
                "purpose": "records",
                "expires_at": _future(),
            },
            404,
            "unknown_recipient",
        ),
        (
            {
                "recipient": {"type": "organisation", "id": "nope"},
                "purpose": "records",
                "expires_at": _future(),
            },
            404,
            "unknown_recipient",
        ),
        (
            {
                "recipient": {"type": "user", "id": resident.id},
                "purpose": "records",
                "expires_at": _future(),
            },
            422,
            "invalid_recipient",
        ),
        (
            {
                "recipient": {"type": "user", "id": staff.id},
                "purpose": "records_write",
                "expires_at": _future(),
            },
            422,
            "invalid_purpose",
        ),
    ):
        r = app_client.post(f"{H}/me/consents", json=body, headers=auth(resident))
        assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert (
        app_client.delete(f"{H}/me/consents/{uuid.uuid4()}", headers=auth(resident)).status_code
        == 404
    )
    # with records_write the clinic records a checkup, audited as a write
    app_client.post(
        f"{H}/me/consents",
        json={
            "recipient": {"type": "organisation", "id": org["id"]},
            "purpose": "records_write",
            "expires_at": _future(),
        },
        headers=auth(resident),
    )
    r = app_client.post(
        f"{H}/residents/{resident.id}/checkups", json={"weight_kg": 64.5}, headers=auth(staff)
    )
    assert r.status_code == 201 and r.json()["observations"][0]["recordedBy"] == "staff"
    assert _audit_rows(app_client, resident.id) == 4
    # export and erase
    export = app_client.get(f"{H}/me/export", headers=auth(resident)).json()
    assert len(export["consents"]) == 2 and len(export["audit"]) == 4
    assert export["bundle"]["resourceType"] == "Bundle"
    gone = app_client.delete(f"{H}/me", headers=auth(resident)).json()["deleted"]
    assert gone["consents"] == 2 and gone["audit"] == 4 and gone["observations"] > 0
    assert (
        app_client.get(f"{H}/me/observations", headers=auth(resident)).json()["observations"] == []
    )


@dataclass
class Booked:
    status_code: int
    body: dict[str, Any]


class FakeGateway:
    """The core's ride gateway as the health routes call it."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.rides: dict[str, str] = {}
        self.cancelled: list[str] = []

    def now(self) -> float:
        return 1_800_000_000.0

    async def book_request(self, request: Any) -> Booked:
        self.requests.append(request)
        self.rides["r-1"] = request.user_id
        return Booked(201, {"ride_id": "r-1", "status": "assigned"})

    async def ride(self, ride_id: str) -> tuple[str, dict[str, Any]] | None:
        user = self.rides.get(ride_id)
        return None if user is None else (user, {"ride_id": ride_id})

    async def move_pickup(self, ride_id: str, earliest: float) -> dict[str, Any]:
        return {"ride_id": ride_id, "earliest": earliest}

    async def cancel(self, ride_id: str) -> dict[str, Any]:
        self.cancelled.append(ride_id)
        return {"ride_id": ride_id, "status": "cancelled"}


def test_watch_over(app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth) -> None:
    resident, watcher, stranger = make_user(), make_user(), make_user()
    app_client.post(f"{H}/me/checkups", json=CHECKUP, headers=auth(resident))
    # a completed booked trip an hour ago: 1.2 km walked in 15 min
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ms = int(now.timestamp() * 1000) - 900_000
    it = {
        "legs": [
            {
                "mode": "WALK",
                "distance": 1200.0,
                "startTime": ms,
                "endTime": ms + 900_000,
                "from": {"lat": 42.3, "lon": 141.0},
                "to": {"lat": 42.31, "lon": 141.0},
            }
        ]
    }
    with Session(services_of(app_client).engine) as db:
        db.add(
            Trip(
                user_id=resident.id, request_hash="h" * 64, state="CONFIRMED", itinerary=it, legs=[]
            )
        )
        db.commit()
    mine = app_client.get(f"{H}/me/activity", headers=auth(resident)).json()
    assert mine["legs"][0]["steps"] == 1714  # 1200 / (0.415 x 1.6873 = 0.70023 m) = 1713.7
    activity_url = f"{H}/watch/{resident.id}/activity"
    assert app_client.get(activity_url, headers=auth(watcher)).status_code == 403
    c = app_client.post(
        f"{H}/me/consents",
        json={
            "recipient": {"type": "user", "id": watcher.id},
            "purpose": "watch_over",
            "expires_at": _future(),
        },
        headers=auth(resident),
    ).json()
    seen = app_client.get(activity_url, headers=auth(watcher)).json()
    assert set(seen) == {"timezone", "guideline", "weeks"}  # weekly totals, nothing else
    assert seen["weeks"][-1]["walkMinutes"] == 15.0
    assert "legs" not in seen and "stepLength" not in seen
    # watch_over is not records: the checkups stay closed
    assert (
        app_client.get(
            f"{H}/residents/{resident.id}/observations", headers=auth(watcher)
        ).status_code
        == 403
    )
    assert app_client.get(activity_url, headers=auth(stranger)).status_code == 403
    # ride events reach the watcher's stream once, without place or time
    services = services_of(app_client)

    async def relay() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        async with services.bus.subscribe([f"user.{watcher.id}.watch"]) as sub:
            for status in ("onboard", "completed", "completed", "no_show"):
                await services.bus.publish(
                    f"user.{resident.id}.ride",
                    {
                        "type": "ride",
                        "ride_id": f"ride-{status}",
                        "status": status,
                        "origin": [42.3, 141.0],
                    },
                )
            while len(got) < 2:
                event = await asyncio.wait_for(sub.__anext__(), timeout=5)
                got.append(event.data)
        return got

    got = app_client.portal.call(relay)  # type: ignore[union-attr]
    assert [g["type"] for g in got] == ["ride.completed", "ride.missed"]
    assert all(set(g) == {"type", "residentId", "rideId", "at"} for g in got)
    notices = app_client.get(f"{H}/watch/{resident.id}/notices", headers=auth(watcher)).json()
    assert sorted(n["type"] for n in notices["notices"]) == ["ride.completed", "ride.missed"]
    # booking on the resident's behalf: the same gateway, the ride is the resident's
    fake = FakeGateway()
    services.health.dispatch_of = lambda: fake
    ride = {"origin": {"lat": 42.31, "lon": 140.97}, "destination": {"lat": 42.32, "lon": 140.98}}
    r = app_client.post(f"{H}/watch/{resident.id}/rides", json=ride, headers=auth(watcher))
    assert r.status_code == 201, r.text
    assert fake.requests[0].user_id == resident.id
    assert (
        app_client.post(
            f"{H}/watch/{resident.id}/rides", json={"origin": 1}, headers=auth(watcher)
        ).status_code
        == 422
    )
    assert (
        app_client.patch(
            f"{H}/watch/{resident.id}/rides/r-1",
            json={"earliest_pickup": 1.8e9},
            headers=auth(watcher),
        ).status_code
        == 200
    )
    assert (
        app_client.delete(f"{H}/watch/{resident.id}/rides/nope", headers=auth(watcher)).status_code
        == 404
    )
    assert (
        app_client.delete(f"{H}/watch/{resident.id}/rides/r-1", headers=auth(watcher)).json()[
            "status"
        ]
        == "cancelled"
    )
    log = app_client.get(f"{H}/me/audit", headers=auth(resident)).json()["entries"]
    acts = [(e["actorId"], e["action"], e["resource"]) for e in log]
    assert (watcher.id, "book_ride", "ride:r-1") in acts
    assert (watcher.id, "change_ride", "ride:r-1") in acts
    assert (watcher.id, "cancel_ride", "ride:r-1") in acts
    # a stranger cannot book; after revocation neither can the watcher
    assert (
        app_client.post(
            f"{H}/watch/{resident.id}/rides", json=ride, headers=auth(stranger)
        ).status_code
        == 403
    )
    app_client.delete(f"{H}/me/consents/{c['id']}", headers=auth(resident))
    assert (
        app_client.post(
            f"{H}/watch/{resident.id}/rides", json=ride, headers=auth(watcher)
        ).status_code
        == 403
    )
    assert app_client.get(activity_url, headers=auth(watcher)).status_code == 403
    assert len(fake.requests) == 1


def test_privacy_no_values_outside_health(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Auth,
    capfd: pytest.CaptureFixture[str],
) -> None:
    me = make_user(roles=("resident", "admin"))
    app_client.post(f"{H}/me/checkups", json=CHECKUP, headers=auth(me))
    app_client.get(f"{H}/me/risk", headers=auth(me))
    app_client.get(f"{H}/me/fhir", headers=auth(me))
    patterns = [
        re.compile(rf"(?<![\d.]){re.escape(str(v))}(?!\d)")
        for k, v in CHECKUP.items()
        if isinstance(v, float)
    ]
    # every GET of the app outside /health without path parameters, as the same user
    spec = app_client.get("/api/v1/openapi.json").json()
    paths = sorted(
        p
        for p, ops in spec["paths"].items()
        if "get" in ops and "{" not in p and "/health/" not in p
    )
    assert "/api/v1/rides" in paths and "/api/v1/emissions/me/ledger" in paths
    checked = 0
    for path in paths:
        if path.endswith("/stream") or "events" in path:
            continue  # event streams never end
        r = app_client.get(path, headers=auth(me))
        checked += 1
        for p in patterns:
            assert not p.search(r.text), (path, p.pattern)
    assert checked > 10
    out, err = capfd.readouterr()
    # A request's timing is no health value: "duration_ms=5.43" matched hba1c once (CI).
    logs = re.sub(r"duration_ms=[\d.]+", "duration_ms=?", out + err)
    for p in patterns:
        assert not p.search(logs), p.pattern
