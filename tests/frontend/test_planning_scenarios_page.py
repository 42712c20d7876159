"""The planner page's saved scenarios (issue #14) in a real browser: a planner deletes their own
scenario after confirming (not another planner's), and a scenario whose server stopped is shown
as interrupted with a "run again" that runs its definition anew. Both languages."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.frontend.test_planning_page import PASSWORD, WAIT_MS, _planner
from tests.frontend.ui_checks import assert_accessible, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSPITAL = "name,kind,lat,lon\nNishi,hospital,42.3153,140.9838\n"
SMALL = {"analysis": {"resolution": 7, "departures": 1, "window_min": 10}}


def _token(base: str, email: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _scenario(base: str, h: dict[str, str], name: str) -> dict[str, Any]:
    route = httpx.get(f"{base}/api/v1/planning/network", headers=h, timeout=120).json()["routes"]
    spec = {"name": name, "edits": [{"op": "drop_route", "route_id": route[0]["route_id"]}]}
    r = httpx.post(
        f"{base}/api/v1/planning/scenarios", json={**spec, **SMALL}, headers=h, timeout=WAIT_MS
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _login(page: Any, email: str) -> None:
    page.goto("/planning.html")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#pl-map[data-ready='1']", timeout=60_000)


def test_planner_deletes_own_scenario_after_confirming(page: Any, live_server: str) -> None:
    # Alice's e-mail is in the header of the screenshot: the same at every run (one server a
    # session, and this test signs her up once), so the committed picture need not change.
    alice, bob = _planner(live_server, "alice.planner@example.org"), _planner(live_server)
    ha, hb = _token(live_server, alice), _token(live_server, bob)
    r = httpx.put(
        f"{live_server}/api/v1/planning/destinations", content=HOSPITAL.encode(), headers=ha
    )
    r.raise_for_status()
    mine = _scenario(live_server, ha, "mine")
    theirs = _scenario(live_server, hb, f"theirs-{uuid.uuid4().hex[:6]}")
    try:
        page.add_init_script("localStorage.setItem('tsunagu.lang', 'en')")
        _login(page, alice)
        opt = f"#sc-saved option[value='{mine['id']}']"
        page.wait_for_selector(opt, state="attached")
        # The feed analysed is named (the demo city's one published feed).
        assert page.input_value("#pl-feed") == "muroran"
        assert "routes" in page.text_content("#pl-feed-info")
        # Another planner's scenario: listed, but not deletable from here.
        page.select_option("#sc-saved", theirs["id"])
        assert page.is_disabled("#sc-delete")
        page.select_option("#sc-saved", mine["id"])
        assert page.is_enabled("#sc-delete") and page.text_content("#sc-delete") == "Delete"
        assert_accessible(page, "planning scenarios")
        # The chosen scenario's line says when it ran (the server's clock).
        screenshots(page, "planning-scenarios", volatile=["#sc-saved"])

        # Cancelled at the confirmation: nothing happens.
        asked: list[str] = []

        def dismiss(d: Any) -> None:
            asked.append(d.message)
            d.dismiss()

        page.once("dialog", dismiss)
        page.click("#sc-delete")
        assert asked and mine["name"] in asked[0]
        assert page.locator(opt).count() == 1

        page.once("dialog", lambda d: d.accept())
        page.click("#sc-delete")
        page.wait_for_selector(opt, state="detached")
        assert "Deleted" in page.text_content("#sc-saved-status")
        assert page.locator(f"#sc-saved option[value='{theirs['id']}']").count() == 1
        got = httpx.get(f"{live_server}/api/v1/planning/scenarios/{mine['id']}", headers=hb)
        assert got.status_code == 404

        # Japanese.
        page.click("#lang-toggle")
        assert page.text_content("#sc-delete") == "削除"
        assert page.outside_requests == []
    finally:
        for sid, h in ((mine["id"], ha), (theirs["id"], hb)):
            httpx.delete(f"{live_server}/api/v1/planning/scenarios/{sid}", headers=h)


def test_interrupted_scenario_is_shown_and_run_again(page: Any, live_server: str) -> None:
    alice = _planner(live_server)
    ha = _token(live_server, alice)
    me = httpx.get(f"{live_server}/api/v1/users/me", headers=ha).json()
    r = httpx.put(
        f"{live_server}/api/v1/planning/destinations", content=HOSPITAL.encode(), headers=ha
    )
    r.raise_for_status()
    route = httpx.get(f"{live_server}/api/v1/planning/network", headers=ha).json()["routes"][0]
    spec = {
        "name": "cut short",
        "feed": "muroran",
        "edits": [{"op": "drop_route", "route_id": route["route_id"]}],
        **SMALL,
    }
    # A run whose server died (the server side is tested in tests/app/planning): the list and
    # the scenario answer as the API does for one, with the interrupted status and reason.
    fake = {
        "id": str(uuid.uuid4()),
        "name": "cut short",
        "status": "interrupted",
        "created_by": me["id"],
        "created_by_email": alice,
        "created_at": "2026-12-06T10:00:00+00:00",
        "finished_at": "2026-12-06T10:05:00+00:00",
        "date": None,
        "error": "interrupted: the server process running it stopped before it finished",
        "feed": "muroran",
    }

    def listed(route_: Any) -> None:
        if route_.request.method != "GET":  # the run itself goes to the server untouched
            route_.continue_()
            return
        real = route_.fetch()
        body = real.json()
        body["scenarios"] = [*body["scenarios"], fake]
        route_.fulfill(response=real, body=json.dumps(body))

    def one(route_: Any) -> None:
        route_.fulfill(
            status=200, content_type="application/json", body=json.dumps({**fake, "spec": spec})
        )

    page.route("**/api/v1/planning/scenarios", listed)
    page.route(f"**/api/v1/planning/scenarios/{fake['id']}", one)
    created: list[str] = []
    try:
        page.add_init_script("localStorage.setItem('tsunagu.lang', 'ja')")
        _login(page, alice)
        page.wait_for_selector(f"#sc-saved option[value='{fake['id']}']", state="attached")
        page.select_option("#sc-saved", fake["id"])
        assert "中断" in page.text_content(f"#sc-saved option[value='{fake['id']}']")
        assert "もう一度実行できます" in page.text_content("#sc-saved-status")
        assert page.is_visible("#sc-rerun") and page.text_content("#sc-rerun") == "もう一度実行"
        page.click("#lang-toggle")
        page.select_option("#sc-saved", fake["id"])
        assert "run it again" in page.text_content("#sc-saved-status")
        assert_accessible(page, "planning interrupted scenario")

        with page.expect_response(
            lambda r: r.url.endswith("/api/v1/planning/scenarios") and r.request.method == "POST",
            timeout=WAIT_MS,
        ) as posted:
            page.click("#sc-rerun")
        out = posted.value.json()
        created.append(out["id"])
        assert out["status"] == "done" and out["spec"]["edits"] == spec["edits"]
        assert out["spec"]["feed"] == "muroran" and out["id"] != fake["id"]
        page.wait_for_selector("#pl-map[data-comparison]", timeout=WAIT_MS)
        page.wait_for_selector(f"#sc-saved option[value='{out['id']}']", state="attached")
        assert page.input_value("#sc-saved") == out["id"]
        assert page.locator("#cmp-table tr[data-metric='bus_trips']").count() == 1
        assert page.is_hidden("#sc-rerun")  # the new run is done
    finally:
        for sid in created:
            httpx.delete(f"{live_server}/api/v1/planning/scenarios/{sid}", headers=ha)


def test_saved_scenarios_follow_a_language_switch(page: Any, live_server: str) -> None:
    """The saved scenarios' statuses and the note under them are redrawn in the new language at
    the switch (they kept the old one until the list was loaded again)."""
    alice = _planner(live_server)
    ha = _token(live_server, alice)
    r = httpx.put(
        f"{live_server}/api/v1/planning/destinations", content=HOSPITAL.encode(), headers=ha
    )
    r.raise_for_status()
    done = _scenario(live_server, ha, f"switch-{uuid.uuid4().hex[:6]}")
    opt = f"#sc-saved option[value='{done['id']}']"
    listed: list[str] = []
    page.on(
        "request",
        lambda q: listed.append(q.method) if q.url.endswith("/api/v1/planning/scenarios") else None,
    )
    try:
        page.add_init_script("localStorage.setItem('tsunagu.lang', 'ja')")
        _login(page, alice)
        page.wait_for_selector(opt, state="attached")
        page.select_option("#sc-saved", done["id"])
        assert " — 完了 — " in page.text_content(opt)
        loads = len(listed)

        page.click("#lang-toggle")
        assert page.text_content("#sc-delete") == "Delete"  # the static labels switched
        assert " — done — " in page.text_content(opt), page.text_content(opt)
        assert "完了" not in page.text_content("#sc-saved")
        assert page.input_value("#sc-saved") == done["id"]  # the choice is kept
        assert len(listed) == loads  # redrawn, not fetched again

        # The note under the list follows too: "Deleted" after a delete, then 削除しました.
        page.once("dialog", lambda d: d.accept())
        page.click("#sc-delete")
        page.wait_for_selector(opt, state="detached")
        assert page.text_content("#sc-saved-status") == f"{done['name']}: Deleted"
        page.click("#lang-toggle")
        assert page.text_content("#sc-saved-status") == f"{done['name']}: 削除しました"
        assert not any(
            " — done — " in o for o in page.locator("#sc-saved option").all_text_contents()
        )
        assert page.outside_requests == []
    finally:
        httpx.delete(f"{live_server}/api/v1/planning/scenarios/{done['id']}", headers=ha)
