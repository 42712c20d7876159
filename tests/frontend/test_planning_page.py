"""The planner page (issue #14, planning.html) in a real browser (Debian's chromium).

A city planner signs in, uploads the emergency hospitals of Muroran, draws an on-demand zone by
clicking four corners on the map, runs the scenario and sees the comparison: the table with
the on-demand figures and the difference map drawn (its cells counted on the map element).
The keyboard alternative (typed coordinates) draws the same kind of zone.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 240_000  # a scenario measures two networks and simulates a day of the zone
PASSWORD = "correct-horse-9"


def _planner(base: str, email: str | None = None) -> str:
    """A new city planner on ``base``: ``email``, or a unique one (the server is shared)."""
    email = email or f"planner-{uuid.uuid4().hex[:8]}@example.org"
    r = httpx.post(f"{base}/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    admin = api_token(base, *ADMIN)
    r2 = httpx.patch(
        f"{base}/api/v1/users/{r.json()['user']['id']}/roles",
        json={"roles": ["resident", "city_planner"]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    r2.raise_for_status()
    return email


def _hospitals_csv(shared: Path) -> bytes:
    rows = csv.DictReader(
        io.StringIO((shared / "planning" / "hokkaido_hospitals_2015.csv").read_text())
    )
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["name", "kind", "lat", "lon"])
    for r in rows:
        if "室蘭" in r["address"] and r["emergency"] == "○":
            w.writerow([r["hospital_name"], "emergency_hospital", r["latitude"], r["longtitude"]])
    return out.getvalue().encode()


def test_planner_draws_a_zone_runs_the_scenario_and_sees_the_comparison(
    page: Any, live_server: str, shared_data: Path
) -> None:
    email = _planner(live_server)
    page.add_init_script("localStorage.setItem('tsunagu.lang', 'en')")
    page.goto("/planning.html")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#pl-map[data-ready='1']", timeout=60_000)

    page.set_input_files(
        "#dest-file",
        {"name": "hospitals.csv", "mimeType": "text/csv", "buffer": _hospitals_csv(shared_data)},
    )
    page.wait_for_function(
        "document.querySelector('#upload-status').textContent.includes('emergency_hospital')"
    )

    # The editor lists the network's routes for dropping, headways and shortening.
    page.wait_for_function("document.querySelectorAll('#sc-short-route option').length > 10")
    assert page.locator("#sc-drop option").count() == page.locator("#sc-hw-route option").count()

    # Draw: four clicks around the middle of the map.
    page.click("#zone-draw")
    page.locator("#pl-map").scroll_into_view_if_needed()  # the button scrolled it away
    box = page.locator("#pl-map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-60, -40), (60, -40), (60, 40), (-60, 40)):
        page.mouse.click(cx + dx, cy + dy)
    page.wait_for_selector("#zone-points[data-count='4']", state="attached")
    assert len(page.input_value("#zone-coords").splitlines()) == 4
    page.click("#zone-draw")  # stop drawing

    page.click("#sc-run")
    page.wait_for_selector("#pl-map[data-comparison]", timeout=WAIT_MS)
    assert int(page.get_attribute("#pl-map", "data-comparison")) > 10
    assert page.locator("#cmp-table tr[data-metric='on_demand_requests']").count() == 1
    assert page.locator("#cmp-table tr[data-metric='operating_cost']").count() == 1
    assert "red lost" in page.text_content("#legend")
    assert page.outside_requests == []

    # The scenario is kept: after a reload it is listed, and opening it shows its comparison.
    comparison = page.get_attribute("#pl-map", "data-comparison")
    page.reload()
    page.wait_for_selector("#pl-map[data-ready='1']", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#sc-saved option').length === 1")
    assert "done" in page.text_content("#sc-saved option") and email in page.text_content(
        "#sc-saved option"
    )
    assert page.locator("#cmp-table tbody tr").count() == 0
    page.click("#sc-open")
    page.wait_for_selector("#pl-map[data-comparison]", timeout=WAIT_MS)
    assert page.get_attribute("#pl-map", "data-comparison") == comparison
    assert page.locator("#cmp-table tr[data-metric='operating_cost']").count() == 1

    # The keyboard alternative: typed corners replace the drawn ones.
    page.click("#zone-clear")
    page.fill("#zone-coords", "42.35,141.01\n42.35,141.03\n42.34,141.03")
    page.click("#zone-use")
    page.wait_for_selector("#zone-points[data-count='3']", state="attached")
