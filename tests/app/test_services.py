"""Services lifecycle and the probes: /healthz, /readyz, start-up hooks, admin bootstrap."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app import db
from app.services import Services
from tests.app.conftest import both_backends, services_of


@both_backends
def test_healthz_and_readyz(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    r = app_client.get("/readyz")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["events"]["ok"] is True


def test_readyz_reports_a_dead_database(app_client: TestClient) -> None:
    services = services_of(app_client)
    real = services.engine
    services.engine = db.create_db_engine("postgresql+psycopg://127.0.0.1:1/nowhere")
    try:
        r = app_client.get("/readyz")
    finally:
        services.engine.dispose()
        services.engine = real
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded" and body["checks"]["database"]["ok"] is False


@pytest.mark.redis
def test_readyz_with_redis_events(
    make_app_client: Callable[..., TestClient], redis_url: str, redis_prefix: str
) -> None:
    client = make_app_client(redis_url=redis_url, redis_prefix=redis_prefix)
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["events"]["ok"] is True


def test_readiness_checks_and_stop_hooks_of_other_services(
    app_client: TestClient,
) -> None:
    services = services_of(app_client)
    stopped: list[str] = []

    async def feeds_ready() -> dict[str, object]:
        return {"ok": False, "reason": "no feed published"}

    async def stop_feeds() -> None:
        stopped.append("feeds")

    services.readiness["feeds"] = feeds_ready
    services.on_stop.append(stop_feeds)
    r = app_client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["feeds"]["reason"] == "no feed published"
    app_client.__exit__(None, None, None)
    assert stopped == ["feeds"]


@both_backends
def test_admin_bootstrap_from_settings_is_idempotent(
    make_app_client: Callable[..., TestClient],
) -> None:
    import uuid

    email = f"root-{uuid.uuid4().hex[:6]}@example.org"
    first = make_app_client(admin_email=email, admin_password="bootstrap-pass")
    second = make_app_client(admin_email=email, admin_password="other-password")  # restart
    for client in (first, second):
        r = client.post("/api/v1/auth/login", json={"email": email, "password": "bootstrap-pass"})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["roles"] == ["admin"]


async def test_start_and_stop_directly(tmp_path: object) -> None:
    from pathlib import Path

    from tests.app.conftest import settings_for

    services = await Services.start(settings_for(Path(str(tmp_path)) / "d"))
    assert (await services.check())["database"]["ok"]
    await services.stop()
    assert services.bus is None


async def test_stale_schema_fails_clearly_without_migrate_on_start(tmp_path: object) -> None:
    from pathlib import Path

    from app.secondary import upgrade_all
    from tests.app.conftest import settings_for

    settings = settings_for(Path(str(tmp_path)) / "d", migrate_on_start=False)
    with pytest.raises(RuntimeError, match="tsunagu db upgrade"):
        await Services.start(settings)
    upgrade_all(settings)  # what `tsunagu db upgrade` does: the app's and each service's
    services = await Services.start(settings)
    await services.stop()
