"""The bus + on-demand scenario's planner path on a real network (#11): the Muroran demo city,
its bus timetable and its on-demand zone with the demo fleet. A car commuter living in the
zone far from every bus stop is planned home -> site with a van to the bus; every figure of
their line is checked by hand from the legs and the factor table (MLIT bus 57 g/pkm, car
130 g/pkm; the van's 0.075 L/km of diesel at 2.58 kg-CO2/L shared by the 1.5 riders a quoted
leg expects), and the line's legs are those the planner answers /plan with."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.emissions.scenarios import commute_day
from app.identity import accounts
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import DEFAULT_PASSWORD, services_of, settings_for
from tests.app.test_plan_on_demand import MURORAN_STATION, daytime, far_from_stops

E = "/api/v1/emissions"
#: Grams of CO2 per vehicle-km, by hand from japan.toml: a van burns 0.075 L/km of diesel at
#: 2.58 kg-CO2/L; the autonomous shuttle uses 0.2 kWh/km at Hokkaido Electric's 0.549 kg/kWh.
G_PER_VEHICLE_KM = {"van": 0.075 * 2580.0, "autonomous_shuttle": 0.2 * 549.0}
RIDERS_PER_QUOTED_LEG = 1.5
BUS_G_PKM, CAR_G_PKM = 57.0, 130.0
TRIPS_A_MONTH_5_DAYS = 2 * 5 * 48 / 12  # out and back, 5 days a week, 48 working weeks a year


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, signing_key_pem: Path) -> Iterator[TestClient]:
    settings: Settings = settings_for(
        tmp_path_factory.mktemp("scenario-demo") / "data",
        jwt_private_key_path=signing_key_pem,
        demo=True,
        demo_riders_per_hour=0.0,
        dispatch_reopt_interval_s=0.0,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _km(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Great-circle km between two OTP places (haversine, mean Earth radius 6371.0088 km)."""
    p1, p2 = math.radians(a["lat"]), math.radians(b["lat"])
    dl = math.radians(b["lon"] - a["lon"])
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _admin(client: TestClient) -> dict[str, str]:
    services = services_of(client)
    email = "scenario-admin@example.org"
    with Session(services.engine) as db:
        accounts.create_user(
            db,
            services.identity.passwords,
            email=email,
            password=DEFAULT_PASSWORD,
            roles=("company_admin",),
        )
        db.commit()
    r = client.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_bus_on_demand_plans_a_van_to_the_bus_on_the_muroran_network(demo: TestClient) -> None:
    h = _admin(demo)
    site_lat, site_lon = map(float, MURORAN_STATION.split(","))
    body = {"name": "Muroran Works", "site": {"lat": site_lat, "lon": site_lon}}
    r = demo.post(f"{E}/companies", json=body, headers=h)
    assert r.status_code == 201, r.text
    company = r.json()["id"]
    home, metres = far_from_stops(demo)  # inside the demo zone, ~700 m from every stop
    assert metres > 500
    lat, lon = home.split(",")
    surveys = f"ref,mode,one_way_km,days_per_week,home_lat,home_lon\nfar,CAR,6,5,{lat},{lon}\nnohome,CAR,8,5,,\n"  # fmt: skip
    r = demo.post(
        f"{E}/companies/{company}/surveys",
        content=surveys.encode(),
        headers={**h, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    day, hhmm = daytime()  # the buses run and the vans can be booked
    url = f"{E}/companies/{company}/scenarios/bus_on_demand"
    # Commuters who walk at most 100 m less than the nearest stop is away: the van takes them
    # to the bus whatever the hour (with a longer walk, walking to the bus can be first).
    walk = int(metres) - 100
    inputs = {"share_pct": 50, "date": day, "departure": hhmm, "max_walk_m": walk}
    r = demo.post(url, json=inputs, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["planner"] == f"main app's trip planner, {day} {hhmm} (FLEX legs)"
    far, nohome = got["lines"]
    assert far["method"] == "planner: home -> site itinerary"
    legs = far["legs"]
    assert far["modes"] == [leg["mode"] for leg in legs]
    assert legs[0]["mode"] == "FLEX" and "BUS" in far["modes"]
    grams = 0
    for leg in legs:
        km = leg["distance"] / 1000.0
        if leg["mode"] == "FLEX":
            by_hand = G_PER_VEHICLE_KM[leg["vehicleType"]] * km / RIDERS_PER_QUOTED_LEG
            assert leg["co2"] == round(by_hand), leg
            assert leg["distance"] > 300  # a real ride to the bus
        elif leg["mode"] == "BUS":
            assert leg["co2"] > 0  # checked by hand against its stops below
        else:
            assert leg["mode"] == "WALK" and leg["co2"] == 0, leg
        grams += leg["co2"]
    assert far["co2PerTrip"] == round(grams / 1000.0, 3)
    assert far["carCo2PerTrip"] == round(6 * CAR_G_PKM / 1000.0, 3)
    assert far["co2BeforePerMonth"] == round(6 * CAR_G_PKM * TRIPS_A_MONTH_5_DAYS / 1000, 3)
    assert far["co2AfterPerMonth"] == round(grams * TRIPS_A_MONTH_5_DAYS / 1000, 3)
    bus_fares = sum(leg.get("fare", 300.0) for leg in legs if leg["mode"] == "BUS")
    assert far["farePerTrip"] == bus_fares + 500.0  # one on-demand ride at 500 JPY
    # The commuter without a home location: 8 km by bus at 300 JPY, said so.
    assert nohome["method"] == "average-data: one-way km by bus (no home location in the survey)"
    assert nohome["co2PerTrip"] == round(8 * BUS_G_PKM / 1000.0, 3) and "legs" not in nohome
    # Half of each commuter switches (expected values): the month before and after, by hand.
    before = 0.5 * (6 + 8) * CAR_G_PKM * TRIPS_A_MONTH_5_DAYS
    after = 0.5 * (grams + 8 * BUS_G_PKM) * TRIPS_A_MONTH_5_DAYS
    month = got["co2"]["perMonth"]
    assert month["before"] == pytest.approx(before / 1000, abs=0.002)
    assert month["after"] == pytest.approx(after / 1000, abs=0.002)
    fares = 0.5 * (far["farePerTrip"] + 300.0) * TRIPS_A_MONTH_5_DAYS
    assert got["cost"]["perMonth"]["fares"] == pytest.approx(fares, abs=0.1)

    # The same trip asked of /plan: the same legs (the planner path, not a fallback).
    r = demo.get(
        "/api/v1/plan",
        params={
            "fromPlace": home,
            "toPlace": MURORAN_STATION,
            "date": day,
            "time": hhmm,
            "mode": "TRANSIT,WALK,FLEX",
            "numItineraries": 3,
            "maxWalkDistance": walk,
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    it = r.json()["plan"]["itineraries"][0]
    assert [leg["mode"] for leg in it["legs"]] == far["modes"]
    fixed = [(x["mode"], x["emissionsPerPerson"]["co2"]) for x in it["legs"] if x["mode"] != "FLEX"]
    assert fixed == [(x["mode"], x["co2"]) for x in legs if x["mode"] != "FLEX"]
    # A bus ride's grams: 57 g/pkm x the straight hops between the stops it passes.
    for leg in it["legs"]:
        if leg["mode"] == "BUS":
            stops = [leg["from"], *leg["intermediateStops"], leg["to"]]
            km = sum(_km(a, b) for a, b in itertools.pairwise(stops))
            assert abs(leg["emissionsPerPerson"]["co2"] - BUS_G_PKM * km) <= 1.0, (km, leg)

    # The CSV export lists the legs of the planned line.
    r = demo.post(url, params={"format": "csv"}, json=inputs, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["commuter"] == "upload:far" and rows[0]["legs"].startswith("mode=FLEX;")
    # A departure that is not a time of day is refused.
    r = demo.post(url, json={**inputs, "departure": "25:00"}, headers=h)
    assert r.status_code == 422


def test_the_commute_day_is_a_weekday_with_the_departure_ahead() -> None:
    seven_thirty = 7 * 3600 + 1800
    monday = dt.date(2026, 12, 7)

    def at(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hh, mm))

    assert commute_day(monday, at(monday, 5), seven_thirty) == monday
    assert commute_day(monday, at(monday, 7, 30), seven_thirty) == monday + dt.timedelta(days=1)
    friday = dt.date(2026, 12, 11)
    assert commute_day(friday, at(friday, 9), seven_thirty) == dt.date(2026, 12, 14)  # Monday
    saturday = dt.date(2026, 12, 12)
    assert commute_day(saturday, at(saturday, 5), seven_thirty) == dt.date(2026, 12, 14)
    # a service date ahead of today is kept; a given date is used as it is
    assert commute_day(friday, at(monday, 12), seven_thirty) == friday
    assert commute_day(monday, at(monday, 12), seven_thirty, saturday) == saturday
