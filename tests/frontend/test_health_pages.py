"""The health pages (issue #12) in a real browser (Debian's chromium).

A resident (English page) records a checkup - a value out of range is refused by the form
first - sees the Hisayama risk with the inputs it used, grants a clinic access to the records.
The clinic's staff member (Japanese page; the organisation and the staff account made through
the API by the administrator) sees only that resident and their records and risk; the read is
in the resident's audit log. The resident revokes; the clinic's page then shows the API's 403
as a refusal in Japanese and no longer lists the resident. A watcher sees the watched
resident's weekly activity and ride notices only, and books a ride on their behalf.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 60_000
PASSWORD = "correct-horse-9"
REFUSED_JA = "この住民の同意がありません（取り消されたか期限切れです）。データは表示できません。"


def _clinic_and_staff(base: str) -> tuple[str, str, str]:
    """A clinic and a health-staff user acting for it, made by the administrator: (clinic id,
    staff email, staff user id)."""
    auth = {"Authorization": f"Bearer {api_token(base, *ADMIN)}"}
    with httpx.Client(base_url=f"{base}/api/v1", headers=auth, timeout=60) as c:
        r = c.post(
            "/health/organisations",
            json={"name": f"Clinic {uuid.uuid4().hex[:6]}", "kind": "clinic"},
        )
        assert r.status_code == 201, r.text
        clinic = r.json()["id"]
        email = f"staff-{uuid.uuid4().hex[:8]}@example.org"
        r = httpx.post(
            f"{base}/api/v1/auth/signup", json={"email": email, "password": PASSWORD}, timeout=60
        )
        assert r.status_code in (200, 201), r.text
        staff = r.json()["user"]["id"]
        r = c.patch(f"/users/{staff}/roles", json={"roles": ["resident", "health_staff"]})
        assert r.status_code == 200, r.text
        r = c.post(f"/health/organisations/{clinic}/members", json={"user_id": staff})
        assert r.status_code == 201, r.text
    return clinic, email, staff


def _open(page: Any, lang: str) -> None:
    page.add_init_script(f"localStorage.setItem('tsunagu.lang', '{lang}')")
    page.goto("/health.html")
    page.wait_for_selector("body[data-ready='1']", timeout=WAIT_MS)


def _sign_in(page: Any, email: str, *, new: bool) -> None:
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", PASSWORD)
    if new:
        page.click("#signup-button")
    else:
        page.click("#login-form button[type=submit]")
    page.wait_for_selector("#logout:not([hidden])", timeout=WAIT_MS)


def test_resident_shares_records_with_a_clinic_then_revokes(
    browser: Any, page: Any, live_server: str
) -> None:
    clinic, staff_email, staff_id = _clinic_and_staff(live_server)

    # --- the resident, in English -------------------------------------------------------------
    _open(page, "en")
    assert page.inner_text("#auth h2").strip() == "Log in"
    _sign_in(page, f"r{uuid.uuid4().hex[:8]}@example.org", new=True)
    page.wait_for_selector("body[data-view='resident'] #checkup-form", timeout=WAIT_MS)
    resident_id = page.inner_text("#my-id").strip()
    assert len(resident_id) == 36
    # Nothing recorded: the risk says what it needs.
    page.wait_for_selector("#risk-body[data-available='0']", timeout=WAIT_MS)
    assert "Values needed for the score" in page.inner_text("#risk-body")
    # The activity table lists the last four weeks against the guideline.
    page.wait_for_selector("#activity-table tbody tr[data-week]", timeout=WAIT_MS)
    assert page.locator("#activity-table tbody tr[data-week]").count() == 4
    assert "8,000 steps a day" in page.inner_text("#activity-note")

    # A value out of range is refused by the form, with the field's message, before any request.
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/health/me/checkups" in r.url else None)
    page.fill("#checkup-form input[name=ldl]", "4000")
    page.click("#checkup-form button[type=submit]")
    page.wait_for_selector("#checkup-form input[name=ldl][aria-invalid='true']")
    assert page.inner_text("#ldl-error") == "LDL cholesterol (mg/dL) must lie between 10 and 400"
    assert page.inner_text("#checkup-error") == page.inner_text("#ldl-error")
    # Systolic without diastolic: the pair is asked for.
    page.fill("#checkup-form input[name=ldl]", "")
    page.fill("#checkup-form input[name=systolic]", "150")
    page.click("#checkup-form button[type=submit]")
    page.wait_for_selector("#diastolic-error:has-text('Give both systolic and diastolic')")
    assert sent == []

    values = {
        "age": "62",
        "height_cm": "168",
        "weight_kg": "70",
        "systolic": "150",
        "diastolic": "92",
        "hba1c": "5.8",
        "ldl": "165",
        "hdl": "42",
    }
    for name, v in values.items():
        page.fill(f"#checkup-form input[name={name}]", v)
    page.select_option("#checkup-form select[name=sex]", "male")
    page.select_option("#checkup-form select[name=smoking]", "current")
    with page.expect_response("**/api/v1/health/me/checkups", timeout=WAIT_MS) as answer:
        page.click("#checkup-form button[type=submit]")
    assert answer.value.status == 201, answer.value.text()
    page.wait_for_selector("#checkup-status:has-text('values recorded')", timeout=WAIT_MS)
    page.wait_for_selector("#risk-body[data-available='1']", timeout=WAIT_MS)

    # The page shows the API's risk, category and inputs.
    token = page.evaluate("JSON.parse(localStorage.getItem('tsunagu.tokens')).access_token")
    risk = httpx.get(
        f"{live_server}/api/v1/health/me/risk",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ).json()
    assert risk["available"] is True and risk["inputs"]["ldl"] == 165
    shown = page.inner_text("#risk-body")
    percent = f"{'< ' if risk['risk10y']['lessThan'] else ''}{risk['risk10y']['percent']:.1f} %"
    assert f"10-year risk {percent}" in shown, shown
    category = {"low": "Low risk", "medium": "Medium risk", "high": "High risk"}[risk["category"]]
    assert f"Category: {category}" in shown
    assert page.get_attribute("#risk-body", "data-category") == risk["category"]
    assert page.text_content("#risk-body tr[data-input='ldl'] td") == "165.0 mg/dL"
    assert page.text_content("#risk-body tr[data-input='smoker'] td") == "yes"
    assert "WHO HEAT reference of 168 min" in shown  # no trips yet: the walking advice
    assert page.text_content("#latest-table tr[data-kind='blood_pressure'] td") == "150/92 mmHg"

    # Grant the clinic access to the records.
    page.select_option("#recipient-type", "organisation")
    page.select_option("#recipient-org", clinic)
    page.select_option("#purpose", "records")
    with page.expect_response("**/api/v1/health/me/consents", timeout=WAIT_MS) as answer:
        page.click("#consent-form button[type=submit]")
    assert answer.value.status == 201, answer.value.text()
    granted = "#consent-list li[data-purpose='records'][data-state='active']"
    page.wait_for_selector(granted, timeout=WAIT_MS)
    assert page.get_attribute(granted, "data-recipient") == clinic

    # --- the clinic's staff member, in Japanese ------------------------------------------------
    ctx = browser.new_context(base_url=live_server, locale="ja-JP")
    ctx.set_default_timeout(WAIT_MS)
    staff = ctx.new_page()
    try:
        _open(staff, "ja")
        _sign_in(staff, staff_email, new=False)
        staff.wait_for_selector("body[data-view='staff']", timeout=WAIT_MS)
        assert staff.inner_text("#staff-h").strip() == "同意した住民"
        row = f"#staff-residents li[data-resident-id='{resident_id}']"
        staff.wait_for_selector(row, timeout=WAIT_MS)
        assert staff.locator("#staff-residents li[data-resident-id]").count() == 1
        assert "健診結果とリスクの閲覧" in staff.inner_text(row)
        staff.click(f"{row} button.open-resident")
        staff.wait_for_selector("#staff-record[data-state='shown']", timeout=WAIT_MS)
        assert staff.text_content("#staff-latest tr[data-kind='ldl'] td") == "165.0 mg/dL"
        assert staff.text_content("#staff-latest tr[data-kind='blood_pressure'] td") == (
            "150/92 mmHg"
        )
        assert staff.get_attribute("#staff-risk", "data-category") == risk["category"]
        ja_category = {"low": "低リスク", "medium": "中リスク", "high": "高リスク"}
        assert f"区分: {ja_category[risk['category']]}" in staff.inner_text("#staff-risk")

        # The resident sees the clinic's reads in the audit log.
        page.click("#audit-refresh")
        page.wait_for_selector(
            f"#audit-table tr[data-actor='{staff_id}'][data-resource='observations']",
            timeout=WAIT_MS,
        )
        assert page.locator(f"#audit-table tr[data-actor='{staff_id}']").count() == 2

        # The resident revokes: the clinic's next read is refused, in Japanese.
        page.click(f"{granted} button.revoke")
        page.wait_for_selector(
            "#consent-list li[data-purpose='records'][data-state='revoked']", timeout=WAIT_MS
        )
        with staff.expect_response("**/observations", timeout=WAIT_MS) as answer:
            staff.click("#staff-reload")
        assert answer.value.status == 403
        staff.wait_for_selector("#staff-record[data-state='refused']", timeout=WAIT_MS)
        assert staff.inner_text("#staff-error").strip() == REFUSED_JA
        assert staff.locator("#staff-data").is_hidden()
        assert staff.locator("#staff-latest tr").count() == 0
        staff.click("#staff-refresh")
        staff.wait_for_selector("#staff-residents li:has-text('同意した住民はいません')")
        assert staff.locator(row).count() == 0
    finally:
        ctx.close()
    assert page.outside_requests == []


def test_watcher_sees_weekly_activity_and_books_a_ride_for_the_resident(
    page: Any, live_server: str
) -> None:
    """A watcher with the resident's ``watch_over`` consent sees the weekly activity and the
    ride notices only (no checkup values), and books an on-demand ride on their behalf."""

    def signup(email: str) -> tuple[str, str]:
        r = httpx.post(
            f"{live_server}/api/v1/auth/signup",
            json={"email": email, "password": PASSWORD},
            timeout=60,
        )
        assert r.status_code in (200, 201), r.text
        return r.json()["user"]["id"], r.json()["tokens"]["access_token"]

    watcher_email = f"w{uuid.uuid4().hex[:8]}@example.org"
    watcher_id, _ = signup(watcher_email)
    resident_id, token = signup(f"r{uuid.uuid4().hex[:8]}@example.org")
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{live_server}/api/v1/health", headers=auth, timeout=60) as c:
        assert c.post("/me/checkups", json={"ldl": 140, "age": 70}).status_code == 201
        r = c.post(
            "/me/consents",
            json={
                "recipient": {"type": "user", "id": watcher_id},
                "purpose": "watch_over",
                "expires_at": "2099-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_expiry"
        until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
        r = c.post(
            "/me/consents",
            json={
                "recipient": {"type": "user", "id": watcher_id},
                "purpose": "watch_over",
                "expires_at": until,
            },
        )
        assert r.status_code == 201, r.text

    _open(page, "en")
    _sign_in(page, watcher_email, new=False)
    tab = "#views [data-view='watch']"
    page.wait_for_selector(f"{tab}:not([hidden])", timeout=WAIT_MS)
    page.click(tab)
    row = f"#watch-residents li[data-resident-id='{resident_id}']"
    page.wait_for_selector(row, timeout=WAIT_MS)
    page.click(f"{row} button.open-watched")
    page.wait_for_selector("#watch-detail[data-state='shown']", timeout=WAIT_MS)
    # Weekly totals (the older adults' 6,000 steps a day x 7) and notices, nothing more.
    assert page.locator("#watch-activity tbody tr[data-week]").count() == 4
    assert "0 / 42,000" in page.inner_text("#watch-activity tbody tr[data-week]:last-child")
    assert page.inner_text("#watch-notices").strip() == "No notices"
    assert "140" not in page.inner_text("#watch-view")

    # A malformed place is refused by the form; then the ride is booked through the API.
    page.fill("#watch-ride-form input[name=from]", "Higashi-Muroran")
    page.fill("#watch-ride-form input[name=to]", "42.3440,141.0180")
    page.click("#watch-ride-form button[type=submit]")
    page.wait_for_selector("#watch-ride-error:has-text('Use the form lat,lon')")
    page.fill("#watch-ride-form input[name=from]", "42.3487,141.0261")
    with page.expect_response(f"**/api/v1/health/watch/{resident_id}/rides", timeout=WAIT_MS) as a:
        page.click("#watch-ride-form button[type=submit]")
    body = a.value.json()
    sent = a.value.request.post_data_json
    assert sent["origin"] == {"lat": 42.3487, "lon": 141.0261} and sent["seats"] == 1
    if a.value.status in (200, 201, 202):
        ride = body.get("ride_id") or body.get("request_id")
        page.wait_for_selector(f"#watch-ride-status:has-text('Ride booked ({ride})')")
    else:  # the demo vans may all be busy: the refusal is shown in the page's words
        assert a.value.status == 409, a.value.text()
        page.wait_for_selector("#watch-ride-error:not(:empty)")
        assert body["error"]["code"] not in page.inner_text("#watch-ride-error")
    assert page.outside_requests == []
