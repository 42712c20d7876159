"""With two feeds published, the planner chooses which one is analysed (default: the first):
service levels, hubs, isochrones, access and scenarios run on the chosen feed alone."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.planning.demo import DEMO_FEED
from tests.app.conftest import TestUser, assert_error, services_of
from tests.app.planning.line_feeds import three_stop_line

P = "/api/v1/planning"
# "tiny": R1 runs A-B every 15 min, R2 B-C (C only by R2), far from Muroran.
A, B, C = (43.0, 141.5), (43.02, 141.5), (43.04, 141.5)


def _ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def planner(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> dict[str, str]:
    reg = services_of(app_client).feeds
    assert reg is not None
    src = tmp_path / "muroran.zip"
    shutil.copy(DEMO_FEED, src)
    reg.publish("muroran", reg.upload_file("muroran", src).id)
    tiny_zip = three_stop_line(
        tmp_path / "tiny.zip", (A, B, C), routes=("T1", "T2"), stop_prefix="tiny_"
    )
    tiny = reg.upload_file("tiny", tiny_zip)
    assert tiny.status == "valid", tiny.summary
    reg.publish("tiny", tiny.id)
    return auth(make_user(roles=["city_planner"]))


def test_choosing_the_second_feed_analyses_the_second(
    app_client: TestClient, planner: dict[str, str]
) -> None:
    first = _ok(app_client.get(f"{P}/network", headers=planner))
    assert [f["feed_id"] for f in first["feeds"]] == ["muroran", "tiny"]
    assert first["feed_id"] == "muroran" and len(first["routes"]) > 10
    second = _ok(app_client.get(f"{P}/network", params={"feed": "tiny"}, headers=planner))
    assert second["feed_id"] == "tiny" and second["feeds"] == first["feeds"]
    assert sorted(r["route_id"] for r in second["routes"]) == ["T1", "T2"]
    assert second["stops"] == 3 and second["default_date"].startswith("2030-")
    assert second["bbox"] == [141.5, 43.0, 141.5, 43.04]
    assert_error(
        app_client.get(f"{P}/network", params={"feed": "nowhere"}, headers=planner),
        422,
        "unknown_feed",
    )

    sl = _ok(
        app_client.get(
            f"{P}/service-levels", params={"feed": "tiny", "band": "day"}, headers=planner
        )
    )
    assert {(r["route_id"], r["num_trips"]) for r in sl["rows"]} == {("T1", 8), ("T2", 8)}
    assert {r["mean_headway"] for r in sl["rows"]} == {15.0}
    default_sl = _ok(app_client.get(f"{P}/service-levels", headers=planner))
    assert not {"T1", "T2"} & {r["route_id"] for r in default_sl["rows"]}
    hubs = _ok(app_client.get(f"{P}/hubs", params={"feed": "tiny"}, headers=planner))
    assert hubs["feed"] == "tiny" and hubs["hubs"][0]["stop_id"] == "tiny_B"  # the transfer

    # From A at 07:00, C is reached by T1 then T2 (arriving 07:32): on the tiny feed only.
    iso_q = {"lat": A[0], "lon": A[1], "start": 7 * 3600, "departures": 1, "window_min": 1}
    iso_q |= {"max_minutes": 45, "resolution": 8}
    import h3

    c_cell = h3.latlng_to_cell(C[0], C[1], 8)
    r = app_client.post(f"{P}/isochrone", json={**iso_q, "feed": "tiny"}, headers=planner)
    assert r.status_code == 200, r.text
    assert c_cell in {f["properties"]["h3"] for f in r.json()["features"]}
    r = app_client.post(f"{P}/isochrone", json=iso_q, headers=planner)  # Muroran: walking only
    assert c_cell not in {f["properties"]["h3"] for f in r.json()["features"]}
    assert_error(
        app_client.post(f"{P}/isochrone", json={**iso_q, "feed": "nowhere"}, headers=planner),
        422,
        "unknown_feed",
    )

    # A scenario on the tiny feed: dropping T2 loses C; the kept scenario says which feed.
    dest = f"name,kind,lat,lon\nClinic,clinic,{C[0]},{C[1]}\n"
    _ok(app_client.put(f"{P}/destinations", content=dest.encode(), headers=planner))
    spec = {
        "name": "no T2",
        "feed": "tiny",
        "edits": [{"op": "drop_route", "route_id": "T2"}],
        "analysis": {"start": 7 * 3600, "departures": 2, "window_min": 20, "resolution": 8},
    }
    out = _ok(app_client.post(f"{P}/scenarios", json=spec, headers=planner))
    rows = {t["metric"]: t for t in out["table"]}
    assert (rows["bus_trips"]["published"], rows["bus_trips"]["scenario"]) == (16, 8)
    assert out["cells"]["lost"] >= 1 and out["date"].startswith("2030-")
    assert out["spec"]["feed"] == "tiny" and out["feed_version"] > 0
    listed = _ok(app_client.get(f"{P}/scenarios", headers=planner))["scenarios"]
    assert [(s["id"], s["feed"]) for s in listed] == [(out["id"], "tiny")]
    # T2 is not a route of the default feed: the same edit there is refused.
    assert_error(
        app_client.post(f"{P}/scenarios", json={**spec, "feed": None}, headers=planner),
        422,
        "invalid_edit",
    )
