"""The three web front-ends in a real browser (Debian's chromium via Playwright).

Each test talks to a real server with the demo city, and fails if the page tries to reach
anything outside localhost (maps are drawn from the server's own GeoJSON).
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _wait_ready(page: object) -> None:
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)  # type: ignore[attr-defined]


def test_resident_page_speaks_japanese_then_english(page: object) -> None:
    page.goto("/")  # type: ignore[attr-defined]
    _wait_ready(page)
    assert page.inner_text("header h1 span") == "つなぐ"  # type: ignore[attr-defined]
    assert page.inner_text("#plan-form button[type=submit]") == "経路を検索"  # type: ignore[attr-defined]
    page.click("#lang-toggle")  # type: ignore[attr-defined]
    assert page.inner_text("header h1 span") == "Tsunagu"  # type: ignore[attr-defined]
    assert page.inner_text("#plan-form button[type=submit]") == "Plan trip"  # type: ignore[attr-defined]
    assert page.evaluate("document.documentElement.lang") == "en"  # type: ignore[attr-defined]


def test_map_draws_the_demo_network_from_local_geojson(page: object, live_server: str) -> None:
    page.goto("/")  # type: ignore[attr-defined]
    page.wait_for_selector("#map[data-ready='1']", timeout=30_000)  # type: ignore[attr-defined]
    gj = httpx.get(f"{live_server}/api/v1/network/geojson").json()
    n_features = len(gj["features"])
    kinds = [f["geometry"]["type"] for f in gj["features"]]
    # Muroran's stops.txt: 706 rows, of which 466 boardable stops (location_type 0) and 240
    # stations; the map shows the boardable stops and the lines of the routes.
    assert kinds.count("Point") == 466
    assert kinds.count("Point") < n_features
    assert int(page.get_attribute("#map", "data-features")) == n_features  # type: ignore[attr-defined]
    # Leaflet drew vector layers (canvas renderer) and no tile layer asked for outside tiles.
    assert page.locator("#map canvas").count() >= 1  # type: ignore[attr-defined]
    assert page.locator("#map .leaflet-tile").count() == 0  # type: ignore[attr-defined]
    assert page.outside_requests == []  # type: ignore[attr-defined]


def test_pwa_manifest_and_service_worker_are_served(live_server: str) -> None:
    manifest = httpx.get(f"{live_server}/manifest.webmanifest").json()
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    sw = httpx.get(f"{live_server}/sw.js")
    assert sw.status_code == 200 and "/api/" in sw.text


def test_resident_signs_up_and_sees_the_wrong_password_error(page: object) -> None:
    email = f"r{uuid.uuid4().hex[:8]}@example.org"
    page.goto("/")  # type: ignore[attr-defined]
    _wait_ready(page)
    page.fill("#login-form input[name=email]", email)  # type: ignore[attr-defined]
    page.fill("#login-form input[name=password]", "correct-horse-9")  # type: ignore[attr-defined]
    page.click("#signup-button")  # type: ignore[attr-defined]
    page.wait_for_selector("#logout:not([hidden])")  # type: ignore[attr-defined]
    assert page.inner_text("#whoami") == email.split("@")[0]  # type: ignore[attr-defined]
    page.click("#logout")  # type: ignore[attr-defined]
    page.wait_for_selector("#auth:not([hidden])")  # type: ignore[attr-defined]
    page.fill("#login-form input[name=email]", email)  # type: ignore[attr-defined]
    page.fill("#login-form input[name=password]", "wrong-password-1")  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_function("document.querySelector('#auth-error').textContent.length > 0")  # type: ignore[attr-defined]
    assert "(invalid_credentials)" in page.inner_text("#auth-error")  # type: ignore[attr-defined]
    assert page.is_visible("#auth")  # type: ignore[attr-defined]


def test_operator_console_lists_the_published_demo_and_reports_a_broken_upload(
    page: object, tmp_path: object
) -> None:
    page.goto("/operator.html")  # type: ignore[attr-defined]
    _wait_ready(page)
    page.fill("#login-form input[name=email]", ADMIN[0])  # type: ignore[attr-defined]
    page.fill("#login-form input[name=password]", ADMIN[1])  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#versions tbody tr[data-status='published']")  # type: ignore[attr-defined]
    page.fill("#upload-form input[name=feed_id]", "broken")  # type: ignore[attr-defined]
    page.set_input_files(  # type: ignore[attr-defined]
        "#upload-form input[type=file]",
        files=[{"name": "feed.zip", "mimeType": "application/zip", "buffer": b"not a zip at all"}],
    )
    page.click("#upload-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "!['', '…'].includes(document.querySelector('#upload-status').textContent)"
    )
    status = page.inner_text("#upload-status")  # type: ignore[attr-defined]
    assert "zip" in status.lower() or "invalid" in status.lower(), status
    # The published demo keeps serving.
    assert page.locator("#versions tbody tr[data-status='published']").count() == 1  # type: ignore[attr-defined]


def test_dispatcher_console_goes_live_and_shows_an_alert(page: object, live_server: str) -> None:
    page.goto("/dispatcher.html")  # type: ignore[attr-defined]
    _wait_ready(page)
    page.fill("#login-form input[name=email]", ADMIN[0])  # type: ignore[attr-defined]
    page.fill("#login-form input[name=password]", ADMIN[1])  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "document.querySelector('#live-status').textContent.includes('live')", timeout=15_000
    )
    token = api_token(live_server, *ADMIN)
    title = f"Detour {uuid.uuid4().hex[:6]}"
    r = httpx.post(
        f"{live_server}/api/v1/events/alerts",
        json={"title": title, "message": "Road works"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.querySelector('#events').textContent.includes({title!r})", timeout=15_000
    )
