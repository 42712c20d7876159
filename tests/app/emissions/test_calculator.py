"""CO2 of sample itineraries and rides, against values computed by hand in each test.

Factors (app/emissions/data/japan.toml): bus 57 g/pkm, rail 17, car 130, walk 0; road
circuity 1.3; van 0.075 L diesel/km x 2.58 kg/L = 193.5 g per vehicle-km; autonomous shuttle
0.2 kWh/km x Hokkaido Electric 0.549 kg/kWh = 109.8 g per vehicle-km.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.emissions.calculator import ItineraryError, price_itinerary, ride_share
from app.emissions.factors import FactorError, FactorTable, load_factor_table
from tests.app.emissions.helpers import itinerary, km_between, leg, ride

T0 = 1_796_000_000_000  # epoch ms


@pytest.fixture(scope="module")
def table() -> FactorTable:
    return load_factor_table()


def test_defaults_have_provenance(table: FactorTable) -> None:
    assert table.mode("CAR").value == 130 and table.mode("CAR").year == "FY2019"
    assert "MLIT" in table.mode("BUS").source and table.mode("BUS").value == 57
    assert table.mode("RAIL").value == 17 and table.mode("SUBWAY").value == 17
    assert table.mode("WALK").value == 0 and table.mode("BICYCLE").value == 0
    assert table.fuel("gasoline").value == 2.32 and table.fuel("diesel").value == 2.58
    assert table.fuel("lpg").unit == "kg-CO2/kg" and table.fuel("kerosene").value == 2.49
    assert table.electricity_factor().basis.startswith("basic")
    assert "national_average" in table.electricity
    assert table.vehicle_g_per_km("van") == pytest.approx(0.075 * 2.58 * 1000)  # 193.5
    assert table.vehicle_g_per_km("autonomous_shuttle") == pytest.approx(0.2 * 0.549 * 1000)
    assert table.vehicle_g_per_km("unknown") == pytest.approx(193.5)  # the default vehicle
    routing = table.to_routing()
    assert routing.transit_g_per_pkm["BUS"] == 57 and routing.car_g_per_pkm == 130


def test_bus_itinerary(table: FactorTable) -> None:
    # walk 0.30 km, bus 5.0 km (route longer than the 4.448 km straight line), walk 0.20 km
    it = itinerary(
        leg("WALK", 42.300, 42.302, 300.0, T0, T0 + 240_000),
        leg("BUS", 42.302, 42.342, 5000.0, T0 + 300_000, T0 + 1_200_000),
        leg("WALK", 42.342, 42.3435, 200.0, T0 + 1_200_000, T0 + 1_380_000),
    )
    priced = price_itinerary(table, it)
    assert [leg.co2_g for leg in priced.legs] == [0, 285, 0]  # 57 g x 5.0 km
    assert priced.co2_g == 285
    car_km = km_between(42.300, 42.3435) * 1.3  # 4.8370 km x 1.3 = 6.2881 km
    assert priced.car_distance_m == pytest.approx(car_km * 1000)
    assert priced.car_co2_g == 817  # 130 g x 6.2881 km = 817.45
    assert priced.saving_g == 817 - 285


def test_rail_itinerary(table: FactorTable) -> None:
    it = itinerary(leg("RAIL", 42.30, 42.40, 12_000.0, T0, T0 + 900_000))
    priced = price_itinerary(table, it)
    assert priced.co2_g == 204  # 17 g x 12 km
    assert priced.car_co2_g == 1879  # 130 x 11.11950 km x 1.3 = 1879.2


def test_walk_itinerary(table: FactorTable) -> None:
    priced = price_itinerary(table, itinerary(leg("WALK", 42.30, 42.305, 600.0, T0, T0 + 1)))
    assert priced.co2_g == 0
    assert priced.car_co2_g == 94  # 130 x 0.555975 km x 1.3 = 93.96


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (leg("HOVERCRAFT", 42.3, 42.31, 1200.0, T0, T0 + 1), "unknown_mode"),
        (leg("BUS", 42.3, 42.4, 2000.0, T0, T0 + 1), "implausible_distance"),  # < 11.1 km line
        (leg("BUS", 42.3, 42.31, 60_000.0, T0, T0 + 1), "implausible_distance"),
        ({**leg("FLEX", 42.3, 42.31, 1200.0, T0, T0 + 1), "onDemand": True}, "on_demand_leg"),
        ({"mode": "BUS", "from": {"lat": "x"}, "to": {}, "distance": 1}, "invalid_itinerary"),
        ({**leg("BUS", 42.3, 42.31, 1200.0, T0, T0 + 1), "distance": None}, "invalid_itinerary"),
    ],
)
def test_unpriceable_legs(table: FactorTable, bad: dict[str, object], code: str) -> None:
    with pytest.raises(ItineraryError) as err:
        price_itinerary(table, itinerary(bad))
    assert err.value.code == code


def test_no_legs(table: FactorTable) -> None:
    with pytest.raises(ItineraryError):
        price_itinerary(table, {"legs": []})


# --- on-demand: the vehicle's kilometres shared among the persons on board ----------------------
def test_on_demand_alone(table: FactorTable) -> None:
    mine = ride("r1", "van-1", 42.30, 42.32, 1000.0, 1600.0)
    share = ride_share(table, mine, [mine], "van")
    vkm = km_between(42.30, 42.32) * 1.3  # 2.22390 km x 1.3 = 2.89107 km
    assert share.vehicle_km == pytest.approx(vkm)
    assert share.stretches == ((pytest.approx(vkm), 1),)
    assert share.co2_g == 559  # 193.5 g x 2.89107 km = 559.42


def test_on_demand_shared_by_three(table: FactorTable) -> None:
    riders = [ride(f"r{i}", "van-1", 42.30, 42.32, 1000.0, 1600.0) for i in range(3)]
    share = ride_share(table, riders[0], riders, "van")
    assert [p for _, p in share.stretches] == [3]
    assert share.co2_g == 186  # 559.42 / 3 = 186.47


def test_on_demand_party_counts_seats(table: FactorTable) -> None:
    mine = ride("r1", "van-1", 42.30, 42.32, 1000.0, 1600.0)
    party = ride("r2", "van-1", 42.30, 42.32, 1000.0, 1600.0, seats=3)
    assert ride_share(table, mine, [mine, party], "van").co2_g == 140  # 559.42 / 4 = 139.86


def test_on_demand_joined_half_way(table: FactorTable) -> None:
    # r2 boards at 42.31 (half way) and rides past r1's drop-off: 1.11195 km alone, then
    # 1.11195 km shared by 2; x 1.3 x 193.5 g: 279.71 + 139.86 = 419.57
    mine = ride("r1", "van-1", 42.30, 42.32, 1000.0, 1600.0)
    other = ride("r2", "van-1", 42.31, 42.35, 1300.0, 2000.0)
    share = ride_share(table, mine, [mine, other], "van")
    assert [p for _, p in share.stretches] == [1, 2]
    assert share.co2_g == 420
    # and r2's own share: 1.11195 km with r1 (2 on board), then 42.32 -> 42.35 (3.33585 km)
    # alone: 1.11195 x 1.3 x 193.5 / 2 + 3.33585 x 1.3 x 193.5 = 139.86 + 839.13 = 978.99
    theirs = ride_share(table, other, [mine, other], "van")
    assert [p for _, p in theirs.stretches] == [2, 1]
    assert theirs.co2_g == 979


def test_electric_shuttle(table: FactorTable) -> None:
    mine = ride("r1", "s-1", 42.30, 42.32, 1000.0, 1600.0)
    assert ride_share(table, mine, [], "autonomous_shuttle").co2_g == 317  # 109.8 x 2.89107


def test_ride_not_completed_counts_nothing(table: FactorTable) -> None:
    mine = {**ride("r1", "van-1", 42.30, 42.32, 1000.0, 1600.0), "dropped_off_at": None}
    assert ride_share(table, mine, [], "van").co2_g == 0


# --- a city's own factor file ---------------------------------------------------------------------
def test_city_file_extends_defaults(tmp_path: Path) -> None:
    path = tmp_path / "tokyo.json"
    path.write_text(
        json.dumps(
            {
                "extends": "japan",
                "electricity_supplier": "tepco",
                "modes": {"BUS": {"value": 60, "unit": "g-CO2/pkm", "source": "x", "year": "2024"}},
            }
        )
    )
    t = load_factor_table(path)
    assert t.mode("BUS").value == 60 and t.mode("RAIL").value == 17
    assert t.vehicle_g_per_km("autonomous_shuttle") == pytest.approx(0.2 * 0.457 * 1000)


@pytest.mark.parametrize(
    "content",
    [
        'extends = "japan"\nelectricity_supplier = "nowhere"\n',
        'extends = "atlantis"\n',
        "not toml = = =",
        'extends = "japan"\n[vehicles.van]\nenergy = "plutonium"\nenergy_per_km = 1\nunit = "L/km"\n'
        'source = "x"\nyear = "x"\n',
        'extends = "japan"\n[modes.CAR]\nvalue = -1\nunit = "g"\nsource = "x"\nyear = "x"\n',
    ],
)
def test_bad_city_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "city.toml"
    path.write_text(content)
    with pytest.raises(FactorError):
        load_factor_table(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FactorError, match="cannot read"):
        load_factor_table(tmp_path / "absent.toml")
