"""The running commute totals (``emissions_commute_totals``) the Category 7 report reads.

They follow every change in the same transaction: a trip recorded or deleted, a consent
granted (past trips counted) or revoked; after each step they equal a rebuild from the
trip-mode rows, and the report's figures are the hand-computed ones (bus 11 km = 627 g).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app import db
from app.emissions import commute, store
from app.emissions.models import CommuteTotal, Company, Consent, TakenTrip, TripMode
from tests.app.conftest import TestUser, both_backends, services_of
from tests.app.emissions.test_companies import SITE, World, elsewhere
from tests.app.emissions.test_companies import commute as commute_trip

pytestmark = both_backends

Auth = Callable[..., dict[str, str]]
E = "/api/v1/emissions"
Totals = dict[tuple[str, str, str], tuple[float, int, int]]
MARCH_3 = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)


def totals(engine: Engine, company_id: Any) -> Totals:
    """``{(user, month, mode): (metres, grams, trips)}`` of a company."""
    ct = CommuteTotal.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                ct.c.user_id, ct.c.month, ct.c.mode, ct.c.distance_m, ct.c.co2_g, ct.c.trips
            ).where(ct.c.company_id == uuid.UUID(str(company_id)))
        ).all()
    return {(u, m, k): (round(d, 3), int(g), int(n)) for u, m, k, d, g, n in rows}


def rebuilt(engine: Engine, company_id: Any) -> Totals:
    """The same, rebuilt from the trip-mode rows (in a transaction rolled back)."""
    ct = CommuteTotal.__table__  # type: ignore[attr-defined]
    cid = uuid.UUID(str(company_id))
    with engine.connect() as conn, conn.begin() as tx:
        commute.rebuild(conn, company_id=cid)
        rows = conn.execute(
            sa.select(
                ct.c.user_id, ct.c.month, ct.c.mode, ct.c.distance_m, ct.c.co2_g, ct.c.trips
            ).where(ct.c.company_id == cid)
        ).all()
        tx.rollback()
    return {(u, m, k): (round(d, 3), int(g), int(n)) for u, m, k, d, g, n in rows}


def check(w: World, engine: Engine) -> Totals:
    now = totals(engine, w.id)
    assert now == rebuilt(engine, w.id)
    return now


def march_co2(w: World) -> float:
    return float(w.get("category7?month=2026-03").json()["co2"]["co2"])


def test_totals_follow_trips_and_consents(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    engine = services_of(app_client).emissions.engine
    w = World(app_client, make_user, auth)
    u = w.employee(accept=False)
    # recorded before consenting: one commute trip, one trip elsewhere
    w.trip(u, commute_trip(3))
    w.trip(u, elsewhere(4))
    assert check(w, engine) == {}
    # consenting counts the past commute trip, not the one elsewhere
    code = app_client.post(
        f"{E}/companies/{w.id}/invitations", json={}, headers=auth(w.admin)
    ).json()["code"]
    assert app_client.post(f"{E}/invitations/{code}/accept", headers=auth(u)).status_code == 200
    assert check(w, engine) == {
        (u.id, "2026-03", "BUS"): (11000.0, 627, 1),
        (u.id, "2026-03", "WALK"): (700.0, 0, 1),
    }
    assert march_co2(w) == 0.627
    # a new commute trip is added at once
    r = app_client.post(f"{E}/trips", json={"itinerary": commute_trip(5)}, headers=auth(u))
    assert r.status_code == 201
    second = r.json()["id"]
    assert check(w, engine)[(u.id, "2026-03", "BUS")] == (22000.0, 1254, 2)
    assert march_co2(w) == 1.254
    # a deleted trip leaves them
    assert app_client.delete(f"{E}/trips/{second}", headers=auth(u)).status_code == 200
    assert check(w, engine)[(u.id, "2026-03", "BUS")] == (11000.0, 627, 1)
    assert march_co2(w) == 0.627
    # revoked: nothing of theirs is kept; granted again: all back
    assert app_client.delete(f"{E}/me/consents/{w.id}", headers=auth(u)).status_code == 200
    assert check(w, engine) == {}
    assert march_co2(w) == 0.0
    code = app_client.post(
        f"{E}/companies/{w.id}/invitations", json={}, headers=auth(w.admin)
    ).json()["code"]
    assert app_client.post(f"{E}/invitations/{code}/accept", headers=auth(u)).status_code == 200
    assert check(w, engine)[(u.id, "2026-03", "BUS")] == (11000.0, 627, 1)
    assert march_co2(w) == 0.627


def test_each_company_its_own_site(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    """One employee of two companies: a trip counts where one of its ends is near the site."""
    engine = services_of(app_client).emissions.engine
    near, far = World(app_client, make_user, auth), World(app_client, make_user, auth)
    r = app_client.post(
        f"{E}/companies",
        json={"name": "Elsewhere Ltd", "site": {"lat": 42.342, "lon": SITE["lon"]}},
        headers=auth(far.admin),
    )
    far.id = r.json()["id"]
    u = near.employee()
    code = app_client.post(
        f"{E}/companies/{far.id}/invitations", json={}, headers=auth(far.admin)
    ).json()["code"]
    assert app_client.post(f"{E}/invitations/{code}/accept", headers=auth(u)).status_code == 200
    near.trip(u, commute_trip(3))  # ends at the first site
    near.trip(u, elsewhere(4))  # ends at the second
    assert check(near, engine) == {
        (u.id, "2026-03", "BUS"): (11000.0, 627, 1),
        (u.id, "2026-03", "WALK"): (700.0, 0, 1),
    }
    assert check(far, engine) == {
        (u.id, "2026-03", "BUS"): (5000.0, 285, 1),
        (u.id, "2026-03", "WALK"): (300.0, 0, 1),
    }
    assert march_co2(near) == 0.627 and march_co2(far) == 0.285


def test_trip_without_ends_never_counts(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    engine = services_of(app_client).emissions.engine
    w = World(app_client, make_user, auth)
    u = w.employee()
    trip = TakenTrip(
        user_id=u.id,
        fingerprint="no-ends",
        month="2026-03",
        started_at=MARCH_3,
        ended_at=MARCH_3,
        distance_m=11000.0,
        co2_g=627,
        car_distance_m=0.0,
        car_co2_g=0,
        legs=[{"mode": "BUS", "distance": 11000.0, "co2": 627}],
        factors="test",
    )
    store.insert_taken_trip(engine, trip, None)
    assert check(w, engine) == {}


def test_migration_backfills_recorded_trips(empty_database_url: str) -> None:
    """e0003 fills the totals from the trip-mode rows already there (ends near the site, of
    employees consenting now; rows without ends never count)."""
    engine = db.create_db_engine(empty_database_url)
    try:
        store.upgrade(engine, "e0002_companies")
        company = Company(name="C", admin_user_id="a", site_lat=42.4, site_lon=141.0)
        trip = uuid.uuid4()
        with engine.begin() as conn:
            conn.execute(
                Company.__table__.insert().values(  # type: ignore[attr-defined]
                    id=company.id,
                    name="C",
                    admin_user_id="a",
                    site_lat=42.4,
                    site_lon=141.0,
                    created_at=company.created_at,
                )
            )
            for user, revoked in (("in", None), ("gone", company.created_at)):
                conn.execute(
                    Consent.__table__.insert().values(  # type: ignore[attr-defined]
                        id=uuid.uuid4(),
                        company_id=company.id,
                        user_id=user,
                        granted_at=company.created_at,
                        revoked_at=revoked,
                    )
                )
            rows = [
                ("in", "BUS", 11000.0, 627, (42.3, 141.0, 42.3995, 141.0)),
                ("in", "BUS", 9000.0, 513, (42.399, 141.001, 42.32, 141.0)),
                ("in", "BUS", 5000.0, 285, (42.3, 141.0, 42.342, 141.0)),  # elsewhere
                ("in", "BUS", 7000.0, 399, (None, None, None, None)),  # ends unknown
                ("gone", "BUS", 11000.0, 627, (42.3, 141.0, 42.3995, 141.0)),
            ]
            for user, mode, dist, g, (fa, fo, ta, to) in rows:
                conn.execute(
                    TripMode.__table__.insert().values(  # type: ignore[attr-defined]
                        trip_id=trip,
                        user_id=user,
                        month="2026-03",
                        mode=mode,
                        distance_m=dist,
                        co2_g=g,
                        from_lat=fa,
                        from_lon=fo,
                        to_lat=ta,
                        to_lon=to,
                    )
                )
        store.upgrade(engine)
        assert totals(engine, company.id) == {("in", "2026-03", "BUS"): (20000.0, 1140, 2)}
        assert rebuilt(engine, company.id) == totals(engine, company.id)
    finally:
        engine.dispose()
