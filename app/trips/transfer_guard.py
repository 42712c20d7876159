"""Transfer protection: an on-demand leg that meets a bus moves with the bus.

Every CONFIRMED trip whose on-demand legs have not started is checked against the published
network's realtime times (GTFS-RT overlays, ``FeedRegistry.realtime_state``):

* **Egress** (a bus, then a van from the stop it reaches): when the bus's realtime arrival plus
  the slack is after the van's pick-up ETA, the pick-up is moved to that time
  (``Dispatcher.move_pickup`` through the gateway, so scaled out the zone's owner does it):
  ``trip.pickup_moved`` with the new window. When no vehicle can wait for the late bus the
  rider is told at once, ``trip.connection_at_risk``, with the next option (a plan from that
  stop at the bus's realtime arrival, on-demand legs included).
* **Access** (a van, then a bus): when the van's ETA at the stop plus the transfer buffer is
  after the bus's realtime departure, the connection is at risk: ``trip.connection_at_risk``
  with the next walk + transit option from that stop after the van's arrival.

Each leg is checked on the network of the city it runs in (:func:`leg_network`: the region
holding the leg's stop), so every published city's trips are protected, not only the default
network's.

Events go on ``user.<id>.trip`` and into the trip (the leg's ``events``); a leg is acted on again
only when its bus's realtime time changes, so a pass every few seconds repeats nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from sqlmodel import Session, col, select

from app.errors import ApiError
from app.models.identity import utcnow
from app.models.trip import Trip
from app.trips import store
from app.trips.service import TripService, TripState, trip_topic
from routing.intermodal import EGRESS_SLACK_S
from routing.itinerary import service_day_epoch_ms
from routing.on_demand import TRANSFER_BUFFER_S

if TYPE_CHECKING:
    from app.services import Services

log = structlog.get_logger("tsunagu.trips.transfers")

ACTIVE_FOR = dt.timedelta(days=2)
"""Trips booked longer ago than this have ended (the booking horizon is a day)."""


def active_trip_ids(engine: Any, limit: int = 500) -> list[uuid.UUID]:
    """CONFIRMED trips recent enough to have legs still to come, oldest first."""
    since = utcnow() - ACTIVE_FOR
    with Session(engine) as db:
        stmt = (
            select(Trip.id)
            .where(Trip.state == TripState.CONFIRMED.value, col(Trip.created_at) >= since)
            .order_by(col(Trip.created_at))
            .limit(limit)
        )
        return list(db.exec(stmt).all())


def leg_network(services: Any, leg: dict[str, Any]) -> Any:
    """The published network (city) a transit leg runs in: the region holding its stops
    (``FeedRegistry.network_at`` of the leg's from and to places), else the default network
    (a registry of one city, or a leg with no coordinates); None when nothing is published."""
    reg = services.feeds
    if reg is None:
        return None
    network_at = getattr(reg, "network_at", None)
    if network_at is not None:
        for key in ("from", "to"):
            place = leg.get(key) or {}
            lat, lon = place.get("lat"), place.get("lon")
            if lat is None or lon is None:
                continue
            net = network_at(float(lat), float(lon))
            if net is not None:
                return net
    return getattr(reg, "network", None)


def realtime_time(
    services: Any, leg: dict[str, Any], *, at_end: bool
) -> tuple[float, float] | None:
    """(scheduled, realtime) unix seconds of a transit leg's arrival at its last stop
    (``at_end``) or departure from its first, from the realtime overlay of the leg's service
    date on the leg's own city (:func:`leg_network`); None when the trip or stop is not in
    that network."""
    from app.api.plan import realtime_for

    net = leg_network(services, leg)
    tt = None if net is None else net.timetable
    trip_id, day, place = leg.get("tripId"), leg.get("serviceDate"), leg["to" if at_end else "from"]
    if tt is None or not trip_id or not day or not place.get("stopId"):
        return None
    trips = np.flatnonzero(tt.trip_ids == trip_id)
    stops = np.flatnonzero(tt.stop_ids == place["stopId"])
    if trips.size == 0 or stops.size == 0:
        return None
    t = int(trips[0])
    p = int(tt.trip_pattern[t])
    seq = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
    at = np.flatnonzero(seq == stops[0])
    if at.size == 0:
        return None
    # The last visit for an arrival, the first for a departure (a loop may call twice).
    st = int(tt.trip_st_ptr[t]) + int(at[-1] if at_end else at[0])
    service_day = dt.date.fromisoformat(str(day))
    base = service_day_epoch_ms(service_day, tt.timezone) / 1000.0
    sched = tt.st_arrival if at_end else tt.st_departure
    # The default network's overlay is asked for as /plan does (without the network), so a
    # registry without per-city overlays keeps its realtime; no overlay: the schedule holds.
    default = net is getattr(services.feeds, "network", None)
    rt = realtime_for(services, service_day, None if default else net)
    times = None if rt is None else (rt.arrival if at_end else rt.departure)
    live = int(sched[st]) if times is None else int(times[st])
    return base + int(sched[st]), base + live


class TransferGuard:
    """Checks CONFIRMED trips' connections and acts on them (see the module docstring)."""

    def __init__(self, services: Any, trips: TripService | None = None) -> None:
        self.services = services
        self.trips = trips or TripService(services)

    async def check_all(self) -> int:
        """One pass over the active trips; the number of events sent."""
        ids = await asyncio.to_thread(active_trip_ids, self.trips.engine)
        sent = 0
        for trip_id in ids:
            try:
                sent += await self.check(trip_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # one odd trip must not stop the others' protection
                log.exception("transfer_check_failed", trip=str(trip_id))
        return sent

    async def check(self, trip_id: uuid.UUID) -> int:
        trip = await self.trips.get(trip_id)
        if trip.state != TripState.CONFIRMED.value:
            return 0
        legs = trip.itinerary.get("legs", [])
        records = [dict(r) for r in trip.legs]
        sent = 0
        for rec in records:
            i = int(rec["index"])
            before = legs[i - 1] if i > 0 else None
            after = next((x for x in legs[i + 1 :] if x.get("tripId")), None)
            if before is not None and before.get("tripId"):
                sent += await self._egress(trip, rec, before)
            elif after is not None:
                sent += await self._access(trip, rec, after)
        if sent:
            # Only while still CONFIRMED: a cancellation meanwhile wins.
            write = functools.partial(
                store.update_trip, states=[TripState.CONFIRMED.value], legs=records
            )
            await asyncio.to_thread(write, self.trips.engine, trip.id)
        return sent

    async def _ride(self, trip: Trip, rec: dict[str, Any]) -> dict[str, Any] | None:
        ride = await self.trips._ride_of(trip, str(rec["ride_id"]))
        return ride if ride is not None and ride.get("status") == "assigned" else None

    async def _egress(self, trip: Trip, rec: dict[str, Any], bus: dict[str, Any]) -> int:
        times = await asyncio.to_thread(realtime_time, self.services, bus, at_end=True)
        ride = await self._ride(trip, rec)
        if times is None or ride is None or rec.get("protected_for") == times[1]:
            return 0
        ready = times[1] + EGRESS_SLACK_S
        if ready <= float(ride["eta_pickup"]):
            return 0
        rec["protected_for"] = times[1]
        delay = round(times[1] - times[0])
        try:
            moved = await self.trips._gateway().move_pickup(str(rec["ride_id"]), ready)
        except ApiError as exc:
            option = await self._next_option(trip, bus, times[1], on_demand=True)
            return await self._tell(
                trip,
                rec,
                "trip.connection_at_risk",
                leg="egress",
                delay_s=delay,
                reason=exc.code,
                message=exc.message,
                next_option=option,
            )
        return await self._tell(
            trip,
            rec,
            "trip.pickup_moved",
            leg="egress",
            delay_s=delay,
            ride_id=rec["ride_id"],
            vehicle_id=moved.get("vehicle_id"),
            pickup_window=[round(x * 1000) for x in moved["pickup_window"]],
            eta_pickup=round(float(moved["eta_pickup"]) * 1000),
        )

    async def _access(self, trip: Trip, rec: dict[str, Any], bus: dict[str, Any]) -> int:
        times = await asyncio.to_thread(realtime_time, self.services, bus, at_end=False)
        ride = await self._ride(trip, rec)
        if times is None or ride is None:
            return 0
        eta = float(ride["eta_dropoff"])
        key = [times[1], round(eta / 60)]  # act again if the bus or the van moves on
        if eta + TRANSFER_BUFFER_S <= times[1] or rec.get("at_risk_for") == key:
            return 0
        rec["at_risk_for"] = key
        option = await self._next_option(
            trip, bus, eta + TRANSFER_BUFFER_S, on_demand=False, board=True
        )
        return await self._tell(
            trip,
            rec,
            "trip.connection_at_risk",
            leg="access",
            reason="vehicle_late",
            message="The on-demand vehicle may reach the stop after the bus leaves.",
            eta_dropoff=round(eta * 1000),
            bus_departure=round(times[1] * 1000),
            next_option=option,
        )

    async def _tell(self, trip: Trip, rec: dict[str, Any], kind: str, **data: Any) -> int:
        event = {
            "type": kind,
            "trip_id": str(trip.id),
            "t": round(utcnow().timestamp() * 1000),
            **data,
        }
        rec.setdefault("events", []).append(event)
        bus = getattr(self.services, "bus", None)
        if bus is not None:
            try:
                await bus.publish(trip_topic(trip.user_id), event)
            except Exception as exc:  # the event stays in the trip; the stream may miss it
                log.warning("transfer_event_failed", trip=str(trip.id), error=type(exc).__name__)
        log.info("transfer_protection", trip=str(trip.id), kind=kind)
        return 1

    async def _next_option(
        self,
        trip: Trip,
        bus: dict[str, Any],
        t: float,
        *,
        on_demand: bool,
        board: bool = False,
    ) -> dict[str, Any] | None:
        """The first itinerary from the bus's stop (where the rider gets off, or boards) to the
        trip's destination, leaving at ``t``: what the rider can do instead."""
        from app.api.plan import network_planner, on_demand_provider
        from app.identity.principal import Principal
        from routing.itinerary import to_otp
        from routing.options import RoutingOptions
        from routing.planner import PlanPlace, PlanRequest

        try:
            # The planner of the bus's city: the rider's next option is in that city too.
            np_ = await network_planner(self.services, leg_network(self.services, bus))
        except ApiError:
            return None
        tt = np_.planner.tt
        stop = bus["from" if board else "to"]
        idx = np_.stop_index.get(str(stop.get("stopId")))
        dest = trip.itinerary.get("legs", [{}])[-1].get("to", {})
        if idx is None or "lat" not in dest:
            return None
        local = dt.datetime.fromtimestamp(t, dt.UTC).astimezone(_zone(tt.timezone))
        day = local.date()
        secs = round(t - service_day_epoch_ms(day, tt.timezone) / 1000)
        req = PlanRequest(
            PlanPlace(float(tt.stop_lat[idx]), float(tt.stop_lon[idx]), stop=idx),
            PlanPlace(float(dest["lat"]), float(dest["lon"])),
            day,
            secs,
            options=RoutingOptions(on_demand=on_demand, num_itineraries=1),
        )
        who = Principal(trip.user_id, None, frozenset())
        provider = await on_demand_provider(self.services, np_, who) if on_demand else None
        plan = await asyncio.to_thread(
            functools.partial(np_.planner.plan, req, None, on_demand=provider)
        )
        if not plan.itineraries:
            return None
        return to_otp(plan.itineraries[0], day, tt.timezone)


def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except Exception:  # an unknown zone in a feed: UTC rather than no answer
        return dt.UTC


async def run_guard(guard: TransferGuard, interval_s: float) -> None:
    """Check every ``interval_s`` until cancelled; a failed pass is logged, not fatal."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await guard.check_all()
        except asyncio.CancelledError:
            raise
        except Exception:  # the database away for a moment: the next pass retries
            log.exception("transfer_guard_failed")


async def start_transfer_guard(services: Services) -> None:
    """Start-up hook: protect connections for as long as the app runs."""
    interval = float(services.settings.trip_guard_interval_s)
    if interval <= 0 or services.engine is None:
        return
    task = asyncio.create_task(run_guard(TransferGuard(services), interval), name="transfer-guard")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    services.on_stop.append(stop)
