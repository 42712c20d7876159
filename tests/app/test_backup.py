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
    open_service_databases,
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


def _planning_rows(client: TestClient) -> None:
    """A planner's upload and the scenario run with it (#14): JSON, a date, a foreign key."""
    from sqlmodel import Session

    from app.models.planning import PlanningScenario, PlanningUpload

    with Session(client.app.state.services.engine) as s:  # type: ignore[attr-defined]
        up = PlanningUpload(kind="destinations", owner_id="u1", text="name,kind,lat,lon\n")
        s.add(up)
        s.flush()
        s.add(
            PlanningScenario(
                name="drop one", status="done", created_by="u1", destinations_id=up.id,
                spec={"edits": [{"op": "drop_route", "route_id": "R1"}]},
                result={"table": [{"metric": "bus_km", "difference": -1.5}]},
                analysis_date=dt.date(2020, 4, 6),
            )
        )  # fmt: skip
        s.commit()


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
    _planning_rows(app_client)
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
    assert rows["planning_uploads"] == 1 and rows["planning_scenarios"] == 1
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
        services, _ = open_service_databases(settings, engine)  # the app's database here
        create_backup(engine, settings.data_dir, again, services=services)
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


# --- the secondary services' tables (emissions, health) ------------------------------------------
E = "/api/v1/emissions"
H = "/api/v1/health"
SITE = {"lat": 42.400, "lon": 141.0}
CHECKUP = {
    "date": "2026-11-20",
    "height_cm": 168.73,
    "weight_kg": 63.97,
    "systolic": 147.31,
    "diastolic": 91.27,
    "ldl": 151.37,
    "hdl": 45.71,
    "smoking": "current",
    "age": 55,
    "sex": "male",
}


def _commute() -> dict[str, Any]:
    """2026-03-02 09:00 JST, walk 300 m, bus 11 km to the site, walk 400 m (legs by hand)."""
    from tests.app.emissions.helpers import itinerary, leg

    ms = int(dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC).timestamp()) * 1000
    return itinerary(
        leg("WALK", 42.300, 42.302, 300.0, ms, ms + 240_000),
        leg("BUS", 42.302, 42.396, 11000.0, ms + 300_000, ms + 1_500_000),
        leg("WALK", 42.396, 42.3995, 400.0, ms + 1_500_000, ms + 1_800_000),
    )


def _login(client: TestClient, user: TestUser) -> dict[str, str]:
    pair = _ok(
        client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    )
    return {"Authorization": f"Bearer {pair['access_token']}"}


def _service_views(
    client: TestClient, h: dict[str, dict[str, str]], company: str
) -> dict[str, Any]:
    """What the emissions and health services serve of the population (the resident's own
    reads: none of them is audited, so reading them changes nothing)."""
    r, boss = h["resident"], h["company_admin"]
    return {
        "ledger": _ok(client.get(f"{E}/me/ledger?month=2026-03", headers=r)),
        "my_companies": _ok(client.get(f"{E}/me/consents", headers=r)),
        "company": _ok(client.get(f"{E}/companies/{company}", headers=boss)),
        "category7": _ok(
            client.get(f"{E}/companies/{company}/category7?month=2026-03", headers=boss)
        ),
        "scope12": _ok(client.get(f"{E}/companies/{company}/scope12?month=2026-03", headers=boss)),
        "audit": _ok(client.get(f"{H}/me/audit", headers=r)),
        "observations": _ok(client.get(f"{H}/me/observations", headers=r)),
        "risk": _ok(client.get(f"{H}/me/risk", headers=r)),
        "consents": _ok(client.get(f"{H}/me/consents", headers=r)),
    }


def _service_counts(url: str, tables: list[str]) -> dict[str, int]:
    engine = db.create_db_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() or 0)
                for t in tables
            }
    finally:
        engine.dispose()


@both_backends
def test_backup_restores_the_emissions_and_health_tables_in_their_own_databases(
    backend: str,
    app_settings: Settings,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    new_database: Callable[[str], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The source keeps emissions in a database of its own and health beside the app's tables;
    each target the other way round (emissions beside the app, health apart), on SQLite and
    PostgreSQL: every emissions and health row comes back and both services serve the same."""
    kind = "sqlite" if backend == "sqlite" else "postgres"
    emissions_url = new_database(kind)
    source_settings = app_settings.model_copy(update={"emissions_database_url": emissions_url})
    src = make_app_client(emissions_database_url=emissions_url)
    admin = make_user(roles=("admin",), client=src)
    users = {
        "resident": make_user(client=src),
        "company_admin": make_user(roles=("company_admin",), client=src),
        "staff": make_user(roles=("health_staff",), client=src),
    }
    h = {name: _login(src, u) for name, u in users.items()}
    resident = users["resident"].id
    # emissions: a company with an accepted invitation, a commute, a survey, a month of energy
    body = {"name": "Muroran Steel", "site": SITE, "headcount": 20,
            "electricitySupplier": "hokkaido_electric"}  # fmt: skip
    company = _ok(src.post(f"{E}/companies", json=body, headers=h["company_admin"]), 201)["id"]
    inv = src.post(
        f"{E}/companies/{company}/invitations", json={"label": "x"}, headers=h["company_admin"]
    )
    _ok(src.post(f"{E}/invitations/{_ok(inv, 201)['code']}/accept", headers=h["resident"]))
    trip = _ok(src.post(f"{E}/trips", json={"itinerary": _commute()}, headers=h["resident"]), 201)
    assert trip["co2"] == {"co2": 627, "unit": "g"}  # 11 km x 57 g/pkm
    survey = {"mode": "BUS", "oneWayKm": 11, "daysPerWeek": 5}
    _ok(src.put(f"{E}/me/companies/{company}/survey", json=survey, headers=h["resident"]))
    energy = {"rows": [{"month": "2026-03", "energy": "diesel", "quantity": 100, "unit": "L"},
                       {"month": "2026-03", "energy": "electricity", "quantity": 1000,
                        "unit": "kWh"}]}  # fmt: skip
    _ok(src.put(f"{E}/companies/{company}/energy", json=energy, headers=h["company_admin"]))
    # health: a checkup, a clinic with a member, the resident's consent, one audited read
    _ok(src.post(f"{H}/me/checkups", json=CHECKUP, headers=h["resident"]), 201)
    org = _ok(src.post(f"{H}/organisations", json={"name": "Clinic", "kind": "clinic"},
                       headers=auth(admin, src)), 201)  # fmt: skip
    member = {"user_id": users["staff"].id}
    _ok(
        src.post(f"{H}/organisations/{org['id']}/members", json=member, headers=auth(admin, src)),
        201,
    )
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    consent = {"recipient": {"type": "organisation", "id": org["id"]}, "purpose": "records",
               "expires_at": expires}  # fmt: skip
    _ok(src.post(f"{H}/me/consents", json=consent, headers=h["resident"]), 201)
    staff_url = f"{H}/residents/{resident}/observations"
    staff_read = _ok(src.get(staff_url, headers=h["staff"]))  # audited
    assert staff_read["latest"]["weight"]["value"] == 63.97
    before = _service_views(src, h, company)
    assert [(a["actorId"], a["action"]) for a in before["audit"]["entries"]] == [
        (users["staff"].id, "read")
    ]
    assert before["ledger"]["trips"] == 1 and before["ledger"]["co2"]["co2"] == 627

    archive = tmp_path / "services.tar.gz"
    assert main(["backup", "--output", str(archive)], source_settings) == 0
    out = capsys.readouterr().out
    assert "emissions:" in out and "health:" in out
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile(MANIFEST))  # type: ignore[arg-type]
    services = manifest["services"]
    assert services["emissions"]["source_backend"] == manifest["source_backend"]
    rows = {
        name: {t["name"]: t["rows"] for t in entry["tables"]} for name, entry in services.items()
    }
    from app.emissions.models import metadata as emissions_tables
    from app.health.models import metadata as health_tables

    assert set(rows["emissions"]) == set(emissions_tables.tables)
    assert set(rows["health"]) == set(health_tables.tables)
    assert rows["emissions"]["emissions_companies"] == 1
    assert rows["emissions"]["emissions_taken_trips"] == 1
    assert rows["emissions"]["emissions_consents"] == 1
    assert rows["emissions"]["emissions_surveys"] == 1
    assert rows["emissions"]["emissions_energy_use"] == 2
    assert rows["health"]["health_consents"] == 1 and rows["health"]["health_audit"] == 1
    assert rows["health"]["health_organisations"] == 1
    assert rows["health"]["health_observations"] >= 8  # height, weight, BMI, BP, ...
    # the app's own tables stay where they were (no service table among them)
    assert not {t["name"] for t in manifest["tables"]} & (
        set(emissions_tables.tables) | set(health_tables.tables)
    )
    src.__exit__(None, None, None)

    health_dbs: list[str] = []
    for target in ("sqlite", "postgres"):
        url, health_url = new_database(target), new_database(target)
        health_dbs.append(health_url)
        settings = settings_for(tmp_path / f"svc-{target}", url, health_database_url=health_url)
        assert _restore(archive, settings) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "emissions: restored" in out and "health: restored" in out
        engine = db.create_db_engine(url)
        health_engine = db.create_db_engine(health_url)
        from app.backup import ServiceDatabase
        from app.emissions import store as emissions_store
        from app.health import store as health_store

        assert (
            emissions_store.CHAIN.current_revision(engine) == emissions_store.CHAIN.head_revision()
        )
        assert (
            health_store.CHAIN.current_revision(health_engine) == health_store.CHAIN.head_revision()
        )
        assert health_store.CHAIN.current_revision(engine) is None  # not in the app's database
        # every row of every service table, as a backup of the restored databases reads it
        again = tmp_path / f"svc-again-{target}.tar.gz"
        create_backup(engine, settings.data_dir, again, services=[
            ServiceDatabase("emissions", emissions_store.CHAIN, emissions_tables, engine),
            ServiceDatabase("health", health_store.CHAIN, health_tables, health_engine),
        ])  # fmt: skip
        engine.dispose()
        health_engine.dispose()
        assert _members(again, "db/") == _members(archive, "db/")
        assert _service_counts(health_url, list(rows["health"])) == rows["health"]
        assert _service_counts(url, list(rows["emissions"])) == rows["emissions"]
        client = make_app_client(database_url=url, data_dir=settings.data_dir,
                                 jwt_private_key_path=None, emissions_database_url="",
                                 health_database_url=health_url)  # fmt: skip
        after = _service_views(client, h, company)  # the old tokens still verify
        for key, value in before.items():
            assert _utc(after[key]) == _utc(value), key
        # the clinic's membership and the resident's consent came back: the staff reads again
        assert _ok(client.get(staff_url, headers=h["staff"])) == staff_read
        client.__exit__(None, None, None)

    # A target whose health database holds rows is refused before anything changes.
    url = new_database(kind)
    settings = settings_for(tmp_path / "svc-full", url, health_database_url=health_dbs[0])
    assert _restore(archive, settings) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "health_observations (health)" in err
    engine = db.create_db_engine(url)
    assert db.current_revision(engine) is None
    engine.dispose()
