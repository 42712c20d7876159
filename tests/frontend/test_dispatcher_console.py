"""The dispatcher console in Debian's chromium (#13), in Japanese and English.

Each journey fails on the old console, which could only watch: it had no request list (rides
showed as "pickup a6948d9e"), no vehicle plan, no action, a truncated raw-JSON event log, and
showed a resident an empty page saying "reconnecting" instead of "you need the dispatcher
role". The demo city's server (tests/frontend/conftest.py) with its live demo fleet.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token
from tests.frontend.ui_checks import assert_accessible, overflows_sideways, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JST = 9 * 3600  # the demo zone's local time (Asia/Tokyo); the browser runs in UTC
# Two places in the demo's on-demand zone (Higashi-Muroran), as the warm-up uses.
P1 = {"lat": 42.3487, "lon": 141.0261}
P2 = {"lat": 42.3440, "lon": 141.0180}


# The console's parts that the live demo fleet, the other tests on the shared server and the
# clock change from one run to the next (rides, vans, ETAs, log lines, KPIs). Their length
# changed the page's height at every run, so each is shown at a fixed height in a screenshot
# and left out of its comparison with the committed one.
LIVE_CARDS = {
    ".dc-alerts": "10rem",
    ".dc-requests": "24rem",
    ".dc-vehicles": "24rem",
    ".dc-plan": "24rem",
    ".dc-audit": "24rem",
    ".dc-events": "14rem",
}
# The add-vehicle form's depot defaults to a van's: which vans there are follows the tests run.
LIVE = (
    *LIVE_CARDS,
    "#kpis",
    "#live-status",
    "#map",
    "#phone-status",
    "#add-status",
    "#add-vehicle select[name=depot]",
)
# The fixed van the resident-page tests give their rides: the van the dispatcher picks follows
# the simulated fleet ("van-4", "autonomous-shuttle-1"), and its name's length changed how a
# ride's line wraps, so the page's height.
FIXED_VAN = "van-fixed-1"


@contextlib.contextmanager
def pinned_heights(page: Any, heights: Mapping[str, str]) -> Iterator[None]:
    """While inside, each element matching a key of ``heights`` is that tall (its overflow
    hidden): a list whose length follows the live data no longer moves the page's height."""
    css = "".join(f"{sel} {{ height: {h}; overflow: hidden; }}" for sel, h in heights.items())
    style = page.add_style_tag(content=css)
    try:
        yield
    finally:
        style.evaluate("e => e.remove()")


def console_screenshots(page: Any, name: str, full_page: bool = True) -> None:
    """:func:`screenshots` of the dispatcher console, its live parts at fixed heights and left
    out of the comparison (``LIVE``), so a run that changed only live data rewrites no PNG."""
    with pinned_heights(page, LIVE_CARDS):
        if not full_page:  # a viewport shot: always of the page's top, wherever focus scrolled
            page.evaluate("window.scrollTo(0, 0)")
        screenshots(page, name, full_page=full_page, volatile=LIVE)


def fixed_van(base: str, vid: str = FIXED_VAN, depot: dict[str, float] | None = None) -> str:
    """The van ``vid`` (added once per server if missing), on a three-hours shift from
    ``depot`` in the demo's zone; its id. The depot is P2 unless given: some minutes' drive
    from the rides' pick-up at P1, so the demo loop, which boards a rider the moment the van is
    there, does not board a ride given to it while a test looks at it (an onboard ride can be
    neither cancelled nor shown as booked)."""
    admin = _h(api_token(base, *ADMIN))
    if httpx.get(f"{base}/api/v1/fleet/vehicles/{vid}", headers=admin).status_code == 200:
        return vid
    zone = httpx.get(f"{base}/api/v1/fleet/zones", headers=admin).json()["zones"][0]
    r = httpx.post(
        f"{base}/api/v1/fleet/vehicles",
        json={
            "vehicle_id": vid,
            "zone_id": zone["zone_id"],
            "depot": depot or P2,
            "shift_end": time.time() + 3 * 3600,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return vid


def move_to(base: str, token: str, ride: dict[str, Any], vid: str) -> dict[str, Any]:
    """The resident's ``ride`` moved by the dispatcher to the van ``vid`` (if not on it
    already); the ride as the resident now sees it."""
    rid = ride["ride_id"]
    if ride.get("vehicle_id") != vid:
        r = httpx.post(
            f"{base}/api/v1/dispatcher/rides/{rid}/reassign",
            json={"vehicle_id": vid},
            headers=_h(api_token(base, *ADMIN)),
        )
        assert r.status_code == 200, r.text
    ride = httpx.get(f"{base}/api/v1/rides/{rid}", headers=_h(token)).json()
    assert ride["vehicle_id"] == vid, ride
    return ride  # type: ignore[no-any-return]


def _hm(t: float) -> str:
    return time.strftime("%H:%M", time.gmtime(t + JST))


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _resident(
    base: str, name: str, phone: str | None = None, email: str = ""
) -> tuple[str, str, str, str]:
    """A new resident: (email, password, token, user id). ``email``: a fixed one, for a test
    whose screenshot shows it (once per server), else a unique one (the server is shared)."""
    email, pw = email or f"r{uuid.uuid4().hex[:8]}@example.org", "correct-horse-9"
    r = httpx.post(
        f"{base}/api/v1/auth/signup",
        json={"email": email, "password": pw, "display_name": name},
    )
    r.raise_for_status()
    token = r.json()["tokens"]["access_token"]
    if phone:
        httpx.patch(f"{base}/api/v1/users/me", json={"phone": phone}, headers=_h(token))
    uid = httpx.get(f"{base}/api/v1/users/me", headers=_h(token)).json()["id"]
    return email, pw, token, uid


def _login(page: Any, email: str, password: str) -> None:
    page.goto("/dispatcher.html")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", password)
    page.click("#login-form button[type=submit]")


def _console(page: Any) -> None:
    _login(page, *ADMIN)
    page.wait_for_selector("#console:not([hidden])")
    page.wait_for_selector("body[data-loaded]")


def _wait_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.textContent ?? '').includes(t)",
        arg=[selector, text],
    )


def _book(base: str, token: str, **kw: Any) -> dict[str, Any]:
    body = {"request": {"origin": P1, "destination": P2, **kw}}
    r = httpx.post(f"{base}/api/v1/rides", json=body, headers=_h(token))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_resident_is_told_they_need_the_dispatcher_role(
    page: Any, live_server: str, language: str
) -> None:
    # The Japanese run's screenshot shows who is signed in: the same account at every run.
    fixed = "role.resident@example.org" if language == "ja" else ""
    email, pw, _, _ = _resident(live_server, "住民 太郎", email=fixed)
    _login(page, email, pw)
    page.wait_for_selector("#role-message:not([hidden])")
    if language == "en":
        page.click("#lang-toggle")
    expected = {"ja": "配車担当の権限が必要です", "en": "You need the dispatcher role"}
    assert expected[language] in page.inner_text("#role-message")
    assert page.locator("#console").is_hidden()
    assert "reconnect" not in page.inner_text("header").lower()
    assert "再接続" not in page.inner_text("header")
    assert_accessible(page, f"role message ({language})")
    if language == "ja":
        screenshots(page, "dispatcher-role-ja")


def test_dispatcher_sees_requests_plans_moves_cancels_and_takes_a_vehicle_off(
    page: Any, live_server: str
) -> None:
    admin = _h(api_token(live_server, *ADMIN))
    _console(page)
    _wait_text(page, "#live-status", "ライブ")
    assert "Higashi-Muroran" in page.inner_text("#zones")
    assert page.locator("#vehicles tbody tr[data-type='autonomous_shuttle']").count() == 1
    requests_before = int(page.get_attribute("#kpis", "data-requests"))

    # Add a vehicle to a shift (three hours from the dispatcher's now, local time).
    now = httpx.get(f"{live_server}/api/v1/dispatcher/kpis", headers=admin).json()["now"]
    # A fixed id (added once per server): the console's forms name it (the depot to choose).
    vid = "dc-van-1"
    page.fill("#add-vehicle input[name=vehicle_id]", vid)
    page.fill("#add-vehicle input[name=shift_end]", _hm(now + 3 * 3600))
    page.click("#add-vehicle button[type=submit]")
    _wait_text(page, "#add-status", f"{vid} を追加しました")
    page.wait_for_selector(f"#vehicles tr[data-id='{vid}']")

    # A resident's ride appears by rider, places and local times, not by id.
    _, _, token, _ = _resident(live_server, "山田 花子", email="yamada.hanako@example.org")
    ride = _book(live_server, token, earliest_pickup=now + 25 * 60)
    rid = ride["ride_id"]
    row = f"#requests tr[data-ride-id='{rid}']"
    page.wait_for_selector(row)
    text = page.inner_text(row)
    assert "山田 花子" in text and "予約済み" in text
    assert not re.search(r"pickup [0-9a-f]{8}", text)
    names = {
        httpx.get(f"{live_server}/api/v1/stops/nearest", params={**p, "limit": 1}).json()["stops"][
            0
        ]["name"]
        for p in (P1, P2)
    }
    assert all(n in text for n in names), (names, text)
    assert f"{_hm(ride['pickup_window'][0])}–{_hm(ride['pickup_window'][1])}" in text
    # KPIs update: one more request today.
    page.wait_for_function(
        f"Number(document.querySelector('#kpis').dataset.requests) > {requests_before}"
    )

    # Its vehicle's plan, in the table and on the map.
    page.click(f"#vehicles tr[data-id='{ride['vehicle_id']}'] button >> nth=0")
    _wait_text(page, "#plan-h", ride["vehicle_id"])
    assert page.locator(f"#plan tr[data-ride-id='{rid}']").count() == 2
    assert "山田 花子" in page.inner_text("#plan tbody")
    assert int(page.get_attribute("#map", "data-plan-stops")) >= 2
    assert_accessible(page, "console with a plan")
    console_screenshots(page, "dispatcher-plan-ja")
    assert not overflows_sideways(page)

    # Move the ride to the new vehicle (a confirmation dialog with the vehicle to choose).
    page.click(f"{row} button:has-text('車両変更')")
    sel = "#action-form select[name=vehicle_id]"
    options = page.locator(f"{sel} option").evaluate_all("os => os.map(o => o.value)")
    # The new, idle vehicle, unless the ride was booked on it already.
    target = vid if vid in options else options[0]
    assert ride["vehicle_id"] not in options
    page.select_option(sel, target)
    page.click("#dialog-confirm")
    page.wait_for_selector("#action-dialog", state="hidden")
    _wait_text(page, row, target)
    _wait_text(page, "#audit tbody tr:first-child", "車両変更")

    # A no-show before the pick-up window opens is refused, and says why in Japanese.
    page.click(f"{row} button:has-text('不在')")
    page.click("#dialog-confirm")
    _wait_text(page, "#dialog-error", "お迎えの時間帯がまだ始まっていません")
    page.click("#dialog-back")

    # Cancel, by keyboard: the dialog asks for a reason and will not go on without one.
    page.focus(f"{row} button:has-text('取消')")
    page.keyboard.press("Enter")
    page.wait_for_selector("#action-dialog[open]")
    page.click("#dialog-confirm")
    _wait_text(page, "#dialog-error", "理由を入力してください")
    assert_accessible(page, "cancel dialog")
    console_screenshots(page, "dispatcher-cancel-dialog-ja", full_page=False)
    page.focus("#action-form textarea[name=reason]")
    page.keyboard.type("道路が通行止め")
    page.focus("#dialog-confirm")
    page.keyboard.press("Enter")
    page.wait_for_selector(row, state="detached")
    _wait_text(page, "#audit tbody tr:first-child", "道路が通行止め")
    # The ride has left the list; the log still says whose it was.
    assert "山田 花子" in page.inner_text("#audit tbody tr:first-child")
    mine = httpx.get(f"{live_server}/api/v1/rides/{rid}", headers=_h(token)).json()
    assert mine["status"] == "cancelled" and mine["status_reason"] == "道路が通行止め"

    # Take the new vehicle out of service, then back.
    vrow = f"#vehicles tr[data-id='{vid}']"
    page.click(f"{vrow} button:has-text('運休')")
    page.fill("#action-form textarea[name=reason]", "パンク")
    page.click("#dialog-confirm")
    page.wait_for_selector(f"{vrow}[data-in-service='false']")
    assert "運休中" in page.inner_text(vrow)
    page.click(f"{vrow} button:has-text('運行再開')")
    page.click("#dialog-confirm")
    page.wait_for_selector(f"{vrow}[data-in-service='true']")
    actions = page.locator("#audit tbody tr").evaluate_all("rs => rs.map(r => r.dataset.action)")
    assert actions[:2] == ["in_service", "out_of_service"]
    # Every audit row says who did it.
    assert ADMIN[0] in page.inner_text("#audit tbody tr:first-child")


def test_telephone_booking_in_english_in_the_residents_account(page: Any, live_server: str) -> None:
    _, _, token, uid = _resident(
        live_server, "Hanako Suzuki", phone="0143-22-9876", email="hanako.suzuki@example.org"
    )
    _console(page)
    page.click("#lang-toggle")
    _wait_text(page, "#phone-h", "Telephone booking")
    page.fill("#resident-search input[name=q]", "(0143) 22 9876")
    page.click("#resident-search button[type=submit]")
    page.click("#resident-results button:has-text('Hanako Suzuki')")
    page.wait_for_selector("#phone-book:not([hidden])")
    for field, p in (("origin", P1), ("destination", P2)):
        stop = httpx.get(f"{live_server}/api/v1/stops/nearest", params={**p, "limit": 1}).json()[
            "stops"
        ][0]["name"]
        page.fill(f"#phone-book input[name={field}-q]", stop)
        page.click(f"#phone-book [data-find={field}]")
        page.click(f"#phone-book [data-results={field}] button >> nth=0")
        _wait_text(page, f"#phone-book [data-chosen={field}]", "Chosen:")
    page.click("#phone-book button[type=submit]")
    _wait_text(page, "#phone-status", "Booked for Hanako Suzuki")
    rides = httpx.get(f"{live_server}/api/v1/rides", headers=_h(token)).json()["rides"]
    assert len(rides) == 1 and rides[0]["status"] == "assigned"
    rid = rides[0]["ride_id"]
    row = f"#requests tr[data-ride-id='{rid}']"
    page.wait_for_selector(row)
    assert "Hanako Suzuki" in page.inner_text(row) and "Booked" in page.inner_text(row)
    page.wait_for_selector("#audit tbody tr[data-action='book_on_behalf']")
    assert_accessible(page, "telephone booking (en)")
    console_screenshots(page, "dispatcher-phone-booking-en")
    assert "Booked on behalf" in page.inner_text("#audit tbody tr:first-child")
    assert "Hanako Suzuki" in page.inner_text("#audit tbody tr:first-child")
    admin = _h(api_token(live_server, *ADMIN))
    audit = httpx.get(
        f"{live_server}/api/v1/dispatcher/audit", params={"target_id": uid}, headers=admin
    ).json()["entries"]
    assert audit[0]["details"]["ride_id"] == rid and audit[0]["actor_email"] == ADMIN[0]
    httpx.delete(f"{live_server}/api/v1/rides/{rid}", headers=_h(token))


def test_event_log_is_readable_and_the_console_fits_a_phone(page: Any, live_server: str) -> None:
    page.set_viewport_size({"width": 360, "height": 800})
    _console(page)
    _wait_text(page, "#live-status", "ライブ")
    token = api_token(live_server, *ADMIN)
    title = f"Detour {uuid.uuid4().hex[:6]}"
    r = httpx.post(
        f"{live_server}/api/v1/events/alerts",
        json={"title": title, "message": "Road works"},
        headers=_h(token),
    )
    assert r.status_code == 201, r.text
    _wait_text(page, "#events", f"お知らせ: {title} — Road works")
    events = page.inner_text("#events")
    assert "{" not in events and '"' not in events
    # 360 px wide: nothing scrolls sideways; every visible button is at least 24 px square.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, width
    small = page.evaluate(
        """() => [...document.querySelectorAll('button')].filter(b => b.offsetParent)
             .map(b => b.getBoundingClientRect()).filter(r => r.width < 24 || r.height < 24).length"""
    )
    assert small == 0
    # Form fields have labels.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#console input, #console select, #console textarea')]
             .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"""
    )
    assert unlabelled == []


def test_an_alert_when_a_promised_window_is_at_risk_in_english(page: Any, live_server: str) -> None:
    admin = _h(api_token(live_server, *ADMIN))
    _console(page)
    _wait_text(page, "#live-status", "ライブ")
    page.click("#lang-toggle")
    _wait_text(page, "#alerts-h", "Alerts")
    _wait_text(page, "#live-status", "live")
    _, _, token, _ = _resident(live_server, "Late Rider", email="late.rider@example.org")
    ride = _book(live_server, token)  # leave now: a ten-minute pick-up window
    rid = ride["ride_id"]
    # Its vehicle reports a position 4 km north of the zone: it can no longer be in time.
    zone = httpx.get(f"{live_server}/api/v1/fleet/zones", headers=admin).json()["zones"][0]
    ring = zone["geometry"]["coordinates"][0][0]
    north = max(p[1] for p in ring) + 0.036
    lon = sum(p[0] for p in ring) / len(ring)
    r = httpx.post(
        f"{live_server}/api/v1/fleet/vehicles/{ride['vehicle_id']}/events",
        json={"type": "position", "lat": north, "lon": lon},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    try:
        alert = f"#alerts li[data-ride-id='{rid}'][data-risk='late']"
        page.wait_for_selector(alert)
        text = page.inner_text(alert)
        assert text.startswith("Late: Late Rider")
        assert f"promised {_hm(ride['pickup_window'][0])}–{_hm(ride['pickup_window'][1])}" in text
        page.wait_for_selector(f"#requests tr[data-ride-id='{rid}'][data-risk='late']")
        assert int(page.inner_text("#kpi-risk").split("/")[1]) >= 1
        assert_accessible(page, "alerts (en)")
        console_screenshots(page, "dispatcher-alerts-en")
    finally:
        httpx.delete(f"{live_server}/api/v1/rides/{rid}", headers=_h(token))
