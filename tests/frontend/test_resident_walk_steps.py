"""Walking directions turn by turn on the resident's itineraries (#13), in Japanese and English.

Before, a walk leg said only its distance, minutes and compass direction. Now each walk leg of
several steps lists them (OTP's ``steps``: turn, street, distance). The demo city has no OSM
extract (its walks are straight lines: one step, no list), so the planner's answer is given
the steps a street walk has on its way to the page; the steps themselves are built and named
from OSM ways in tests/routing/street/test_directions.py (hand-made graph, and Terre Haute).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.frontend.test_resident_pwa import WAIT_MS, _open
from tests.frontend.ui_checks import assert_accessible, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEPS = [
    {"relativeDirection": "DEPART", "absoluteDirection": "NORTH", "streetName": "中央通り",
     "bogusName": False, "distance": 120.0, "lat": 42.3158, "lon": 140.9738},
    {"relativeDirection": "RIGHT", "absoluteDirection": "EAST", "streetName": None,
     "bogusName": True, "distance": 80.0, "lat": 42.3169, "lon": 140.9738},
    {"relativeDirection": "SLIGHTLY_LEFT", "absoluteDirection": "NORTHEAST",
     "streetName": "海岸通", "bogusName": False, "distance": 1250.0, "lat": 42.3169,
     "lon": 140.9748},
]  # fmt: skip


def test_walk_legs_list_their_steps_in_both_languages(page: Any) -> None:
    _open(page, "ja")
    served: dict[str, Any] = {}

    def with_steps(route: Any) -> None:
        body = route.fetch().json()
        walks = [
            leg for it in body["plan"]["itineraries"] for leg in it["legs"] if leg["mode"] == "WALK"
        ]
        # The server's own steps of a straight-line walk: one, the walk itself (none for a
        # walk of no length, a transfer at one stop).
        served["steps"] = [(len(leg["steps"]), leg["distance"] > 0) for leg in walks]
        next(leg for leg in walks if leg["distance"] > 0)["steps"] = STEPS
        route.fulfill(json=body)

    page.route("**/api/v1/plan?*", with_steps)
    page.fill("#from", "42.3158,140.9738")
    page.fill("#to", "42.3466,141.0240")
    page.fill("#time", "08:00")
    page.click("#plan-form button[type=submit]")
    page.wait_for_selector("#itineraries li.itinerary", timeout=WAIT_MS)
    assert served["steps"] and all(n == int(moves) for n, moves in served["steps"]), served
    lists = page.locator("#itineraries ol.walk-steps")
    assert lists.count() == 1  # only the walk given several steps; one-step walks list none
    ol = lists.first
    assert ol.get_attribute("aria-label") == "道順"
    assert ol.locator("li").evaluate_all("ls => ls.map(l => l.dataset.direction)") == [
        "DEPART",
        "RIGHT",
        "SLIGHTLY_LEFT",
    ]
    assert ol.locator("li").all_inner_texts() == [
        "北方向へ中央通りを120 m進む",
        "右に曲がり、道を80 m",
        "やや左に進み、海岸通を1.3 km",
    ]
    assert_accessible(page, "resident walk steps (ja)")
    screenshots(page, "resident-walk-steps-ja")

    page.click("#lang-toggle")
    page.wait_for_function("document.documentElement.lang === 'en'")
    ol = page.locator("#itineraries ol.walk-steps").first
    assert ol.get_attribute("aria-label") == "Directions"
    assert ol.locator("li").all_inner_texts() == [
        "Head north on 中央通り for 120 m",
        "Turn right onto the path for 80 m",
        "Bear left onto 海岸通 for 1.3 km",
    ]
    assert_accessible(page, "resident walk steps (en)")
    assert page.outside_requests == []
