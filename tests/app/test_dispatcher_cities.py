"""The dispatcher's lists for one city (#13): with two cities published, ``?city=`` limits the
open rides, the vehicles and their plans, the KPIs and the alerts to the on-demand zones lying
in that city, shown on that city's clock; an unknown city is a 404 ``unknown_network`` (as ``/plan?city=``); the
parameter is typed and documented in OpenAPI."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import TestUser, assert_error
from tests.app.test_feeds_regions import _square, two_cities  # noqa: F401  (fixture)

D = "/api/v1/dispatcher"
LISTS = ("/rides", "/vehicles", "/kpis", "/alerts")


def _centre(bbox: list[float]) -> tuple[float, float]:
    """(lon, lat) of the middle of a city's stops' area."""
    return (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2


@pytest.fixture
def fleets(
    two_cities: tuple[TestClient, dict[str, str]],  # noqa: F811  (the fixture imported above)
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> dict[str, Any]:
    """A zone and a van in each city (Kawasaki at UTC+9, Nevada at UTC-8) and a ride booked
    in Kawasaki's."""
    c, h = two_cities
    boxes = {n["network"]: n["bbox"] for n in c.get("/api/v1/network").json()["networks"]}
    for city, offset in (("kawasaki", 9 * 3600), ("sample", -8 * 3600)):
        lon, lat = _centre(boxes[city])
        zone = {
            "zone_id": f"{city}-od",
            "name": city,
            "geometry": _square(lon, lat, 0.02),
            "utc_offset_s": offset,
        }
        assert c.post("/api/v1/fleet/zones", json=zone, headers=h).status_code == 201
        van = {
            "vehicle_id": f"{city}-van",
            "zone_id": f"{city}-od",
            "vehicle_type": "van",
            "depot": {"lat": lat, "lon": lon},
            "shift_end": time.time() + 8 * 3600,
        }
        r = c.post("/api/v1/fleet/vehicles", json=van, headers=h)
        assert r.status_code == 201, r.text
    lon, lat = _centre(boxes["kawasaki"])
    rider = auth(make_user(display_name="Kawa Rider", client=c), client=c)
    body = {
        "request": {
            "origin": {"lat": lat - 0.005, "lon": lon - 0.005},
            "destination": {"lat": lat + 0.005, "lon": lon + 0.005},
            "earliest_pickup": time.time() + 1200,
        }
    }
    r = c.post("/api/v1/rides", json=body, headers=rider)
    assert r.status_code == 201 and r.json()["vehicle_id"] == "kawasaki-van", r.text
    return {"client": c, "h": h, "ride": r.json()}


def test_each_list_follows_the_city(fleets: dict[str, Any]) -> None:
    c, h, ride = fleets["client"], fleets["h"], fleets["ride"]

    def get(path: str, city: str | None) -> dict[str, Any]:
        r = c.get(D + path, params={"city": city} if city else {}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # Without a city: every zone, as before.
    assert [x["ride_id"] for x in get("/rides", None)["rides"]] == [ride["ride_id"]]
    assert {v["vehicle_id"] for v in get("/vehicles", None)["vehicles"]} == {
        "kawasaki-van",
        "sample-van",
    }
    assert get("/kpis", None)["requests"] == 1
    # Kawasaki: its ride and van, on Kawasaki's clock; places named after Kawasaki's stops.
    k = get("/rides", "kawasaki")
    assert [x["ride_id"] for x in k["rides"]] == [ride["ride_id"]]
    assert k["utc_offset_s"] == 9 * 3600
    kv = get("/vehicles", "kawasaki")
    assert [v["vehicle_id"] for v in kv["vehicles"]] == ["kawasaki-van"]
    assert [s["kind"] for s in kv["vehicles"][0]["plan"]] == ["pickup", "dropoff"]
    assert kv["vehicles"][0]["plan"][0]["place"]["name_ja"], "named after a Kawasaki stop"
    assert get("/kpis", "kawasaki")["requests"] == 1
    # Nevada: none of Kawasaki's rides, its own van only, on Nevada's clock.
    n = get("/rides", "sample")
    assert n["rides"] == [] and n["utc_offset_s"] == -8 * 3600
    nv = get("/vehicles", "sample")
    assert [v["vehicle_id"] for v in nv["vehicles"]] == ["sample-van"]
    assert nv["utc_offset_s"] == -8 * 3600
    nk = get("/kpis", "sample")
    assert nk["requests"] == 0 and nk["occupancy"] == 0.0
    assert get("/alerts", "sample")["alerts"] == []


def test_an_unknown_city_is_404_on_every_list(fleets: dict[str, Any]) -> None:
    """As ``GET /plan?city=`` answers it; an over-long name is a malformed value (422)."""
    c, h = fleets["client"], fleets["h"]
    for path in LISTS:
        err = assert_error(
            c.get(D + path, params={"city": "nowhere"}, headers=h), 404, "unknown_network"
        )
        assert err["details"]["param"] == "city"
        assert err["details"]["networks"] == ["kawasaki", "sample"]
        assert_error(c.get(D + path, params={"city": "x" * 65}, headers=h), 422)


def test_city_is_typed_and_documented_in_openapi(fleets: dict[str, Any]) -> None:
    spec = fleets["client"].get("/api/v1/openapi.json").json()
    for path in LISTS:
        op = spec["paths"][f"{D}{path}"]["get"]
        [param] = [p for p in op["parameters"] if p["name"] == "city"]
        assert param["in"] == "query" and not param.get("required", False)
        types = {s.get("type") for s in param["schema"]["anyOf"]}
        assert types == {"string", "null"}
        assert param["schema"]["anyOf"][0]["maxLength"] == 64
        assert "unknown_network" in param["description"]
        assert "404" in op["responses"] and "422" in op["responses"]
