"""Companies: invitations and consent, Category 7, Scope 1/2, scenarios, the city view.

Every expected figure is computed by hand here from the shipped factors (MLIT g-CO2/pkm: car
130, bus 57, rail 17, walk 0; MoE: gasoline 2.32 kg/L, diesel 2.58 kg/L, city gas 2.23
kg/Nm3; electricity: national average 0.441, Hokkaido Electric 0.549, adjusted 0.535 kg/kWh)
and the report's rules: a survey month is one-way km x 2 x days a week x 4 weeks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import TestUser, assert_error
from tests.app.emissions.helpers import itinerary, leg

Auth = Callable[..., dict[str, str]]
E = "/api/v1/emissions"
SITE = {"lat": 42.400, "lon": 141.0}


def commute(day: int, hour: int = 0) -> dict[str, Any]:
    """Home (42.300) -> the site, 2026-03-<day>: walk 300 m, bus 11 km (627 g), walk 400 m."""
    ms = int(dt.datetime(2026, 3, day, hour, 0, tzinfo=dt.UTC).timestamp()) * 1000
    return itinerary(
        leg("WALK", 42.300, 42.302, 300.0, ms, ms + 240_000),
        leg("BUS", 42.302, 42.396, 11000.0, ms + 300_000, ms + 1_500_000),
        leg("WALK", 42.396, 42.3995, 400.0, ms + 1_500_000, ms + 1_800_000),
    )


def elsewhere(day: int) -> dict[str, Any]:
    """A bus trip ending 6 km from the site (285 g): not a commute trip."""
    ms = int(dt.datetime(2026, 3, day, 10, 0, tzinfo=dt.UTC).timestamp()) * 1000
    return itinerary(
        leg("WALK", 42.300, 42.302, 300.0, ms, ms + 240_000),
        leg("BUS", 42.302, 42.342, 5000.0, ms + 300_000, ms + 1_200_000),
    )


class World:
    """A company admin, their company and helpers over the API."""

    def __init__(self, client: TestClient, make_user: Callable[..., TestUser], auth: Auth) -> None:
        self.c, self.make_user, self.auth = client, make_user, auth
        self.admin = make_user(roles=("company_admin",))
        r = client.post(
            f"{E}/companies",
            json={"name": "Muroran Steel", "site": SITE, "headcount": 20},
            headers=auth(self.admin),
        )
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]

    def employee(self, accept: bool = True) -> TestUser:
        user = self.make_user()
        code = self.c.post(
            f"{E}/companies/{self.id}/invitations",
            json={"label": "staff"},
            headers=self.auth(self.admin),
        ).json()["code"]
        if accept:
            r = self.c.post(f"{E}/invitations/{code}/accept", headers=self.auth(user))
            assert r.status_code == 200, r.text
        return user

    def trip(self, user: TestUser, it: dict[str, Any]) -> None:
        r = self.c.post(f"{E}/trips", json={"itinerary": it}, headers=self.auth(user))
        assert r.status_code == 201, r.text

    def survey(self, user: TestUser, **body: Any) -> Any:
        return self.c.put(f"{E}/me/companies/{self.id}/survey", json=body, headers=self.auth(user))

    def upload(self, path: str, text: str) -> Any:
        return self.c.post(
            f"{E}/companies/{self.id}/{path}",
            content=text.encode(),
            headers={**self.auth(self.admin), "Content-Type": "text/csv"},
        )

    def get(self, path: str, user: TestUser | None = None) -> Any:
        return self.c.get(f"{E}/companies/{self.id}/{path}", headers=self.auth(user or self.admin))


UPLOADED = (
    "ref,mode,one_way_km,days_per_week\n"
    + "".join(f"bus-{i},BUS,8,5\n" for i in range(4))
    + "".join(f"rail-{i},RAIL,15,4\n" for i in range(3))
    + "".join(f"walk-{i},WALK,2,5\n" for i in range(3))
)


def build_company(w: World) -> dict[str, TestUser]:
    """20 employees: 7 with commute trips (one also surveyed), 1 surveyed only, 1 revoked,
    1 who never accepted, 10 uploaded survey answers."""
    people: dict[str, TestUser] = {}
    for i in range(1, 8):
        people[f"E{i}"] = u = w.employee()
        w.trip(u, commute(2 + i))
        w.trip(u, commute(12 + i))
    w.trip(people["E1"], elsewhere(25))  # not a commute trip
    assert w.survey(people["E7"], mode="car", oneWayKm=10, daysPerWeek=5).status_code == 200
    people["E8"] = e8 = w.employee()
    assert w.survey(e8, mode="CAR", oneWayKm=10, daysPerWeek=5).status_code == 200
    people["E9"] = e9 = w.employee()
    w.trip(e9, commute(5, 3))
    assert w.survey(e9, mode="CAR", oneWayKm=30, daysPerWeek=5).status_code == 200
    assert w.c.delete(f"{E}/me/consents/{w.id}", headers=w.auth(e9)).status_code == 200
    people["E10"] = e10 = w.employee(accept=False)
    w.trip(e10, commute(6, 3))
    r = w.upload("surveys", UPLOADED)
    assert r.status_code == 200 and r.json()["surveys"] == 10, r.text
    return people


def test_category7_of_twenty_employees(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    w = World(app_client, make_user, auth)
    build_company(w)
    march = w.get("category7?month=2026-03").json()
    lines = {(x["method"], x["mode"]): x for x in march["lines"]}
    # distance-based: E1..E7, two commute trips each = 14 trips x 627 g (E1's trip elsewhere,
    # E9 (revoked) and E10 (never consented) left out)
    bus = lines[("distance-based", "BUS")]
    assert (bus["employees"], bus["trips"], bus["distance"], bus["co2"]) == (7, 14, 154.0, 8.778)
    assert bus["factor"]["value"] == 57 and bus["factor"]["year"] == "FY2019"
    walk = lines[("distance-based", "WALK")]
    assert (walk["distance"], walk["co2"]) == (9.8, 0.0)
    # average-data: E8 only (E7 commuted by bus in March): 10 x 2 x 5 x 4 = 400 km x 130 g
    car = lines[("average-data", "CAR")]
    assert (car["employees"], car["distance"], car["co2"]) == (1, 400.0, 52.0)
    assert car["factor"]["unit"] == "g-CO2/pkm" and "MLIT" in car["factor"]["source"]
    # uploads: 4 x (8 x 2 x 5 x 4 = 320 km x 57 g = 18.24 kg), 3 x (480 km x 17 g = 8.16 kg)
    assert lines[("average-data", "BUS")]["co2"] == 72.96
    assert lines[("average-data", "RAIL")]["co2"] == 24.48
    assert lines[("average-data", "WALK")]["co2"] == 0.0
    assert march["byMethod"] == {"distance-based": 8.778, "average-data": 149.44}
    assert march["co2"] == {"co2": 158.218, "unit": "kg"}
    assert march["coverage"]["consenting"] == 8 and march["coverage"]["covered"] == 18
    assert march["coverage"]["uncovered"] == 2
    # the year: March's trips; E8 all 12 months, E7's survey the 11 months without trips
    year = w.get("category7?year=2026").json()
    assert year["months"][0] == "2026-01" and len(year["months"]) == 12
    assert year["byMethod"]["distance-based"] == 8.778
    # 624 (E8) + 572 (E7) + 12 x (72.96 + 24.48)
    assert year["byMethod"]["average-data"] == pytest.approx(2365.28, abs=1e-6)
    assert year["co2"]["co2"] == pytest.approx(2374.058, abs=1e-6)
    assert year["series"]["byMode"]["CAR"][1:3] == [104.0, 52.0]  # Feb: E7 + E8; Mar: E8
    assert year["series"]["employeesByMethod"]["distance-based"][2] == 7
    # CSV: one row per line and a total
    r = w.get("category7?month=2026-03&format=csv")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[-1]["method"] == "total" and rows[-1]["co2"] == "158.218"
    assert {row["factor_value"] for row in rows if row["mode"] == "CAR"} == {"130.0"}


def test_consent_revoked_at_once(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    w = World(app_client, make_user, auth)
    u = w.employee()
    w.trip(u, commute(3))
    assert w.get("category7?month=2026-03").json()["co2"]["co2"] == 0.627
    mine = app_client.get(f"{E}/me/consents", headers=auth(u)).json()["consents"]
    assert [(c["company"]["id"], c["active"]) for c in mine] == [(w.id, True)]
    assert app_client.delete(f"{E}/me/consents/{w.id}", headers=auth(u)).status_code == 200
    assert w.get("category7?month=2026-03").json()["co2"]["co2"] == 0.0
    assert_error(app_client.delete(f"{E}/me/consents/{w.id}", headers=auth(u)), 404, "not_found")
    assert_error(w.survey(u, mode="BUS", oneWayKm=3, daysPerWeek=5), 404, "not_found")
    # a new invitation grants it again
    code = app_client.post(
        f"{E}/companies/{w.id}/invitations", json={}, headers=auth(w.admin)
    ).json()["code"]
    assert app_client.post(f"{E}/invitations/{code}/accept", headers=auth(u)).status_code == 200
    assert w.get("category7?month=2026-03").json()["co2"]["co2"] == 0.627
    # an invitation is one person's
    assert_error(
        app_client.post(f"{E}/invitations/{code}/accept", headers=auth(make_user())),
        409,
        "invitation_used",
    )
    assert_error(app_client.post(f"{E}/invitations/nope/accept", headers=auth(u)), 404, "not_found")


def test_authorisation(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    a, b = World(app_client, make_user, auth), World(app_client, make_user, auth)
    resident = b.employee()
    # company A's admin on company B: 404, as if it did not exist
    for path in ("", "/category7?month=2026-03", "/scope12", "/summary", "/invitations"):
        assert_error(app_client.get(f"{E}/companies/{b.id}{path}", headers=auth(a.admin)), 404)
    assert_error(
        app_client.post(f"{E}/companies/{b.id}/scenarios/ev", json={}, headers=auth(a.admin)),
        404,
    )
    assert_error(
        app_client.put(
            f"{E}/companies/{b.id}/energy",
            json={"rows": [{"month": "2026-03", "energy": "diesel", "quantity": 1, "unit": "L"}]},
            headers=auth(a.admin),
        ),
        404,
    )
    listed = app_client.get(f"{E}/companies", headers=auth(a.admin)).json()["companies"]
    assert [c["id"] for c in listed] == [a.id]
    # a resident is no company admin, nor city staff
    assert_error(b.get("category7", resident), 403, "forbidden")
    assert_error(
        app_client.post(f"{E}/companies", json={"name": "x", "site": SITE}, headers=auth(resident)),
        403,
    )
    assert_error(app_client.get(f"{E}/city/summary", headers=auth(b.admin)), 403, "forbidden")
    assert_error(app_client.get(f"{E}/companies/{a.id}/category7"), 401, "token_missing")
    # the platform admin sees any
    root = make_user(roles=("admin",))
    assert app_client.get(f"{E}/companies/{b.id}", headers=auth(root)).status_code == 200
    # bad input
    assert_error(b.get("category7?month=2026-13"), 400, "invalid_period")
    assert_error(b.get("category7?year=99"), 400, "invalid_period")
    assert_error(
        app_client.post(
            f"{E}/companies",
            json={"name": "x", "site": SITE, "electricitySupplier": "nowhere"},
            headers=auth(a.admin),
        ),
        422,
        "unknown_supplier",
    )
    assert_error(
        b.survey(resident, mode="ZEPPELIN", oneWayKm=3, daysPerWeek=5), 422, "unknown_mode"
    )
    assert b.survey(resident, mode="BUS", oneWayKm=0, daysPerWeek=5).status_code == 422


ENERGY = """month,energy,quantity,unit,supplier
2026-03,gasoline,120,L,
2026-03,diesel,80,L,
2026-03,city_gas,50,Nm3,
2026-03,electricity,1000,kWh,hokkaido_electric
"""


def test_scope12_sample_month(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    w = World(app_client, make_user, auth)
    r = w.upload("energy.csv", ENERGY)
    assert r.status_code == 200 and r.json()["rows"] == 4, r.text
    body = w.get("scope12?month=2026-03").json()
    # 120 x 2.32 + 80 x 2.58 + 50 x 2.23 = 278.4 + 206.4 + 111.5
    assert body["scope1"]["co2"] == 596.3
    # 1000 kWh x 0.441 (national average) and x 0.535 (Hokkaido Electric, adjusted)
    assert body["scope2"]["locationBased"]["co2"] == 441.0
    assert body["scope2"]["marketBased"]["co2"] == 535.0
    elec = next(x for x in body["lines"] if x["scope"] == 2)
    assert elec["factor"]["key"] == "national_average"
    assert elec["factorMarket"]["key"] == "hokkaido_electric_adjusted"
    assert elec["factorMarket"]["year"] == "FY2022 results"
    # the same month again replaces it (not doubled); JSON entry
    r = app_client.put(
        f"{E}/companies/{w.id}/energy",
        json={"rows": [{"month": "2026-03", "energy": "diesel", "quantity": 100, "unit": "L"}]},
        headers=auth(w.admin),
    )
    assert r.status_code == 200
    summary = w.get("summary?year=2026").json()
    assert summary["totals"]["scope1"] == pytest.approx(278.4 + 258.0 + 111.5)
    assert summary["series"]["byScope"]["scope2MarketBased"][2] == 535.0
    assert summary["series"]["byScope"]["scope1"][3] == 0.0
    rows = list(csv.DictReader(io.StringIO(w.get("scope12?month=2026-03&format=csv").text)))
    assert rows[-1]["month"] == "total" and float(rows[-1]["co2"]) == pytest.approx(
        278.4 + 258.0 + 111.5 + 441.0
    )


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("month,energy,quantity,unit\n2026-03,diesel,80,L\n2026-03,diesel,lots,L\n", 3, "quantity"),
        ("month,energy,quantity,unit\n2026-03,diesel,80,kg\n", 2, "unit"),
        ("month,energy,quantity,unit\n2026-3,diesel,80,L\n", 2, "month"),
        ("month,energy,quantity,unit\n2026-03,coal,80,t\n", 2, "energy"),
        ("month,energy,quantity,unit\n2026-03,diesel,-1,L\n", 2, "quantity"),
        ("month,energy,quantity,unit\n2026-03,diesel,nan,L\n", 2, "quantity"),
        ("month,energy,quantity,unit,supplier\n2026-03,diesel,8,L,tepco\n", 2, "supplier"),
        ("month,energy,quantity,unit,supplier\n2026-03,electricity,8,kWh,x\n", 2, "supplier"),
        ("month,energy,unit\n2026-03,diesel,L\n", 1, "quantity"),
    ],
)
def test_energy_csv_errors(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Auth,
    text: str,
    line: int,
    column: str,
) -> None:
    w = World(app_client, make_user, auth)
    err = assert_error(w.upload("energy.csv", text), 422, "invalid_rows")
    assert err["details"]["errors"][0]["line"] == line
    assert err["details"]["errors"][0]["column"] == column
    assert f"line {line}, column {column}" in err["message"]
    assert w.get("scope12?year=2026").json()["lines"] == []  # all rows or none


def test_upload_refusals(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    w = World(app_client, make_user, auth)
    assert_error(
        app_client.post(
            f"{E}/companies/{w.id}/energy.csv",
            content=b"\xff\xfe bad",
            headers={**auth(w.admin), "Content-Type": "text/csv"},
        ),
        400,
        "invalid_csv",
    )
    assert_error(w.upload("energy.csv", "month,energy,quantity,unit\n"), 422, "invalid_rows")
    err = assert_error(
        w.upload("energy.csv", "month,energy,quantity,unit\n2026-03,diesel,1,L,extra\n"),
        422,
        "invalid_rows",
    )
    assert err["details"]["errors"][0]["line"] == 2
    err = assert_error(
        w.upload("surveys", "ref,mode,one_way_km,days_per_week\na,BUS,5,5\na,CAR,x,9\n"),
        422,
        "invalid_rows",
    )
    assert [(e["line"], e["column"]) for e in err["details"]["errors"]] == [
        (3, "ref"),
        (3, "one_way_km"),
        (3, "days_per_week"),
    ]
    err = assert_error(
        w.upload("surveys", "ref,mode,one_way_km,days_per_week,home_lat\nb,BUS,5,5,42.3\n"),
        422,
        "invalid_rows",
    )
    assert err["details"]["errors"][0]["column"] == "home_lon"
    r = app_client.put(
        f"{E}/companies/{w.id}/energy",
        json={"rows": [{"month": "2026-03", "energy": "diesel", "quantity": 1, "unit": "kWh"}]},
        headers=auth(w.admin),
    )
    assert assert_error(r, 422, "invalid_rows")["details"]["errors"][0]["line"] == 0


CARS = "ref,mode,one_way_km,days_per_week\nc1,CAR,10,5\nc2,CAR,20,4\nb1,BUS,5,5\n"


def test_ev_scenario(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    w = World(app_client, make_user, auth)
    assert w.upload("surveys", CARS).status_code == 200
    r = app_client.post(f"{E}/companies/{w.id}/scenarios/ev", json={}, headers=auth(w.admin))
    assert r.status_code == 200, r.text
    body = r.json()
    # 2 car commuters: (10 x 5 + 20 x 4) x 2 x 4 = 1040 km a month
    assert body["carCommuters"] == 2 and body["kmPerMonth"] == 1040.0
    # before 1040 x 130 g; after 1040 x 0.15 kWh = 156 kWh x 0.549 kg (Hokkaido Electric)
    assert body["co2"]["perMonth"] == {"before": 135.2, "after": 85.644, "change": -49.556}
    assert body["co2"]["perYear"]["change"] == pytest.approx(-594.672)
    cost = body["cost"]["perMonth"]
    # leases 2 x 35000, chargers 2 x 5000, electricity 156 x 31; petrol 1040 x 0.075 x 175
    assert (cost["leases"], cost["chargers"], cost["electricity"]) == (70000, 10000, 4836)
    assert cost["employeesFuelSaving"] == 13650 and cost["net"] == 71186
    assert body["cost"]["netPerTonneAvoided"] == pytest.approx(71186 / 0.049556, abs=0.1)
    assert body["inputs"]["kwh_per_km"] == 0.15 and body["assumptions"]
    assert body["factors"]["electricity"]["key"] == "hokkaido_electric"
    # half of them, with tepco power
    half = app_client.post(
        f"{E}/companies/{w.id}/scenarios/ev",
        json={"share_pct": 50, "supplier": "tepco"},
        headers=auth(w.admin),
    ).json()
    # 520 km: 67.6 kg before; 78 kWh x 0.457 = 35.646 kg after
    assert half["co2"]["perMonth"] == {"before": 67.6, "after": 35.646, "change": -31.954}
    assert half["cost"]["perMonth"]["chargers"] == 5000  # one charger for one car
    assert_error(
        app_client.post(
            f"{E}/companies/{w.id}/scenarios/ev", json={"supplier": "x"}, headers=auth(w.admin)
        ),
        422,
        "unknown_supplier",
    )
    assert (
        app_client.post(
            f"{E}/companies/{w.id}/scenarios/ev", json={"share_pct": 101}, headers=auth(w.admin)
        ).status_code
        == 422
    )
    csv_text = app_client.post(
        f"{E}/companies/{w.id}/scenarios/ev?format=csv", json={}, headers=auth(w.admin)
    ).text
    row = next(csv.DictReader(io.StringIO(csv_text)))
    assert row["co2_perMonth_change"] == "-49.556" and row["inputs_kwh_per_km"] == "0.15"


def test_shuttle_and_bus_scenarios(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    w = World(app_client, make_user, auth)
    assert w.upload("surveys", CARS).status_code == 200
    body = app_client.post(
        f"{E}/companies/{w.id}/scenarios/shuttle",
        json={"capacity": 1, "route_km": 25},
        headers=auth(w.admin),
    ).json()
    # the longest commute rides: 20 x 2 x 4 x 4 = 640 km x 130 g = 83.2 kg; the van
    # 25 km x 2 x 2 runs x 20 days = 2000 km x 0.075 L x 2.58 kg = 387 kg
    assert body["riders"] == 1 and body["vehicleKmPerMonth"] == 2000.0
    assert body["co2"]["perMonth"] == {"before": 83.2, "after": 387.0, "change": 303.8}
    assert body["cost"]["netPerTonneAvoided"] is None  # nothing avoided
    assert_error(
        app_client.post(
            f"{E}/companies/{w.id}/scenarios/shuttle",
            json={"vehicle": "zeppelin"},
            headers=auth(w.admin),
        ),
        422,
        "unknown_vehicle",
    )
    # no published network in this app: each commute by bus at the BUS factor, half switch:
    # before (400 + 640 km) x 130 / 2; after (10 x 57 x 40 trips + 20 x 57 x 32 trips) / 2
    bus = app_client.post(
        f"{E}/companies/{w.id}/scenarios/bus_on_demand", json={}, headers=auth(w.admin)
    ).json()
    assert bus["co2"]["perMonth"] == {"before": 67.6, "after": 29.64, "change": -37.96}
    assert bus["planner"] == "no timetable is published"
    assert all("no timetable" in x["method"] for x in bus["lines"])
    # fares 300 x (40 + 32) / 2; car 20 JPY x 1040 km / 2
    assert bus["cost"]["perMonth"] == {"fares": 10800, "employeesCarSaving": 10400, "net": 400}


def test_city_view(app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth) -> None:
    w = World(app_client, make_user, auth)
    build_company(w)
    assert w.upload("energy.csv", ENERGY).status_code == 200
    staff = make_user(roles=("city_staff",))
    body = app_client.get(f"{E}/city/summary?year=2026", headers=auth(staff)).json()
    s = body["series"]
    march = 2
    # BUS: 7 employees' trips + 4 uploads; WALK 7 + 3: shown. CAR (E8 alone) and RAIL (3
    # uploads) are below k = 5: hidden
    assert s["category7ByMode"]["BUS"][march] == pytest.approx(8.778 + 72.96)
    assert s["category7ByMode"]["WALK"][march] == 0.0
    assert s["category7ByMode"]["CAR"][march] is None
    assert s["category7ByMode"]["RAIL"][march] is None
    assert s["scope3Category7"][march] == pytest.approx(158.218)
    assert s["persons"][march] == 18
    # February: no trips; CAR (E7, E8), BUS (4 uploads), RAIL and WALK (3 each) all hidden,
    # the month's 12 persons' total shown: 2 x 52 + 72.96 + 24.48
    assert [s["category7ByMode"][m][1] for m in ("BUS", "CAR", "RAIL", "WALK")] == [None] * 4
    assert s["scope3Category7"][1] == pytest.approx(201.44) and s["persons"][1] == 12
    # one company's energy: below k companies, hidden
    assert s["scope1"][march] is None and s["companiesReporting"][march] == 1
    assert body["rules"]["k"] == 5 and body["companies"] == 1
    assert "entries" not in str(body) and "user:" not in str(body)
    r = app_client.get(f"{E}/city/summary?month=2026-03&format=csv", headers=auth(staff))
    row = next(csv.DictReader(io.StringIO(r.text)))
    assert row["month"] == "2026-03" and row["category7_CAR"] == ""
