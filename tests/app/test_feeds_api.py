"""The feed API over HTTP: roles, upload → report → publish → served, broken uploads, limits."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app import db
from tests.app.conftest import TestUser, assert_error, both_backends
from tests.app.test_feeds_samples import (
    V2_STOP_NAME,
    broken_csv_rows,
    cp932_stops,
    not_a_zip,
    sample_v2,
    too_many_entries,
    traversal_zip,
    undecodable_stops,
    with_errors,
    without_stops,
    zip_bomb,
)

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def operator(make_user: Callable[..., TestUser]) -> TestUser:
    return make_user(roles=("operator",))


@pytest.fixture
def op(operator: TestUser, auth: Auth) -> dict[str, str]:
    return auth(operator)


def _upload(client: TestClient, headers: dict[str, str], feed_id: str, path: Path) -> Any:
    with path.open("rb") as f:
        return client.post(
            f"/api/v1/feeds/{feed_id}/versions",
            files={"file": (path.name, f, "application/zip")},
            headers=headers,
        )


def _stop_names(client: TestClient) -> set[str]:
    gj = client.get("/api/v1/network/geojson").json()
    return {f["properties"]["name"] for f in gj["features"] if f["properties"]["kind"] == "stop"}


@pytest.fixture
def no_feed_versions(database_url: str) -> Iterator[None]:
    """The shared PostgreSQL database holds no feed version before or after the test (app
    starts of later tests must not find this test's published feed)."""

    def wipe() -> None:
        if database_url:
            engine = db.create_db_engine(database_url)
            db.upgrade_database(engine)
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM feed_versions"))
            engine.dispose()

    wipe()
    yield
    wipe()


@both_backends
def test_upload_report_publish_serve_rollback(
    no_feed_versions: None,
    app_client: TestClient,
    op: dict[str, str],
    gtfs_dir: Path,
    tmp_path: Path,
) -> None:
    c = app_client
    assert c.get("/api/v1/network").json()["published"] == []
    r = _upload(c, op, "sample", gtfs_dir / "google_sample.zip")
    assert r.status_code == 201, r.text
    v1 = r.json()
    assert v1["status"] == "valid" and v1["error_count"] == 0 and v1["feed_id"] == "sample"
    assert v1["uploaded_by"].endswith("@example.org")

    rep = c.get(f"/api/v1/feeds/sample/versions/{v1['id']}/report", headers=op)
    assert rep.status_code == 200
    assert rep.json()["report"]["summary"]["counts"]["errors"] == 0
    assert any(n["code"] == "expired_calendar" for n in rep.json()["report"]["notices"])

    r = c.post(f"/api/v1/feeds/sample/versions/{v1['id']}/publish", headers=op)
    assert r.status_code == 200, r.text
    info = c.get("/api/v1/network").json()
    assert info["published"][0]["version_id"] == v1["id"]
    assert info["counts"]["stops"] == 9 and info["counts"]["trips"] > 0
    assert info["service_start"] <= info["service_date"] <= info["service_end"]
    assert info["demo_service_date"] == info["service_date"]
    assert "Furnace Creek Resort (Demo)" in _stop_names(c)
    r = c.get("/api/v1/network/geojson")
    gj = r.json()
    assert gj["type"] == "FeatureCollection"
    assert any(f["geometry"]["type"] == "MultiLineString" for f in gj["features"])
    # The ETag names the published versions: 304 until the next publish.
    etag = r.headers["etag"]
    assert c.get("/api/v1/network/geojson", headers={"If-None-Match": etag}).status_code == 304

    v2 = _upload(c, op, "sample", sample_v2(gtfs_dir, tmp_path)).json()
    c.post(f"/api/v1/feeds/sample/versions/{v2['id']}/publish", headers=op)
    assert V2_STOP_NAME in _stop_names(c)
    assert c.get("/api/v1/network/geojson", headers={"If-None-Match": etag}).status_code == 200

    feeds = c.get("/api/v1/feeds", headers=op).json()["feeds"]
    assert feeds == [
        {
            "feed_id": "sample",
            "network": "sample",
            "versions": 2,
            "latest_version": v2["id"],
            "published_version": v2["id"],
        }
    ]
    versions = c.get("/api/v1/feeds/sample/versions", headers=op).json()["versions"]
    assert [(v["id"], v["status"]) for v in versions] == [
        (v2["id"], "published"),
        (v1["id"], "archived"),
    ]

    r = c.post("/api/v1/feeds/sample/rollback", headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["network"]["published"][0]["version_id"] == v1["id"]
    assert V2_STOP_NAME not in _stop_names(c)
    r = c.post("/api/v1/feeds/sample/rollback", json={"version_id": v2["id"]}, headers=op)
    assert r.status_code == 200
    assert V2_STOP_NAME in _stop_names(c)


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda g, t: not_a_zip(t), 422, "feed_unreadable:not_a_zip"),
        (lambda g, t: traversal_zip(t), 422, "feed_unreadable:unsafe_zip_entry"),
        (lambda g, t: zip_bomb(t), 422, "feed_unreadable:zip_bomb"),
        (lambda g, t: too_many_entries(t), 422, "feed_unreadable:too_many_zip_entries"),
        (undecodable_stops, 422, "feed_unreadable:invalid_encoding"),
        (without_stops, 201, "missing_required_file"),
        (with_errors, 201, "foreign_key_violation"),
        (broken_csv_rows, 201, "csv_parsing_failed"),
    ],
    ids=[
        "not-a-zip",
        "dotdot-entry",
        "zip-bomb",
        "too-many-entries",
        "undecodable",
        "missing-stops",
        "error-notices",
        "broken-csv-rows",
    ],
)
def test_broken_uploads_never_replace_the_served_network(
    app_client: TestClient,
    op: dict[str, str],
    gtfs_dir: Path,
    tmp_path: Path,
    make: Callable[[Path, Path], Path],
    status: int,
    code: str,
) -> None:
    c = app_client
    good = _upload(c, op, "sample", gtfs_dir / "google_sample.zip").json()
    c.post(f"/api/v1/feeds/sample/versions/{good['id']}/publish", headers=op)
    before = c.get("/api/v1/network").json()

    r = _upload(c, op, "sample", make(gtfs_dir, tmp_path))
    if status != 201:
        # Unreadable: a clear 4xx naming the reader's reason, the version kept as invalid.
        top, _, reason = code.partition(":")
        err = assert_error(r, status, top)
        assert err["details"]["code"] == reason
        bad_id = err["details"]["version"]["id"]
    else:
        # Readable but broken: a validation report whose ERROR notice blocks publishing.
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "invalid" and r.json()["error_count"] > 0
        bad_id = r.json()["id"]
    rep = c.get(f"/api/v1/feeds/sample/versions/{bad_id}/report", headers=op)
    assert rep.status_code == 200 and rep.json()["version"]["status"] == "invalid"
    if status == 201:
        notices = {n["code"]: n for n in rep.json()["report"]["notices"]}
        assert notices[code]["severity"] == "ERROR", notices
    err = assert_error(c.post(f"/api/v1/feeds/sample/versions/{bad_id}/publish", headers=op), 409)
    assert err["code"] in ("feed_has_errors", "feed_not_publishable")
    assert err["details"]["status"] == "invalid"
    after = c.get("/api/v1/network").json()
    assert after["published"] == before["published"]
    assert after["generation"] == before["generation"]


def test_roles_and_bad_requests(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Auth,
    op: dict[str, str],
    gtfs_dir: Path,
) -> None:
    c = app_client
    resident = auth(make_user(roles=("resident",)))
    path = gtfs_dir / "google_sample.zip"
    assert_error(_upload(c, resident, "sample", path), 403, "forbidden")
    assert_error(_upload(c, {}, "sample", path), 401)
    assert_error(c.get("/api/v1/feeds", headers=resident), 403, "forbidden")
    assert_error(c.post("/api/v1/feeds/sample/rollback", headers=resident), 403)
    assert_error(c.post("/api/v1/feeds/sample/versions/1/publish", headers=resident), 403)
    # Admin passes every role check.
    admin = auth(make_user(roles=("admin",)))
    assert c.get("/api/v1/feeds", headers=admin).status_code == 200

    assert_error(_upload(c, op, "bad id!", path), 422, "invalid_feed_id")
    assert_error(c.post("/api/v1/feeds/sample/versions/999/publish", headers=op), 404)
    assert_error(c.get("/api/v1/feeds/sample/versions/999/report", headers=op), 404)
    assert_error(c.get("/api/v1/feeds/sample/versions/abc/report", headers=op), 422)
    assert_error(c.post("/api/v1/feeds/sample/rollback", headers=op), 409, "nothing_to_roll_back")
    # No file field, and an empty file.
    assert_error(c.post("/api/v1/feeds/sample/versions", headers=op), 422)
    r = c.post(
        "/api/v1/feeds/sample/versions",
        files={"file": ("empty.zip", b"", "application/zip")},
        headers=op,
    )
    assert_error(r, 422, "empty_upload")


@both_backends
@pytest.mark.parametrize("vid", [2**31, 2**63, -(2**31) - 1])
def test_version_ids_beyond_the_database_integer_are_422(
    app_client: TestClient, op: dict[str, str], vid: int
) -> None:
    """#10: a version id past the database's 32-bit integer was a 500 (PostgreSQL
    NumericValueOutOfRange, SQLite OverflowError); it is refused like any bad id."""
    c = app_client
    assert_error(c.get(f"/api/v1/feeds/sample/versions/{vid}", headers=op), 422)
    assert_error(c.get(f"/api/v1/feeds/sample/versions/{vid}/report", headers=op), 422)
    assert_error(c.post(f"/api/v1/feeds/sample/versions/{vid}/publish", headers=op), 422)
    r = c.post("/api/v1/feeds/sample/rollback", json={"version_id": vid}, headers=op)
    assert_error(r, 422, "validation_error")
    # The largest 32-bit id is merely unknown.
    assert_error(c.get(f"/api/v1/feeds/sample/versions/{2**31 - 1}", headers=op), 404)


def test_50mb_upload_is_413_over_the_limit(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
) -> None:
    c = make_app_client(max_upload_bytes=10_000_000)
    headers = auth(make_user(roles=("operator",), client=c), client=c)
    blob = os.urandom(50_000_000)
    r = c.post(
        "/api/v1/feeds/big/versions",
        files={"file": ("big.zip", blob, "application/zip")},
        headers=headers,
    )
    assert_error(r, 413, "payload_too_large")
    assert c.get("/api/v1/network").status_code == 200


def test_50mb_upload_under_the_limit_gets_a_report(
    app_client: TestClient, op: dict[str, str]
) -> None:
    blob = os.urandom(50_000_000)
    r = app_client.post(
        "/api/v1/feeds/big/versions",
        files={"file": ("big.zip", blob, "application/zip")},
        headers=op,
    )
    err = assert_error(r, 422, "feed_unreadable")
    assert err["details"]["code"] == "not_a_zip"
    assert err["details"]["version"]["size_bytes"] == 50_000_000


def test_a_publish_reaches_every_worker(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    gtfs_dir: Path,
) -> None:
    """Two app processes on one database: a publish through one is served by the other."""
    import time

    c1 = make_app_client(feeds_sync_interval_s=0.05)
    c2 = make_app_client(feeds_sync_interval_s=0.05)
    headers = auth(make_user(roles=("operator",), client=c1), client=c1)
    v = _upload(c1, headers, "sample", gtfs_dir / "google_sample.zip").json()
    assert c1.post(f"/api/v1/feeds/sample/versions/{v['id']}/publish", headers=headers).is_success
    deadline = time.monotonic() + 30  # liveness bound, not a speed claim
    while not c2.get("/api/v1/network").json()["published"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c2.get("/api/v1/network").json()["published"][0]["version_id"] == v["id"]


def test_lifecycle_events_reach_operator_consoles(
    app_client: TestClient, op: dict[str, str], gtfs_dir: Path
) -> None:
    from tests.app.conftest import services_of

    c = app_client
    bus = services_of(c).bus
    portal = c.portal
    assert portal is not None  # the client is started
    sub = portal.call(bus.subscribe, ["feeds.*"])
    v = _upload(c, op, "sample", gtfs_dir / "google_sample.zip").json()
    c.post(f"/api/v1/feeds/sample/versions/{v['id']}/publish", headers=op)
    first = portal.call(sub.get, 30.0)  # liveness bounds, not speed claims
    second = portal.call(sub.get, 30.0)
    portal.call(sub.close)
    assert first is not None and first.topic == "feeds.sample.version"
    assert first.data["id"] == v["id"] and first.data["status"] == "valid"
    assert second is not None and second.topic == "feeds.network"
    assert second.data["published"][0]["version_id"] == v["id"]


def test_publishing_under_concurrent_plan_queries_loses_none(
    app_client: TestClient, op: dict[str, str], gtfs_dir: Path, tmp_path: Path
) -> None:
    """Threads send /plan queries while an operator publishes v1 and v2 back and forth over
    HTTP: every query answers 200 with an itinerary, all from one version (never a mix)."""
    c = app_client
    v1 = _upload(c, op, "sample", gtfs_dir / "google_sample.zip").json()
    v2 = _upload(c, op, "sample", sample_v2(gtfs_dir, tmp_path)).json()
    assert c.post(f"/api/v1/feeds/sample/versions/{v1['id']}/publish", headers=op).is_success
    names = {"Furnace Creek Resort (Demo)": v1["id"], V2_STOP_NAME: v2["id"]}
    q = {"fromPlace": "FUR_CREEK_RES", "toPlace": "BULLFROG", "date": "2008-01-07", "time": "10:30"}
    assert c.get("/api/v1/plan", params=q).status_code == 200  # warm-up (JIT, planner)

    stop = threading.Event()
    sent = [0] * 3
    answers: list[list[str]] = [[] for _ in sent]
    failures: list[str] = []

    def query(k: int) -> None:
        while not stop.is_set():
            sent[k] += 1
            try:
                r = c.get("/api/v1/plan", params=q)
            except Exception as exc:  # a lost query is what this test is about
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if r.status_code != 200:
                failures.append(f"{r.status_code}: {r.text[:200]}")
                continue
            plan = r.json()["plan"]
            its = plan["itineraries"]
            name = plan["from"]["name"]
            if name not in names or not its or its[0]["legs"][0]["from"]["name"] != name:
                failures.append(f"inconsistent answer: {name!r}, {len(its)} itineraries")
                continue
            answers[k].append(name)

    def seen(name: str, marks: list[int]) -> bool:
        """Has some query answered from ``name``'s version since ``marks`` (answer counts)?"""
        return any(name in a[n:] for a, n in zip(answers, marks, strict=True))

    threads = [threading.Thread(target=query, args=(k,), daemon=True) for k in range(len(sent))]
    for t in threads:
        t.start()
    try:
        for i in range(4):
            target = v2 if i % 2 == 0 else v1
            marks = [len(a) for a in answers]
            r = c.post(f"/api/v1/feeds/sample/versions/{target['id']}/publish", headers=op)
            assert r.status_code == 200, r.text
            want = next(n for n, vid in names.items() if vid == target["id"])
            # Liveness only (no speed claim): some query answers from the new version.
            deadline = time.monotonic() + 120
            while not seen(want, marks) and not failures and time.monotonic() < deadline:
                time.sleep(0.01)
            assert seen(want, marks), f"no query answered from version {target['id']}"
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures, failures[:5]
    done = sum(len(a) for a in answers)
    assert done == sum(sent) and done > 4  # every query sent was answered
    assert {n for a in answers for n in a} == set(names)


def test_shift_jis_upload_is_read_and_reported(
    app_client: TestClient, op: dict[str, str], gtfs_dir: Path, tmp_path: Path
) -> None:
    """A stops.txt in Shift_JIS (CP932), as some Japanese feeds ship: decoded, a WARNING
    names the file, the version publishes and serves the Japanese name."""
    c = app_client
    r = _upload(c, op, "sjis", cp932_stops(gtfs_dir, tmp_path))
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["status"] == "valid" and v["error_count"] == 0
    rep = c.get(f"/api/v1/feeds/sjis/versions/{v['id']}/report", headers=op).json()["report"]
    enc = next(n for n in rep["notices"] if n["code"] == "unusual_encoding")
    assert enc["severity"] == "WARNING"
    assert enc["sampleNotices"][0] == {"filename": "stops.txt", "encoding": "cp932"}
    assert c.post(f"/api/v1/feeds/sjis/versions/{v['id']}/publish", headers=op).is_success
    assert "室蘭駅前" in _stop_names(c)
