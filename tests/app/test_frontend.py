"""The frontend mount: SPA fallback, static files, reserved paths, the not-built page."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import health
from app.errors import install_error_handlers
from app.frontend import mount_frontend
from tests.app.conftest import assert_error, settings_for


def _app(tmp_path: Path, dist: Path) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(health.router)

    @app.get("/api/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    mount_frontend(app, settings_for(tmp_path), dist)
    return TestClient(app)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_text("<!doctype html><title>Tsunagu SPA</title>")
    (d / "assets" / "app-1234.js").write_text("console.log('tsunagu')")
    (tmp_path / "secret.txt").write_text("do not serve")
    return d


def test_spa_serves_index_assets_and_falls_back(tmp_path: Path, dist: Path) -> None:
    client = _app(tmp_path, dist)
    assert "Tsunagu SPA" in client.get("/").text
    asset = client.get("/assets/app-1234.js")
    assert asset.status_code == 200 and "tsunagu" in asset.text
    assert "immutable" in asset.headers["cache-control"]
    route = client.get("/trips/plan?from=a")  # a client-side route survives a reload
    assert route.status_code == 200 and "Tsunagu SPA" in route.text
    escape = client.get("/assets/..%2F..%2Fsecret.txt")
    assert "do not serve" not in escape.text


def test_api_and_probes_are_never_shadowed(tmp_path: Path, dist: Path) -> None:
    client = _app(tmp_path, dist)
    assert client.get("/api/v1/ping").json() == {"pong": "yes"}
    assert client.get("/healthz").json() == {"status": "ok"}
    for path in ("/api/v1/unknown", "/api", "/.well-known/other", "/readyz/x"):
        assert_error(client.get(path), 404, "not_found")


def test_not_built_page_links_to_docs(tmp_path: Path) -> None:
    client = _app(tmp_path, tmp_path / "missing")
    r = client.get("/")
    assert r.status_code == 200 and "/api/v1/docs" in r.text and "not built" in r.text
    assert_error(client.get("/somewhere"), 404, "not_found")
