"""Backup and restore (issue #10): a populated instance (published and archived feed versions,
zones, booked and cancelled rides, trips, users with sessions) archived with ``tsunagu
backup`` while it serves, restored with ``tsunagu restore`` into brand-new SQLite and
PostgreSQL databases and data dirs (across backends too), served again identically; and the
refusals (non-empty target, corrupted or truncated archive, a newer schema revision)."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app import db
from app.backup import (
    MANIFEST,
    app_metadata,
    create_backup,
    decode_value,
    encode_value,
    snapshot,
)
from app.cli import main
from app.settings import Settings
from tests.app.conftest import ZONE, A, B, TestUser, both_backends, settings_for
from tests.app.test_feeds_samples import sample_v2
from tests.app.trips_helpers import TRIPS, flex_leg, itinerary, quote_for, transit_leg, walk_leg
from tests.conftest import PG_ADMIN_URL

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """The source instance runs on a database of its own (not the session's shared one), so
    its backup holds exactly what this test wrote."""
    return empty_database_url


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Factory of brand-new, never-migrated databases (``sqlite`` or ``postgres``)."""
    created: list[str] = []

    def make(kind: str) -> str:
        tag = uuid.uuid4().hex[:10]
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'restored-{tag}.db'}"
        name = f"tsunagu_restore_{tag}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}".replace(
            "postgresql://", "postgresql+psycopg://"
        )

    yield make
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _upload(client: TestClient, headers: dict[str, str], path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        r = client.post(
            "/api/v1/feeds/sample/versions",
            files={"file": (path.name, f, "application/zip")},
            headers=headers,
        )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "valid", body
    return body


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def _utc(value: Any) -> Any:
    """Timestamps as aware UTC instants, at any depth (SQLite hands back naive datetimes, so
    ``created_at`` reads ``...`` there and ``...+00:00`` on PostgreSQL: the same instant)."""
    if isinstance(value, dict):
        return {k: _utc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_utc(v) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        return (when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when).astimezone(dt.UTC)
    return value


class Population:
    """What the source instance holds and serves."""

    def __init__(self, users: dict[str, TestUser], tokens: dict[str, str]) -> None:
        self.users = users
        self.tokens = tokens  # a login's access and refresh token per rider
        self.views: dict[str, Any] = {}

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name + ':access']}"}


def _populate(
    client: TestClient, make_user: Callable[..., TestUser], auth: Auth, gtfs_dir: Path, tmp: Path
) -> Population:
    op = auth(make_user(roles=("operator",)))
    v1 = _upload(client, op, gtfs_dir / "google_sample.zip")
    _ok(client.post(f"/api/v1/feeds/sample/versions/{v1['id']}/publish", headers=op))
    v2 = _upload(client, op, sample_v2(gtfs_dir, tmp))
    _ok(client.post(f"/api/v1/feeds/sample/versions/{v2['id']}/publish", headers=op))
    # Back to v1: one published version, one archived.
    _ok(client.post("/api/v1/feeds/sample/rollback", json={"version": v1["id"]}, headers=op))
    boss = auth(make_user(roles=("dispatcher",)))
    _ok(client.post("/api/v1/fleet/zones", json=ZONE, headers=boss), 201)
    for vid in ("van-1", "van-2"):
        body = {
            "vehicle_id": vid,
            "zone_id": "muroran",
            "vehicle_type": "van",
            "depot": A,
            "shift_end": time.time() + 8 * 3600,
        }
        _ok(client.post("/api/v1/fleet/vehicles", json=body, headers=boss), 201)
    users = {"alice": make_user(), "bob": make_user()}
    tokens: dict[str, str] = {}
    for name, user in users.items():
        pair = _ok(
            client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
        )
        tokens[name + ":access"] = pair["access_token"]
        tokens[name + ":refresh"] = pair["refresh_token"]
    pop = Population(users, tokens)
    ha, hb = pop.headers("alice"), pop.headers("bob")
    q = _ok(client.post("/api/v1/rides/quote", json={"origin": A, "destination": B}, headers=ha))
    _ok(client.post("/api/v1/rides", json={"quote_id": q["quote_id"]}, headers=ha), 201)
    one_step = {"request": {"origin": B, "destination": A, "seats": 2}}
    gone = _ok(client.post("/api/v1/rides", json=one_step, headers=ha), 201)
    _ok(client.delete(f"/api/v1/rides/{gone['ride_id']}", headers=ha))
    _ok(
        client.post("/api/v1/rides", json={"request": {"origin": A, "destination": B}}, headers=hb),
        201,
    )
    q = quote_for(client, users["alice"].id, A, B, earliest_pickup=time.time() + 3600)
    trip = {"itinerary": itinerary(walk_leg(), flex_leg(q), transit_leg())}
    assert _ok(client.post(TRIPS, json=trip, headers=ha), 201)["state"] == "CONFIRMED"
    trip = {"itinerary": itinerary(transit_leg())}
    _ok(client.post(TRIPS, json=trip, headers={**hb, "Idempotency-Key": "k-1"}), 201)
    pop.views = _views(client, pop, op)
    assert len(pop.views["alice:rides"]["rides"]) == 3
    assert len(pop.views["alice:trips"]["trips"]) == 1
    assert len(pop.views["versions"]["versions"]) == 2
    return pop


def _views(client: TestClient, pop: Population, op: dict[str, str]) -> dict[str, Any]:
    """Everything the test compares, as the API serves it."""
    views: dict[str, Any] = {}
    for name in pop.users:
        h = pop.headers(name)
        views[f"{name}:rides"] = _ok(client.get("/api/v1/rides", headers=h))
        views[f"{name}:trips"] = _ok(client.get(TRIPS, headers=h))
        for ride in views[f"{name}:rides"]["rides"]:
            views[f"ride:{ride['ride_id']}"] = _ok(
                client.get(f"/api/v1/rides/{ride['ride_id']}", headers=h)
            )
    views["feeds"] = _ok(client.get("/api/v1/feeds", headers=op))
    views["versions"] = _ok(client.get("/api/v1/feeds/sample/versions", headers=op))
    for v in views["versions"]["versions"]:
        base = f"/api/v1/feeds/sample/versions/{v['id']}"
        views[f"version:{v['id']}"] = _ok(client.get(base, headers=op))
        views[f"report:{v['id']}"] = _ok(client.get(f"{base}/report", headers=op))
    network = _ok(client.get("/api/v1/network"))
    network.pop("generation", None)  # counts the publishes this process made
    views["network"] = network
    views["geojson"] = _ok(client.get("/api/v1/network/geojson"))
    return views


def _restore(archive: Path, settings: Settings, *extra: str) -> int:
    return main(["restore", "--input", str(archive), *extra], settings)


@both_backends
def test_backup_restores_every_booking_and_feed_version_on_both_backends(
    backend: str,
    app_client: TestClient,
    app_settings: Settings,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    new_database: Callable[[str], str],
    gtfs_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pop = _populate(app_client, make_user, auth, gtfs_dir, tmp_path)
    archive = tmp_path / "backup.tar.gz"
    # Taken while the source serves (one snapshot transaction).
    assert main(["backup", "--output", str(archive)], app_settings) == 0
    assert "backed up" in capsys.readouterr().out
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile(MANIFEST))  # type: ignore[arg-type]
        names = set(tar.getnames())
    assert manifest["alembic_revision"] == db.head_revision()
    assert manifest["source_backend"] == ("sqlite" if backend == "sqlite" else "postgresql")
    rows = {t["name"]: t["rows"] for t in manifest["tables"]}
    assert set(rows) == set(app_metadata().tables)  # every table, a new one included
    assert {
        "users", "auth_sessions", "refresh_tokens", "signing_keys", "feed_versions",
        "dispatch_zone_states", "dispatch_rides", "trips",
    } <= set(rows)  # fmt: skip
    assert rows["feed_versions"] == 2 and rows["dispatch_rides"] == 4 and rows["trips"] == 2
    assert rows["users"] == 4 and rows["dispatch_zone_states"] == 1
    versions = [v["id"] for v in pop.views["versions"]["versions"]]
    for vid in versions:
        assert {f"data/feeds/{vid}/original.zip", f"data/feeds/{vid}/compiled.npz"} <= names
    assert names == {MANIFEST, *manifest["files"]}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    app_client.__exit__(None, None, None)  # the source stops; nothing of it is reused

    for target in ("sqlite", "postgres"):
        url = new_database(target)
        settings = settings_for(tmp_path / f"data-{target}", url)  # its own signing keys: none
        assert _restore(archive, settings) == 0, capsys.readouterr().err
        assert "restored" in capsys.readouterr().out
        engine = db.create_db_engine(url)
        assert db.current_revision(engine) == db.head_revision()
        # Every row of every table, as a backup of the restored database reads it: identical.
        again = tmp_path / f"again-{target}.tar.gz"
        create_backup(engine, settings.data_dir, again)
        engine.dispose()
        assert _members(again, "db/") == _members(archive, "db/")
        assert _members(again, "data/") == _members(archive, "data/")
        client = make_app_client(database_url=url, data_dir=settings.data_dir,
                                 jwt_private_key_path=None)  # fmt: skip
        # The tokens issued before the backup still verify: signing keys and sessions came back.
        op = auth(make_user(roles=("operator",), client=client), client)
        views = _views(client, pop, op)
        for key, before in pop.views.items():
            assert _utc(views[key]) == _utc(before), key
        published = views["network"]["published"]
        assert [p["version_id"] for p in published] == [min(versions)]
        for name, user in pop.users.items():
            login = {"email": user.email, "password": user.password}
            _ok(client.post("/api/v1/auth/login", json=login))
            refresh = {"refresh_token": pop.tokens[name + ":refresh"]}
            _ok(client.post("/api/v1/auth/refresh", json=refresh))
        # New feed versions get ids past the restored ones (PostgreSQL sequence moved on).
        new = _upload(client, op, gtfs_dir / "google_sample.zip")
        assert new["id"] == max(versions) + 1
        # A restored instance refuses a second restore over it, unless forced.
        client.__exit__(None, None, None)
        assert _restore(archive, settings) == 1
        err = capsys.readouterr().err
        assert "not empty" in err and "--force" in err
        if target == "sqlite":
            assert _restore(archive, settings, "--force") == 0
            engine = db.create_db_engine(url)
            with engine.connect() as conn:
                n = conn.execute(sa.text("SELECT count(*) FROM feed_versions")).scalar()
            engine.dispose()
            assert n == 2  # the version uploaded after the restore is gone again
            assert not (settings.data_dir / "feeds" / str(max(versions) + 1)).exists()


def _members(archive: Path, prefix: str) -> dict[str, bytes]:
    """The contents of the members of ``archive`` under ``prefix``."""
    with tarfile.open(archive) as tar:
        out = {}
        for info in tar:
            if info.name.startswith(prefix):
                f = tar.extractfile(info)
                assert f is not None
                out[info.name] = f.read()
    return out


def _rewrite(archive: Path, dest: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """A copy of ``archive`` with each member's bytes passed through ``change``."""
    with tarfile.open(archive) as src, tarfile.open(dest, "w:gz") as out:
        for info in src:
            f = src.extractfile(info)
            assert f is not None
            data = change(info.name, f.read())
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return dest


@both_backends
def test_restore_refuses_corrupted_archives_newer_revisions_and_full_databases(
    backend: str,
    app_client: TestClient,
    app_settings: Settings,
    make_user: Callable[..., TestUser],
    new_database: Callable[[str], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_user(email="kept@example.org")
    archive = tmp_path / "b.tar.gz"
    engine = db.engine_for(app_settings)
    create_backup(engine, app_settings.data_dir, archive)
    engine.dispose()
    url = new_database(backend)
    settings = settings_for(tmp_path / "target", url)

    def refused(path: Path, message: str) -> None:
        assert _restore(path, settings) == 1
        assert message in capsys.readouterr().err
        engine = db.create_db_engine(url)
        assert db.current_revision(engine) is None  # nothing was touched
        engine.dispose()

    def users_edited(name: str, data: bytes) -> bytes:
        return data.replace(b"kept@", b"evil@") if name == "db/users.jsonl" else data

    refused(_rewrite(archive, tmp_path / "edited.tar.gz", users_edited), "checksum mismatch")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused(truncated, "cannot read the archive")

    def newer(name: str, data: bytes) -> bytes:
        if name != MANIFEST:
            return data
        manifest = json.loads(data)
        manifest["alembic_revision"] = "9999_from_the_future"
        return json.dumps(manifest).encode()

    refused(_rewrite(archive, tmp_path / "newer.tar.gz", newer), "9999_from_the_future")
    # The untouched archive restores; the same target then refuses it.
    assert _restore(archive, settings) == 0
    assert _restore(archive, settings) == 1
    assert "users" in capsys.readouterr().err


def test_portable_values_round_trip() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    uid = uuid.uuid4()
    assert decode_value("datetime", encode_value("datetime", when)) == when
    assert encode_value("datetime", dt.datetime(2026, 1, 1, 12)) == "2026-01-01T12:00:00+00:00"
    assert decode_value("uuid", encode_value("uuid", uid)) == uid
    assert decode_value("date", encode_value("date", dt.date(2026, 2, 3))) == dt.date(2026, 2, 3)
    assert decode_value("binary", encode_value("binary", b"\x00\xff")) == b"\x00\xff"
    assert decode_value("json", encode_value("json", {"a": [1]})) == {"a": [1]}


@both_backends
def test_the_dump_reads_one_snapshot_while_others_write(
    app_client: TestClient, app_settings: Settings, make_user: Callable[..., TestUser]
) -> None:
    make_user()
    engine = db.engine_for(app_settings)
    count = sa.text("SELECT count(*) FROM users")
    try:
        with snapshot(engine) as conn:
            assert conn.execute(count).scalar() == 1
            make_user()  # committed by another connection meanwhile
            assert conn.execute(count).scalar() == 1
        with engine.connect() as conn:
            assert conn.execute(count).scalar() == 2
    finally:
        engine.dispose()
