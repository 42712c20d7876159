"""CO2 of legs, itineraries and on-demand rides, from a city's :class:`FactorTable`.

Pure functions over plain dicts: no database, no HTTP. All figures are grams of CO2 per person.

* A scheduled leg (bus, rail...): its distance x the mode's grams per passenger-km.
* Walking and cycling: 0.
* An on-demand ride: the vehicle's kilometres while the rider was on board x its energy use
  per km x the energy's factor, each stretch shared among the persons on board during it
  (:func:`ride_share`). The dispatcher records when each ride was picked up and dropped off
  and where, not the vehicle's path: the vehicle is taken to drive straight (x the table's
  road circuity) from each pick-up or drop-off of its rides to the next, and the persons on
  board during a stretch are the seats of the rides picked up before it and dropped off after.
* The same trip by private car: the door-to-door road distance (straight line x road
  circuity) x the CAR factor; the saving is that minus the trip's CO2.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.emissions.factors import FactorTable
from dispatch.geo import point_distance_m

#: Modes that burn nothing.
ZERO_MODES = frozenset({"WALK", "BICYCLE", "BIKE", "SCOOTER"})
#: A leg's stated distance may exceed its straight line this many times (winding bus routes,
#: a walk around a block) plus :data:`DISTANCE_SLACK_M`; more is refused as implausible.
MAX_DETOUR = 4.0
DISTANCE_SLACK_M = 1000.0


class ItineraryError(ValueError):
    """An itinerary that cannot be priced: ``code`` says why (an API 422)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PricedLeg:
    """One leg's CO2 and the factor behind it."""

    mode: str
    distance_m: float
    co2_g: int
    factor: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "distance": round(self.distance_m, 1),
            "co2": self.co2_g,
            "unit": "g",
            "factor": self.factor,
        }


@dataclass(frozen=True)
class PricedTrip:
    """A trip's CO2, the same trip by car, and the saving (grams)."""

    legs: tuple[PricedLeg, ...]
    car_distance_m: float
    car_co2_g: int

    @property
    def co2_g(self) -> int:
        return sum(leg.co2_g for leg in self.legs)

    @property
    def distance_m(self) -> float:
        return sum(leg.distance_m for leg in self.legs)

    @property
    def saving_g(self) -> int:
        return self.car_co2_g - self.co2_g


@dataclass(frozen=True)
class RideShare:
    """A rider's share of an on-demand vehicle's CO2 (see :func:`ride_share`)."""

    co2_g: int
    vehicle_km: float
    g_per_vehicle_km: float
    #: ``(km, persons on board)`` of each stretch driven while the rider was on board.
    stretches: tuple[tuple[float, int], ...] = field(default=())


def _point(place: Any, what: str) -> tuple[float, float]:
    try:
        lat, lon = float(place["lat"]), float(place["lon"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ItineraryError("invalid_itinerary", f"{what} needs numeric lat and lon") from exc
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ItineraryError("invalid_itinerary", f"{what} lies outside the globe")
    return lat, lon


def straight_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (m) between two ``(lat, lon)`` points."""
    return point_distance_m(a, b)


def factor_json(f: Any) -> dict[str, Any]:
    """A factor's provenance as the API shows it (``verified``: found in a published source;
    see the factor table's ``check``)."""
    return {
        "value": f.value,
        "unit": f.unit,
        "source": f.source,
        "year": f.year,
        "verified": bool(getattr(f, "verified", False)),
    }


def car_trip(
    table: FactorTable, a: tuple[float, float], b: tuple[float, float]
) -> tuple[float, int]:
    """``(road metres, grams)`` of driving from ``a`` to ``b`` alone by private car."""
    meters = straight_m(a, b) * table.road_circuity.value
    return meters, round(table.modes["CAR"].value * meters / 1000.0)


def price_leg(table: FactorTable, leg: dict[str, Any], i: int) -> PricedLeg:
    """One scheduled, walking or driven leg of an OTP itinerary (not an on-demand one)."""
    mode = str(leg.get("mode", "")).upper()
    a = _point(leg.get("from"), f"legs[{i}].from")
    b = _point(leg.get("to"), f"legs[{i}].to")
    try:
        distance = float(leg["distance"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ItineraryError("invalid_itinerary", f"legs[{i}] needs a distance (m)") from exc
    line = straight_m(a, b)
    if not (distance >= 0.95 * line and distance <= MAX_DETOUR * line + DISTANCE_SLACK_M):
        raise ItineraryError(
            "implausible_distance",
            f"legs[{i}]: {distance:.0f} m between places {line:.0f} m apart",
        )
    if mode in ZERO_MODES:
        f = table.modes.get(mode) or table.modes["WALK"]
        return PricedLeg(mode, distance, 0, factor_json(f))
    try:
        f = table.mode(mode)
    except KeyError:
        raise ItineraryError(
            "unknown_mode", f"legs[{i}]: no CO2 factor for mode {mode!r}"
        ) from None
    return PricedLeg(mode, distance, round(f.value * distance / 1000.0), factor_json(f))


def is_on_demand_leg(leg: dict[str, Any]) -> bool:
    """Whether an itinerary leg is an on-demand ride (priced from the dispatcher's record)."""
    return leg.get("onDemand") is True or str(leg.get("mode", "")).upper() == "FLEX"


def endpoints(itinerary: dict[str, Any]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The itinerary's door-to-door ends: the first leg's ``from`` and the last leg's ``to``."""
    legs = legs_of(itinerary)
    return _point(legs[0].get("from"), "legs[0].from"), _point(
        legs[-1].get("to"), "the last leg's to"
    )


def legs_of(itinerary: Any) -> list[dict[str, Any]]:
    """The itinerary's legs; :class:`ItineraryError` when it has none or they are not objects."""
    legs = itinerary.get("legs") if isinstance(itinerary, dict) else None
    if not isinstance(legs, list) or not legs or not all(isinstance(x, dict) for x in legs):
        raise ItineraryError("invalid_itinerary", "the itinerary needs a list of legs")
    return legs


def price_itinerary(
    table: FactorTable,
    itinerary: dict[str, Any],
    on_demand: Sequence[PricedLeg | None] = (),
) -> PricedTrip:
    """The CO2 of an OTP itinerary (``POST /api/v1/emissions/trips``, booked trips).

    ``on_demand`` gives the priced on-demand legs in travel order (from the dispatcher's
    record); an on-demand leg without one is an :class:`ItineraryError` ``on_demand_leg``.
    """
    legs = legs_of(itinerary)
    pending = list(on_demand)
    priced: list[PricedLeg] = []
    for i, leg in enumerate(legs):
        if is_on_demand_leg(leg):
            share = pending.pop(0) if pending else None
            if share is None:
                raise ItineraryError(
                    "on_demand_leg",
                    f"legs[{i}] is an on-demand ride: its CO2 comes from the dispatcher's "
                    "record once the booked ride is completed",
                )
            priced.append(share)
        else:
            priced.append(price_leg(table, leg, i))
    a, b = endpoints(itinerary)
    car_m, car_g = car_trip(table, a, b)
    return PricedTrip(tuple(priced), car_m, car_g)


def ride_share(
    table: FactorTable,
    ride: dict[str, Any],
    vehicle_rides: Sequence[dict[str, Any]],
    vehicle_type: str | None,
) -> RideShare:
    """One person's share of the CO2 of an on-demand ride (``Ride.to_dict()`` records).

    ``vehicle_rides``: the vehicle's rides on board at some moment of this ride (this ride
    included or not). Every pick-up and drop-off of those rides inside this ride's time on
    board cuts it into stretches; a stretch's grams (straight line x road circuity x the
    vehicle's grams per km) are shared equally among the persons (seats) on board during it.
    A ride still on board or never picked up counts nothing.
    """
    up, down = ride.get("picked_up_at"), ride.get("dropped_off_at")
    g_km = table.vehicle_g_per_km(vehicle_type or table.default_vehicle)
    if up is None or down is None:
        return RideShare(0, 0.0, g_km)
    t0, t1 = float(up), float(down)
    riders = {str(r["ride_id"]): r for r in vehicle_rides}
    riders[str(ride["ride_id"])] = ride
    # (time, position) of every stop the vehicle made while this rider was on board.
    events: list[tuple[float, tuple[float, float]]] = [
        (t0, (float(ride["origin"][0]), float(ride["origin"][1]))),
        (t1, (float(ride["destination"][0]), float(ride["destination"][1]))),
    ]
    spans: list[tuple[float, float, int]] = []
    for r in riders.values():
        if r.get("picked_up_at") is None:
            continue
        p = float(r["picked_up_at"])
        d = float(r["dropped_off_at"]) if r.get("dropped_off_at") is not None else float("inf")
        spans.append((p, d, max(1, int(r.get("seats") or 1))))
        if r is ride:
            continue
        if t0 < p < t1:
            events.append((p, (float(r["origin"][0]), float(r["origin"][1]))))
        if t0 < d < t1:
            events.append((d, (float(r["destination"][0]), float(r["destination"][1]))))
    events.sort(key=lambda e: e[0])
    grams = 0.0
    km_total = 0.0
    stretches: list[tuple[float, int]] = []
    for (ta, pa), (tb, pb) in itertools.pairwise(events):
        km = straight_m(pa, pb) * table.road_circuity.value / 1000.0
        persons = sum(seats for p, d, seats in spans if p <= ta and d >= tb)
        persons = max(persons, 1)
        grams += km * g_km / persons
        km_total += km
        stretches.append((km, persons))
    return RideShare(round(grams), km_total, g_km, tuple(stretches))


def ride_leg(
    table: FactorTable, share: RideShare, ride: dict[str, Any], vtype: str | None
) -> PricedLeg:
    """A ride's share as a priced leg (``FLEX``), its factor the vehicle's per-km grams."""
    v = table.vehicles.get(vtype or "") or table.vehicles[table.default_vehicle]
    energy = table.energy(v.energy)
    factor = {
        "value": round(share.g_per_vehicle_km, 1),
        "unit": "g-CO2/vehicle-km",
        "source": f"{v.source}; x {energy.value} {energy.unit} ({energy.source}, {energy.year})",
        "year": energy.year,
        "verified": False,  # the vehicle's energy use per km is an assumption
        "sharedBy": [persons for _, persons in share.stretches],
    }
    return PricedLeg("FLEX", share.vehicle_km * 1000.0, share.co2_g, factor)
