"""Staying on board on the resident's itineraries (#15): a leg the same vehicle continues into
(OTP's ``interlineWithPreviousLeg``: block_id or an in-seat transfer) is shown after a "stay on
board" line, not as a change. The demo city's feed has no blocks, so the planner's answer is
given an interlined leg on its way to the page; the server side (a block's itinerary has no
transfer and its second leg interlined) is tested in tests/routing/test_transfer_rules.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.frontend.test_resident_pwa import WAIT_MS, _open
from tests.frontend.ui_checks import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _interlined(body: dict[str, Any]) -> dict[str, Any]:
    """The first itinerary with a ride: its ride followed by a continuation on the same
    vehicle (a copy of the ride, from where the ride ends), no transfer."""
    its = body["plan"]["itineraries"]
    it = next(it for it in its if any(leg.get("tripId") for leg in it["legs"]))
    i, ride = next((i, leg) for i, leg in enumerate(it["legs"]) if leg.get("tripId"))
    ride["interlineWithPreviousLeg"] = False
    cont = copy.deepcopy(ride)
    cont.update(
        {
            "interlineWithPreviousLeg": True,
            "tripId": f"{ride['tripId']}-next",
            "headsign": "継続便",
            "from": {**ride["to"], "departure": ride["endTime"]},
            "startTime": ride["endTime"],
            "endTime": ride["endTime"] + 600_000,
        }
    )
    cont["to"] = {**cont["to"], "name": "終点", "arrival": cont["endTime"]}
    it["legs"][i + 1 : i + 1] = [cont]
    it["transfers"] = 0
    body["plan"]["itineraries"] = [it]
    return body


def test_a_continued_trip_reads_stay_on_board(page: Any) -> None:
    _open(page, "ja")
    page.route(
        "**/api/v1/plan?*", lambda route: route.fulfill(json=_interlined(route.fetch().json()))
    )
    page.fill("#from", "42.3158,140.9738")
    page.fill("#to", "42.3466,141.0240")
    page.fill("#time", "08:00")
    page.click("#plan-form button[type=submit]")
    page.wait_for_selector("#itineraries li.itinerary", timeout=WAIT_MS)
    it = page.locator("#itineraries li.itinerary").first
    legs = it.locator("li.leg")
    classes = legs.evaluate_all("ls => ls.map(l => l.className)")
    k = classes.index("leg leg-interline")
    # Between the ride and its continuation: no walk, no change; the continuation follows.
    assert "leg-walk" not in classes[k - 1] and "leg-walk" not in classes[k + 1]
    assert classes.count("leg leg-interline") == 1
    line = legs.nth(k).inner_text()
    assert "そのまま乗車" in line and "乗換なし" in line
    assert "継続便" in legs.nth(k + 1).inner_text()
    assert "乗換なし" in it.inner_text()  # the summary: no transfers
    assert_accessible(page, "resident stay on board (ja)")

    page.click("#lang-toggle")
    page.wait_for_function("document.documentElement.lang === 'en'")
    line = page.locator("#itineraries li.leg-interline").first.inner_text()
    assert line.startswith("Stay on board at ") and line.endswith("(no transfer)")
    assert page.outside_requests == []
