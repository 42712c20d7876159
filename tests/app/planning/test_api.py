"""The planning API as a city planner uses it on the published demo network."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.planning.demo import DEMO_FEED, MURORAN_BOX
from tests.app.conftest import TestUser, assert_error, services_of


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
    v = reg.upload_file("muroran", src)
    reg.publish("muroran", v.id)
    return auth(make_user(roles=["city_planner"]))


def _ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    return r


def test_roles_and_service_levels(
    app_client: TestClient,
    planner: dict[str, str],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    resident = auth(make_user())
    assert_error(app_client.get("/api/v1/planning/network", headers=resident), 403, "forbidden")
    assert_error(app_client.get("/api/v1/planning/network"), 401)
    net = _ok(app_client.get("/api/v1/planning/network", headers=planner)).json()
    assert net["default_date"].startswith("2020-04-") and len(net["routes"]) > 10
    base = "/api/v1/planning/service-levels"
    rows = _ok(app_client.get(base, headers=planner)).json()["rows"]
    day = [r for r in rows if r["band"] == "day"]
    assert day and all(r["num_trips"] >= 1 and r["start_time"] <= r["end_time"] for r in day)
    csv = _ok(app_client.get(base, params={"level": "stops", "format": "csv"}, headers=planner))
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("band,stop_id,stop_name")
    gj = _ok(
        app_client.get(
            base,
            params={"level": "hexagons", "format": "geojson", "band": "am_peak"},
            headers=planner,
        )
    )
    assert gj.headers["content-type"].startswith("application/geo+json")
    assert gj.json()["features"][0]["geometry"]["type"] == "Polygon"
    custom = _ok(app_client.get(base, params={"bands": "am=07:00-09:00"}, headers=planner)).json()
    assert custom["bands"] == ["am"]
    assert_error(
        app_client.get(base, params={"bands": "am=9-7"}, headers=planner), 422, "invalid_bands"
    )
    assert_error(
        app_client.get(base, params={"date": "2019-01-01"}, headers=planner), 422, "no_service"
    )
    hubs = _ok(app_client.get("/api/v1/planning/hubs", params={"top": 5}, headers=planner)).json()
    assert len(hubs["hubs"]) == 5 and hubs["hubs"][0]["score"] >= hubs["hubs"][-1]["score"]


def test_accessibility_uploads_and_scenario(
    app_client: TestClient, planner: dict[str, str], shared_data: Path
) -> None:
    p = "/api/v1/planning"
    assert_error(app_client.post(f"{p}/access", json={}, headers=planner), 422, "no_destinations")
    bad = app_client.put(f"{p}/destinations", content=b"name,lat\nx,1\n", headers=planner)
    assert_error(bad, 422, "invalid_destinations")
    hosp = (shared_data / "planning" / "hokkaido_hospitals_2015.csv").read_text()
    # The register's own columns (hospital_name, latitude, longtitude) are accepted; kinds are
    # given here as a planner would, in a CSV of their own.
    from io import StringIO

    import pandas as pd

    df = pd.read_csv(StringIO(hosp), dtype=str, keep_default_na=False)
    df = df[df["address"].str.contains("室蘭")]
    df["kind"] = df["emergency"].map(lambda e: "emergency_hospital" if e == "○" else "hospital")
    up = df[["hospital_name", "kind", "latitude", "longtitude"]].to_csv(index=False)
    got = _ok(app_client.put(f"{p}/destinations", content=up.encode(), headers=planner)).json()
    assert got["destinations"] == 7 and got["kinds"] == ["emergency_hospital", "hospital"]
    lines = (
        (shared_data / "planning" / "hokkaido_population_mesh500_2010.csv").read_text().splitlines()
    )
    s, w, n, e = MURORAN_BOX
    from routing.access import decode_mesh

    cells = decode_mesh([ln.split(",")[0] for ln in lines])
    keep = [
        ln
        for ln, a, b in zip(lines, cells.centre_lat, cells.centre_lon, strict=True)
        if s <= a <= n and w <= b <= e
    ]
    pop = _ok(
        app_client.put(f"{p}/population", content="\n".join(keep).encode(), headers=planner)
    ).json()
    assert pop["cells"] == len(keep) and 90_000 < pop["residents"] < 100_000
    assert_error(
        app_client.put(f"{p}/population", content=b"12,3\n", headers=planner),
        422,
        "invalid_population",
    )

    acc = _ok(
        app_client.post(
            f"{p}/access", json={"kind": "emergency_hospital", "resolution": 8}, headers=planner
        )
    ).json()
    assert acc["reached_cells"] > 50 and acc["within_cells"] <= acc["reached_cells"]
    (share,) = [x for x in acc["shares"] if x["kind"] == "emergency_hospital"]
    assert 0.3 < share["share"] < 1
    assert_error(
        app_client.post(f"{p}/access", json={"kind": "zoo"}, headers=planner), 422, "unknown_kind"
    )
    iso = _ok(
        app_client.post(
            f"{p}/isochrone",
            json={"lat": 42.3153, "lon": 140.9838, "max_minutes": 30},
            headers=planner,
        )
    )
    feats = iso.json()["features"]
    assert feats and all(0 <= f["properties"]["minutes"] <= 30 for f in feats)
    assert_error(
        app_client.post(f"{p}/isochrone", json={"lat": 95, "lon": 0}, headers=planner), 422
    )

    net = _ok(app_client.get(f"{p}/network", headers=planner)).json()
    route = net["routes"][0]["route_id"]
    spec = {
        "name": "drop one",
        "edits": [{"op": "drop_route", "route_id": route}],
        "analysis": {"resolution": 8, "departures": 4},
    }
    out = _ok(app_client.post(f"{p}/scenarios", json=spec, headers=planner)).json()
    rows = {r["metric"]: r for r in out["table"]}
    assert rows["bus_trips"]["difference"] < 0 and out["map"]["features"]
    assert (
        _ok(app_client.get(f"{p}/scenarios/{out['id']}", headers=planner)).json()["name"]
        == "drop one"
    )
    listed = _ok(app_client.get(f"{p}/scenarios", headers=planner)).json()["scenarios"]
    assert [x["id"] for x in listed] == [out["id"]]
    bad_edit = {"edits": [{"op": "drop_route", "route_id": "nope"}]}
    assert_error(
        app_client.post(f"{p}/scenarios", json=bad_edit, headers=planner), 422, "invalid_edit"
    )
    assert_error(app_client.get(f"{p}/scenarios/zzz", headers=planner), 404)
    # The published network is untouched.
    again = _ok(app_client.get(f"{p}/network", headers=planner)).json()
    assert again["routes"] == net["routes"]
