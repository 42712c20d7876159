"""Watch-over notices of rides that ended while the relay was not listening (#12): when the
relay (re)subscribes it reads the core's ride records and tells each watcher, once, of the
rides completed or missed after their consent, within a day."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.health.models import Consent
from app.models.dispatch import RideRecord
from tests.app.conftest import TestUser, services_of

Auth = Callable[..., dict[str, str]]
H = "/api/v1/health"


def _ride(ride_id: str, user: str, status: str, at: dt.datetime) -> RideRecord:
    return RideRecord(
        ride_id=ride_id, user_id=user, zone_id="z", vehicle_id="v", status=status,
        booked_at=at.timestamp() - 1800, ride={"ride_id": ride_id, "status": status},
        updated_at=at,
    )  # fmt: skip


def _consent(client: TestClient, auth: Auth, resident: TestUser, watcher: TestUser) -> Any:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()
    body = {"recipient": {"type": "user", "id": watcher.id}, "purpose": "watch_over",
            "expires_at": expires}  # fmt: skip
    r = client.post(f"{H}/me/consents", json=body, headers=auth(resident))
    assert r.status_code == 201, r.text
    return r.json()


def test_rides_that_ended_unheard_are_told_once_after_the_consent(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    resident, watcher, late, stranger = make_user(), make_user(), make_user(), make_user()
    granted = dt.datetime.fromisoformat(_consent(app_client, auth, resident, watcher)["grantedAt"])
    services = services_of(app_client)
    relay = services.health.relay
    assert relay is not None
    now = dt.datetime.now(dt.UTC)
    with Session(services.engine) as db:
        for row in (
            _ride("r-done", resident.id, "completed", now),
            _ride("r-missed", resident.id, "no_show", now),
            _ride("r-riding", resident.id, "onboard", now),  # not over: nothing to tell
            _ride("r-before", resident.id, "completed", granted - dt.timedelta(minutes=5)),
            _ride("r-other", stranger.id, "completed", now),  # nobody watches them
        ):
            db.add(row)
        db.commit()
    assert app_client.portal is not None
    assert app_client.portal.call(relay.catch_up) == 2
    notices = app_client.get(f"{H}/watch/{resident.id}/notices", headers=auth(watcher)).json()
    assert sorted((n["type"], n["rideId"]) for n in notices["notices"]) == [
        ("ride.completed", "r-done"),
        ("ride.missed", "r-missed"),
    ]
    assert app_client.portal.call(relay.catch_up) == 0  # told once
    # A watcher consented after those rides ended is not told of them.
    _consent(app_client, auth, resident, late)
    assert app_client.portal.call(relay.catch_up) == 0
    assert (
        app_client.get(f"{H}/watch/{resident.id}/notices", headers=auth(late)).json()["notices"]
        == []
    )
    # The catch-up looks back one day: a ride ended 30 hours ago is not dug up, even for a
    # consent older than that.
    elder = make_user()
    consent = _consent(app_client, auth, elder, watcher)
    with Session(services.health.engine) as hdb:
        c = hdb.get(Consent, uuid.UUID(consent["id"]))
        assert c is not None
        c.granted_at = now - dt.timedelta(days=3)
        hdb.add(c)
        hdb.commit()
    with Session(services.engine) as db:
        db.add(_ride("r-old", elder.id, "completed", now - dt.timedelta(hours=30)))
        db.add(_ride("r-recent", elder.id, "completed", now - dt.timedelta(hours=1)))
        db.commit()
    assert app_client.portal.call(relay.catch_up) == 1
    notices = app_client.get(f"{H}/watch/{elder.id}/notices", headers=auth(watcher)).json()
    assert [n["rideId"] for n in notices["notices"]] == ["r-recent"]
