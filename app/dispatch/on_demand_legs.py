"""The planner's on-demand provider over the live fleet (:class:`routing.on_demand.OnDemandProvider`).

One :class:`FleetOnDemand` is made per ``/plan`` request. It answers the router's questions
from the dispatcher: which zone serves a place (the zone catalog, the same in every process),
which stops of the published timetable lie in a zone (cached per network and zone), the direct
drive between two points (the dispatcher's travel model) and quotes of concrete rides. Quotes
are the dispatcher's own (``Dispatcher.quote``: an insertion into the vehicles' live plans),
asked directly in one process or through the zone's owner when scaled out (the gateway's
``quote``), so an on-demand leg of an itinerary is booked exactly like a quote from
``POST /api/v1/rides/quote``.

Times: the router speaks seconds of the query's service day, the dispatcher unix seconds; the
conversion is GTFS's ("noon minus 12 h" of the service date in the network's time zone).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.errors import ApiError
from dispatch.request import RideRequest
from dispatch.rides import Quote, Rejection
from dispatch.zone import ServiceZone
from routing.itinerary import service_day_epoch_ms
from routing.on_demand import (
    BookingInfo,
    OnDemandAnswer,
    OnDemandOffer,
    OnDemandRefusal,
    OnDemandRequest,
)

GRAMS_CO2_PER_VEHICLE_KM = {"van": 194.0, "car": 130.0, "autonomous_shuttle": 90.0}
"""Tailpipe-or-grid CO2 per vehicle-km by vehicle type: a diesel van at 7.5 L/100 km x 2.58 kg
CO2/L; a petrol car at 5.6 L/100 km x 2.32 kg/L; an electric shuttle at 0.2 kWh/km x Japan's
average 0.45 kg CO2/kWh. A rider's share assumes the vehicle's average of 1.5 riders on board
(the emissions service replaces this with the dispatcher's record of who was on board)."""
AVERAGE_RIDERS = 1.5
CLUSTER_QUOTE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ZoneStops:
    """The stops of one published network inside one zone (cached per network)."""

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


class FleetOnDemand:
    """On-demand legs quoted from the live fleet, for one plan request.

    Parameters
    ----------
    services
        The app's services (``dispatch``: the gateway, ``dispatcher``: this process's
        dispatcher, for its travel model and rules).
    zones
        The zone catalog (``await services.dispatch.zones()``), read by the caller on the loop.
    tt
        The published timetable the plan runs on (stop coordinates, time zone).
    cache
        A dict that lives as long as the network (``NetworkPlanner.extra``).
    user_id
        The rider the quotes are for ('' for an anonymous plan: anyone holding the quote id
        may book it, as with any quote).
    loop
        The event loop the gateway runs on, for quotes through a zone's owner.
    """

    def __init__(
        self,
        services: Any,
        zones: Sequence[ServiceZone],
        tt: Any,
        cache: dict[str, Any],
        user_id: str = "",
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.services = services
        self.zones = {z.zone_id: z for z in zones}
        self.tt = tt
        self.cache = cache
        self.user_id = user_id
        self.loop = loop
        self.dispatcher = services.dispatcher
        from app.dispatch_gateway import LocalGateway

        self.local = isinstance(services.dispatch, LocalGateway)

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
        stops = stops_inside(zone, self.tt.stop_lat, self.tt.stop_lon)
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
        base = service_day_epoch_ms(day, self.tt.timezone) / 1000.0
        now = float(self.services.dispatch.now())
        reqs = [self._ride_request(r, base, now) for r in requests]
        if self.local:
            raw: list[Quote | Rejection | dict[str, Any] | ApiError] = [
                self.dispatcher.quote(r, now) for r in reqs
            ]
        else:
            raw = self._quote_through_owners(reqs)
        return [self._answer(q, r, rr, base) for q, r, rr in zip(raw, requests, reqs, strict=True)]

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
            # The ride id the booking will get: the trip records it before booking, so a
            # crash in between still knows which ride to release.
            request_id=uuid.uuid4().hex,
        )

    def _quote_through_owners(
        self, reqs: list[RideRequest]
    ) -> list[Quote | Rejection | dict[str, Any] | ApiError]:
        assert self.loop is not None, "scaled out, quotes need the event loop"
        gateway = self.services.dispatch

        async def one(r: RideRequest) -> dict[str, Any] | ApiError:
            try:
                return dict(await gateway.quote(r))
            except ApiError as exc:
                return exc

        async def every() -> list[dict[str, Any] | ApiError]:
            return list(await asyncio.gather(*(one(r) for r in reqs)))

        fut = asyncio.run_coroutine_threadsafe(every(), self.loop)
        return list(fut.result(CLUSTER_QUOTE_TIMEOUT_S))

    def _answer(
        self,
        q: Quote | Rejection | dict[str, Any] | ApiError,
        r: OnDemandRequest,
        rr: RideRequest,
        base: float,
    ) -> OnDemandAnswer:
        if isinstance(q, Rejection):
            return OnDemandRefusal(r, q.reason.value, q.message)
        if isinstance(q, ApiError):
            return OnDemandRefusal(r, q.code, q.message)
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
        grams = GRAMS_CO2_PER_VEHICLE_KM.get(vtype, GRAMS_CO2_PER_VEHICLE_KM["van"])
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
            co2_g=round(grams * meters / 1000.0 / AVERAGE_RIDERS),
            geometry=(pickup, dropoff),
        )
