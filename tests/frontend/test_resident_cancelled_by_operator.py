"""A ride a dispatcher cancelled says so on the resident's page, with the reason (#13).

Before, "my trips" showed such a ride as a bare "キャンセル済み" / "Cancelled", as if the
resident had cancelled it: the dispatcher's reason (kept with the ride, ``status_reason``) was
never shown. A ride the resident cancels themselves still says only that it was cancelled.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token
from tests.frontend.test_dispatcher_console import _book, _h, _resident, fixed_van, move_to
from tests.frontend.ui_checks import assert_accessible, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REASON = "大雪のため運休します"


def _sign_in(page: Any, lang: str, email: str, password: str) -> None:
    page.add_init_script(f"localStorage.setItem('tsunagu.lang', '{lang}')")
    page.goto("/")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#logout:not([hidden])")


def test_my_trips_say_the_operator_cancelled_and_why(page: Any, live_server: str) -> None:
    # A fixed rider and van: the screenshot shows both, and the van the dispatcher picks
    # follows the simulated fleet (its name's length moved the page's height).
    email, pw, token, _ = _resident(live_server, "取消 花子", email="torikeshi.hanako@example.org")
    van = fixed_van(live_server)
    # Half an hour ahead: the van only waits meanwhile, the rides stay cancellable.
    later = time.time() + 30 * 60
    rides = [_book(live_server, token, earliest_pickup=later) for _ in range(2)]
    by_operator, by_me = (move_to(live_server, token, r, van)["ride_id"] for r in rides)
    admin = _h(api_token(live_server, *ADMIN))
    r = httpx.post(
        f"{live_server}/api/v1/dispatcher/rides/{by_operator}/cancel",
        json={"reason": REASON},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    r = httpx.delete(f"{live_server}/api/v1/rides/{by_me}", headers=_h(token))
    assert r.status_code in (200, 202), r.text  # 202: queued, applied in the zone's turn
    deadline = time.monotonic() + 60
    while {
        httpx.get(f"{live_server}/api/v1/rides/{rid}", headers=_h(token)).json()["status"]
        for rid in (by_operator, by_me)
    } != {"cancelled"}:
        assert time.monotonic() < deadline, "the cancellations were never applied"
        time.sleep(0.5)

    _sign_in(page, "ja", email, pw)
    theirs = f"#ride-list li[data-ride-id='{by_operator}'][data-status='cancelled']"
    mine = f"#ride-list li[data-ride-id='{by_me}'][data-status='cancelled']"
    page.wait_for_selector(theirs)
    text = page.inner_text(theirs)
    assert text.startswith("キャンセル済み"), text
    assert f"運行管理者が取り消しました（理由: {REASON}）" in text, text
    # The resident's own cancellation names no one.
    assert "運行管理者" not in page.inner_text(mine)
    assert_accessible(page, "resident rides cancelled by the operator (ja)")
    # The rides' times follow the clock.
    screenshots(page, "resident-cancelled-by-operator-ja", volatile=["#ride-list li"])

    page.click("#lang-toggle")
    page.wait_for_function(
        "s => (document.querySelector(s)?.textContent ?? '').includes('Cancelled by the operator')",
        arg=theirs,
    )
    assert f"Cancelled by the operator: {REASON}" in page.inner_text(theirs)
    assert "operator" not in page.inner_text(mine)
    assert_accessible(page, "resident rides cancelled by the operator (en)")
    assert page.outside_requests == []
