"""The base map (issue #13): a configured tile source with its credit, else the city drawn from
the server's own data (stops and route lines on a land-coloured ground), never a grey void."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token
from tests.frontend.ui_checks import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A 1x1 PNG, standing in for a tile server's answer.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
GSI_CREDIT = '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'


def test_without_a_tile_source_the_city_is_drawn_from_local_data(
    page: Any, live_server: str
) -> None:
    info = httpx.get(f"{live_server}/api/v1/network").json()
    assert info["tile_url"] is None and info["tile_attribution"] is None
    page.goto("/")
    page.wait_for_selector("#map[data-ready='1']")
    assert page.get_attribute("#map", "data-base") == "local"
    assert int(page.get_attribute("#map", "data-features")) > 400  # stops and route lines
    background = page.evaluate("getComputedStyle(document.querySelector('#map')).backgroundColor")
    assert background not in ("rgb(221, 221, 221)", "rgba(0, 0, 0, 0)"), background  # not grey
    assert page.locator("#map .leaflet-tile").count() == 0
    assert page.outside_requests == []


def test_a_configured_tile_source_is_drawn_with_its_credit(page: Any, live_server: str) -> None:
    """TSUNAGU_MAP_TILE_URL / _ATTRIBUTION as /network reports them (here GSI's credit, tiles
    answered locally): the tiles are drawn and the credit is shown."""
    tiles = f"{live_server}/test-tiles/{{z}}/{{x}}/{{y}}.png"

    def network(route: Any) -> None:
        body = route.fetch().json()
        body["tile_url"], body["tile_attribution"] = tiles, GSI_CREDIT
        route.fulfill(json=body)

    page.route("**/api/v1/network", network)
    page.route("**/test-tiles/**", lambda r: r.fulfill(body=PNG, content_type="image/png"))
    page.goto("/")
    page.wait_for_selector("#map[data-ready='1']")
    assert page.get_attribute("#map", "data-base") == "tiles"
    page.wait_for_selector("#map img.leaflet-tile")
    assert page.inner_text("#map .leaflet-control-attribution") == "地理院タイル"
    assert page.outside_requests == []


def test_a_second_city_keeps_its_own_map_and_stop_search(
    page: Any, live_server: str, gtfs_dir: Any
) -> None:
    """Once a second city's feed is published, the first city's map zoomed out to cover both
    and its stop search mixed both: now the resident picks the city."""
    token = api_token(live_server, *ADMIN)
    auth = {"Authorization": f"Bearer {token}"}
    with (gtfs_dir / "google_sample.zip").open("rb") as f:
        v = httpx.post(
            f"{live_server}/api/v1/feeds/nevada/versions",
            files={"file": ("google_sample.zip", f, "application/zip")},
            headers=auth,
            timeout=120,
        ).json()
    r = httpx.post(
        f"{live_server}/api/v1/feeds/nevada/versions/{v['id']}/publish", headers=auth, timeout=120
    )
    assert r.status_code == 200, r.text
    try:
        page.add_init_script("localStorage.setItem('tsunagu.lang', 'ja')")
        page.goto("/")
        page.wait_for_selector("#map[data-ready='1']")
        assert page.is_visible("#city-field")
        assert page.input_value("#city") == "muroran"
        assert page.get_attribute("#map", "data-feed") == "muroran"
        # The map is fitted to Muroran alone, not to both cities.
        assert float(page.get_attribute("#map", "data-west")) > 140  # Muroran, not Nevada
        muroran_features = int(page.get_attribute("#map", "data-features"))
        page.fill("#from", "Furnace")
        page.wait_for_selector("#from-popup:not([hidden])")
        assert page.locator("#from-options li[data-stop-id]").count() == 0  # not Nevada's
        page.select_option("#city", "nevada")
        page.wait_for_selector("#map[data-feed='nevada']")
        assert int(page.get_attribute("#map", "data-features")) < muroran_features
        assert float(page.get_attribute("#map", "data-west")) < -100
        page.fill("#from", "")
        page.fill("#from", "Furnace")
        page.wait_for_selector("#from-options li[data-stop-id]")
        assert "Furnace Creek" in page.inner_text("#from-options")
        assert_accessible(page, "resident with a city picker")
    finally:
        httpx.post(f"{live_server}/api/v1/feeds/nevada/withdraw", headers=auth, timeout=120)
