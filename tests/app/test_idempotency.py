"""``Idempotency-Key`` on state-changing calls (``app.idempotency``), on SQLite and the real
PostgreSQL, in one process and scaled out: the same quote booked ten times at once with one key
books one ride and answers ten identical 201s; with ten keys one 201 and the dispatcher's
refusals; a key reused with another body is 422; a retried cancel replays its 200; keys are
per user; 5xx answers are not kept; an attempt still running makes a retry wait, then 409; a
crashed attempt's key is taken over; expired keys are swept; auth endpoints and
``POST /trips`` are left alone; the OpenAPI schema documents the header."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import create_db_engine
from app.idempotency import claim, covered, record_id, request_fingerprint, sweep_expired
from app.models.dispatch import RideRecord, ZoneStateRecord
from app.models.idempotency import IdempotencyRecord
from tests.app.conftest import ZONE, A, B, assert_error, both_backends, services_of
from tests.app.test_dispatch_cluster import (  # noqa: F401 - fixtures used by name
    Cluster,
    add_fleet,
    cluster,
    fresh_pg_url,
    one_owner,
    staff_and_rider,
    warm_kernels,
)

RIDES = "/api/v1/rides"
Auth = Callable[..., dict[str, str]]


@pytest.fixture(autouse=True)
def forget_saved_state(database_url: str) -> Iterator[None]:
    """The session's PostgreSQL database outlives a test, and every app start restores the
    saved zones and rides: forget them (and the keys) after each test."""
    yield
    if database_url:
        engine = create_db_engine(database_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.delete(RideRecord))
                conn.execute(sa.delete(ZoneStateRecord))
                conn.execute(sa.delete(IdempotencyRecord))
        finally:
            engine.dispose()


def setup_fleet(client: TestClient, make_user: Callable[..., Any], auth: Auth) -> None:
    h = auth(make_user(roles=("dispatcher",), client=client), client)
    r = client.post("/api/v1/fleet/zones", json=ZONE, headers=h)
    assert r.status_code == 201, r.text
    r = client.post(
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


def quote(client: TestClient, h: dict[str, str]) -> str:
    q = client.post(f"{RIDES}/quote", json={"origin": A, "destination": B}, headers=h)
    assert q.status_code == 200, q.text
    return str(q.json()["quote_id"])


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; their results in call order."""
    gate = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        gate.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def key(h: dict[str, str], k: str) -> dict[str, str]:
    return {**h, "Idempotency-Key": k}


def keys_in(client: TestClient) -> int:
    with services_of(client).engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(IdempotencyRecord)).scalar_one()
        )


# --- one process ----------------------------------------------------------------------------
@both_backends
def test_one_quote_booked_ten_times_at_once_with_one_key(
    app_client: TestClient, make_user: Callable[..., Any], auth: Auth
) -> None:
    setup_fleet(app_client, make_user, auth)
    h = auth(make_user())
    body = {"quote_id": quote(app_client, h)}
    answers = at_once([lambda: app_client.post(RIDES, json=body, headers=key(h, "book-1"))] * 10)
    assert [r.status_code for r in answers] == [201] * 10, [r.text for r in answers]
    assert len({r.content for r in answers}) == 1  # byte for byte the same answer
    replayed = [r.headers.get("idempotent-replayed") for r in answers]
    assert replayed.count("true") == 9 and replayed.count(None) == 1
    assert all(r.headers["content-type"] == "application/json" for r in answers)
    rides = app_client.get(RIDES, headers=h).json()["rides"]
    assert [x["ride_id"] for x in rides] == [answers[0].json()["ride_id"]]
    # A later retry, with the JSON spelled differently, is the same request: replayed.
    again = app_client.post(
        RIDES,
        content=f'{{ "quote_id" : "{body["quote_id"]}" }}',
        headers={**key(h, "book-1"), "content-type": "application/json"},
    )
    assert again.status_code == 201 and again.content == answers[0].content
    assert again.headers["idempotent-replayed"] == "true"


@both_backends
def test_one_quote_booked_ten_times_with_ten_keys(
    app_client: TestClient, make_user: Callable[..., Any], auth: Auth
) -> None:
    setup_fleet(app_client, make_user, auth)
    h = auth(make_user())
    body = {"quote_id": quote(app_client, h)}
    answers = at_once(
        [partial(app_client.post, RIDES, json=body, headers=key(h, f"k-{k}")) for k in range(10)]
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [404] * 9, [r.text for r in answers]
    for r in answers:
        if r.status_code == 404:
            assert_error(r, 404, "quote_unknown")
    assert len(app_client.get(RIDES, headers=h).json()["rides"]) == 1
    # Each key replays its own answer: the refusals too.
    for k, r in enumerate(answers):
        again = app_client.post(RIDES, json=body, headers=key(h, f"k-{k}"))
        assert (again.status_code, again.content) == (r.status_code, r.content)
        assert again.headers["idempotent-replayed"] == "true"


@both_backends
def test_key_reused_with_another_body_and_bad_keys(
    app_client: TestClient, make_user: Callable[..., Any], auth: Auth
) -> None:
    setup_fleet(app_client, make_user, auth)
    h = auth(make_user())
    first = app_client.post(RIDES, json={"quote_id": quote(app_client, h)}, headers=key(h, "k"))
    assert first.status_code == 201, first.text
    other = app_client.post(RIDES, json={"quote_id": quote(app_client, h)}, headers=key(h, "k"))
    assert_error(other, 422, "idempotency_key_reused")
    # Another query string is another request too.
    r = app_client.post(f"{RIDES}?x=1", json={"quote_id": "q"}, headers=key(h, "k"))
    assert_error(r, 422, "idempotency_key_reused")
    # The same key on another path is another key.
    r = app_client.post(f"{RIDES}/quote", json={"origin": A, "destination": B}, headers=key(h, "k"))
    assert r.status_code == 200, r.text
    # 1-255 visible ASCII characters, one value.
    for bad in ["a b", "x" * 256, "tab\tkey"]:
        assert_error(app_client.post(RIDES, json={}, headers=key(h, bad)), 400)
    two = app_client.post(
        RIDES, json={}, headers=[*h.items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    )
    assert_error(two, 400, "invalid_idempotency_key")
    assert app_client.post(RIDES, json={}, headers=key(h, "x" * 255)).status_code == 422
    assert app_client.post(RIDES, json={}, headers=key(h, "~!")).status_code == 422
    # Without a valid token nothing is recorded: the route answers 401.
    r = app_client.post(RIDES, json={}, headers={"Idempotency-Key": "anon"})
    assert_error(r, 401, "token_missing")
    r = app_client.post(
        RIDES, json={}, headers={"Idempotency-Key": "anon", "Authorization": "Bearer nope"}
    )
    assert_error(r, 401, "token_invalid")


@both_backends
def test_cancel_retried_with_its_key_replays_200(
    app_client: TestClient, make_user: Callable[..., Any], auth: Auth
) -> None:
    setup_fleet(app_client, make_user, auth)
    h = auth(make_user())
    ride = app_client.post(RIDES, json={"quote_id": quote(app_client, h)}, headers=h).json()
    url = f"{RIDES}/{ride['ride_id']}"
    gone = app_client.delete(url, headers=key(h, "cancel-1"))
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled", gone.text
    again = app_client.delete(url, headers=key(h, "cancel-1"))
    assert again.status_code == 200 and again.content == gone.content
    assert again.headers["idempotent-replayed"] == "true"
    # Without the key (or with another) the cancel really runs again: 409.
    assert_error(app_client.delete(url, headers=h), 409, "not_cancellable")
    assert_error(app_client.delete(url, headers=key(h, "cancel-2")), 409, "not_cancellable")


@both_backends
def test_keys_are_per_user(
    app_client: TestClient, make_user: Callable[..., Any], auth: Auth
) -> None:
    setup_fleet(app_client, make_user, auth)
    alice, bob = make_user(), make_user()
    ha, hb = auth(alice), auth(bob)
    qa = quote(app_client, ha)
    mine = app_client.post(RIDES, json={"quote_id": qa}, headers=key(ha, "shared"))
    assert mine.status_code == 201, mine.text
    # Bob's same key and body is his own request: Alice's quote is not his (404), no replay.
    theirs = app_client.post(RIDES, json={"quote_id": qa}, headers=key(hb, "shared"))
    assert_error(theirs, 404)
    assert "idempotent-replayed" not in theirs.headers
    # A new token of Alice's (another session) still finds her key.
    again = app_client.post(RIDES, json={"quote_id": qa}, headers=key(auth(alice), "shared"))
    assert again.status_code == 201 and again.content == mine.content
    assert app_client.get(RIDES, headers=hb).json()["rides"] == []


@both_backends
def test_server_errors_are_not_kept(
    app_client: TestClient, make_user: Callable[..., Any], auth: Auth
) -> None:
    setup_fleet(app_client, make_user, auth)
    h = auth(make_user())
    body = {"quote_id": quote(app_client, h)}
    services = services_of(app_client)
    gateway, services.dispatch = services.dispatch, None
    try:
        assert_error(app_client.post(RIDES, json=body, headers=key(h, "k")), 503, "unavailable")
    finally:
        services.dispatch = gateway
    assert keys_in(app_client) == 0
    r = app_client.post(RIDES, json=body, headers=key(h, "k"))  # the retry succeeds
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers


@both_backends
def test_attempt_in_flight_then_crashed(
    make_app_client: Callable[..., TestClient], make_user: Callable[..., Any], auth: Auth
) -> None:
    client = make_app_client(idempotency_wait_s=0.3)
    setup_fleet(client, make_user, auth)
    user = make_user(client=client)
    h = auth(user, client)
    body = {"quote_id": quote(client, h)}
    engine = services_of(client).engine
    rid = record_id(user.id, "POST", RIDES, "k")
    fp = request_fingerprint(
        b"", "application/json", b'{"quote_id": "%s"}' % body["quote_id"].encode()
    )
    got = claim(
        engine,
        rid=rid,
        principal=user.id,
        method="POST",
        path=RIDES,
        key="k",
        fingerprint=fp,
        ttl_s=60.0,
    )
    assert got.kind == "claimed"
    # Another process is still on it: the retry waits, then 409 with Retry-After.
    r = client.post(RIDES, json=body, headers=key(h, "k"))
    assert_error(r, 409, "request_in_progress")
    assert r.headers["retry-after"] == "1"
    # That process died (its hold ran out): the next retry takes the key over and runs.
    with engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        conn.execute(sa.update(IdempotencyRecord).values(locked_until=past))
    r = client.post(RIDES, json=body, headers=key(h, "k"))
    assert r.status_code == 201, r.text
    again = client.post(RIDES, json=body, headers=key(h, "k"))
    assert again.status_code == 201 and again.content == r.content


@both_backends
def test_expired_keys_are_ignored_and_swept(
    make_app_client: Callable[..., TestClient], make_user: Callable[..., Any], auth: Auth
) -> None:
    client = make_app_client(idempotency_ttl_s=0.5, idempotency_sweep_interval_s=0.2)
    setup_fleet(client, make_user, auth)
    h = auth(make_user(client=client), client)
    first = client.post(RIDES, json={"quote_id": quote(client, h)}, headers=key(h, "k"))
    assert first.status_code == 201 and keys_in(client) == 1
    # The sweeper of the running app deletes it once expired.
    end = time.monotonic() + 30
    while keys_in(client) and time.monotonic() < end:
        time.sleep(0.05)
    assert keys_in(client) == 0
    # Expired, the key is free for another request.
    second = client.post(RIDES, json={"quote_id": quote(client, h)}, headers=key(h, "k"))
    assert second.status_code == 201 and second.json()["ride_id"] != first.json()["ride_id"]
    # An expired row not swept yet is ignored too; sweep_expired deletes only expired rows.
    engine = services_of(client).engine
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    with engine.begin() as conn:
        conn.execute(sa.update(IdempotencyRecord).values(expires_at=later))
    assert sweep_expired(engine) == 0
    assert sweep_expired(engine, later + dt.timedelta(seconds=1)) == 1
    assert keys_in(client) == 0


@both_backends
def test_auth_endpoints_and_trips_are_left_alone(
    app_client: TestClient, make_user: Callable[..., Any], auth: Auth
) -> None:
    user = make_user()
    login = {"email": user.email, "password": user.password}
    one = app_client.post("/api/v1/auth/login", json=login, headers={"Idempotency-Key": "l"})
    two = app_client.post("/api/v1/auth/login", json=login, headers={"Idempotency-Key": "l"})
    assert one.status_code == two.status_code == 200
    assert one.json()["access_token"] != two.json()["access_token"]  # never stored, replayed
    assert "idempotent-replayed" not in two.headers
    assert keys_in(app_client) == 0
    assert covered("POST", "/api/v1/rides", "/api/v1")
    assert covered("DELETE", "/api/v1/trips/x", "/api/v1")
    assert not covered("POST", "/api/v1/trips", "/api/v1")  # its own key handling
    assert not covered("POST", "/api/v1/auth/refresh", "/api/v1")
    assert not covered("GET", "/api/v1/rides", "/api/v1")
    assert not covered("POST", "/other", "/api/v1")


def test_openapi_documents_the_header(app_client: TestClient) -> None:
    schema = app_client.get("/api/v1/openapi.json").json()
    param = schema["components"]["parameters"]["IdempotencyKey"]
    assert param["in"] == "header" and param["name"] == "Idempotency-Key"
    ref = {"$ref": "#/components/parameters/IdempotencyKey"}
    paths = schema["paths"]
    for path, method in [
        ("/api/v1/rides", "post"),
        ("/api/v1/rides/{ride_id}", "delete"),
        ("/api/v1/users/me", "patch"),
    ]:
        op = paths[path][method]
        assert ref in op["parameters"], (path, method)
        assert {"400", "409"} <= set(op["responses"])
    assert ref not in paths["/api/v1/auth/login"]["post"].get("parameters", [])
    assert ref not in paths["/api/v1/rides"]["get"].get("parameters", [])


# --- scaled out: two processes on PostgreSQL and Redis ------------------------------------
@pytest.mark.postgres
@pytest.mark.redis
def test_scaled_out_one_key_books_once_and_replays_everywhere(
    cluster: Cluster,  # noqa: F811
    make_user: Callable[..., Any],
    auth: Auth,
) -> None:
    a, b = cluster(), cluster()
    _, hboss, _ = staff_and_rider(a, make_user, auth)
    rider = make_user(client=a)
    hr = [auth(rider, a), auth(rider, b)]
    zid = f"z-{uuid.uuid4().hex[:6]}"
    add_fleet(a, hboss, zid)
    one_owner([a, b], zid)
    q = b.post(f"{RIDES}/quote", json={"origin": A, "destination": B}, headers=hr[1])
    assert q.status_code == 200, q.text
    body = {"quote_id": q.json()["quote_id"]}
    clients = [a, b] * 5
    answers = at_once(
        [
            partial(clients[i].post, RIDES, json=body, headers=key(hr[i % 2], "one"))
            for i in range(10)
        ]
    )
    assert [r.status_code for r in answers] == [201] * 10, [r.text for r in answers]
    assert len({r.content for r in answers}) == 1
    assert [r.headers.get("idempotent-replayed") for r in answers].count(None) == 1
    rides = a.get(RIDES, headers=hr[0]).json()["rides"]
    assert [x["ride_id"] for x in rides] == [answers[0].json()["ride_id"]]
    # A retried cancel, on either process, replays the first one's 200.
    url = f"{RIDES}/{answers[0].json()['ride_id']}"
    gone = b.delete(url, headers=key(hr[1], "cancel"))
    assert gone.status_code == 200, gone.text
    for c, h in ((a, hr[0]), (b, hr[1])):
        again = c.delete(url, headers=key(h, "cancel"))
        assert (again.status_code, again.content) == (200, gone.content)
    assert_error(a.delete(url, headers=hr[0]), 409, "not_cancellable")
    # The same key with another body, on the other process: 422.
    assert_error(a.post(RIDES, json={"quote_id": "x"}, headers=key(hr[0], "one")), 422)


@pytest.mark.postgres
@pytest.mark.redis
def test_scaled_out_ten_keys_book_one_ride(
    cluster: Cluster,  # noqa: F811
    make_user: Callable[..., Any],
    auth: Auth,
) -> None:
    a, b = cluster(), cluster()
    _, hboss, _ = staff_and_rider(a, make_user, auth)
    rider = make_user(client=a)
    hr = [auth(rider, a), auth(rider, b)]
    zid = f"z-{uuid.uuid4().hex[:6]}"
    add_fleet(a, hboss, zid)
    one_owner([a, b], zid)
    q = a.post(f"{RIDES}/quote", json={"origin": A, "destination": B}, headers=hr[0])
    body = {"quote_id": q.json()["quote_id"]}
    clients = [a, b] * 5
    answers = at_once(
        [
            partial(clients[i].post, RIDES, json=body, headers=key(hr[i % 2], f"k{i}"))
            for i in range(10)
        ]
    )
    # The cluster gateway books a quote once (the ride id is the quote's request id): a
    # second booking answers that ride again, or the refusal of a quote already used.
    ok = [r for r in answers if r.status_code == 201]
    assert ok and all(r.status_code in (201, 404) for r in answers), [r.text for r in answers]
    assert len({r.json()["ride_id"] for r in ok}) == 1
    assert len(a.get(RIDES, headers=hr[0]).json()["rides"]) == 1
    for i, r in enumerate(answers):
        again = clients[(i + 1) % 10].post(RIDES, json=body, headers=key(hr[(i + 1) % 2], f"k{i}"))
        assert (again.status_code, again.content) == (r.status_code, r.content)
