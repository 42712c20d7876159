"""The live on-demand dispatcher: quote → book → board → alight, cancel, vehicle events.

State is kept per service zone, each zone behind its own lock, so requests in different zones
never wait for each other (and a zone can be owned by one worker of several). Every plan change
recomputes the vehicle's ETAs and publishes them through the :class:`~dispatch.events.EventSink`.

Driving times are free flow unless time-of-day speed windows are configured (``speeds``): every
leg of every plan is then driven through the zone's speed periods (local time, FIFO:
:mod:`dispatch.time_dependent`), in quotes, bookings, ETAs and plan checks alike, so a plan made
off-peak stays feasible when its legs cross into a peak.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

import numpy as np

from dispatch.events import EventSink, NullEventSink, user_ride_topic, vehicle_topic
from dispatch.geo import point_distance_m
from dispatch.insertion import BASE_TOL, NewRide
from dispatch.insertion_reference import simulate
from dispatch.plan_arrays import FleetArrays
from dispatch.request import RideRequest, ServiceRules
from dispatch.rides import Quote, Rejection, RejectReason, Ride, RideStatus
from dispatch.time_dependent import FREE_FLOW_PROFILE, SpeedProfile, chain_schedule, compile_speeds
from dispatch.travel_times import TravelTimes
from dispatch.vehicle import Onboard, Stop, StopKind, Vehicle, VehicleType
from dispatch.zone import ServiceZone
from routing.street import TimeOfDaySpeeds

SAME_PLACE_M = 50.0  # closer than this, a ride is pointless
PAST_TOLERANCE_S = 60.0  # clock skew between the rider's phone and the server
#: A position report farther than this from the zone's bounding box is refused: a GPS fix that
#: far off is a glitch or the wrong vehicle id, and would make every ETA of the plan absurd.
MAX_POSITION_OFF_ZONE_M = 5000.0
#: Separates the local hour of day from the H3 cell in a demand key (H3 ids are hex digits).
DEMAND_HOUR_SEP = "|"


def demand_key(hour: int, cell: str) -> str:
    """The key of the booked pick-ups of ``cell`` in local hour of day ``hour`` (0-23).

    Demand is a ``Counter[str]`` so zone snapshots keep saving and loading it as a plain JSON
    object; a key without the separator (snapshots from before demand was kept per hour) is a
    count over the whole day.
    """
    return f"{hour}{DEMAND_HOUR_SEP}{cell}"


def split_demand_key(key: str) -> tuple[int | None, str]:
    """``(hour, cell)`` of a demand key; hour None for a whole-day (legacy) count."""
    hour, sep, cell = key.partition(DEMAND_HOUR_SEP)
    return (int(hour), cell) if sep else (None, key)


def zone_bbox(zone: ServiceZone) -> tuple[float, float, float, float]:
    """``(min_lat, min_lon, max_lat, max_lon)`` of the zone's outer rings."""
    pts = np.concatenate([np.asarray(poly[0], dtype=np.float64) for poly in zone.polygons])
    lon_min, lat_min = pts.min(axis=0)
    lon_max, lat_max = pts.max(axis=0)
    return float(lat_min), float(lon_min), float(lat_max), float(lon_max)


def distance_to_bbox_m(lat: float, lon: float, bbox: tuple[float, float, float, float]) -> float:
    """Metres from (lat, lon) to the nearest point of ``bbox`` (0 inside it)."""
    near = (min(max(lat, bbox[0]), bbox[2]), min(max(lon, bbox[1]), bbox[3]))
    if near == (lat, lon):
        return 0.0  # inside: every position report of a vehicle in its zone, no haversine
    return point_distance_m((lat, lon), near)


def local_hour(t: float, utc_offset_s: float) -> int:
    """Hour of day (0-23) of dispatcher time ``t`` in a zone ``utc_offset_s`` from UTC."""
    return int(((t + utc_offset_s) % 86400.0) // 3600.0)


#: The statuses a ride ends in: it never changes again.
#: ``kind.value`` of each stop kind, looked up without the enum's property on every ETA.
_KIND_VALUE = {k: k.value for k in StopKind}
FINISHED_STATUSES = frozenset({RideStatus.COMPLETED, RideStatus.CANCELLED, RideStatus.NO_SHOW})


def _must_be_assigned(ride: Ride, code: str, verb: str) -> None:
    """Refuse (``code``) to change a ride that is no longer just booked."""
    if ride.status is not RideStatus.ASSIGNED:
        raise DispatchError(code, f"a ride that is {ride.status.value} cannot be {verb}")


@dataclass
class ServiceChange:
    """What taking a vehicle out of service did: its rides moved (ride id -> new vehicle id)
    and those no vehicle could keep (cancelled)."""

    vehicle: Vehicle
    moved: dict[str, str]
    cancelled: list[str]


class DispatchError(Exception):
    """A request the dispatcher refuses: unknown id or an impossible state change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ZoneState:
    """Everything the dispatcher knows about one zone; guarded by ``lock``."""

    zone: ServiceZone
    arrays: FleetArrays
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: The zone's speed periods on the dispatcher clock (its windows are in local time).
    profile: SpeedProfile = FREE_FLOW_PROFILE
    #: ``(min_lat, min_lon, max_lat, max_lon)``, kept to vet position reports cheaply.
    bbox: tuple[float, float, float, float] = (-90.0, -180.0, 90.0, 180.0)
    vehicles: dict[str, Vehicle] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    #: Vehicles per type (a vehicle's type is fixed once added): what a quote checks of the
    #: whole fleet (largest party, slowest speed) from a few types, not from every vehicle, so
    #: its cost does not grow with the fleet (#16: 30 % of a quote's time at 1,000 vans).
    types: Counter[VehicleType] = field(default_factory=Counter)
    #: Booked rides per (local hour of the pick-up, H3 cell of the origin): :func:`demand_key`.
    demand: Counter[str] = field(default_factory=Counter)


class Dispatcher:
    """On-demand dispatch over one or more service zones.

    Parameters
    ----------
    travel
        Driving times between points (straight-line or street network).
    rules
        Service promises (max wait, ride-time limit, windows, notice).
    events
        Where ETAs and status changes are published.
    clock
        Seconds on the dispatcher clock (``time.time`` live; the simulator passes its own).
    speeds
        Time-of-day speed windows (local time of each zone); ``None``: free flow.
    """

    def __init__(
        self,
        travel: TravelTimes,
        rules: ServiceRules | None = None,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
        speeds: TimeOfDaySpeeds | None = None,
    ) -> None:
        self.travel = travel
        self.speeds = speeds
        self.rules = rules or ServiceRules()
        self.events: EventSink = events or NullEventSink()
        self.clock = clock
        self._zones: dict[str, ZoneState] = {}
        self._vehicle_zone: dict[str, str] = {}
        self._rides: dict[str, Ride] = {}
        self._quotes: dict[str, Quote] = {}
        self._lock = threading.Lock()  # guards the dictionaries above, never held long

    # --- set-up -----------------------------------------------------------------------------
    def add_zone(self, zone: ServiceZone) -> None:
        with self._lock:
            if zone.zone_id in self._zones:
                raise DispatchError("zone_exists", f"zone {zone.zone_id} already exists")
            profile = compile_speeds(self.speeds, zone.utc_offset_s)
            self._zones[zone.zone_id] = ZoneState(
                zone=zone,
                arrays=FleetArrays(self.travel, profile),
                profile=profile,
                bbox=zone_bbox(zone),
            )

    def remove_zone(self, zone_id: str) -> None:
        """Forget a zone with its vehicles and rides (another worker took it over)."""
        zs = self.zone_state(zone_id)
        with zs.lock, self._lock:
            for vid in zs.vehicles:
                self._vehicle_zone.pop(vid, None)
            for rid in [r for r, ride in self._rides.items() if ride.zone_id == zone_id]:
                del self._rides[rid]
            del self._zones[zone_id]

    def restore_ride(self, ride: Ride) -> None:
        """Re-register a ride loaded from a zone snapshot."""
        with self._lock:
            self._rides[ride.ride_id] = ride

    def zones(self) -> list[ServiceZone]:
        return [zs.zone for zs in self._zones.values()]

    def speed_profile(self, zone_id: str) -> SpeedProfile:
        """The speed periods legs of ``zone_id`` are driven through (dispatcher clock)."""
        return self.zone_state(zone_id).profile

    def slowest_speed_factor(self, t0: float, t1: float, zone_id: str | None = None) -> float:
        """The smallest speed factor in force during ``[t0, t1)``: in ``zone_id``, or in any
        zone (1.0 in free flow).

        A planner working on static free-flow times (the re-optimiser) divides them by this
        factor, so its plans stay feasible whatever period their legs fall in.
        """
        if zone_id is not None:
            profiles = [self.zone_state(zone_id).profile]
        else:
            profiles = [zs.profile for zs in self._zones.values()] or [compile_speeds(self.speeds)]
        return min(p.slowest(t0, t1) for p in profiles)

    def feasible_plan(self, vehicle: Vehicle, plan: list[Stop], now: float) -> bool:
        """Whether ``plan`` keeps every window, capacity and ride time of ``vehicle`` when driven
        from ``now`` through its zone's speed periods, strictly (no tolerance)."""
        profile = self.zone_state(vehicle.zone_id).profile
        return simulate(vehicle, plan, now, self.travel, profile=profile) is not None

    def zone_state(self, zone_id: str) -> ZoneState:
        zs = self._zones.get(zone_id)
        if zs is None:
            raise DispatchError("unknown_zone", f"no zone {zone_id!r}")
        return zs

    def add_vehicle(self, vehicle: Vehicle) -> None:
        zs = self.zone_state(vehicle.zone_id)
        with zs.lock, self._lock:
            if vehicle.vehicle_id in self._vehicle_zone:
                raise DispatchError("vehicle_exists", f"vehicle {vehicle.vehicle_id} exists")
            zs.vehicles[vehicle.vehicle_id] = vehicle
            zs.versions[vehicle.vehicle_id] = 0
            zs.types[vehicle.vtype] += 1
            self._vehicle_zone[vehicle.vehicle_id] = vehicle.zone_id

    def vehicles(self, zone_id: str | None = None) -> list[Vehicle]:
        zones = [self.zone_state(zone_id)] if zone_id else list(self._zones.values())
        return [v for zs in zones for v in zs.vehicles.values()]

    def vehicle(self, vehicle_id: str) -> Vehicle:
        zs = self._zone_of_vehicle(vehicle_id)
        return zs.vehicles[vehicle_id]

    def _zone_of_vehicle(self, vehicle_id: str) -> ZoneState:
        zid = self._vehicle_zone.get(vehicle_id)
        if zid is None:
            raise DispatchError("unknown_vehicle", f"no vehicle {vehicle_id!r}")
        return self._zones[zid]

    # --- quotes -------------------------------------------------------------------------------
    def quote(self, request: RideRequest, now: float | None = None) -> Quote | Rejection:
        """Best insertion of ``request`` into the live plans, or why there is none."""
        now = self.clock() if now is None else now
        checked = self._validate(request, now)
        if isinstance(checked, Rejection):
            return checked
        zs, ride, placed, direct = checked
        with zs.lock:
            q = self._quote_locked(zs, placed, ride, direct, now)
        if isinstance(q, Quote):
            with self._lock:
                self._purge_quotes(now)
                self._quotes[q.quote_id] = q
        return q

    def _free_flow_direct_s(self, zs: ZoneState, request: RideRequest) -> float:
        # The slowest vehicle type of the zone sets the direct time, so every vehicle can keep
        # the ride-time promise of a direct trip.
        speeds = [t.speed_kmh for t in zs.types] or [30.0]
        o = np.array([request.origin], dtype=np.float64)
        d = np.array([request.destination], dtype=np.float64)
        return float(self.travel.matrix(o, d, min(speeds))[0, 0])

    def _validate(
        self, r: RideRequest, now: float
    ) -> Rejection | tuple[ZoneState, NewRide, RideRequest, float]:
        """The searched windows of ``r`` (and the direct time they derive from), or why not.

        The direct time, hence the ride-time limit, is the direct drive at the requested time:
        leaving at the earliest pick-up, or (arrive-by) leaving as late as still arrives in
        time, through the zone's speed periods; a trip asked for in the peak is allowed a
        peak-length ride.
        """
        rules = self.rules
        coords = (*r.origin, *r.destination)
        if not all(np.isfinite(coords)) or not (
            -90 <= r.origin[0] <= 90 and -90 <= r.destination[0] <= 90
        ):
            return Rejection(RejectReason.INVALID_REQUEST, "coordinates out of range")
        if r.seats < 0 or r.wheelchairs < 0 or r.seats + r.wheelchairs < 1:
            return Rejection(RejectReason.INVALID_REQUEST, "a ride needs at least one passenger")
        if point_distance_m(r.origin, r.destination) < SAME_PLACE_M:
            return Rejection(
                RejectReason.SAME_ORIGIN_DESTINATION, "origin and destination are the same place"
            )
        zs = next(
            (
                z
                for z in self._zones.values()
                if z.zone.contains(*r.origin) and z.zone.contains(*r.destination)
            ),
            None,
        )
        if zs is None:
            return Rejection(
                RejectReason.OUTSIDE_ZONE, "origin and destination must lie in one service zone"
            )
        r = self._meeting_points(zs, r)
        max_seats = max((t.seats for t in zs.types), default=0)
        max_wc = max((t.wheelchair_spaces for t in zs.types), default=0)
        if (
            r.seats + r.wheelchairs > rules.max_party
            or r.seats > max_seats
            or r.wheelchairs > max_wc
        ):
            return Rejection(
                RejectReason.PARTY_TOO_LARGE,
                f"no vehicle of this zone takes {r.seats} seats and {r.wheelchairs} wheelchairs",
            )
        free_direct = self._free_flow_direct_s(zs, r)
        if r.latest_arrival is not None and r.earliest_pickup is None:
            l_p = zs.profile.depart_by(r.latest_arrival, free_direct)
            # In free flow exactly as before (no round trip through the arrival time).
            direct = free_direct if zs.profile.free_flow else r.latest_arrival - l_p
            max_ride = rules.max_ride_s(direct)
            if l_p < now - PAST_TOLERANCE_S:
                return Rejection(
                    RejectReason.PICKUP_IN_PAST, "that arrival time can no longer be met"
                )
            e_p = max(now, r.latest_arrival - max_ride)
            l_d = r.latest_arrival
        else:
            # No time given: leave as soon as possible, counted from now (not from the
            # moment the request was first made: a re-check of a stale quote is "now" again).
            e_p = now if r.earliest_pickup is None else r.earliest_pickup
            if e_p < now - PAST_TOLERANCE_S:
                return Rejection(RejectReason.PICKUP_IN_PAST, "the pick-up time has passed")
            e_p = max(e_p, now)
            direct = (
                free_direct if zs.profile.free_flow else zs.profile.arrive(e_p, free_direct) - e_p
            )
            max_ride = rules.max_ride_s(direct)
            l_p = e_p + rules.max_wait_s
            l_d = l_p + max_ride
            if r.latest_arrival is not None:
                l_d = min(l_d, r.latest_arrival)
        notice = e_p - now
        min_notice = max(rules.min_notice_s, zs.zone.min_notice_s)
        if notice < min_notice - PAST_TOLERANCE_S:
            return Rejection(
                RejectReason.INSUFFICIENT_NOTICE,
                f"book at least {min_notice / 60:.0f} min ahead",
            )
        if notice > min(rules.max_notice_s, zs.zone.max_notice_s):
            return Rejection(RejectReason.TOO_FAR_AHEAD, "that pick-up is too far ahead to book")
        if not zs.zone.in_service(e_p):
            return Rejection(RejectReason.OUTSIDE_SERVICE_HOURS, "no service at that time")
        ride = NewRide(
            pickup=r.origin,
            dropoff=r.destination,
            earliest_pickup=e_p,
            latest_pickup=l_p,
            latest_dropoff=l_d,
            seats=r.seats,
            wheelchairs=r.wheelchairs,
            max_ride_s=max_ride,
            service_pickup_s=rules.service_s,
            service_dropoff_s=rules.service_s,
        )
        return zs, ride, r, direct

    def _meeting_points(self, zs: ZoneState, r: RideRequest) -> RideRequest:
        """Move the trip ends to the zone's nearest meeting points within walking distance."""
        mp = zs.zone.meeting_points
        if mp is None:
            return r
        ends = []
        for lat, lon in (r.origin, r.destination):
            hit = mp.nearest(lat, lon, self.rules.max_walk_m)
            ends.append((hit[0].lat, hit[0].lon) if hit is not None else (lat, lon))
        if point_distance_m(ends[0], ends[1]) < SAME_PLACE_M:
            return r  # both ends at one meeting point: serve door to door instead
        return replace(r, origin=ends[0], destination=ends[1])

    def _quote_locked(
        self, zs: ZoneState, request: RideRequest, ride: NewRide, direct_s: float, now: float
    ) -> Quote | Rejection:
        fleet = list(zs.vehicles.values())
        ins = zs.arrays.best_insertion(fleet, ride, now)
        if ins is None:
            return Rejection(
                RejectReason.NO_VEHICLE_AVAILABLE, "no vehicle can take this ride in time"
            )
        v = fleet[ins.vehicle_index]
        rules = self.rules
        window = (ins.pickup_s - rules.window_before_s, ins.pickup_s + rules.window_after_s)
        latest_arrival = min(ride.latest_dropoff, window[1] + ride.max_ride_s)
        latest_arrival = max(latest_arrival, ins.dropoff_s)
        return Quote(
            quote_id=uuid.uuid4().hex,
            request=request,
            zone_id=zs.zone.zone_id,
            vehicle_id=v.vehicle_id,
            pickup_window=window,
            latest_arrival=latest_arrival,
            eta_pickup=ins.pickup_s,
            eta_dropoff=ins.dropoff_s,
            max_ride_s=ride.max_ride_s,
            direct_s=direct_s,
            expires_at=now + rules.quote_ttl_s,
            insertion=ins,
            plan_version=zs.versions[v.vehicle_id],
            vehicle_type=v.vtype.name,
        )

    def _purge_quotes(self, now: float) -> None:
        if len(self._quotes) > 10_000:
            for qid in [k for k, q in self._quotes.items() if q.expires_at < now]:
                del self._quotes[qid]

    # --- booking ------------------------------------------------------------------------------
    def book(self, quote_id: str, user_id: str = "", now: float | None = None) -> Ride | Rejection:
        """Commit a quote. A stale quote (expired, or its vehicle's plan changed) is re-checked:
        booked if the new offer keeps the promised window, else refused with the new quote."""
        now = self.clock() if now is None else now
        with self._lock:
            q = self._quotes.get(quote_id)
            # Someone else's quote is as good as unknown (quote ids travel through clients).
            if q is not None and user_id and q.request.user_id and q.request.user_id != user_id:
                q = None
            if q is not None:
                del self._quotes[quote_id]
        if q is None:
            return Rejection(RejectReason.QUOTE_UNKNOWN, "unknown or already used quote")
        zs = self.zone_state(q.zone_id)
        with zs.lock:
            fresh = now <= q.expires_at and zs.versions.get(q.vehicle_id) == q.plan_version
            if fresh and self._fits(zs, q, q, now):
                return self._commit(zs, q, q, user_id, now)
            checked = self._validate(q.request, now)
            if isinstance(checked, Rejection):
                return checked
            _, ride, placed, direct = checked
            nq = self._quote_locked(zs, placed, ride, direct, now)
            if isinstance(nq, Rejection):
                return nq
            if (
                q.pickup_window[0] <= nq.eta_pickup <= q.pickup_window[1]
                and nq.eta_dropoff <= q.latest_arrival
                and self._fits(zs, nq, q, now)
            ):
                return self._commit(zs, nq, q, user_id, now)
        with self._lock:
            self._quotes[nq.quote_id] = nq
        return Rejection(RejectReason.QUOTE_CHANGED, "the offer changed; see the new quote", nq)

    def request_ride(
        self, request: RideRequest, user_id: str = "", now: float | None = None
    ) -> Ride | Rejection:
        """Quote and book in one step."""
        now = self.clock() if now is None else now
        q = self.quote(request, now)
        if isinstance(q, Rejection):
            return q
        return self.book(q.quote_id, user_id or request.user_id, now)

    def _stops(self, q: Quote, promise: Quote, ride_id: str) -> tuple[Stop, Stop]:
        r = q.request
        svc = self.rules.service_s
        p = Stop(
            ride_id,
            StopKind.PICKUP,
            *r.origin,
            promise.pickup_window[0],
            promise.pickup_window[1],
            r.seats,
            r.wheelchairs,
            svc,
            q.max_ride_s,
        )
        d = Stop(
            ride_id,
            StopKind.DROPOFF,
            *r.destination,
            promise.pickup_window[0],
            promise.latest_arrival,
            r.seats,
            r.wheelchairs,
            svc,
            q.max_ride_s,
        )
        return p, d

    def _fits(self, zs: ZoneState, q: Quote, promise: Quote, now: float) -> bool:
        """Whether the quoted insertion still holds at ``now`` (the vehicle may have idled
        since the quote): the whole new plan is re-simulated, every constraint checked."""
        v = zs.vehicles[q.vehicle_id]
        p, d = self._stops(q, promise, "__check__")
        i, j = q.insertion.pickup_pos, q.insertion.dropoff_pos
        plan = [*v.plan[:i], p, *v.plan[i:j], d, *v.plan[j:]]
        return simulate(v, plan, now, self.travel, BASE_TOL, zs.profile) is not None

    def _commit(self, zs: ZoneState, q: Quote, promise: Quote, user_id: str, now: float) -> Ride:
        """Insert the stops of ``q`` with the windows promised in ``promise``."""
        v = zs.vehicles[q.vehicle_id]
        r = q.request
        ride_id = r.request_id or uuid.uuid4().hex
        with self._lock:
            if ride_id in self._rides:
                raise DispatchError("duplicate_ride", f"ride {ride_id} already booked")
        p, d = self._stops(q, promise, ride_id)
        i, j = q.insertion.pickup_pos, q.insertion.dropoff_pos
        v.plan = [*v.plan[:i], p, *v.plan[i:j], d, *v.plan[j:]]
        v.heading = None  # a ride ends any rebalancing move
        ride = Ride(
            ride_id=ride_id,
            user_id=user_id or r.user_id,
            request=r,
            zone_id=zs.zone.zone_id,
            vehicle_id=v.vehicle_id,
            status=RideStatus.ASSIGNED,
            pickup_window=promise.pickup_window,
            latest_arrival=promise.latest_arrival,
            max_ride_s=q.max_ride_s,
            direct_s=q.direct_s,
            booked_at=now,
            eta_pickup=q.eta_pickup,
            eta_dropoff=q.eta_dropoff,
            history=[(now, RideStatus.ASSIGNED.value)],
        )
        with self._lock:
            self._rides[ride_id] = ride
        # Demand counts bookings (one per ride id: a rider re-quoting adds nothing), in the
        # local hour of the pick-up, so rebalancing can expect the demand of the coming hour.
        hour = local_hour(q.eta_pickup, zs.zone.utc_offset_s)
        zs.demand[demand_key(hour, zs.zone.cell_of(*r.origin))] += 1
        self._plan_changed(zs, v, now, status_changed={ride_id})
        return ride

    # --- rides ----------------------------------------------------------------------------------
    def ride(self, ride_id: str) -> Ride | None:
        return self._rides.get(ride_id)

    def rides(self, user_id: str | None = None) -> list[Ride]:
        with self._lock:
            rides = list(self._rides.values())
        return [r for r in rides if user_id is None or r.user_id == user_id]

    def forget_rides(self, ride_ids: Collection[str]) -> int:
        """Drop finished rides (completed, cancelled, no-show) from memory, as a zone owner
        does once their end is saved in its ride history (issue #10: the live state stays the
        size of the live work, not of the zone's past). A ride still live is kept. Returns how
        many were dropped."""
        dropped = 0
        with self._lock:
            for rid in ride_ids:
                ride = self._rides.get(rid)
                if ride is not None and ride.status in FINISHED_STATUSES:
                    del self._rides[rid]
                    dropped += 1
        return dropped

    def _ride_and_zone(self, ride_id: str) -> tuple[Ride, ZoneState]:
        ride = self._rides.get(ride_id)
        if ride is None:
            raise DispatchError("unknown_ride", f"no ride {ride_id!r}")
        return ride, self.zone_state(ride.zone_id)

    def cancel(self, ride_id: str, now: float | None = None, reason: str = "") -> Ride:
        """Cancel a ride not yet picked up; its stops leave the plan. ``reason``: a
        dispatcher's, told to the rider with the ride (``status_reason``)."""
        now = self.clock() if now is None else now
        ride, zs = self._ride_and_zone(ride_id)
        with zs.lock:
            _must_be_assigned(ride, "not_cancellable", "cancelled")
            v = zs.vehicles[ride.vehicle_id]
            v.plan = [s for s in v.plan if s.ride_id != ride_id]
            ride.status_reason = reason
            self._set_status(ride, RideStatus.CANCELLED, now)
            self._plan_changed(zs, v, now, status_changed={ride_id})
        return ride

    def move_pickup(
        self, ride_id: str, earliest_pickup: float, now: float | None = None
    ) -> Ride | Rejection:
        """Pick ``ride_id`` up no earlier than ``earliest_pickup`` (its feeder bus runs late).

        The ride is inserted again into the zone's live plans, any vehicle, with a new window
        from the new time, under the zone's rules (service hours, wait and ride-time limits;
        the booking notice does not apply: the operator moves a ride it already holds). It
        keeps its id, its rider and its booking; the rider gets the new window on their ride
        topic. When no vehicle can, nothing changes and the rejection says why. A ride whose
        vehicle already expects it at or after ``earliest_pickup`` is left as it is.
        """
        now = self.clock() if now is None else now
        ride, zs = self._ride_and_zone(ride_id)
        with zs.lock:
            _must_be_assigned(ride, "not_movable", "moved")
            if ride.eta_pickup >= earliest_pickup and ride.pickup_window[1] >= earliest_pickup:
                return ride
            e_p = max(earliest_pickup, now)
            if not zs.zone.in_service(e_p):
                return Rejection(RejectReason.OUTSIDE_SERVICE_HOURS, "no service at that time")
            r = replace(ride.request, earliest_pickup=e_p, latest_arrival=None)
            free = self._free_flow_direct_s(zs, r)
            direct = free if zs.profile.free_flow else zs.profile.arrive(e_p, free) - e_p
            max_ride = self.rules.max_ride_s(direct)
            l_p = e_p + self.rules.max_wait_s
            new = NewRide(
                pickup=r.origin,
                dropoff=r.destination,
                earliest_pickup=e_p,
                latest_pickup=l_p,
                latest_dropoff=l_p + max_ride,
                seats=r.seats,
                wheelchairs=r.wheelchairs,
                max_ride_s=max_ride,
                service_pickup_s=self.rules.service_s,
                service_dropoff_s=self.rules.service_s,
            )
            old = zs.vehicles[ride.vehicle_id]
            old_plan = old.plan
            old.plan = [s for s in old.plan if s.ride_id != ride_id]
            zs.arrays.invalidate(old.vehicle_id)
            q = self._quote_locked(zs, r, new, direct, now)
            if isinstance(q, Rejection):
                old.plan = old_plan
                zs.arrays.invalidate(old.vehicle_id)
                return q
            v = zs.vehicles[q.vehicle_id]
            p, d = self._stops(q, q, ride_id)
            i, j = q.insertion.pickup_pos, q.insertion.dropoff_pos
            v.plan = [*v.plan[:i], p, *v.plan[i:j], d, *v.plan[j:]]
            v.heading = None
            ride.request = r
            ride.vehicle_id = v.vehicle_id
            ride.pickup_window = q.pickup_window
            ride.latest_arrival = q.latest_arrival
            ride.max_ride_s = q.max_ride_s
            ride.direct_s = q.direct_s
            ride.history.append((now, "pickup_moved"))
            if old is not v:
                self._plan_changed(zs, old, now)
            self._plan_changed(zs, v, now, status_changed={ride_id})
        return ride

    # --- a dispatcher's interventions -----------------------------------------------------------
    def _insert_promised(
        self, zs: ZoneState, ride: Ride, vehicles: list[Vehicle], now: float
    ) -> Vehicle | None:
        """Insert ``ride`` into the cheapest of ``vehicles`` that keeps its promise (pick-up
        window, latest arrival, ride-time limit) and every other ride's; the vehicle, or None
        when none can (nothing changes then)."""
        r = ride.request
        new = NewRide(
            pickup=r.origin,
            dropoff=r.destination,
            earliest_pickup=ride.pickup_window[0],
            latest_pickup=ride.pickup_window[1],
            latest_dropoff=ride.latest_arrival,
            seats=r.seats,
            wheelchairs=r.wheelchairs,
            max_ride_s=ride.max_ride_s,
            service_pickup_s=self.rules.service_s,
            service_dropoff_s=self.rules.service_s,
        )
        ins = zs.arrays.best_insertion(vehicles, new, now)
        if ins is None:
            return None
        v = vehicles[ins.vehicle_index]
        svc = self.rules.service_s
        w0, w1 = ride.pickup_window
        rid, seats, wc, max_ride = ride.ride_id, r.seats, r.wheelchairs, ride.max_ride_s
        p = Stop(rid, StopKind.PICKUP, *r.origin, w0, w1, seats, wc, svc, max_ride)
        d = Stop(
            rid, StopKind.DROPOFF, *r.destination, w0, ride.latest_arrival, seats, wc, svc, max_ride
        )
        i, j = ins.pickup_pos, ins.dropoff_pos
        v.plan = [*v.plan[:i], p, *v.plan[i:j], d, *v.plan[j:]]
        v.heading = None
        ride.vehicle_id = v.vehicle_id
        ride.history.append((now, "reassigned"))
        return v

    def reassign(self, ride_id: str, vehicle_id: str, now: float | None = None) -> Ride | Rejection:
        """Move a booked ride to ``vehicle_id`` (a dispatcher's choice), keeping its promise.

        The ride's stops go where they cost the target vehicle least; the move is refused
        (``no_vehicle_available``, nothing changes) when that vehicle cannot keep the ride's
        promised pick-up window and arrival, or those of the rides it already carries.

        Raises
        ------
        DispatchError
            ``unknown_ride``; ``unknown_vehicle`` (also a vehicle of another zone);
            ``not_movable`` once the ride is no longer just booked; ``same_vehicle``.
        """
        now = self.clock() if now is None else now
        ride, zs = self._ride_and_zone(ride_id)
        with zs.lock:
            _must_be_assigned(ride, "not_movable", "moved")
            target = zs.vehicles.get(vehicle_id)
            if target is None:
                raise DispatchError(
                    "unknown_vehicle", f"no vehicle {vehicle_id!r} in zone {ride.zone_id}"
                )
            if target.vehicle_id == ride.vehicle_id:
                raise DispatchError("same_vehicle", f"ride {ride_id} is already on {vehicle_id}")
            if not target.in_service:
                return Rejection(
                    RejectReason.NO_VEHICLE_AVAILABLE, f"vehicle {vehicle_id} is out of service"
                )
            old = zs.vehicles[ride.vehicle_id]
            if self._insert_promised(zs, ride, [target], now) is None:
                return Rejection(
                    RejectReason.NO_VEHICLE_AVAILABLE,
                    f"vehicle {vehicle_id} cannot keep this ride's promised pick-up window and "
                    "arrival (nor those of its other rides)",
                )
            old.plan = [s for s in old.plan if s.ride_id != ride_id]
            self._plan_changed(zs, old, now)
            self._plan_changed(zs, target, now, status_changed={ride_id})
        return ride

    def mark_no_show(self, ride_id: str, now: float | None = None, reason: str = "") -> Ride:
        """A dispatcher marks ``ride_id`` a no-show (the driver reported it by radio): both
        its stops leave the plan. Unlike a driver's app report (:meth:`no_show`), the vehicle's
        position is not checked, but the promised pick-up window must have opened.

        Raises
        ------
        DispatchError
            ``unknown_ride``; ``not_no_show`` once the ride is no longer just booked;
            ``no_show_too_early`` before its pick-up window opens.
        """
        now = self.clock() if now is None else now
        ride, zs = self._ride_and_zone(ride_id)
        with zs.lock:
            _must_be_assigned(ride, "not_no_show", "marked a no-show")
            if now < ride.pickup_window[0]:
                raise DispatchError(
                    "no_show_too_early",
                    f"the pick-up window opens at {ride.pickup_window[0]:.0f}: a rider cannot "
                    "miss a pick-up before it",
                )
            v = zs.vehicles[ride.vehicle_id]
            v.plan = [s for s in v.plan if s.ride_id != ride_id]
            ride.status_reason = reason
            self._set_status(ride, RideStatus.NO_SHOW, now)
            self._plan_changed(zs, v, now, status_changed={ride_id})
        return ride

    def take_out_of_service(
        self, vehicle_id: str, now: float | None = None, to_depot: bool = False
    ) -> ServiceChange:
        """Take a vehicle out of service (a breakdown, a driver taken ill), or send it to its
        depot (``to_depot``): it gets no new ride, keeps the drop-offs of the riders on board,
        and each ride it had not yet picked up goes to another vehicle of the zone that keeps
        its promise (the tightest pick-up window first), or is cancelled with the reason
        ``vehicle_out_of_service`` (its rider is told). Sending a vehicle already out of
        service to its depot only sets its heading.

        Raises
        ------
        DispatchError
            ``unknown_vehicle``; ``out_of_service`` when it already is (and not sent home).
        """
        now = self.clock() if now is None else now
        zs = self._zone_of_vehicle(vehicle_id)
        moved: dict[str, str] = {}
        refused: list[str] = []
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            if not v.in_service and not to_depot:
                raise DispatchError("out_of_service", f"vehicle {vehicle_id} is out of service")
            if v.in_service:
                v.off_duty_shift_end = v.shift_end
                # The shift ends now: every planner (insertion, re-optimisation, rebalancing)
                # already leaves a vehicle past its shift alone. Never before its start
                # (a restored vehicle must still have a shift that ends after it starts).
                v.shift_end = max(now, v.shift_start + 1.0)
            waiting = sorted(
                (s for s in v.plan if s.kind is StopKind.PICKUP), key=lambda s: s.latest
            )
            v.plan = [s for s in v.plan if s.ride_id in v.onboard]
            zs.arrays.invalidate(vehicle_id)
            others = [o for o in zs.vehicles.values() if o is not v and o.in_service]
            for s in waiting:
                ride = self._rides[s.ride_id]
                placed = self._insert_promised(zs, ride, others, now)
                if placed is None:
                    ride.status_reason = "vehicle_out_of_service"
                    self._set_status(ride, RideStatus.CANCELLED, now)
                    refused.append(ride.ride_id)
                else:
                    moved[ride.ride_id] = placed.vehicle_id
                    self._plan_changed(zs, placed, now, status_changed={ride.ride_id})
            v.heading = v.depot if to_depot else None
            self._plan_changed(zs, v, now, status_changed=set(refused))
            if to_depot:
                self.events.publish(
                    vehicle_topic(vehicle_id),
                    {
                        "type": "relocate",
                        "vehicle_id": vehicle_id,
                        "t": now,
                        "target": list(v.depot),
                    },
                )
        return ServiceChange(v, moved, refused)

    def return_to_service(self, vehicle_id: str, now: float | None = None) -> Vehicle:
        """Put a vehicle taken out of service back on its shift (as it was planned).

        Raises
        ------
        DispatchError
            ``unknown_vehicle``; ``in_service`` when it is in service.
        """
        now = self.clock() if now is None else now
        zs = self._zone_of_vehicle(vehicle_id)
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            if v.off_duty_shift_end is None:
                raise DispatchError("in_service", f"vehicle {vehicle_id} is in service")
            v.shift_end = v.off_duty_shift_end
            v.off_duty_shift_end = None
            v.heading = None
            self._plan_changed(zs, v, now)
        return v

    # --- vehicle events -------------------------------------------------------------------------
    def update_position(self, vehicle_id: str, lat: float, lon: float, t: float) -> None:
        """The vehicle is at (lat, lon) at ``t`` (GPS); its ETAs move accordingly.

        Raises
        ------
        DispatchError
            ``invalid_position`` out of the coordinate range; ``implausible_position`` farther
            than :data:`MAX_POSITION_OFF_ZONE_M` from the bounding box of the vehicle's zone.
        """
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DispatchError("invalid_position", "position out of range")
        zs = self._zone_of_vehicle(vehicle_id)
        off = distance_to_bbox_m(lat, lon, zs.bbox)
        if off > MAX_POSITION_OFF_ZONE_M:
            raise DispatchError(
                "implausible_position",
                f"position {off / 1000:.1f} km outside the area of zone {zs.zone.zone_id} "
                f"(at most {MAX_POSITION_OFF_ZONE_M / 1000:.0f} km)",
            )
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            v.position = (lat, lon)
            v.position_time = t
            # Same plan, new first leg: only the position entries of its arrays are redriven.
            self._plan_changed(zs, v, t, moved_only=True)

    def relocate(self, vehicle_id: str, target: tuple[float, float], now: float) -> bool:
        """Send an idle vehicle toward ``target`` (rebalancing); False if it has work."""
        zs = self._zone_of_vehicle(vehicle_id)
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            if v.plan or v.onboard or not zs.zone.contains(*target):
                return False
            v.heading = target
            self.events.publish(
                vehicle_topic(vehicle_id),
                {"type": "relocate", "vehicle_id": vehicle_id, "t": now, "target": list(target)},
            )
            return True

    def demand(self, zone_id: str) -> dict[str, int]:
        """Rides booked per H3 cell of their origin, all hours together (the zone's demand
        history)."""
        zs = self.zone_state(zone_id)
        out: Counter[str] = Counter()
        with zs.lock:
            for key, n in zs.demand.items():
                out[split_demand_key(key)[1]] += n
        return dict(out)

    def expected_demand(self, zone_id: str, now: float) -> dict[str, float]:
        """Bookings to expect per H3 cell during the hour after ``now``, from the history.

        The hour ``[now, now + 1 h)`` overlaps two local hours of day; each hour's history
        weighs by its share of the overlap. A whole-day count (an old snapshot's) adds 1/24 of
        itself to every hour. Cells expecting nothing are left out.
        """
        zs = self.zone_state(zone_id)
        local = (now + zs.zone.utc_offset_s) % 86400.0
        hour = int(local // 3600.0)
        into = (local - hour * 3600.0) / 3600.0
        weights = {hour: 1.0 - into, (hour + 1) % 24: into}
        out: dict[str, float] = {}
        with zs.lock:
            for key, n in zs.demand.items():
                h, cell = split_demand_key(key)
                w = 1.0 / 24.0 if h is None else weights.get(h, 0.0)
                if w > 0.0:
                    out[cell] = out.get(cell, 0.0) + w * n
        return out

    def _take_stop(self, v: Vehicle, ride_id: str, kind: StopKind) -> Stop:
        for k, s in enumerate(v.plan):
            if s.ride_id == ride_id and s.kind is kind:
                return v.plan.pop(k)
        raise DispatchError("no_such_stop", f"vehicle {v.vehicle_id} has no {kind} of {ride_id}")

    def arrived(self, vehicle_id: str, ride_id: str | None, t: float) -> Ride:
        """The vehicle is at its next planned stop at ``t`` (that of ``ride_id``; None: whatever
        it is).

        The position snaps to the stop and the ETAs are recomputed from there and published;
        the ride's rider is told ``vehicle_arrived`` on ``user.<id>.ride``. An arrival at the
        pick-up starts the no-show wait (:attr:`ServiceRules.no_show_wait_s`).

        Raises
        ------
        DispatchError
            ``no_next_stop`` when the plan is empty, ``not_next_stop`` when ``ride_id`` is not
            the ride of the next planned stop (the driver skipped one or reports the wrong
            ride: the dispatcher would otherwise lose track of where the vehicle is).
        """
        zs = self._zone_of_vehicle(vehicle_id)
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            if not v.plan:
                raise DispatchError("no_next_stop", f"vehicle {vehicle_id} has no planned stop")
            s = v.plan[0]
            if ride_id is not None and s.ride_id != ride_id:
                raise DispatchError(
                    "not_next_stop",
                    f"the next stop of vehicle {vehicle_id} is the {s.kind.value} of "
                    f"{s.ride_id}, not one of {ride_id}",
                )
            v.position = s.latlon
            v.position_time = t
            ride = self._rides[s.ride_id]
            if s.kind is StopKind.PICKUP:
                ride.arrived_at = t
            self._plan_changed(zs, v, t)
            if ride.user_id:
                self.events.publish(
                    user_ride_topic(ride.user_id),
                    {
                        **ride.to_dict(),
                        "type": "vehicle_arrived",
                        "t": t,
                        "stop": s.kind.value,
                        "position": list(s.latlon),
                    },
                )
        return ride

    def boarded(self, vehicle_id: str, ride_id: str, t: float) -> Ride:
        """The group of ``ride_id`` boarded at ``t`` (start of service at the pick-up)."""
        zs = self._zone_of_vehicle(vehicle_id)
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            s = self._take_stop(v, ride_id, StopKind.PICKUP)
            v.onboard[ride_id] = Onboard(ride_id, s.seats, s.wheelchairs, t)
            v.position = s.latlon
            v.position_time = t + s.service_s
            ride = self._rides[ride_id]
            ride.picked_up_at = t
            self._set_status(ride, RideStatus.ONBOARD, t)
            self._plan_changed(zs, v, t, status_changed={ride_id})
        return ride

    def alighted(self, vehicle_id: str, ride_id: str, t: float) -> Ride:
        """The group of ``ride_id`` got off at ``t``."""
        zs = self._zone_of_vehicle(vehicle_id)
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            if ride_id not in v.onboard:
                raise DispatchError("not_onboard", f"{ride_id} is not in vehicle {vehicle_id}")
            s = self._take_stop(v, ride_id, StopKind.DROPOFF)
            del v.onboard[ride_id]
            v.position = s.latlon
            v.position_time = t + s.service_s
            ride = self._rides[ride_id]
            ride.dropped_off_at = t
            self._set_status(ride, RideStatus.COMPLETED, t)
            self._plan_changed(zs, v, t, status_changed={ride_id})
        return ride

    def no_show(self, vehicle_id: str, ride_id: str, t: float) -> Ride:
        """Nobody came to the pick-up of ``ride_id``: both its stops leave the plan.

        Raises
        ------
        DispatchError
            ``no_such_stop`` when the vehicle has no pick-up of ``ride_id``;
            ``no_show_too_early`` before the driver has waited ``rules.no_show_wait_s`` from the
            pick-up window's opening (or from the vehicle's arrival, if later);
            ``no_show_too_far`` when the vehicle's last position is farther than
            ``rules.no_show_max_distance_m`` from the pick-up point.
        """
        zs = self._zone_of_vehicle(vehicle_id)
        with zs.lock:
            v = zs.vehicles[vehicle_id]
            s = next(
                (p for p in v.plan if p.ride_id == ride_id and p.kind is StopKind.PICKUP), None
            )
            if s is None:
                raise DispatchError(
                    "no_such_stop", f"vehicle {vehicle_id} has no pickup of {ride_id}"
                )
            ride = self._rides[ride_id]
            waited_from = max(
                s.earliest, ride.arrived_at if ride.arrived_at is not None else s.earliest
            )
            not_before = waited_from + self.rules.no_show_wait_s
            if t < not_before:
                raise DispatchError(
                    "no_show_too_early",
                    f"wait for the rider until {not_before:.0f} "
                    f"({self.rules.no_show_wait_s:.0f} s after the pick-up window opens or the "
                    "vehicle arrives) before reporting a no-show",
                )
            away = point_distance_m(v.position, s.latlon)
            if away > self.rules.no_show_max_distance_m:
                raise DispatchError(
                    "no_show_too_far",
                    f"the vehicle was last seen {away:.0f} m from the pick-up point (at most "
                    f"{self.rules.no_show_max_distance_m:.0f} m): report its position or arrival",
                )
            self._take_stop(v, ride_id, StopKind.PICKUP)
            self._take_stop(v, ride_id, StopKind.DROPOFF)
            v.position = s.latlon
            v.position_time = t
            self._set_status(ride, RideStatus.NO_SHOW, t)
            self._plan_changed(zs, v, t, status_changed={ride_id})
        return ride

    def serve_next(self, vehicle_id: str, t: float) -> Ride | None:
        """The vehicle served its next planned stop at ``t`` (board or alight); None if idle."""
        v = self.vehicle(vehicle_id)
        if not v.plan:
            return None
        s = v.plan[0]
        if s.kind is StopKind.PICKUP:
            return self.boarded(vehicle_id, s.ride_id, t)
        return self.alighted(vehicle_id, s.ride_id, t)

    # --- plans ----------------------------------------------------------------------------------
    def schedule(self, vehicle: Vehicle, now: float) -> np.ndarray:
        """Start-of-service times of the vehicle's planned stops, leaving no earlier than now
        (legs driven through the zone's speed periods)."""
        zs = self.zone_state(vehicle.zone_id)
        va = zs.arrays.arrays(vehicle)
        t = max(now, vehicle.position_time, vehicle.shift_start)
        return chain_schedule(
            float(t), va.leg, va.early, va.serv, zs.profile.starts, zs.profile.factors
        )

    def replace_plan(
        self, zone_id: str, vehicle_id: str, plan: list[Stop], version: int, now: float
    ) -> bool:
        """Install ``plan`` (from re-optimisation) if the vehicle's plan is still ``version``."""
        zs = self.zone_state(zone_id)
        with zs.lock:
            if zs.versions.get(vehicle_id) != version:
                return False
            v = zs.vehicles[vehicle_id]
            ride_ids = {s.ride_id for s in plan}
            with self._lock:
                for rid in ride_ids:
                    self._rides[rid].vehicle_id = vehicle_id
            v.plan = list(plan)
            self._plan_changed(zs, v, now)
            return True

    def replace_plans(
        self,
        zone_id: str,
        plans: dict[str, list[Stop]],
        versions: dict[str, int],
        now: float,
        accept: Callable[[Dispatcher, Vehicle, list[Stop], float], bool],
        checks_speed_periods: bool = False,
    ) -> int:
        """Install several plans at once (re-optimisation), all or nothing: only if no plan of
        the zone changed since ``versions`` and ``accept`` approves each new plan (and, with
        speed windows, each plan also holds when driven through the zone's speed periods: an
        ``accept`` on static free-flow times cannot break a promise made in the peak).
        ``checks_speed_periods``: ``accept`` drives the plans through the speed periods itself
        (e.g. allowing the lateness of plans in force it does not worsen), so it has the last
        word."""
        zs = self.zone_state(zone_id)
        with zs.lock:
            if any(zs.versions.get(vid) != ver for vid, ver in versions.items()):
                return 0
            for vid, plan in plans.items():
                v = zs.vehicles[vid]
                if not accept(self, v, plan, now):
                    return 0
                if (
                    not checks_speed_periods
                    and not zs.profile.free_flow
                    and not self.feasible_plan(v, plan, now)
                ):
                    return 0
            for vid, plan in plans.items():
                v = zs.vehicles[vid]
                with self._lock:
                    for s in plan:
                        self._rides[s.ride_id].vehicle_id = vid
                v.plan = list(plan)
                self._plan_changed(zs, v, now)
            return len(plans)

    def _set_status(self, ride: Ride, status: RideStatus, t: float) -> None:
        ride.status = status
        ride.history.append((t, status.value))

    def _plan_changed(
        self,
        zs: ZoneState,
        v: Vehicle,
        now: float,
        status_changed: set[str] | None = None,
        publish_rides: bool = True,
        moved_only: bool = False,
    ) -> None:
        """Bump the version, drop cached arrays, recompute ETAs and publish them.

        ``moved_only``: only the vehicle's position changed (a position report), so its cached
        arrays are moved (first leg and way home) rather than dropped and rebuilt."""
        zs.versions[v.vehicle_id] = zs.versions.get(v.vehicle_id, 0) + 1
        if not (moved_only and zs.arrays.moved(v) is not None):
            zs.arrays.invalidate(v.vehicle_id)
        # Python floats (the same values): this loop runs on every position report.
        times: list[float] = self.schedule(v, now).tolist()
        stops = []
        changed = set(status_changed or ())
        for s, b in zip(v.plan, times, strict=True):
            ride = self._rides.get(s.ride_id)
            pickup = s.kind is StopKind.PICKUP
            stops.append(
                {
                    "ride_id": s.ride_id,
                    "kind": _KIND_VALUE[s.kind],
                    "lat": s.lat,
                    "lon": s.lon,
                    "eta": b,
                    "window": [s.earliest, s.latest],
                }
            )
            if ride is None:
                continue
            old = ride.eta_pickup if pickup else ride.eta_dropoff
            if abs(old - b) >= 30.0:
                changed.add(s.ride_id)
            if pickup:
                ride.eta_pickup = b
            else:
                ride.eta_dropoff = b
        self.events.publish(
            vehicle_topic(v.vehicle_id),
            {
                "type": "plan",
                "vehicle_id": v.vehicle_id,
                "t": now,
                "position": list(v.position),
                "onboard": sorted(v.onboard),
                "stops": stops,
            },
        )
        if not publish_rides:
            changed = set(status_changed or ())
        for rid in sorted(changed):
            ride = self._rides.get(rid)
            if ride is not None and ride.user_id:
                self.events.publish(
                    user_ride_topic(ride.user_id), {"type": "ride", "t": now, **ride.to_dict()}
                )
