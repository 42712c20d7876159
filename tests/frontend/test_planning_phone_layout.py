"""The planner page works from 360 px wide (#13, WCAG 2.2 reflow): its tables of service
levels, hubs, access shares and the comparison scroll inside their card, by keyboard too,
instead of pushing the whole page sideways (the routes' table made a 390 px phone 403 px)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.frontend.test_planning_page import PASSWORD, _planner
from tests.frontend.ui_checks import assert_accessible, overflows_sideways

pytestmark = [pytest.mark.browser]
WAIT_MS = 60_000


def test_planner_page_does_not_scroll_sideways_on_a_phone(page: Any, live_server: str) -> None:
    email = _planner(live_server)
    page.set_viewport_size({"width": 360, "height": 800})
    page.add_init_script("localStorage.setItem('tsunagu.lang', 'ja')")
    page.goto("/planning.html")
    page.wait_for_selector("body[data-ready='1']", timeout=WAIT_MS)
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#pl-map[data-ready='1']", timeout=WAIT_MS)
    page.click("#sl-load")
    page.wait_for_function(
        "document.querySelectorAll('#sl-table tbody tr').length > 10", timeout=WAIT_MS
    )
    # The routes' table is wider than a phone: it scrolls in its own box, reachable by Tab.
    box = page.locator("#sl-table").locator("xpath=..")
    assert page.evaluate("b => b.scrollWidth > b.clientWidth", box.element_handle())
    assert box.get_attribute("tabindex") == "0"
    assert not overflows_sideways(page)
    assert_accessible(page, "planning on a phone (ja)")
