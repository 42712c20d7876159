"""The app's dispatcher drives on the OSM graph of ``settings.osm_path`` (real Cobb County
extract), and falls back to the straight-line model without a usable extract."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.dispatch.service import dispatch_travel_times
from app.settings import Settings
from dispatch.street_times import StreetTravelTimes, street_travel_times
from dispatch.travel_times import StraightLineTravelTimes
from tests.app.conftest import services_of, settings_for

# Three points on Marietta's streets (inside the extract), lat/lon.
DEPOT = (33.855, -84.598)
ORIGIN = (33.865, -84.585)
DESTINATION = (33.845, -84.61)
ZONE = {
    "zone_id": "marietta",
    "name": "Marietta",
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[-84.62, 33.84], [-84.58, 33.84], [-84.58, 33.87], [-84.62, 33.87], [-84.62, 33.84]]
        ],
    },
}


@pytest.fixture(scope="module")
def cobb_osm(shared_data: Path) -> Path:
    return shared_data / "osm" / "us_cobb_county_filtered.osm.pbf"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return settings_for(tmp_path / "data", **overrides)


def test_straight_lines_without_an_extract(tmp_path: Path) -> None:
    assert isinstance(dispatch_travel_times(_settings(tmp_path)), StraightLineTravelTimes)
    missing = _settings(tmp_path, osm_path=tmp_path / "nowhere.osm.pbf")
    assert isinstance(dispatch_travel_times(missing), StraightLineTravelTimes)
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"not a pbf")
    assert isinstance(
        dispatch_travel_times(_settings(tmp_path, osm_path=broken)), StraightLineTravelTimes
    )


def test_osm_extract_gives_street_driving_times(tmp_path: Path, cobb_osm: Path) -> None:
    travel = dispatch_travel_times(_settings(tmp_path, osm_path=cobb_osm))
    assert isinstance(travel, StreetTravelTimes)
    pts = np.array([DEPOT, ORIGIN, DESTINATION])
    van = travel.matrix(pts, pts, 28.0)
    line = StraightLineTravelTimes(1.3).matrix(pts, pts, 28.0)
    assert not np.allclose(van, van.T)  # one-way streets: a real network
    assert abs(van[1, 2] - line[1, 2]) > 60.0  # not the straight-line model
    assert (
        travel.matrix(pts, pts, 16.0)[~np.eye(3, dtype=bool)] > van[~np.eye(3, dtype=bool)]
    ).all()


def _direct_s_of_a_quote(c: TestClient, h: dict[str, str], n: int = 1) -> float:
    """Add zone ``marietta-n`` with one van, quote ORIGIN -> DESTINATION; the direct drive."""
    zone_id = f"marietta-{n}"
    assert (
        c.post("/api/v1/fleet/zones", json={**ZONE, "zone_id": zone_id}, headers=h).status_code
        == 201
    )
    r = c.post(
        "/api/v1/fleet/vehicles",
        json={
            "vehicle_id": f"van-{n}",
            "zone_id": zone_id,
            "vehicle_type": "van",
            "depot": {"lat": DEPOT[0], "lon": DEPOT[1]},
            "shift_end": time.time() + 8 * 3600,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    q = c.post(
        "/api/v1/rides/quote",
        json={
            "origin": {"lat": ORIGIN[0], "lon": ORIGIN[1]},
            "destination": {"lat": DESTINATION[0], "lon": DESTINATION[1]},
        },
        headers=h,
    )
    assert q.status_code == 200, q.text
    return float(q.json()["direct_s"])


def test_quotes_over_http_use_the_street_network(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    cobb_osm: Path,
) -> None:
    c = make_app_client(osm_path=cobb_osm)
    assert isinstance(services_of(c).dispatcher.travel, StreetTravelTimes)
    h = auth(make_user(roles=("dispatcher",)), c)
    street = street_travel_times(cobb_osm).matrix(np.array([ORIGIN]), np.array([DESTINATION]), 28.0)
    assert _direct_s_of_a_quote(c, h) == pytest.approx(float(street[0, 0]), abs=1.0)


def test_speed_windows_setting_slows_live_quotes(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    """``dispatch_speed_windows`` reaches the live dispatcher: the same ride quoted under a
    round-the-clock half-speed window takes twice the free-flow drive."""
    direct: list[float] = []
    for n, windows in enumerate(("", "00:00-24:00=0.5")):
        c = make_app_client(dispatch_speed_windows=windows)
        assert (services_of(c).dispatcher.speeds is None) == (windows == "")
        h = auth(make_user(roles=("dispatcher",), client=c), c)
        # Both apps share one database: a zone and van of their own each.
        direct.append(_direct_s_of_a_quote(c, h, n))
    assert direct[1] == pytest.approx(2 * direct[0], rel=1e-6)


@pytest.mark.parametrize(
    ("text", "named"),
    [("07:00-09:00=0", "07:00-09:00=0"), ("7-9=0.7,8-10=0.8", "8-10=0.8"), ("peak", "peak")],
)
def test_bad_speed_windows_fail_at_start_up(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ValueError, match="speed window") as err:
        _settings(tmp_path, dispatch_speed_windows=text)
    assert named in str(err.value)
