"""The three web front-ends in a real browser (Debian's chromium via Playwright).

Each test talks to a real server with the demo city, and fails if the page tries to reach
anything outside localhost (maps are drawn from the server's own GeoJSON).
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.frontend.conftest import ADMIN

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _wait_ready(page: object) -> None:
    page.wait_for_selector("body[data-ready='1']")  # type: ignore[attr-defined]


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
    page.wait_for_selector("#map[data-ready='1']")  # type: ignore[attr-defined]
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
    # Workbox (vite-plugin-pwa) precaches the built bundle: the page's own script among it.
    assert sw.status_code == 200 and "precacheAndRoute" in sw.text
    index = httpx.get(f"{live_server}/").text
    bundle = index.split('<script type="module" crossorigin src="/', 1)[1].split('"', 1)[0]
    assert bundle.startswith("assets/") and bundle in sw.text


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


def _sign_up(page: object) -> None:
    page.goto("/")  # type: ignore[attr-defined]
    _wait_ready(page)
    page.fill("#login-form input[name=email]", f"r{uuid.uuid4().hex[:8]}@example.org")  # type: ignore[attr-defined]
    page.fill("#login-form input[name=password]", "correct-horse-9")  # type: ignore[attr-defined]
    page.click("#signup-button")  # type: ignore[attr-defined]
    page.wait_for_selector("#logout:not([hidden])")  # type: ignore[attr-defined]


def test_resident_plans_a_bus_trip_in_the_demo_city(page: object, live_server: str) -> None:
    _sign_up(page)
    # Muroran station area -> Higashi-Muroran: the demo service date is pre-filled.
    demo_date = httpx.get(f"{live_server}/api/v1/network").json()["service_date"]
    assert page.input_value("#date") == demo_date  # type: ignore[attr-defined]
    page.fill("#from", "42.3158,140.9738")  # type: ignore[attr-defined]
    page.fill("#to", "42.3466,141.0240")  # type: ignore[attr-defined]
    page.fill("#time", "08:00")  # type: ignore[attr-defined]
    page.click("#plan-form button[type=submit]")  # type: ignore[attr-defined]
    # The answer, itineraries or the reason why none (so a failure says which).
    page.wait_for_selector("#itineraries li")  # type: ignore[attr-defined]
    assert page.locator("#itineraries li.itinerary").count() >= 1, page.inner_text("#itineraries")  # type: ignore[attr-defined]
    first = page.inner_text("#itineraries li.itinerary >> nth=0")  # type: ignore[attr-defined]
    assert "徒歩" in first  # walking legs to and from the stops
    assert page.locator("#itineraries li.itinerary >> nth=0 >> .leg-bus").count() >= 1  # type: ignore[attr-defined]


def test_resident_finds_a_stop_by_its_kana_reading(page: object) -> None:
    page.goto("/")  # type: ignore[attr-defined]
    _wait_ready(page)
    page.fill("#from", "ひがしむろらん")  # type: ignore[attr-defined]
    page.wait_for_selector("#from-options li[role=option]")  # type: ignore[attr-defined]
    assert "東室蘭" in page.inner_text("#from-options li >> nth=0")  # type: ignore[attr-defined]


def test_resident_quotes_and_books_an_on_demand_ride(page: object) -> None:
    _sign_up(page)
    # Inside the demo on-demand zone around Higashi-Muroran station.
    page.fill("#from", "42.3487,141.0261")  # type: ignore[attr-defined]
    page.fill("#to", "42.3440,141.0180")  # type: ignore[attr-defined]
    page.click("#quote-button")  # type: ignore[attr-defined]
    page.wait_for_selector("#quote-result .offer")  # type: ignore[attr-defined]
    page.click("#book-button")  # type: ignore[attr-defined]
    page.wait_for_selector("#ride-list li")  # type: ignore[attr-defined]
    # Far outside the zone: an honest rejection with its reason, no booking.
    page.fill("#from", "42.3158,140.9738")  # type: ignore[attr-defined]
    page.fill("#to", "42.3170,140.9760")  # type: ignore[attr-defined]
    page.click("#quote-button")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "document.querySelector('#quote-result').textContent.includes('ご利用いただけません')"
    )
    assert page.locator("#ride-list li").count() == 1  # type: ignore[attr-defined]


def _book_in_the_demo_zone(page: object) -> None:
    """Quote a ride in the demo on-demand zone and press "book"."""
    page.fill("#from", "42.3487,141.0261")  # type: ignore[attr-defined]
    page.fill("#to", "42.3440,141.0180")  # type: ignore[attr-defined]
    page.click("#quote-button")  # type: ignore[attr-defined]
    page.wait_for_selector("#quote-result .offer")  # type: ignore[attr-defined]
    page.click("#book-button")  # type: ignore[attr-defined]


def _answer_booking_pending(page: object, request_id: str) -> None:
    """The server answers the booking 202 pending (cluster mode, the zone's owner too slow):
    the POST is answered here; every other request on the path goes to the server."""

    def pending(route: object) -> None:
        if route.request.method != "POST":  # type: ignore[attr-defined]
            route.fallback()  # type: ignore[attr-defined]
            return
        route.fulfill(  # type: ignore[attr-defined]
            status=202, json={"request_id": request_id, "status": "pending"}
        )

    page.route("**/api/v1/rides", pending)  # type: ignore[attr-defined]


def test_a_pending_booking_is_shown_then_confirmed_by_polling(page: object) -> None:
    """202 pending: the page says so (ja), then GET /rides/{id} says assigned: confirmed."""
    rid = f"req-{uuid.uuid4().hex[:8]}"
    status = {"now": "pending"}

    def ride(route: object) -> None:
        route.fulfill(  # type: ignore[attr-defined]
            json={
                "ride_id": rid,
                "request_id": rid,
                "status": status["now"],
                "pickup_window": [0, 0],
            }
        )

    _sign_up(page)
    _answer_booking_pending(page, rid)
    page.route(f"**/api/v1/rides/{rid}", ride)  # type: ignore[attr-defined]
    _book_in_the_demo_zone(page)
    page.wait_for_selector(f"#quote-result .pending[data-request-id='{rid}']")  # type: ignore[attr-defined]
    assert page.inner_text("#quote-result") == "予約を受け付けました（確定待ち）"  # type: ignore[attr-defined]
    # Two polls answered "pending" (every 3 s: the first answer has long been handled when
    # the second comes), and the booking is still shown pending.
    for _ in range(2):
        with page.expect_response(f"**/api/v1/rides/{rid}"):  # type: ignore[attr-defined]
            pass
    assert page.locator("#quote-result .pending").count() == 1  # type: ignore[attr-defined]
    status["now"] = "assigned"
    page.wait_for_selector("#quote-result[data-settled='assigned']")  # type: ignore[attr-defined]
    assert page.inner_text("#quote-result") == "✓ 予約が確定しました"  # type: ignore[attr-defined]
    assert page.outside_requests == []  # type: ignore[attr-defined]


def test_a_pending_booking_rejected_on_the_event_stream(page: object) -> None:
    """202 pending (en), GET /rides/{id} still pending: the rider's ``user.<id>.ride`` event
    "rejected" settles it with its reason."""
    rid = f"req-{uuid.uuid4().hex[:8]}"
    event = {
        "topic": "user.me.ride",
        "data": {"type": "rejected", "request_id": rid, "reason": "no_vehicle_available"},
    }
    page.add_init_script("localStorage.setItem('tsunagu.lang', 'en')")  # type: ignore[attr-defined]
    # The stream is routed before it opens (at sign-up) and reopened now and then (retry:
    # 300 ms). It carries the event only once the test has seen the pending booking: sent
    # earlier, the event could settle the booking before its "pending" text is read.
    sent = {"event": False}

    def stream(route: object) -> None:
        body = "retry: 300\nevent: ready\ndata: {}\n\n"
        if sent["event"]:
            body += f"data: {json.dumps(event)}\n\n"
        route.fulfill(  # type: ignore[attr-defined]
            status=200, headers={"Content-Type": "text/event-stream"}, body=body
        )

    page.route("**/api/v1/events/stream*", stream)  # type: ignore[attr-defined]
    _sign_up(page)
    _answer_booking_pending(page, rid)
    page.route(  # type: ignore[attr-defined]
        f"**/api/v1/rides/{rid}",
        lambda route: route.fulfill(
            json={"ride_id": rid, "status": "pending", "pickup_window": [0, 0]}
        ),
    )
    _book_in_the_demo_zone(page)
    page.wait_for_selector("#quote-result .pending")  # type: ignore[attr-defined]
    assert page.inner_text("#quote-result") == "Booking received, waiting for confirmation"  # type: ignore[attr-defined]
    sent["event"] = True
    page.wait_for_selector("#quote-result[data-settled='rejected']")  # type: ignore[attr-defined]
    # The reason in the page's language, not the bare code.
    assert page.inner_text("#quote-result") == (  # type: ignore[attr-defined]
        "Not available: No on-demand vehicle can take this ride in time (all vehicles busy or full)."
    )
    assert page.outside_requests == []  # type: ignore[attr-defined]
