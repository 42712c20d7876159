""" "What if" scenarios for a company's car commuters: their CO2 and cost effect.

The car commuters are the company's survey answers with mode ``CAR`` that count now (its
consenting employees' own answers and the admin's uploads): the mobility core records no car
trips. A month of a commuter's driving is ``one-way km x 2 x days a week x``
:data:`app.emissions.reports.WEEKS_PER_MONTH` km at the table's CAR factor (one person a car).

* ``bus_on_demand``: ``share_pct`` % of car commuters switch to bus + on-demand. Each
  commuter's home -> site trip is planned (departing ``departure``, 07:30 by default, on
  ``date``, by default the next weekday on which that time is still ahead; transit, walking and
  on-demand FLEX legs) by the main app's planner over their real home-work pair, its CO2 the
  itinerary's ``emissionsPerPerson`` and its fare the itinerary's fare (``fare_per_trip`` for
  legs without one) plus ``on_demand_fare`` per FLEX leg; the way home is taken to be the same.
  A planned line lists its legs (mode, metres, grams, fare). The on-demand legs are the live
  fleet's quotes: a date beyond the zone's booking horizon gets no FLEX leg.
  With several cities published, the trips are planned on the network of the city holding
  the company's site (none: no planner); a home in another city's network is not planned.
  Without a planner (the service run alone, no published network), or for a commuter with no
  home location, a home in another city or no itinerary found, the commute is priced as its one-way km by bus (the
  BUS factor) at ``fare_per_trip``, and the commuter's line says so. The effect counts
  ``share_pct`` % of every commuter (expected values, no one picked at random).
* ``ev``: ``share_pct`` % of car commuters drive leased EVs charged at work: the same km x
  ``kwh_per_km`` x the supplier's electricity factor; cost to the company: the leases, the
  chargers and the electricity; the employees save the petrol.
* ``shuttle``: a company shuttle (a vehicle type of the factor table) takes the car commuters
  with the longest commutes, up to ``capacity``: its vehicle-km x the vehicle's g/km, shared
  by its riders, against the riders' driving.

Every answer returns its inputs, assumptions, the factors used, the CO2 before and after a
month and a year (kg) and the costs (JPY a month).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.emissions.calculator import factor_json
from app.emissions.factors import FactorTable
from app.emissions.models import Company, Survey
from app.emissions.reports import WEEKS_PER_MONTH, kg, survey_km_month

#: Commuters planned one by one at most (the rest priced by the fallback, stated).
MAX_PLANNED = 200

#: ``plan(home, site)`` -> an OTP itinerary (with ``emissionsPerPerson``), or None; raises
#: :class:`OtherCity` when the home lies in another city's network than the site.
CommutePlanner = Callable[[tuple[float, float], tuple[float, float]], dict[str, Any] | None]


class OtherCity(ValueError):
    """A commuter's home lies in another city's network than the company's site: each city
    is a network of its own and no trip runs between them, so the commute is not planned."""

    def __init__(self, city: str) -> None:
        super().__init__(city)
        self.city = city


@dataclass(frozen=True)
class CarCommuter:
    """A car commuter from the survey."""

    ref: str
    one_way_km: float
    days_per_week: float
    home: tuple[float, float] | None

    @property
    def km_month(self) -> float:
        return survey_km_month(self.one_way_km, self.days_per_week)

    @property
    def trips_month(self) -> float:
        return 2.0 * self.days_per_week * WEEKS_PER_MONTH


def car_commuters(answers: Sequence[Survey]) -> list[CarCommuter]:
    """The survey answers of commuters driving (mode CAR)."""
    return [
        CarCommuter(
            s.ref,
            s.one_way_km,
            s.days_per_week,
            (s.home_lat, s.home_lon) if s.home_lat is not None and s.home_lon is not None else None,
        )
        for s in answers
        if s.mode == "CAR"
    ]


class _Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BusOnDemandInputs(_Inputs):
    """Inputs of ``bus_on_demand``."""

    share_pct: float = Field(50.0, ge=0, le=100, description="% of car commuters switching")
    fare_per_trip: float = Field(
        300.0, ge=0, description="JPY a one-way transit trip when the feed's fares say nothing"
    )
    on_demand_fare: float = Field(500.0, ge=0, description="JPY per on-demand ride")
    car_cost_per_km: float = Field(
        20.0, ge=0, description="JPY a km of driving saved (fuel and wear)"
    )
    max_walk_m: float = Field(
        1000.0,
        ge=0,
        le=20_000,
        description="longest walk a commuter takes to or from a stop (m); "
        "the on-demand van covers homes farther out",
    )
    departure: str = Field(
        "07:30", description="HH:MM (the network's time zone) the home -> site trips depart"
    )
    date: dt.date | None = Field(
        None,
        description="the day planned (default: the next weekday on which `departure` is ahead)",
    )

    @field_validator("departure")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
        if m is None:
            raise ValueError("departure must be HH:MM (00:00..23:59)")
        return f"{int(m.group(1)):02d}:{m.group(2)}"

    @property
    def departure_s(self) -> int:
        """Seconds after midnight of ``departure``."""
        hh, mm = self.departure.split(":")
        return int(hh) * 3600 + int(mm) * 60


def commute_day(
    first: dt.date, now: dt.datetime, departure_s: int, given: dt.date | None = None
) -> dt.date:
    """The day a commute scenario plans: ``given``, else the first weekday from ``first``
    (the network's service date, or today) on which ``departure_s`` is still ahead of ``now``
    (in the network's time zone): planning a past departure would find no on-demand quote."""
    if given is not None:
        return given
    day = max(first, now.date())
    while day.weekday() >= 5 or (
        day == now.date() and departure_s <= now.hour * 3600 + now.minute * 60 + now.second
    ):
        day += dt.timedelta(days=1)
    return day


def _leg_line(leg: dict[str, Any]) -> dict[str, Any]:
    """A planned leg as a scenario line shows it (no times: a commute, not a booking)."""
    out: dict[str, Any] = {
        "mode": str(leg.get("mode")),
        "distance": round(float(leg.get("distance") or 0.0), 1),
        "co2": int((leg.get("emissionsPerPerson") or {}).get("co2", 0)),
    }
    if leg.get("vehicleType"):
        out["vehicleType"] = leg["vehicleType"]
    if leg.get("fare"):
        out["fare"] = float(leg["fare"]["price"])
    return out


class EvInputs(_Inputs):
    """Inputs of ``ev``."""

    share_pct: float = Field(100.0, ge=0, le=100, description="% of car commuters switching")
    kwh_per_km: float = Field(0.15, gt=0, le=1, description="EV energy use")
    supplier: str | None = Field(
        None, description="electricity supplier at work (the company's, else the city's)"
    )
    lease_cost_per_month: float = Field(35000.0, ge=0, description="JPY a month per leased EV")
    chargers: int | None = Field(
        None, ge=0, description="workplace chargers (default: one per switching car, rounded up)"
    )
    charger_cost_per_month: float = Field(5000.0, ge=0, description="JPY a month per charger")
    electricity_price_per_kwh: float = Field(31.0, ge=0, description="JPY per kWh at work")
    car_l_per_km: float = Field(0.075, gt=0, le=1, description="petrol cars' use (L/km)")
    gasoline_price_per_l: float = Field(175.0, ge=0, description="JPY per litre")


class ShuttleInputs(_Inputs):
    """Inputs of ``shuttle``."""

    vehicle: str = Field("van", description="a vehicle type of the factor table")
    route_km: float | None = Field(
        None, gt=0, le=500, description="one way (default: the riders' mean one-way km)"
    )
    runs_per_day: int = Field(
        2, ge=1, le=48, description="runs a day, each out with riders and back empty"
    )
    days_per_month: float = Field(20.0, gt=0, le=31)
    capacity: int = Field(10, ge=1, le=100, description="riders it takes")
    cost_per_month: float = Field(400000.0, ge=0, description="JPY a month (vehicle, driver)")
    car_cost_per_km: float = Field(20.0, ge=0, description="JPY a km of driving saved")


def _effect(before_g: float, after_g: float) -> dict[str, Any]:
    return {
        "unit": "kg",
        "perMonth": {
            "before": kg(before_g),
            "after": kg(after_g),
            "change": kg(after_g - before_g),
        },
        "perYear": {
            "before": kg(before_g * 12),
            "after": kg(after_g * 12),
            "change": kg((after_g - before_g) * 12),
        },
    }


def _per_tonne(net_cost: float, before_g: float, after_g: float) -> float | None:
    avoided_t = (before_g - after_g) / 1e6
    return round(net_cost / avoided_t, 1) if avoided_t > 0 else None


def _head(name: str, company: Company, inputs: _Inputs, commuters: int) -> dict[str, Any]:
    return {
        "scenario": name,
        "company": {"id": str(company.id), "name": company.name},
        "inputs": inputs.model_dump(),
        "carCommuters": commuters,
    }


def ev_scenario(
    table: FactorTable, company: Company, commuters: Sequence[CarCommuter], inputs: EvInputs
) -> dict[str, Any]:
    """Car commuters switch to leased EVs charged at work (see the module docstring)."""
    share = inputs.share_pct / 100.0
    supplier = inputs.supplier or company.electricity_supplier or table.electricity_supplier
    ef = table.electricity_factor(supplier)
    car = table.mode("CAR")
    switching = len(commuters) * share
    km = sum(c.km_month for c in commuters) * share
    before_g = km * car.value
    kwh = km * inputs.kwh_per_km
    after_g = kwh * ef.value * 1000.0
    chargers = inputs.chargers if inputs.chargers is not None else math.ceil(switching - 1e-9)
    leases = switching * inputs.lease_cost_per_month
    charging = chargers * inputs.charger_cost_per_month
    power = kwh * inputs.electricity_price_per_kwh
    company_cost = leases + charging + power
    fuel_saving = km * inputs.car_l_per_km * inputs.gasoline_price_per_l
    net = company_cost - fuel_saving
    return {
        **_head("ev", company, inputs, len(commuters)),
        "switching": round(switching, 3),
        "kmPerMonth": round(km, 3),
        "kwhPerMonth": round(kwh, 3),
        "co2": _effect(before_g, after_g),
        "cost": {
            "currency": "JPY",
            "perMonth": {
                "leases": round(leases, 1),
                "chargers": round(charging, 1),
                "electricity": round(power, 1),
                "company": round(company_cost, 1),
                "employeesFuelSaving": round(fuel_saving, 1),
                "net": round(net, 1),
            },
            "netPerTonneAvoided": _per_tonne(net * 12, before_g * 12, after_g * 12),
        },
        "factors": {
            "car": factor_json(car),
            "electricity": {**factor_json(ef), "key": supplier, "basis": ef.basis},
        },
        "assumptions": [
            "Car commuters are the survey's CAR answers; one person per car.",
            f"A month is one-way km x 2 x days a week x {WEEKS_PER_MONTH:g} weeks.",
            "Every EV is charged at work from the supplier's grid (its basic factor); the "
            "company pays leases, chargers and electricity; employees save their petrol.",
            f"{inputs.share_pct:g} % of every car commuter's driving switches (expected value).",
        ],
    }


def shuttle_scenario(
    table: FactorTable, company: Company, commuters: Sequence[CarCommuter], inputs: ShuttleInputs
) -> dict[str, Any]:
    """A company shuttle for the car commuters with the longest commutes."""
    if inputs.vehicle not in table.vehicles:
        raise KeyError(inputs.vehicle)
    riders = sorted(commuters, key=lambda c: (-c.one_way_km, c.ref))[: inputs.capacity]
    car = table.mode("CAR")
    before_g = sum(c.km_month for c in riders) * car.value
    route_km = inputs.route_km
    if route_km is None:
        route_km = sum(c.one_way_km for c in riders) / len(riders) if riders else 0.0
    vehicle_km = route_km * 2.0 * inputs.runs_per_day * inputs.days_per_month if riders else 0.0
    g_km = table.vehicle_g_per_km(inputs.vehicle)
    after_g = vehicle_km * g_km
    saving = sum(c.km_month for c in riders) * inputs.car_cost_per_km
    cost = inputs.cost_per_month if riders else 0.0
    v = table.vehicles[inputs.vehicle]
    energy = table.energy(v.energy)
    return {
        **_head("shuttle", company, inputs, len(commuters)),
        "riders": len(riders),
        "routeKm": round(route_km, 3),
        "vehicleKmPerMonth": round(vehicle_km, 3),
        "co2PerRiderPerMonth": kg(after_g / len(riders)) if riders else None,
        "co2": _effect(before_g, after_g),
        "cost": {
            "currency": "JPY",
            "perMonth": {
                "company": round(cost, 1),
                "employeesCarSaving": round(saving, 1),
                "net": round(cost - saving, 1),
            },
            "netPerTonneAvoided": _per_tonne((cost - saving) * 12, before_g * 12, after_g * 12),
        },
        "factors": {
            "car": factor_json(car),
            "vehicle": {
                "value": round(g_km, 1),
                "unit": "g-CO2/vehicle-km",
                "source": f"{v.source}: {v.energy_per_km} {v.unit} x {energy.value} "
                f"{energy.unit} ({energy.source})",
                "year": energy.year,
            },
        },
        "assumptions": [
            "Riders: the car commuters with the longest one-way commutes, up to capacity.",
            "Each run goes out with the riders and back empty: route km x 2 a run.",
            "The shuttle's CO2 is shared equally by its riders; riders stop driving.",
        ],
    }


def bus_on_demand_scenario(
    table: FactorTable,
    company: Company,
    commuters: Sequence[CarCommuter],
    inputs: BusOnDemandInputs,
    planner: CommutePlanner | None,
    planner_note: str,
) -> dict[str, Any]:
    """``share_pct`` % of car commuters switch to bus + on-demand (see the module docstring)."""
    share = inputs.share_pct / 100.0
    car = table.mode("CAR")
    bus = table.mode("BUS")
    site = (company.site_lat, company.site_lon)
    before_g = after_g = fares = car_saving = 0.0
    lines: list[dict[str, Any]] = []
    for i, c in enumerate(commuters):
        it = None
        if planner is None:
            method = f"average-data: one-way km by bus ({planner_note})"
        elif c.home is None:
            method = "average-data: one-way km by bus (no home location in the survey)"
        elif i >= MAX_PLANNED:
            method = f"average-data: one-way km by bus (beyond the first {MAX_PLANNED} planned)"
        else:
            try:
                it = planner(c.home, site)
                method = (
                    "planner: home -> site itinerary"
                    if it is not None
                    else "average-data: one-way km by bus (no itinerary found)"
                )
            except OtherCity as other:
                method = (
                    f"average-data: one-way km by bus (home in another city's network, "
                    f"{other.city}, than the site)"
                )
        if it is not None:
            legs = it.get("legs", [])
            g_trip = float(
                sum(float((leg.get("emissionsPerPerson") or {}).get("co2", 0)) for leg in legs)
            )
            flex = sum(1 for leg in legs if leg.get("mode") == "FLEX" or leg.get("onDemand"))
            transit = [leg for leg in legs if leg.get("transitLeg") and not leg.get("onDemand")]
            fare = float(
                sum(
                    float(leg["fare"]["price"]) if leg.get("fare") else inputs.fare_per_trip
                    for leg in transit
                )
            )
            fare += flex * inputs.on_demand_fare
            modes = [str(leg.get("mode")) for leg in legs]
            planned_legs: list[dict[str, Any]] | None = [_leg_line(leg) for leg in legs]
        else:
            planned_legs = None
            g_trip = c.one_way_km * bus.value
            fare = inputs.fare_per_trip
            modes = ["BUS"]
        b = c.km_month * car.value
        a = g_trip * c.trips_month
        before_g += b * share
        after_g += a * share
        fares += fare * c.trips_month * share
        car_saving += c.km_month * inputs.car_cost_per_km * share
        lines.append(
            {
                "commuter": c.ref,
                "method": method,
                "modes": modes,
                "co2PerTrip": kg(g_trip),
                "carCo2PerTrip": kg(c.one_way_km * car.value),
                "farePerTrip": round(fare, 1),
                "co2BeforePerMonth": kg(b),
                "co2AfterPerMonth": kg(a),
                **({"legs": planned_legs} if planned_legs is not None else {}),
            }
        )
    net = fares - car_saving
    return {
        **_head("bus_on_demand", company, inputs, len(commuters)),
        "planner": planner_note if planner is None else f"{planner_note} (FLEX legs)",
        "co2": _effect(before_g, after_g),
        "cost": {
            "currency": "JPY",
            "perMonth": {
                "fares": round(fares, 1),
                "employeesCarSaving": round(car_saving, 1),
                "net": round(net, 1),
            },
            "netPerTonneAvoided": _per_tonne(net * 12, before_g * 12, after_g * 12),
        },
        "factors": {"car": factor_json(car), "bus": factor_json(bus)},
        "lines": lines,
        "assumptions": [
            f"Each commuter's home -> site trip departs {inputs.departure} on a weekday; the "
            "way home is taken to cost the same CO2 and fare.",
            "On-demand legs' CO2 is the planner's quote (vehicle g/km shared by the expected "
            "riders).",
            f"{inputs.share_pct:g} % of every car commuter's trips switch (expected value).",
        ],
    }
