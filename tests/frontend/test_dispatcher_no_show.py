"""A dispatcher marks a no-show once the pick-up window has opened (#13), in Debian's chromium.

Before, only the refusal ("the pick-up window has not opened yet") was tried in a browser. Here
the window opens, the dispatcher marks the no-show from the console (Japanese), the console's
log and audit say so, and the resident's own page shows the ride as a no-show in Japanese and
English.

The shared test server's demo loop drives the vans along their plans and boards every rider the
moment the van is there: a rider could never be missing. This test runs a server of its own whose
demo loop takes its first step only after a day (``TSUNAGU_DEMO_TICK_S``) and has no simulated
riders: its vans wait where they are, as a driver waits for a rider who does not come.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, guarded_page, serve
from tests.frontend.test_dispatcher_console import (
    P1,
    _book,
    _console,
    _h,
    _resident,
    _wait_text,
    console_screenshots,
    fixed_van,
    move_to,
)
from tests.frontend.ui_checks import assert_accessible, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUIET = {"TSUNAGU_DEMO_RIDERS_PER_HOUR": "0", "TSUNAGU_DEMO_TICK_S": "86400"}


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo server whose vans are not driven."""
    with serve(tmp_path_factory.mktemp("quiet"), QUIET) as base:
        yield base


@pytest.fixture
def quiet_page(browser: Any, quiet_server: str) -> Iterator[Any]:
    with guarded_page(browser, quiet_server) as pg:
        yield pg


def _ride_waiting_at_its_pick_up(base: str) -> tuple[str, str, str, dict[str, Any]]:
    """A resident's ride whose van waits where it picks up (a van added with its depot there):
    its pick-up window opens within seconds. (email, password, token, ride)."""
    # A fixed van and rider (this server is the module's own): the resident's page names both.
    vid = fixed_van(base, "ns-van-1", depot=P1)
    email, pw, token, _ = _resident(base, "不在 一郎", email="fuzai.ichiro@example.org")
    # Given to the van there if another van was as near.
    ride = move_to(base, token, _book(base, token), vid)
    return email, pw, token, ride


def test_a_no_show_after_the_pick_up_window_opened(quiet_page: Any, quiet_server: str) -> None:
    page, base = quiet_page, quiet_server
    email, pw, token, ride = _ride_waiting_at_its_pick_up(base)
    rid = ride["ride_id"]
    # The window opens when the van is due at the pick-up: seconds away, the van being there.
    opens = ride["pickup_window"][0]
    assert opens - time.time() < 120, ride
    _console(page)
    row = f"#requests tr[data-ride-id='{rid}']"
    page.wait_for_selector(row)
    assert "不在 一郎" in page.inner_text(row)
    while time.time() < opens + 1:
        time.sleep(0.5)
    page.click(f"{row} button:has-text('不在')")
    page.wait_for_selector("#action-dialog[open]")
    page.fill("#action-form textarea[name=reason]", "5分待ちましたが来られませんでした")
    page.click("#dialog-confirm")
    page.wait_for_selector("#action-dialog", state="hidden")
    # The ride leaves the open requests; the log and the audit say a no-show was recorded.
    page.wait_for_selector(row, state="detached")
    _wait_text(page, "#events", "不在を記録しました")
    page.wait_for_selector("#audit tbody tr[data-action='no_show']")
    first = page.inner_text("#audit tbody tr:first-child")
    assert "不在" in first and "不在 一郎" in first and ADMIN[0] in first, first
    assert_accessible(page, "console after a no-show (ja)")
    console_screenshots(page, "dispatcher-no-show-ja")
    mine = httpx.get(f"{base}/api/v1/rides/{rid}", headers=_h(token)).json()
    assert mine["status"] == "no_show", mine

    # The resident's page: the ride is a no-show, with the dispatcher's reason, in both languages.
    page.goto("/")
    # The dispatcher's session is the page's too (same origin): the resident signs in afresh.
    page.evaluate("localStorage.clear(); sessionStorage.clear()")
    page.context.clear_cookies()
    page.evaluate("localStorage.setItem('tsunagu.lang', 'ja')")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", pw)
    page.click("#login-form button[type=submit]")
    item = f"#ride-list li[data-ride-id='{rid}'][data-status='no_show']"
    page.wait_for_selector(item)
    text = page.inner_text(item)
    assert text.startswith("不乗車") and "理由: 5分待ちましたが来られませんでした" in text, text
    assert page.locator(f"{item} button.cancel-ride").count() == 0
    assert_accessible(page, "resident no-show (ja)")
    page.click("#lang-toggle")
    page.wait_for_function(
        "s => (document.querySelector(s)?.textContent ?? '').startsWith('No-show')", arg=item
    )
    assert "Reason: 5分待ちましたが来られませんでした" in page.inner_text(item)
    assert_accessible(page, "resident no-show (en)")
    # The ride's times follow the clock.
    screenshots(page, "resident-no-show-en", volatile=["#ride-list li"])
    assert page.outside_requests == []
