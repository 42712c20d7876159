"""The bus + on-demand scenario with two cities published (#13): a company's commutes are
planned on the network of the city holding its site, not on the default (largest) network;
a home in another city's network and a site in no city's network are priced by the
average-data fallback, and each line says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.app.conftest import TestUser, services_of
from tests.app.test_feeds_regions import two_cities

__all__ = ["two_cities"]  # the fixture, used by name

E = "/api/v1/emissions"
FUR_CREEK_RES = (36.425288, -117.133162)  # Nevada (the GTFS sample): the home
BEATTY_AIRPORT = (36.868446, -116.784582)  # Nevada: the site
KAWASAKI_WEST = (35.531504, 139.695604)  # 川崎駅西口: a home in the other city
BUS_G_PKM = 57.0  # japan.toml's BUS factor (the fallback's)


def _company(c: TestClient, h: dict[str, str], site: tuple[float, float]) -> str:
    body = {"name": "Beatty Works", "site": {"lat": site[0], "lon": site[1]}}
    r = c.post(f"{E}/companies", json=body, headers=h)
    assert r.status_code == 201, r.text
    company = str(r.json()["id"])
    rows = [
        "ref,mode,one_way_km,days_per_week,home_lat,home_lon",
        f"nevada,CAR,40,5,{FUR_CREEK_RES[0]},{FUR_CREEK_RES[1]}",
        f"kawasaki,CAR,12,5,{KAWASAKI_WEST[0]},{KAWASAKI_WEST[1]}",
    ]
    r = c.post(
        f"{E}/companies/{company}/surveys",
        content=("\n".join(rows) + "\n").encode(),
        headers={**h, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    return company


def _scenario(c: TestClient, h: dict[str, str], company: str) -> dict[str, Any]:
    inputs = {"share_pct": 100, "date": "2008-06-02", "departure": "06:00"}
    r = c.post(f"{E}/companies/{company}/scenarios/bus_on_demand", json=inputs, headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _scenario_of_a_site(
    two_cities: tuple[TestClient, dict[str, str]],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
    site: tuple[float, float],
) -> dict[str, Any]:
    """A company admin's bus + on-demand scenario for a company with its site at ``site``."""
    c, _ = two_cities
    h = auth(make_user(roles=("company_admin",), client=c), client=c)
    return _scenario(c, h, _company(c, h, site))


def test_commutes_are_planned_in_the_city_of_the_site(
    two_cities: tuple[TestClient, dict[str, str]],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    reg = services_of(two_cities[0]).feeds
    assert reg.network.name == "kawasaki"  # the default: the larger city, not the site's
    got = _scenario_of_a_site(two_cities, make_user, auth, BEATTY_AIRPORT)
    assert got["planner"] == "main app's trip planner, sample, 2008-06-02 06:00 (FLEX legs)"
    lines = {line["commuter"]: line for line in got["lines"]}
    nevada, kawasaki = lines["upload:nevada"], lines["upload:kawasaki"]
    # Planned on Nevada's network (on Kawasaki's, the default, no stop is near: no itinerary).
    assert nevada["method"] == "planner: home -> site itinerary", nevada
    assert "BUS" in nevada["modes"] and nevada["legs"], nevada
    assert nevada["co2PerTrip"] > 0
    # A home in Kawasaki is no commute to a Nevada site: the fallback, and the line says why.
    assert kawasaki["method"] == (
        "average-data: one-way km by bus (home in another city's network, kawasaki, than the site)"
    )
    assert kawasaki["modes"] == ["BUS"] and "legs" not in kawasaki
    assert kawasaki["co2PerTrip"] == round(12 * BUS_G_PKM / 1000.0, 3)


def test_a_site_in_no_city_gets_no_planner(
    two_cities: tuple[TestClient, dict[str, str]],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    got = _scenario_of_a_site(two_cities, make_user, auth, (0.0, 0.0))  # far from both cities
    note = "the company's site lies in no published city's network"
    assert got["planner"] == note
    for line in got["lines"]:
        assert line["method"] == f"average-data: one-way km by bus ({note})", line
        assert line["modes"] == ["BUS"] and "legs" not in line
