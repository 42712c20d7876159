"""The live dispatcher as the trip planner's on-demand provider
(:class:`routing.on_demand.OnDemandProvider`).

:class:`DispatcherLegs` answers the router's questions from a :class:`~dispatch.dispatcher.
Dispatcher`: which zone serves a place, which stops of a timetable lie in a zone (cached by the
caller's dict, e.g. per published network), the direct drive between two points (the
dispatcher's travel model) and quotes of concrete rides. Quotes are the dispatcher's own
(``Dispatcher.quote``: an insertion into the vehicles' live plans), so an on-demand leg of an
itinerary is booked exactly like any quote. The app subclasses it to quote through each zone's
owner when scaled out (``app.dispatch.on_demand_legs``); benchmarks use it as it is.

Times: the router speaks seconds of the query's service day, the dispatcher unix seconds; the
conversion is GTFS's ("noon minus 12 h" of the service date in the network's time zone).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.rides import Quote, Rejection
from dispatch.zone import ServiceZone
from routing.co2 import DESNZ_2023, Co2Factors
from routing.itinerary import service_day_epoch_ms
from routing.on_demand import (
    BookingInfo,
    OnDemandAnswer,
    OnDemandOffer,
    OnDemandRefusal,
    OnDemandRequest,
)

#: What a quote may come back as: the dispatcher's answer, a quote's JSON (through a zone's
#: owner), or a refusal as (code, message).
RawAnswer = Quote | Rejection | dict[str, Any] | tuple[str, str]


@dataclass(frozen=True)
class ZoneStops:
    """The stops of one timetable inside one zone (cached per network and zone shape)."""

    polygons: Any
    stops: npt.NDArray[np.int32]


def stops_inside(
    zone: ServiceZone, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> npt.NDArray[np.int32]:
    """Indices of the points inside ``zone`` (bounding box first: most stops are far)."""
    ring_lons = [x for poly in zone.polygons for x, _ in poly[0]]
    ring_lats = [y for poly in zone.polygons for _, y in poly[0]]
    box = (
        (lat >= min(ring_lats))
        & (lat <= max(ring_lats))
        & (lon >= min(ring_lons))
        & (lon <= max(ring_lons))
    )
    idx = np.flatnonzero(box)
    keep = [int(i) for i in idx if zone.contains(float(lat[i]), float(lon[i]))]
    return np.array(keep, dtype=np.int32)


class DispatcherLegs:
    """On-demand legs quoted from a dispatcher's live fleet, for one plan request.

    Parameters
    ----------
    dispatcher
        The dispatcher (its travel model and rules; its quotes unless :meth:`_quote_all` is
        overridden).
    zones
        The zones to offer (the zone catalog).
    stop_lat, stop_lon, timezone
        The timetable the plan runs on.
    cache
        A dict that lives as long as the timetable (zone stops are kept there).
    user_id
        The rider the quotes are for ('' for an anonymous plan: anyone holding the quote id
        may book it, as with any quote).
    now
        The dispatcher's clock now (unix seconds); its ``clock()`` when None.
    co2
        The CO2 factors of the city: a leg's grams per person are its vehicle type's grams
        per vehicle-km x the direct distance / ``co2.on_demand_riders`` (who will share the
        ride is not known at quote time; the emissions ledger uses the dispatcher's record).
        :data:`routing.co2.DESNZ_2023` when None.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        zones: Sequence[ServiceZone],
        stop_lat: npt.NDArray[np.float64],
        stop_lon: npt.NDArray[np.float64],
        timezone: str,
        cache: dict[str, Any],
        user_id: str = "",
        now: float | None = None,
        co2: Co2Factors | None = None,
    ) -> None:
        self.co2 = co2 or DESNZ_2023
        self.dispatcher = dispatcher
        self.zones = {z.zone_id: z for z in zones}
        self.stop_lat = stop_lat
        self.stop_lon = stop_lon
        self.timezone = timezone
        self.cache = cache
        self.user_id = user_id
        self._now = now

    def now(self) -> float:
        return float(self.dispatcher.clock()) if self._now is None else self._now

    # --- zones and stops -----------------------------------------------------------------------
    def zone_at(self, lat: float, lon: float) -> str | None:
        for z in self.zones.values():
            if z.contains(lat, lon):
                return z.zone_id
        return None

    def stops_in_zone(self, zone_id: str) -> npt.NDArray[np.int32]:
        zone = self.zones[zone_id]
        key = f"zone-stops:{zone_id}"
        hit = self.cache.get(key)
        if isinstance(hit, ZoneStops) and hit.polygons == zone.polygons:
            return hit.stops
        stops = stops_inside(zone, self.stop_lat, self.stop_lon)
        self.cache[key] = ZoneStops(zone.polygons, stops)
        return stops

    def hub_stops(self, zone_id: str) -> frozenset[int]:
        # Operators mark no hubs yet: the planner's own ranking (best served, nearest) picks.
        return frozenset()

    def estimate_s(
        self, origin: tuple[float, float], destination: tuple[float, float]
    ) -> float | None:
        zone = self._zone_of(origin, destination)
        if zone is None:
            return None
        # The fastest type on the road sets the lower bound (a van may be slower: then the
        # quote, not this estimate, decides).
        speed = max((v.vtype.speed_kmh for v in self._vehicles(zone.zone_id)), default=30.0)
        o = np.array([origin], dtype=np.float64)
        d = np.array([destination], dtype=np.float64)
        return float(self.dispatcher.travel.matrix(o, d, speed)[0, 0])

    def _zone_of(self, a: tuple[float, float], b: tuple[float, float]) -> ServiceZone | None:
        for z in self.zones.values():
            if z.contains(*a) and z.contains(*b):
                return z
        return None

    def _vehicles(self, zone_id: str) -> list[Any]:
        try:
            return list(self.dispatcher.vehicles(zone_id))
        except Exception:  # a zone this process does not own (scaled out): no local fleet
            return []

    # --- quotes --------------------------------------------------------------------------------
    def quote(self, day: dt.date, requests: Sequence[OnDemandRequest]) -> list[OnDemandAnswer]:
        base = service_day_epoch_ms(day, self.timezone) / 1000.0
        now = self.now()
        reqs = [self._ride_request(r, base, now) for r in requests]
        raw = self._quote_all(reqs, now)
        return [self._answer(q, r, rr, base) for q, r, rr in zip(raw, requests, reqs, strict=True)]

    def _quote_all(self, reqs: list[RideRequest], now: float) -> list[RawAnswer]:
        """The dispatcher's answer to each request (overridden to ask zone owners)."""
        return [self.dispatcher.quote(r, now) for r in reqs]

    def _ride_request(self, r: OnDemandRequest, base: float, now: float) -> RideRequest:
        return RideRequest(
            origin=r.origin,
            destination=r.destination,
            requested_at=now,
            earliest_pickup=None if r.depart_at is None else base + r.depart_at,
            latest_arrival=None if r.arrive_by is None else base + r.arrive_by,
            seats=r.seats,
            wheelchairs=r.wheelchairs,
            user_id=self.user_id,
            # The ride id the booking will get: a trip records it before booking, so a crash
            # in between still knows which ride to release.
            request_id=uuid.uuid4().hex,
        )

    def _answer(
        self, q: RawAnswer, r: OnDemandRequest, rr: RideRequest, base: float
    ) -> OnDemandAnswer:
        if isinstance(q, Rejection):
            return OnDemandRefusal(r, q.reason.value, q.message)
        if isinstance(q, tuple):
            return OnDemandRefusal(r, q[0], q[1])
        d = q.to_dict() if isinstance(q, Quote) else q
        zone = self.zones.get(str(d["zone_id"]))

        def sd(t: float) -> int:
            return round(float(t) - base)

        pickup = (float(d["pickup_point"][0]), float(d["pickup_point"][1]))
        dropoff = (float(d["dropoff_point"][0]), float(d["dropoff_point"][1]))
        meters = float(
            self.dispatcher.travel.distance_m(np.array([pickup]), np.array([dropoff]))[0, 0]
        )
        vtype = str(d.get("vehicle_type") or "van")
        grams = self.co2.vehicle_grams_per_km(vtype)
        rules = self.dispatcher.rules
        notice = max(rules.min_notice_s, zone.min_notice_s if zone else 0.0)
        max_notice = min(rules.max_notice_s, zone.max_notice_s if zone else rules.max_notice_s)
        window = (sd(d["pickup_window"][0]), sd(d["pickup_window"][1]))
        name = zone.name if zone is not None else str(d["zone_id"])
        return OnDemandOffer(
            request=r,
            pickup=pickup,
            dropoff=dropoff,
            pickup_window=window,
            pickup_eta=sd(d["eta_pickup"]),
            dropoff_eta=sd(d["eta_dropoff"]),
            latest_arrival=sd(d["latest_arrival"]),
            zone_id=str(d["zone_id"]),
            zone_name=name,
            vehicle_type=vtype,
            vehicle_id=str(d["vehicle_id"]),
            quote_id=str(d["quote_id"]),
            ride_id=str(d.get("request_id") or rr.request_id),
            expires_at=sd(d["expires_at"]),
            booking=BookingInfo(
                min_notice_s=notice,
                max_notice_s=max_notice,
                latest_booking=window[0] - int(notice),
                message=f"{name}: book in the Tsunagu app; the vehicle waits at most "
                f"{int(rules.no_show_wait_s // 60)} min at the pick-up.",
            ),
            distance_m=meters,
            co2_g=round(grams * meters / 1000.0 / self.co2.on_demand_riders),
            geometry=(pickup, dropoff),
        )
