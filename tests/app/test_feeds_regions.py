"""Cities as separate networks through the API (#13): the region set at upload, each city's
summary, on-demand zones and realtime overlays per city, and the errors of a bad name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import TestUser, assert_error, services_of
from tests.app.test_feeds_console import _upload

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def two_cities(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    gtfs_dir: Path,
) -> tuple[TestClient, dict[str, str]]:
    """Nevada (the GTFS sample) and Kawasaki published as two cities; an operator-dispatcher."""
    c = make_app_client(demo=False)
    h = auth(make_user(roles=("operator", "dispatcher"), client=c), client=c)
    for feed, name in (
        ("sample", "google_sample.zip"),
        ("kawasaki", "jp_mlit_sample_kawasaki.zip"),
    ):
        v = _upload(c, h, feed, gtfs_dir / name).json()
        r = c.post(f"/api/v1/feeds/{feed}/versions/{v['id']}/publish", headers=h)
        assert r.status_code == 200 and r.json()["network"]["network"] == feed, r.text
    return c, h


def _square(lon: float, lat: float, d: float = 0.01) -> dict[str, Any]:
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_each_city_has_its_summary_zones_and_overlay(
    two_cities: tuple[TestClient, dict[str, str]],
) -> None:
    c, h = two_cities
    info = c.get("/api/v1/network").json()
    assert [n["network"] for n in info["networks"]] == ["kawasaki", "sample"]
    boxes = {n["network"]: n["bbox"] for n in info["networks"]}
    assert boxes["sample"][0] < -100 < 139 < boxes["kawasaki"][0]
    nevada = c.get("/api/v1/network", params={"network": "sample"}).json()
    assert nevada["network"] == "sample" and nevada["counts"]["stops"] == 9
    assert [p["feed_id"] for p in nevada["published"]] == ["sample"]
    assert_error(c.get("/api/v1/network", params={"network": "nowhere"}), 404, "unknown_network")
    # A zone belongs to the city it lies in.
    k = boxes["kawasaki"]
    zone = {
        "zone_id": "kawasaki-ondemand",
        "name": "Kawasaki on demand",
        "geometry": _square((k[0] + k[2]) / 2, (k[1] + k[3]) / 2),
    }
    assert c.post("/api/v1/fleet/zones", json=zone, headers=h).status_code == 201
    listed = c.get("/api/v1/network/zones").json()["features"]
    assert [(f["id"], f["properties"]["network"]) for f in listed] == [
        ("kawasaki-ondemand", "kawasaki")
    ]
    assert (
        len(c.get("/api/v1/network/zones", params={"network": "kawasaki"}).json()["features"]) == 1
    )
    assert c.get("/api/v1/network/zones", params={"network": "sample"}).json()["features"] == []
    # Each city's realtime overlay is its own.
    status = c.get("/api/v1/realtime/status").json()
    assert set(status["overlays"]) == {"kawasaki", "sample"}
    one = c.get("/api/v1/realtime/status", params={"network": "sample"}).json()
    assert one["overlay"] is None or one["overlay"]["service_date"]
    assert_error(c.get("/api/v1/realtime/status", params={"network": "x"}), 404)
    # The explicit city of /plan: a Nevada stop is no Kawasaki stop.
    r = c.get(
        "/api/v1/plan",
        params={"fromPlace": "FUR_CREEK_RES", "toPlace": "BEATTY_AIRPORT", "city": "kawasaki"},
    )
    assert_error(r, 404, "unknown_stop")
    r = c.get("/api/v1/plan", params={"fromPlace": "FUR_CREEK_RES", "toPlace": "BEATTY_AIRPORT"})
    assert r.status_code == 200 and r.json()["requestParameters"]["city"] == "sample"


def test_upload_into_a_city_and_bad_city_names(
    two_cities: tuple[TestClient, dict[str, str]], gtfs_dir: Path
) -> None:
    c, h = two_cities
    before = services_of(c).feeds.networks["kawasaki"]
    with (gtfs_dir / "google_sample.zip").open("rb") as f:
        r = c.post(
            "/api/v1/feeds/copy/versions",
            files={"file": ("sample.zip", f, "application/zip")},
            data={"network": "sample"},
            headers=h,
        )
    assert r.status_code == 201 and r.json()["network"] == "sample", r.text
    v = r.json()
    r = c.post(f"/api/v1/feeds/copy/versions/{v['id']}/publish", headers=h)
    assert r.status_code == 200, r.text
    net = r.json()["network"]
    assert net["network"] == "sample"
    assert sorted(p["feed_id"] for p in net["published"]) == ["copy", "sample"]
    assert services_of(c).feeds.networks["kawasaki"] is before  # untouched
    feeds = {f["feed_id"]: f["network"] for f in c.get("/api/v1/feeds", headers=h).json()["feeds"]}
    assert feeds == {"copy": "sample", "kawasaki": "kawasaki", "sample": "sample"}
    with (gtfs_dir / "google_sample.zip").open("rb") as f:
        bad = c.post(
            "/api/v1/feeds/other/versions",
            files={"file": ("sample.zip", f, "application/zip")},
            data={"network": "no spaces"},
            headers=h,
        )
    assert_error(bad, 422, "invalid_network")
    r = c.post(
        f"/api/v1/feeds/copy/versions/{v['id']}/publish", json={"network": "../x"}, headers=h
    )
    assert_error(r, 422, "invalid_network")
