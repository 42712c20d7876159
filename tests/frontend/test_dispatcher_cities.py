"""The dispatcher's and the operator's consoles with two cities published (#13), in Japanese
and English: each city is a network of its own. The dispatcher's map showed the default
network only, and once two cities were served the map had no way to the other; now a city
selector shows one city's network and its on-demand zones at a time. The operator sets the
city (network) a feed belongs to at upload and sees it per version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token
from tests.frontend.test_dispatcher_console import (
    _book,
    _console,
    _resident,
    _wait_text,
    console_screenshots,
)
from tests.frontend.ui_checks import assert_accessible, overflows_sideways

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LABEL = {"ja": "都市・地域", "en": "City"}
LABEL_NETWORK = {"ja": "都市・地域（ネットワーク）", "en": "City / network"}


def _upload_sample(base: str, auth: dict[str, str], gtfs_dir: Path, feed: str) -> dict[str, Any]:
    """Upload the GTFS sample (Nevada) as a new version of ``feed``; the version."""
    with (gtfs_dir / "google_sample.zip").open("rb") as f:
        r = httpx.post(
            f"{base}/api/v1/feeds/{feed}/versions",
            files={"file": ("google_sample.zip", f, "application/zip")},
            headers=auth,
            timeout=120,
        )
    assert r.status_code == 201 and r.json()["status"] == "valid", r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def nevada(live_server: str, gtfs_dir: Path) -> Iterator[dict[str, str]]:
    """A second city (the GTFS sample, Nevada) published beside Muroran, withdrawn after."""
    auth = {"Authorization": f"Bearer {api_token(live_server, *ADMIN)}"}
    v = _upload_sample(live_server, auth, gtfs_dir, "nevada")
    r = httpx.post(
        f"{live_server}/api/v1/feeds/nevada/versions/{v['id']}/publish", headers=auth, timeout=120
    )
    assert r.status_code == 200 and r.json()["network"]["network"] == "nevada", r.text
    try:
        yield auth
    finally:
        httpx.post(f"{live_server}/api/v1/feeds/nevada/withdraw", headers=auth, timeout=120)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_dispatcher_map_shows_one_city_at_a_time(
    page: Any, live_server: str, nevada: dict[str, str], lang: str
) -> None:
    zones = httpx.get(f"{live_server}/api/v1/network/zones").json()["features"]
    assert zones, "the demo's on-demand zone"
    page.add_init_script(
        f"localStorage.setItem('tsunagu.lang', '{lang}');"
        "localStorage.removeItem('tsunagu.dispatcher.city');"
    )
    _console(page)
    page.wait_for_selector("#map[data-ready='1']")
    assert page.is_visible("#city-field")
    assert page.inner_text("#city-field span") == LABEL[lang]
    assert page.input_value("#city") == "muroran"
    assert page.get_attribute("#map", "data-feed") == "muroran"
    # Fitted to Muroran alone (not zoomed out to Nevada too), with Muroran's zone.
    assert float(page.get_attribute("#map", "data-west")) > 140
    assert page.get_attribute("#map", "data-zones") == str(len(zones))
    _wait_text(page, "#zones", zones[0]["properties"]["name"])
    muroran_features = int(page.get_attribute("#map", "data-features"))
    assert_accessible(page, f"dispatcher with a city selector ({lang})")
    assert not overflows_sideways(page)
    page.select_option("#city", "nevada")
    page.wait_for_selector("#map[data-feed='nevada']")
    assert float(page.get_attribute("#map", "data-west")) < -100
    assert int(page.get_attribute("#map", "data-features")) < muroran_features
    assert page.get_attribute("#map", "data-zones") == "0"  # Muroran's zone is not Nevada's
    assert page.inner_text("#zones") == ""
    console_screenshots(page, f"dispatcher-city-nevada-{lang}")
    # The choice is remembered: the next visit opens on Nevada.
    assert page.evaluate("localStorage.getItem('tsunagu.dispatcher.city')") == "nevada"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_dispatcher_lists_follow_the_city(
    page: Any, live_server: str, nevada: dict[str, str], lang: str
) -> None:
    """The request list, the vehicle table, the vans on the map and the KPIs are the chosen
    city's: Muroran's ride and vans are not listed under Nevada (they were: only the map and
    the zones followed the selector), and come back with Muroran."""
    _, _, token, _ = _resident(live_server, f"Muroran Rider {lang}")
    ride = _book(live_server, token)
    row = f"#requests tr[data-ride-id='{ride['ride_id']}']"
    page.add_init_script(
        f"localStorage.setItem('tsunagu.lang', '{lang}');"
        "localStorage.removeItem('tsunagu.dispatcher.city');"
    )
    _console(page)
    page.wait_for_selector(row)
    vans = page.locator("#vehicles tbody tr").count()
    assert vans > 0 and page.locator("#map .vehicle-marker").count() == vans
    assert int(page.get_attribute("#kpis", "data-requests")) >= 1
    page.select_option("#city", "nevada")
    page.wait_for_function(
        "document.querySelectorAll('#vehicles tbody tr').length === 0", timeout=10000
    )
    assert page.locator(row).count() == 0
    assert page.locator("#requests tbody tr").count() == 0
    assert page.is_visible("#requests-empty")
    assert page.locator("#vehicles tbody tr").count() == 0
    assert page.locator("#map .vehicle-marker").count() == 0
    assert page.get_attribute("#kpis", "data-requests") == "0"
    assert_accessible(page, f"dispatcher lists of Nevada ({lang})")
    page.select_option("#city", "muroran")
    page.wait_for_selector(row)
    page.wait_for_function(
        f"document.querySelectorAll('#vehicles tbody tr').length === {vans}", timeout=10000
    )
    # The ride leaves the shared server's fleet to the other tests.
    r = httpx.delete(
        f"{live_server}/api/v1/rides/{ride['ride_id']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code in (200, 202), r.text


def _operator(page: Any, lang: str) -> None:
    """The operator console in ``lang``, logged in as the admin."""
    page.add_init_script(f"localStorage.setItem('tsunagu.lang', '{lang}')")
    page.goto("/operator.html")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#login-form input[name=email]", ADMIN[0])
    page.fill("#login-form input[name=password]", ADMIN[1])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#feeds-section:not([hidden])")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_operator_sets_the_city_of_an_upload(
    page: Any, live_server: str, gtfs_dir: Path, lang: str
) -> None:
    """The upload form's city field: a feed uploaded for city "muroran" is listed in that
    city, and publishing it would merge it into Muroran's network."""
    auth = {"Authorization": f"Bearer {api_token(live_server, *ADMIN)}"}
    feed = f"extra-{lang}"
    _operator(page, lang)
    page.fill("#upload-form input[name=feed_id]", feed)
    page.fill("#upload-form input[name=network]", "muroran")
    page.set_input_files("#upload-form input[name=file]", str(gtfs_dir / "google_sample.zip"))
    page.click("#upload-form button[type=submit]")
    row = f"#versions tr[data-feed-id='{feed}']"
    page.wait_for_selector(row)
    assert page.get_attribute(row, "data-network") == "muroran"
    assert "muroran" in page.inner_text(row)
    assert LABEL_NETWORK[lang] in page.inner_text("#versions thead")
    versions = httpx.get(f"{live_server}/api/v1/feeds/{feed}/versions", headers=auth).json()
    assert [v["network"] for v in versions["versions"]] == ["muroran"]
    assert_accessible(page, f"operator upload with a city ({lang})")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_operator_chooses_the_city_at_publish(
    page: Any, live_server: str, gtfs_dir: Path, lang: str
) -> None:
    """Publishing asks which city the version is served in, prefilled with its current one
    (the city could be changed at publish only through the API or the CLI); a malformed name
    is refused in the dialog, in the page's language; the chosen city is the network served."""
    auth = {"Authorization": f"Bearer {api_token(live_server, *ADMIN)}"}
    feed, city = f"pub-{lang}", f"tokai-{lang}"
    _upload_sample(live_server, auth, gtfs_dir, feed)
    try:
        _operator(page, lang)
        row = f"#versions tr[data-feed-id='{feed}']"
        page.click(f"{row} button.publish")
        page.wait_for_selector("#action-dialog[open]")
        assert page.is_visible("#action-city")
        assert page.input_value("#action-city") == feed  # the version's current city
        assert LABEL_NETWORK[lang] in page.inner_text("#city-field label")
        hint = {"ja": "同じ都市のフィードは", "en": "feeds of one city are merged"}[lang]
        assert hint in page.inner_text("#action-city-hint")
        assert not page.is_visible("#action-reason")  # a valid version needs no reason
        page.fill("#action-city", "../x")
        page.click("#action-confirm")
        bad = {"ja": "半角英数字", "en": "Use letters, digits"}[lang]
        assert bad in page.inner_text("#action-error")
        assert page.is_visible("#action-dialog")
        page.fill("#action-city", city)
        assert_accessible(page, f"operator publish with a city ({lang})")
        page.click("#action-confirm")
        page.wait_for_selector(f"{row}[data-status='published']")
        assert page.get_attribute(row, "data-network") == city  # recorded on the version
        nets = httpx.get(f"{live_server}/api/v1/network").json()["networks"]
        assert {n["network"]: n["feeds"] for n in nets}[city] == [feed]
    finally:
        httpx.post(f"{live_server}/api/v1/feeds/{feed}/withdraw", headers=auth, timeout=120)
