"""Intermodal trips on the resident page (issue #9) in a real browser (Debian's chromium).

A resident too far from any bus stop to walk (the page's walk limit) but inside the demo's
on-demand zone plans to a stop outside the zone: the page asks for on-demand legs by default,
shows a van + bus itinerary in the network's time zone, books it as one trip in one tap, shows
it confirmed and follows the van on the map. On the Japanese page, a trip outside the zone
shows the server's localised refusal.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Inside the demo zone (around Higashi-Muroran station), about 700 m from the nearest stop.
ORIGIN = (42.3435, 141.0088)
# The 室蘭駅前 stop, outside the zone, about 7 km away by bus.
DESTINATION = (42.317734, 140.973624)
MAX_WALK_M = 500
WAIT_MS = 60_000


def _place(p: tuple[float, float]) -> str:
    return f"{p[0]},{p[1]}"


def _plan_when(base: str) -> tuple[str, str, ZoneInfo]:
    """A date and time (the network's time zone) when buses run and the on-demand rides can be
    booked now: soon in the daytime, else 08:00 (today before dawn, tomorrow late at night;
    within the zone's 24 h booking horizon either way)."""
    net = httpx.get(f"{base}/api/v1/network").json()
    tz = ZoneInfo(net["timezone"])
    now = dt.datetime.now(tz)
    if now.hour < 6:
        when = now.replace(hour=8, minute=0)
    elif now.hour * 60 + now.minute < 20 * 60 + 30:
        when = now + dt.timedelta(minutes=5)
    else:
        when = (now + dt.timedelta(days=1)).replace(hour=8, minute=0)
    return when.date().isoformat(), when.strftime("%H:%M"), tz


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * 111_320
    dx = (a[1] - b[1]) * 111_320 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def _open_signed_up(page: Any, lang: str) -> None:
    page.add_init_script(f"localStorage.setItem('tsunagu.lang', '{lang}')")
    page.goto("/")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#login-form input[name=email]", f"i{uuid.uuid4().hex[:8]}@example.org")
    page.fill("#login-form input[name=password]", "correct-horse-9")
    page.click("#signup-button")
    page.wait_for_selector("#logout:not([hidden])")


def _fill_plan(page: Any, origin: str, dest: str, date: str, time: str, walk: int) -> None:
    page.fill("#from", origin)
    page.fill("#to", dest)
    page.fill("#date", date)
    page.fill("#time", time)
    page.fill("#max-walk", str(walk))


def test_resident_books_a_van_and_bus_trip_in_one_tap_and_follows_the_van(
    page: Any, live_server: str
) -> None:
    date, time, tz = _plan_when(live_server)
    # Without on-demand rides the origin is out of reach: no stop within the walk limit.
    plain = httpx.get(
        f"{live_server}/api/v1/plan",
        params={
            "fromPlace": _place(ORIGIN),
            "toPlace": _place(DESTINATION),
            "date": date,
            "time": time,
            "maxWalkDistance": MAX_WALK_M,
            "mode": "TRANSIT,WALK",
        },
        timeout=120,
    ).json()
    assert plain["plan"]["itineraries"] == [] and plain["error"]["id"] == "LOCATION_NOT_ACCESSIBLE"

    _open_signed_up(page, "en")
    # The demo's on-demand zone is on the map, and on-demand rides are asked for by default.
    page.wait_for_selector("#map[data-zones='1']", timeout=WAIT_MS)
    assert page.is_checked("#flex")
    _fill_plan(page, _place(ORIGIN), _place(DESTINATION), date, time, MAX_WALK_M)
    with page.expect_response("**/api/v1/plan?*", timeout=WAIT_MS) as answer:
        page.click("#plan-form button[type=submit]")
    request = answer.value.request
    query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", request.url))
    assert query["mode"] == "TRANSIT%2CWALK%2CFLEX" and query["locale"] == "en"
    assert query["maxWalkDistance"] == str(MAX_WALK_M)
    # Signed in: the quotes are the rider's own.
    assert request.headers["authorization"].startswith("Bearer ")
    plan = answer.value.json()
    page.wait_for_selector("#itineraries li", timeout=WAIT_MS)
    its = plan["plan"]["itineraries"]
    mixed = [
        i
        for i, it in enumerate(its)
        if it.get("bookable") and {leg["mode"] for leg in it["legs"]} >= {"FLEX", "BUS"}
    ]
    assert mixed, (page.inner_text("#itineraries"), json.dumps(plan.get("onDemand")))
    n = mixed[0]
    it = its[n]
    item = page.locator("#itineraries li.itinerary").nth(n)
    assert item.get_attribute("data-on-demand") == "1"
    flex = next(leg for leg in it["legs"] if leg["mode"] == "FLEX")

    def hhmm(ms: int) -> str:  # the network's time zone, whatever the browser's
        return dt.datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M")

    window = f"{hhmm(flex['pickupWindow']['start'])}–{hhmm(flex['pickupWindow']['end'])}"
    flex_text = item.locator(".leg-flex").first.inner_text()
    assert re.match(r"On-demand (van|car|autonomous shuttle) · pick-up ", flex_text), flex_text
    assert f"pick-up {window} · {flex['zoneName']}" in flex_text, flex_text
    assert item.locator(".leg-bus").count() >= 1
    bus = next(leg for leg in it["legs"] if leg["mode"] == "BUS")
    bus_text = item.locator(".leg-bus").first.inner_text()
    assert bus_text.startswith(hhmm(bus["startTime"])), bus_text
    assert (bus["routeShortName"] or bus["routeLongName"]) in bus_text

    # Booking is one tap: POST /trips with confirm and an Idempotency-Key.
    with page.expect_request(
        lambda r: r.url.endswith("/api/v1/trips") and r.method == "POST", timeout=WAIT_MS
    ) as sent:
        item.locator("button.book-trip").click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["confirm"] is True
    assert [leg.get("bookingQuoteId") for leg in body["itinerary"]["legs"]] == [
        leg.get("bookingQuoteId") for leg in it["legs"]
    ]
    assert re.fullmatch(r"[0-9a-f-]{36}", sent.value.headers["idempotency-key"])
    page.wait_for_selector("#trip-result[data-state]:not([data-state='booking'])", timeout=WAIT_MS)
    assert page.get_attribute("#trip-result", "data-state") == "CONFIRMED", page.inner_text(
        "#trip-result"
    )
    result = page.inner_text("#trip-result")
    assert "Trip booked" in result
    booked = page.locator("#trip-result .booked-leg").first
    vehicle = booked.get_attribute("data-vehicle-id")
    assert vehicle and vehicle in result
    trip_id = page.get_attribute("#trip-result", "data-trip-id")
    page.wait_for_selector(
        f"#trip-list li[data-trip-id='{trip_id}'][data-state='CONFIRMED']", timeout=WAIT_MS
    )
    assert "Confirmed" in page.inner_text(f"#trip-list li[data-trip-id='{trip_id}']")

    # The van is drawn on the map where the fleet says it is ...
    marker = f".vehicle-marker[data-vehicle-id='{vehicle}']"
    page.wait_for_selector(marker, timeout=WAIT_MS)
    token = api_token(live_server, *ADMIN)
    auth = {"Authorization": f"Bearer {token}"}
    v = httpx.get(f"{live_server}/api/v1/fleet/vehicles/{vehicle}", headers=auth).json()
    shown = (
        float(page.get_attribute(marker, "data-lat")),
        float(page.get_attribute(marker, "data-lon")),
    )
    # The van drives meanwhile (a few seconds between the feed's read and the API's).
    assert _metres(shown, tuple(v["position"])) < 500, (shown, v["position"])
    # ... and moves when it reports a new position (its driver's app), about 800 m away.
    target = (
        (42.3560, 141.0300) if _metres(shown, (42.3560, 141.0300)) > 800 else (42.3400, 141.0200)
    )
    r = httpx.post(
        f"{live_server}/api/v1/fleet/vehicles/{vehicle}/events",
        json={"type": "position", "lat": target[0], "lon": target[1]},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    page.wait_for_function(
        """([sel, lat, lon]) => {
            const el = document.querySelector(sel);
            if (!el) return false;
            const dy = (Number(el.dataset.lat) - lat) * 111320;
            const dx = (Number(el.dataset.lon) - lon) * 111320 * Math.cos(lat * Math.PI / 180);
            return Math.hypot(dx, dy) < 250;
        }""",
        arg=[marker, target[0], target[1]],
        timeout=WAIT_MS,
    )
    assert int(page.get_attribute(marker, "data-moves")) >= 1
    # The chosen itinerary is drawn, its on-demand leg among its lines.
    assert page.get_attribute("#map", "data-flex-legs") == str(
        sum(1 for leg in it["legs"] if leg["mode"] == "FLEX")
    )
    assert page.outside_requests == []


def test_japanese_page_shows_the_outside_zone_refusal(page: Any, live_server: str) -> None:
    date, time, _ = _plan_when(live_server)
    _open_signed_up(page, "ja")
    assert page.inner_text("label:has(#flex)").strip() == "オンデマンド交通を含める"
    # Muroran station to the city hall: both outside the on-demand zone.
    _fill_plan(page, "42.3158,140.9738", "42.3170,140.9760", date, time, 1000)
    with page.expect_response("**/api/v1/plan?*", timeout=WAIT_MS) as answer:
        page.click("#plan-form button[type=submit]")
    assert "locale=ja" in answer.value.request.url
    page.wait_for_selector("#ondemand-notes:not([hidden])", timeout=WAIT_MS)
    note = page.locator("#ondemand-note-list li[data-reason='outside_zone']")
    assert note.count() == 1
    assert note.inner_text() == "オンデマンド交通の運行エリア外です。"
    assert page.inner_text("#ondemand-notes h3") == "オンデマンド交通について"
    # No on-demand leg was offered, so nothing to book.
    assert page.locator("#itineraries .leg-flex").count() == 0
    assert page.locator("#itineraries button.book-trip").count() == 0
    assert page.outside_requests == []
