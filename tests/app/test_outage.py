"""Backend outages (issue #10): Redis or the database away answers 503 with ``Retry-After``,
never 500, and no booking is left pending for good. The Redis of these tests is their own
(``redis-server`` on its own port, stopped and started again); the database is a fresh one on
the real PostgreSQL whose connections are killed under the app."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis
import redis.exceptions as rx
import sqlalchemy.exc as sx
from fastapi.testclient import TestClient

from app.errors import backend_outage
from tests.app.conftest import ZONE, A, B, services_of
from tests.conftest import PG_ADMIN_URL, OwnRedis


def test_what_counts_as_an_outage() -> None:
    assert backend_outage(rx.ConnectionError("Error 111 connecting to 127.0.0.1:6379."))
    assert backend_outage(rx.TimeoutError("Timeout reading from socket"))
    lost = sx.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert backend_outage(lost)
    try:
        try:
            raise rx.ConnectionError("Connection reset by peer")
        except rx.ConnectionError as inner:
            raise RuntimeError("while booking") from inner
    except RuntimeError as outer:
        assert backend_outage(outer)
    # Bugs are not outages: they stay 500s.
    assert not backend_outage(sx.OperationalError("SELECT", {}, Exception("no such table: x")))
    assert not backend_outage(sx.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not backend_outage(rx.ResponseError("WRONGTYPE Operation against a key"))
    assert not backend_outage(KeyError("zone_id"))


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    name = f"tsunagu_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup_zone(c: TestClient, h: dict[str, str]) -> None:
    r = c.post("/api/v1/fleet/zones", json=ZONE, headers=h)
    assert r.status_code == 201, r.text
    r = c.post(
        "/api/v1/fleet/vehicles",
        json={
            "vehicle_id": "van-1",
            "zone_id": ZONE["zone_id"],
            "depot": A,
            "shift_end": time.time() + 8 * 3600,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text


RIDE = {"origin": A, "destination": B}


@pytest.mark.postgres
@pytest.mark.redis
def test_redis_restart_answers_503_and_leaves_nothing_pending(
    own_redis: OwnRedis,
    fresh_pg: str,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    c = make_app_client(
        database_url=fresh_pg,
        redis_url=own_redis.url,
        dispatch_reply_timeout_s=5.0,
        dispatch_lease_ttl_s=10.0,
        dispatch_reopt_interval_s=0.0,
    )
    staff = auth(make_user(roles=("dispatcher",), client=c), c)
    rider = make_user(client=c)
    h = auth(rider, c)
    _setup_zone(c, staff)
    r = c.post("/api/v1/rides", json={"request": RIDE}, headers=h)
    assert r.status_code == 201, r.text
    booked = {r.json()["ride_id"]}

    own_redis.stop()
    statuses = []
    for _ in range(3):
        r = c.post("/api/v1/rides", json={"request": RIDE}, headers=h)
        statuses.append(r.status_code)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "2"
        assert r.json()["error"]["code"] in ("backend_unavailable", "dispatch_busy")
    own_redis.start()

    # Back: bookings go through again (the worker re-takes its zone within its lease).
    deadline = time.monotonic() + 60
    while True:
        r = c.post("/api/v1/rides", json={"request": RIDE}, headers=h)
        if r.status_code == 201:
            booked.add(r.json()["ride_id"])
            break
        assert r.status_code in (202, 503), r.text
        if r.status_code == 202:
            booked.add(r.json()["request_id"])
        assert time.monotonic() < deadline, "bookings did not resume after Redis came back"
        time.sleep(0.5)
    # Every booking the rider was told of is there exactly once, none pending.
    deadline = time.monotonic() + 60
    while True:
        rides = c.get("/api/v1/rides", headers=h).json()["rides"]
        if all(x["status"] != "pending" for x in rides):
            break
        assert time.monotonic() < deadline, rides
        time.sleep(0.5)
    ids = [x["ride_id"] for x in rides]
    assert sorted(ids) == sorted(set(ids))
    assert booked <= set(ids)
    pending = redis.Redis.from_url(own_redis.url).hgetall(
        f"{services_of(c).settings.redis_prefix}dispatch.pending"
    )
    assert pending == {}


@pytest.mark.postgres
def test_database_connections_dropped_answer_503_or_succeed(
    fresh_pg: str,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    c = make_app_client(database_url=fresh_pg, dispatch_reopt_interval_s=0.0)
    staff = auth(make_user(roles=("dispatcher",), client=c), c)
    h = auth(make_user(client=c), c)
    _setup_zone(c, staff)
    name = fresh_pg.rsplit("/", 1)[1]
    codes = []
    for _ in range(5):
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        r = c.post("/api/v1/rides", json={"request": RIDE}, headers=h)
        codes.append(r.status_code)
        if r.status_code == 503:
            assert r.headers["Retry-After"]
        r = c.get("/api/v1/rides", headers=h)
        codes.append(r.status_code)
    assert all(code in (200, 201, 503) for code in codes), codes
    # And it serves again without a restart.
    assert c.get("/api/v1/rides", headers=h).status_code == 200


@pytest.mark.postgres
@pytest.mark.redis
def test_the_pending_sweep_leaves_no_booking_pending_for_good(
    own_redis: OwnRedis,
    fresh_pg: str,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    """Records an outage left behind (their removal lost after the owner's ack): a saved ride
    or a recorded refusal only loses its record; a handled booking with neither is refused
    ``outcome_lost`` and its rider told; a booking still queued is left to its owner."""
    import json

    from app.dispatch.cluster_gateway import ClusterGateway

    c = make_app_client(
        database_url=fresh_pg, redis_url=own_redis.url, dispatch_reopt_interval_s=0.0
    )
    staff = auth(make_user(roles=("dispatcher",), client=c), c)
    rider = make_user(client=c)
    h = auth(rider, c)
    _setup_zone(c, staff)
    r = c.post("/api/v1/rides", json={"request": RIDE}, headers=h)
    assert r.status_code == 201, r.text
    booked = r.json()["ride_id"]
    g = services_of(c).dispatch
    assert isinstance(g, ClusterGateway)
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    key = g._key("pending")
    old = g.now() - 60

    def record(rid: str, zone: str = str(ZONE["zone_id"])) -> str:
        ride = {
            "ride_id": rid,
            "request_id": rid,
            "status": "pending",
            "zone_id": zone,
            "booked_at": old,
        }
        return json.dumps({"user_id": rider.id, "ride": ride})

    client.hset(key, booked, record(booked))  # saved: the record only lingered
    client.hset(key, "refused-1", record("refused-1"))
    client.set(g._key("refused.refused-1"), json.dumps({"rejected": "no_vehicle_available"}))
    client.hset(key, "lost-1", record("lost-1"))  # handled (stream drained), outcome lost
    client.xadd(g.bus._key("dispatch.zone.ghost"), {"d": "{}"})  # queued, never read
    client.hset(key, "queued-1", record("queued-1", "ghost"))
    events = c.portal.call(services_of(c).bus.subscribe, [f"user.{rider.id}.ride"])  # type: ignore[union-attr]

    assert c.portal.call(g.sweep_pending) == 3  # type: ignore[union-attr]
    assert sorted(client.hkeys(key)) == ["queued-1"]
    lost = c.get("/api/v1/rides/lost-1", headers=h).json()
    assert lost["status"] == "rejected" and lost["reason"] == "outcome_lost"
    ev = c.portal.call(events.get, 30.0)  # type: ignore[union-attr]
    assert ev is not None and ev.data == {
        "type": "rejected",
        "request_id": "lost-1",
        "reason": "outcome_lost",
    }
    assert c.get(f"/api/v1/rides/{booked}", headers=h).json()["status"] == "assigned"
    # Fresh records are never judged: an outcome is written milliseconds after the ack.
    client.hset(key, "fresh-1", record("fresh-1").replace(str(old), str(g.now())))
    assert c.portal.call(g.sweep_pending) == 0  # type: ignore[union-attr]
    client.close()
