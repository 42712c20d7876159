"""A resident's monthly ledger: completed trips with their CO2 and the saving against driving.

Entries come from three places, each counted once:

* ``planned``: itineraries the resident marked as taken (``emissions_taken_trips``);
* ``trip``: booked trips (``trips``, CONFIRMED) whose on-demand rides were all completed, the
  scheduled legs priced from the booked itinerary and each ride from the dispatcher's record;
* ``ride``: completed on-demand rides booked on their own (not part of a trip).

A trip or ride belongs to the month (in the factor table's time zone) it started in.
The company reports (Scope 3 Cat. 7, distance-based) build on :meth:`Ledger.entries` per
consenting employee.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from app.emissions import store
from app.emissions.calculator import (
    ItineraryError,
    PricedLeg,
    car_trip,
    is_on_demand_leg,
    legs_of,
    price_itinerary,
    ride_leg,
    ride_share,
)
from app.emissions.factors import FactorTable
from app.emissions.sources import MobilityRecords


@dataclass(frozen=True)
class LedgerEntry:
    """One completed trip in a ledger (grams of CO2 per person)."""

    kind: str  # planned | trip | ride
    id: str
    started_at: dt.datetime
    ended_at: dt.datetime
    modes: tuple[str, ...]
    distance_m: float
    co2_g: int
    car_co2_g: int
    legs: tuple[dict[str, Any], ...]

    @property
    def saving_g(self) -> int:
        return self.car_co2_g - self.co2_g

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "startTime": self.started_at.isoformat(),
            "endTime": self.ended_at.isoformat(),
            "modes": list(self.modes),
            "distance": round(self.distance_m, 1),
            "co2": {"co2": self.co2_g, "unit": "g"},
            "carCo2": {"co2": self.car_co2_g, "unit": "g"},
            "co2Saving": {"co2": self.saving_g, "unit": "g"},
            "legs": list(self.legs),
        }


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` -> ``(year, month)``; ``ValueError`` otherwise."""
    if len(text) != 7 or text[4] != "-":
        raise ValueError("month must be YYYY-MM")
    year, month = int(text[:4]), int(text[5:])
    if not (1 <= month <= 12 and 1970 <= year <= 9999):
        raise ValueError("month must be YYYY-MM")
    return year, month


def month_of(t: dt.datetime, tz: ZoneInfo) -> str:
    """``YYYY-MM`` of ``t`` in ``tz``."""
    return t.astimezone(tz).strftime("%Y-%m")


def _from_ms(ms: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(ms) / 1000.0, tz=dt.UTC)


def _from_s(s: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(s), tz=dt.UTC)


class Ledger:
    """Builds ledgers from the service's own table and the mobility core's records."""

    def __init__(
        self, table: FactorTable, engine: Engine, mobility: MobilityRecords | None
    ) -> None:
        self.table = table
        self.engine = engine
        self.mobility = mobility
        self.tz = ZoneInfo(table.timezone)

    # --- on-demand rides -----------------------------------------------------------------------
    def ride_leg(self, ride: dict[str, Any]) -> PricedLeg:
        """A completed ride's share, from the vehicle's other rides on board meanwhile."""
        assert self.mobility is not None
        up, down = float(ride["picked_up_at"]), float(ride["dropped_off_at"])
        vid = str(ride.get("vehicle_id", ""))
        others = self.mobility.vehicle_rides(vid, up, down) if vid else []
        vtype = self.mobility.vehicle_type(vid) if vid else None
        share = ride_share(self.table, ride, others, vtype)
        return ride_leg(self.table, share, ride, vtype)

    def _ride_entry(self, ride: dict[str, Any]) -> LedgerEntry:
        leg = self.ride_leg(ride)
        a = (float(ride["origin"][0]), float(ride["origin"][1]))
        b = (float(ride["destination"][0]), float(ride["destination"][1]))
        _, car_g = car_trip(self.table, a, b)
        return LedgerEntry(
            "ride",
            str(ride["ride_id"]),
            _from_s(ride["picked_up_at"]),
            _from_s(ride["dropped_off_at"]),
            ("FLEX",),
            leg.distance_m,
            leg.co2_g,
            car_g,
            (leg.as_json(),),
        )

    # --- booked trips --------------------------------------------------------------------------
    def _trip_entry(
        self, trip: dict[str, Any], rides: dict[str, dict[str, Any]]
    ) -> LedgerEntry | None:
        """A confirmed trip whose rides were all completed (None otherwise)."""
        itinerary = trip["itinerary"]
        ride_ids = [str(r["ride_id"]) for r in sorted(trip["legs"], key=lambda r: r["index"])]
        if any(rid not in rides for rid in ride_ids):
            return None  # a ride not completed (yet): not a completed trip
        shares = [self.ride_leg(rides[rid]) for rid in ride_ids]
        try:
            priced = price_itinerary(self.table, itinerary, shares)
        except ItineraryError:
            return None  # a booked itinerary the service cannot price is left out, not a 500
        legs = legs_of(itinerary)
        start = _from_ms(legs[0]["startTime"])
        end = _from_ms(legs[-1]["endTime"])
        if ride_ids:  # the rides' real times where they begin or end the trip
            if is_on_demand_leg(legs[0]):
                start = _from_s(rides[ride_ids[0]]["picked_up_at"])
            if is_on_demand_leg(legs[-1]):
                end = _from_s(rides[ride_ids[-1]]["dropped_off_at"])
        return LedgerEntry(
            "trip",
            str(trip["id"]),
            start,
            end,
            tuple(leg.mode for leg in priced.legs),
            priced.distance_m,
            priced.co2_g,
            priced.car_co2_g,
            tuple(leg.as_json() for leg in priced.legs),
        )

    # --- the ledger ----------------------------------------------------------------------------
    def entries(self, user_id: str, month: str) -> list[LedgerEntry]:
        """The user's completed trips of ``month`` (``YYYY-MM``), in departure order."""
        parse_month(month)
        out: list[LedgerEntry] = []
        for t in store.taken_trips(self.engine, user_id, month):
            out.append(
                LedgerEntry(
                    "planned",
                    str(t.id),
                    t.started_at if t.started_at.tzinfo else t.started_at.replace(tzinfo=dt.UTC),
                    t.ended_at if t.ended_at.tzinfo else t.ended_at.replace(tzinfo=dt.UTC),
                    tuple(str(leg["mode"]) for leg in t.legs),
                    t.distance_m,
                    t.co2_g,
                    t.car_co2_g,
                    tuple(t.legs),
                )
            )
        if self.mobility is not None:
            rides = {str(r["ride_id"]): r for r in self.mobility.completed_rides(user_id)}
            in_trips: set[str] = set()
            for trip in self.mobility.confirmed_trips(user_id):
                in_trips.update(str(r["ride_id"]) for r in trip["legs"])
                entry = self._trip_entry(trip, rides)
                if entry is not None and month_of(entry.started_at, self.tz) == month:
                    out.append(entry)
            for rid, ride in rides.items():
                if rid in in_trips or ride.get("picked_up_at") is None:
                    continue
                if ride.get("dropped_off_at") is None:
                    continue
                if month_of(_from_s(ride["picked_up_at"]), self.tz) == month:
                    out.append(self._ride_entry(ride))
        out.sort(key=lambda e: (e.started_at, e.id))
        return out

    def summary(self, user_id: str, month: str) -> dict[str, Any]:
        """The ledger as ``GET /api/v1/emissions/me/ledger`` answers it."""
        entries = self.entries(user_id, month)
        co2 = sum(e.co2_g for e in entries)
        car = sum(e.car_co2_g for e in entries)
        return {
            "month": month,
            "timezone": self.table.timezone,
            "factors": self.table.name,
            "trips": len(entries),
            "distance": round(sum(e.distance_m for e in entries), 1),
            "co2": {"co2": co2, "unit": "g"},
            "carCo2": {"co2": car, "unit": "g"},
            "co2Saving": {"co2": car - co2, "unit": "g"},
            "entries": [e.as_json() for e in entries],
        }


CSV_COLUMNS = (
    "kind",
    "id",
    "start_time",
    "end_time",
    "modes",
    "distance_m",
    "co2_g",
    "car_co2_g",
    "co2_saving_g",
)


def ledger_csv(summary: dict[str, Any]) -> str:
    """The ledger as CSV: one row per trip, then a ``total`` row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for e in summary["entries"]:
        w.writerow(
            [
                e["kind"],
                e["id"],
                e["startTime"],
                e["endTime"],
                " ".join(e["modes"]),
                e["distance"],
                e["co2"]["co2"],
                e["carCo2"]["co2"],
                e["co2Saving"]["co2"],
            ]
        )
    w.writerow(
        [
            "total",
            summary["month"],
            "",
            "",
            "",
            summary["distance"],
            summary["co2"]["co2"],
            summary["carCo2"]["co2"],
            summary["co2Saving"]["co2"],
        ]
    )
    return buf.getvalue()
