"""The base map (issue #13): a configured tile source with its credit, else the city drawn from
the server's own data (stops and route lines on a land-coloured ground), never a grey void."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

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
