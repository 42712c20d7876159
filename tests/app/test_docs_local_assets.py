"""Every service's /api/v1/docs is drawn from this server's own files (#13).

The standalone emissions and health services (``tsunagu serve --service ...``,
app/secondary.py) served FastAPI's default page, which loads Swagger UI from a CDN: blank
without internet. Now they serve the page the core serves, with the built frontend's local
Swagger UI and its accessibility fixes, and serve those files themselves (a standalone service
has no frontend of its own to serve them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.emissions.service import create_emissions_app
from app.frontend import DEFAULT_DIST, SWAGGER_DIR
from app.health.service import create_health_app
from tests.app.conftest import settings_for

# Any absolute URL or protocol-relative one (//cdn...), in an attribute or a script.
EXTERNAL = re.compile(r"""(?:https?:)?//[^\s"'<>]+""")
REFERENCED = re.compile(r"""(?:src|href)="([^"]+)\"""")


@pytest.fixture(autouse=True)
def _built_frontend() -> None:
    """The docs' assets come from the built frontend: fail (as the browser tests do), never
    skip, when it is missing; `make install` builds it."""
    if not (DEFAULT_DIST / SWAGGER_DIR / "swagger-ui-bundle.js").is_file():
        pytest.fail("frontend/dist is not built: run `make install` (npm run build) first")


@pytest.mark.parametrize("create", [create_emissions_app, create_health_app])
def test_standalone_docs_reference_no_external_url(
    create: Callable[..., FastAPI], tmp_path: Path
) -> None:
    # The JWKS is never fetched: no request here needs a token.
    settings = settings_for(tmp_path, identity_jwks_url="http://127.0.0.1:9/jwks.json")
    client = TestClient(create(settings))  # no lifespan: its database is not needed for docs
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.text
    assert EXTERNAL.findall(html) == [], EXTERNAL.findall(html)
    assert '<html lang="en">' in html
    refs = REFERENCED.findall(html)
    assert f"/{SWAGGER_DIR}/swagger-ui-bundle.js" in refs
    assert f"/{SWAGGER_DIR}/tsunagu-docs.js" in refs
    # Every file the page loads is served by the service itself.
    for ref in refs:
        r = client.get(ref)
        assert r.status_code == 200 and r.content, ref
    assert 'data-openapi="/api/v1/openapi.json"' in html
    assert client.get("/api/v1/openapi.json").json()["info"]["title"].startswith("Tsunagu")


def test_docs_assets_serve_only_their_own_folder(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, identity_jwks_url="http://127.0.0.1:9/jwks.json")
    client = TestClient(create_emissions_app(settings))
    for path in (f"/{SWAGGER_DIR}/missing.js", f"/{SWAGGER_DIR}/..%2Findex.html"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"
