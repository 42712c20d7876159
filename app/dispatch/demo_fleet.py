"""The living demo city: an on-demand zone, a small fleet and simulated riders in Muroran.

On start (``settings.demo`` and ``settings.demo_fleet``, after the dispatcher is up) the zone is
*derived from the published network* of the city the district lies in (:func:`demo_network`;
with several cities published the default network is the largest, not necessarily this one):
the stops within ``radius_m`` of the stops named ``東室蘭駅…`` (Higashi-Muroran station, the
city's rail hub), their convex hull buffered by ``buffer_m``. Four vans and one low-speed
autonomous shuttle wait at depots spread over the district's stops (farthest-point order, the
shuttle at the station). The vans' driving times are the dispatcher's (one OSM extract for the
process, ``app.dispatch.service.dispatch_travel_times``), not a network's.

Nothing new is persisted: the zone and fleet live in the dispatcher, as operators' zones do, so
a start builds them once into that dispatcher and a repeated install (or a snapshot restored
with the zone) finds them and adds nothing. In cluster mode (``REDIS_URL``) the zone and fleet
are one row of the shared zone catalog, inserted once by whichever process starts first, and
only the process owning the zone drives it (its loop starts and stops with the zone's lease).

Nobody drives the demo vehicles, so an asyncio task (started and stopped with the app) does:
every ``demo_tick_s`` wall seconds it moves them along their plans up to the dispatcher's "now"
(the simulator's own driving step: boarding, alighting, mid-leg positions, all through the
dispatcher's vehicle events, so the consoles see them, and a visitor's own booking is served).
With ``settings.demo_riders_per_hour`` > 0 it then draws a seeded Poisson number of requests
between real stops of the zone and quotes and books each as the demo resident.
``demo_time_scale`` > 1 runs the dispatcher's clock faster than the wall clock.

Two clocks: the on-demand service runs *now* (the dispatcher clock), while the transit planner
answers on the feed's demo service date (the feed ended in 2021); ``GET /api/v1/demo`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import structlog
from numpy.typing import NDArray
from scipy.spatial import ConvexHull
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.errors import ApiError
from app.identity import accounts
from app.identity.roles import Role
from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.geo import distance_matrix_m
from dispatch.request import RideRequest
from dispatch.rides import Rejection, RideStatus
from dispatch.simulation.simulator import Simulator
from dispatch.vehicle import SHUTTLE, VAN, Vehicle, VehicleType
from dispatch.zone import ServiceZone
from gtfs.compiled import CompiledTimetable

if TYPE_CHECKING:
    from app.identity.passwords import Passwords
    from app.services import Services

log = structlog.get_logger("tsunagu.demo_fleet")

FloatArray = NDArray[np.float64]

DEMO_RIDER_EMAIL = "demo-rider@demo.tsunagu.jp"
M_PER_DEG_LAT = 111_320.0  # local equirectangular projection (a district spans a few km)


@dataclass(frozen=True)
class DemoZoneSpec:
    """How the demo zone and fleet are derived from the network.

    Parameters
    ----------
    anchor
        Stop-name prefix of the district's centre (all matching stops are averaged).
    radius_m
        Stops within this distance of the centre belong to the district.
    buffer_m
        The zone is the district stops' convex hull grown by this much (walk to the door).
    service_hours
        Local ``(start_s, end_s)`` windows. Round the clock: visitors arrive at any hour from
        any time zone, and the demo should be alive for them.
    min_notice_s, max_notice_s
        Booking notice: ride now, or book up to a day ahead.
    fleet
        ``(vehicle type, count)``; the first vehicle of the last type waits at the station.
    """

    zone_id: str = "muroran-higashi"
    name: str = "Higashi-Muroran on-demand (東室蘭オンデマンド)"
    anchor: str = "東室蘭駅"
    radius_m: float = 1500.0
    buffer_m: float = 300.0
    service_hours: tuple[tuple[float, float], ...] = ((0.0, 86400.0),)
    min_notice_s: float = 0.0
    max_notice_s: float = 86400.0
    fleet: tuple[tuple[VehicleType, int], ...] = ((VAN, 4), (SHUTTLE, 1))
    shift_days: float = 365.0


DEFAULT_SPEC = DemoZoneSpec()


class DemoSetupError(Exception):
    """The network cannot host the demo zone (e.g. no stop named like the anchor)."""


# --- geometry -----------------------------------------------------------------------------------
def district_stops(tt: CompiledTimetable, anchor: str, radius_m: float) -> FloatArray:
    """Distinct ``(lat, lon)`` of the stops within ``radius_m`` of the stops named ``anchor…``,
    the one nearest the anchor first."""
    names = np.asarray(tt.stop_names).astype(str)
    is_anchor = np.char.startswith(names, anchor)
    if not is_anchor.any():
        raise DemoSetupError(f"no stop named {anchor!r}… in the published network")
    lat = np.asarray(tt.stop_lat, dtype=np.float64)
    lon = np.asarray(tt.stop_lon, dtype=np.float64)
    c_lat, c_lon = float(lat[is_anchor].mean()), float(lon[is_anchor].mean())
    dist = distance_matrix_m([(c_lat, c_lon)], np.column_stack([lat, lon]))[0]
    near = np.isfinite(dist) & (dist <= radius_m)
    # Platforms share their station's coordinates: one point per place.
    pts, first = np.unique(
        np.round(np.column_stack([lat[near], lon[near]]), 6), axis=0, return_index=True
    )
    pts = pts[np.argsort(first)]
    order = np.argsort(distance_matrix_m([(c_lat, c_lon)], pts)[0])
    return np.asarray(pts[order], dtype=np.float64)


def buffered_hull(points: FloatArray, buffer_m: float, arc: int = 24) -> list[tuple[float, float]]:
    """The convex hull of ``(lat, lon)`` points grown by ``buffer_m``, as a closed GeoJSON ring
    of ``(lon, lat)``, counter-clockwise.

    The hull of the points' ``arc``-gons of radius ``buffer_m`` is the Minkowski sum of hull and
    disc (to within ``1 - cos(pi / arc)`` of the radius), computed in a local metric projection.
    """
    if buffer_m <= 0:
        raise ValueError("buffer_m must be positive")
    if len(points) == 0:
        raise ValueError("no points to enclose")
    lat0, lon0 = float(points[:, 0].mean()), float(points[:, 1].mean())
    kx = M_PER_DEG_LAT * np.cos(np.radians(lat0))
    x = (points[:, 1] - lon0) * kx
    y = (points[:, 0] - lat0) * M_PER_DEG_LAT
    ang = np.linspace(0.0, 2 * np.pi, arc, endpoint=False)
    px = (x[:, None] + buffer_m * np.cos(ang)[None, :]).ravel()
    py = (y[:, None] + buffer_m * np.sin(ang)[None, :]).ravel()
    hull = ConvexHull(np.column_stack([px, py]))  # 2-D vertices come counter-clockwise
    ring = [(lon0 + px[i] / kx, lat0 + py[i] / M_PER_DEG_LAT) for i in hull.vertices]
    return [(float(a), float(b)) for a, b in [*ring, ring[0]]]


def spread_points(points: FloatArray, k: int) -> list[int]:
    """``k`` indices of ``points`` spread out (greedy farthest-point), starting at index 0."""
    if len(points) == 0 or k <= 0:
        return []
    chosen = [0]
    d = distance_matrix_m(points, points[:1])[:, 0]
    while len(chosen) < min(k, len(points)):
        nxt = int(np.argmax(d))
        chosen.append(nxt)
        d = np.minimum(d, distance_matrix_m(points, points[nxt : nxt + 1])[:, 0])
    while len(chosen) < k:  # fewer places than vehicles: share depots
        chosen.append(chosen[len(chosen) % len(points)])
    return chosen


def utc_offset_s(timezone: str | None, at: float) -> float:
    """The offset of ``timezone`` at unix time ``at`` (0 when unknown)."""
    if not timezone:
        return 0.0
    try:
        tz = ZoneInfo(timezone)
    except (KeyError, ValueError):
        return 0.0
    off = dt.datetime.fromtimestamp(at, tz).utcoffset()
    return off.total_seconds() if off is not None else 0.0


def build_demo_zone(
    tt: CompiledTimetable, spec: DemoZoneSpec = DEFAULT_SPEC, now: float | None = None
) -> tuple[ServiceZone, FloatArray]:
    """The demo zone and the district stops it was derived from."""
    stops = district_stops(tt, spec.anchor, spec.radius_m)
    ring = buffered_hull(stops, spec.buffer_m)
    zone = ServiceZone(
        zone_id=spec.zone_id,
        name=spec.name,
        polygons=[[ring]],
        service_hours=list(spec.service_hours),
        min_notice_s=spec.min_notice_s,
        max_notice_s=spec.max_notice_s,
        utc_offset_s=utc_offset_s(tt.timezone, time.time() if now is None else now),
    )
    return zone, stops


def demo_vehicles(
    zone: ServiceZone, stops: FloatArray, now: float, spec: DemoZoneSpec = DEFAULT_SPEC
) -> list[Vehicle]:
    """The demo fleet at depots spread over the district's stops, on shifts from local
    midnight today for ``spec.shift_days``."""
    n = sum(count for _, count in spec.fleet)
    spots = spread_points(stops, n)
    # The station (index 0) goes to the last type listed (the shuttle), the rest spread out.
    spots = spots[1:] + spots[:1]
    local = now + zone.utc_offset_s
    start = now - (local % 86400.0)
    end = start + spec.shift_days * 86400.0
    out: list[Vehicle] = []
    k = 0
    for vtype, count in spec.fleet:
        for j in range(count):
            depot = (float(stops[spots[k], 0]), float(stops[spots[k], 1]))
            vid = f"{zone.zone_id}-{vtype.name.replace('_', '-')}-{j + 1}"
            out.append(Vehicle(vid, vtype, depot, start, end, depot, now, zone_id=zone.zone_id))
            k += 1
    return out


# --- set-up ---------------------------------------------------------------------------------------
def demo_network(feeds: Any, spec: DemoZoneSpec = DEFAULT_SPEC) -> Any | None:
    """The published network (city) the demo district lies in: the default network when it
    has a stop named ``spec.anchor…``, else the first other city (by name) that has one, else
    the default network (:func:`district_stops` then says why no zone can be built there);
    None without a registry.

    With several cities published the default network is the largest, which need not be the
    demo city: the zone, its depots and the simulated riders' stops come from the network the
    district lies in.
    """
    if feeds is None:
        return None
    default = feeds.network
    others = [n for _, n in sorted(feeds.networks.items()) if n is not default]
    for net in (default, *others):
        tt = net.timetable
        if (
            tt is not None
            and np.char.startswith(np.asarray(tt.stop_names).astype(str), spec.anchor).any()
        ):
            return net
    return default


def zone_city(feeds: Any, zone: ServiceZone) -> Any | None:
    """The published network (city) ``zone`` lies in (:func:`app.feeds.dispatch_zones.
    zone_network`), or None."""
    from app.feeds.dispatch_zones import zone_network

    if feeds is None:
        return None
    name = zone_network(feeds, zone)
    return None if name is None else feeds.networks.get(name)


@dataclass
class DemoCity:
    """What the demo installed (or found) in the dispatcher."""

    zone: ServiceZone
    stops: FloatArray
    vehicle_ids: list[str]
    created: bool
    riders: DemoRiders | None = None
    loop: DemoLoop | None = None
    time_scale: float = 1.0


def install_demo_city(
    d: Dispatcher,
    tt: CompiledTimetable,
    spec: DemoZoneSpec = DEFAULT_SPEC,
    now: float | None = None,
) -> DemoCity | None:
    """Add the demo zone and fleet to ``d`` unless present; None when the dispatcher already
    serves other zones (an operator's set-up is never mixed with the demo)."""
    now = d.clock() if now is None else now
    zone, stops = build_demo_zone(tt, spec, now)
    fleet = demo_vehicles(zone, stops, now, spec)
    existing = {z.zone_id: z for z in d.zones()}
    if spec.zone_id in existing:
        have = {v.vehicle_id for v in d.vehicles(spec.zone_id)}
        return DemoCity(
            existing[spec.zone_id],
            stops,
            [v.vehicle_id for v in fleet if v.vehicle_id in have],
            False,
        )
    if existing:
        log.info(
            "demo_zone_skipped",
            reason="the dispatcher already serves zones",
            zones=sorted(existing),
        )
        return None
    d.add_zone(zone)
    for v in fleet:
        d.add_vehicle(v)
    log.info(
        "demo_zone_created",
        zone_id=zone.zone_id,
        stops=len(stops),
        h3_cells=len(zone.cells),
        vehicles=[v.vehicle_id for v in fleet],
    )
    return DemoCity(zone, stops, [v.vehicle_id for v in fleet], True)


def ensure_demo_rider(engine: Engine, passwords: Passwords) -> str:
    """The id of the demo resident who books the simulated rides (created once; its password
    is random and thrown away, so nobody can log in as it)."""
    for _ in range(2):
        with Session(engine) as db:
            user = accounts.find_by_email(db, DEMO_RIDER_EMAIL)
            if user is not None:
                return str(user.id)
            try:
                user = accounts.create_user(
                    db,
                    passwords,
                    email=DEMO_RIDER_EMAIL,
                    password=secrets.token_urlsafe(24),
                    display_name="Demo rider",
                    roles=(Role.RESIDENT.value,),
                )
                db.commit()
                return str(user.id)
            except ApiError as exc:  # another process created it meanwhile: read it again
                if exc.code != "email_taken":
                    raise
    raise RuntimeError("the demo rider could not be created")


# --- simulated riders -----------------------------------------------------------------------------
class ScaledClock:
    """Unix seconds running ``scale`` times faster than ``base`` from the moment it is made."""

    def __init__(self, scale: float, base: Callable[[], float] = time.time) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self.base = base
        self.t0 = base()

    def __call__(self) -> float:
        return self.t0 + (self.base() - self.t0) * self.scale


@dataclass
class RiderStats:
    """What the simulated riders did so far."""

    requested: int = 0
    booked: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    moves: int = 0  # vehicle position changes reported
    steps: int = 0
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "booked": self.booked,
            "rejected": dict(self.rejected),
            "vehicle_moves": self.moves,
            "steps": self.steps,
        }


class DemoRiders:
    """Seeded Poisson riders between the zone's stops, and the fleet driving its plans.

    Parameters
    ----------
    dispatcher
        The live dispatcher (its clock is "now").
    zone_id, stops
        The demo zone and the ``(lat, lon)`` stops trips start and end near.
    user_id
        The demo resident every ride is booked for (needed when ``rate_per_hour`` > 0).
    rate_per_hour
        Mean requests per hour of dispatcher time; 0 only drives the fleet.
    seed
        Seed of arrivals, places, notice and party sizes.
    book
        How a rider quotes and books (called from the demo's worker thread): None, or the
        reason of its refusal. Default: on ``dispatcher`` itself; in cluster mode through
        the gateway, as any rider (:func:`gateway_booker`).
    """

    JITTER_M = 60.0  # riders wait near a stop, not on its pole
    MIN_TRIP_M = 400.0
    MAX_NOTICE_S = 15 * 60.0

    def __init__(
        self,
        dispatcher: Dispatcher,
        zone_id: str,
        stops: FloatArray,
        user_id: str,
        rate_per_hour: float,
        seed: int = 7,
        book: Callable[[RideRequest], str | None] | None = None,
    ) -> None:
        if rate_per_hour < 0:
            raise ValueError("rate_per_hour must be >= 0")
        if rate_per_hour > 0 and not user_id:
            raise ValueError("simulated riders need a user_id to book for")
        far = distance_matrix_m(stops, stops) >= self.MIN_TRIP_M
        if not far.any():
            raise ValueError("the zone's stops are too close together for trips")
        self.d = dispatcher
        self.zone_id = zone_id
        self.zone = dispatcher.zone_state(zone_id).zone
        self.stops = stops
        self._far = far
        self.user_id = user_id
        self.rate_per_hour = rate_per_hour
        self.rng = np.random.default_rng(seed)
        # The simulator's driving step, with no requests of its own: the same code that drives
        # the accelerated-time simulations drives the live demo fleet.
        self._sim = Simulator(dispatcher, [], check_invariants=False)
        self.stats = RiderStats()
        self.last_t: float | None = None
        self.book = book or self._book_here

    def step(self, now: float) -> None:
        """Advance to ``now``: drive the fleet, then make this interval's requests."""
        t0 = now if self.last_t is None else self.last_t
        if now <= t0:
            self.last_t = now if self.last_t is None else self.last_t
            return
        self.last_t = now
        self.stats.steps += 1
        self.drive(t0, now)
        n = int(self.rng.poisson(self.rate_per_hour * (now - t0) / 3600.0))
        for _ in range(n):
            self.request_one(now)

    def drive(self, t0: float, t1: float) -> None:
        """Every vehicle serves the stops due by ``t1`` and reports its position mid-leg."""
        zs = self.d.zone_state(self.zone_id)
        for v in self.d.vehicles(self.zone_id):
            # Under the zone lock: a booking or re-optimisation cannot change the plan between
            # reading the next stop and serving it.
            with zs.lock:
                before = (v.position, len(v.plan))
                try:
                    self._sim._drive(v, t0, t1)
                except DispatchError as exc:  # keep the demo alive; the next step re-reads
                    self.stats.errors += 1
                    log.warning("demo_drive_failed", vehicle=v.vehicle_id, code=exc.code)
                if (v.position, len(v.plan)) != before:
                    self.stats.moves += 1

    def _near(self, k: int) -> tuple[float, float]:
        lat, lon = float(self.stops[k, 0]), float(self.stops[k, 1])
        for _ in range(5):
            dy, dx = self.rng.normal(0.0, self.JITTER_M, 2)
            p = (lat + dy / M_PER_DEG_LAT, lon + dx / (M_PER_DEG_LAT * np.cos(np.radians(lat))))
            if self.zone.contains(*p):
                return (float(p[0]), float(p[1]))
        return (lat, lon)

    def request_one(self, now: float) -> None:
        """One rider: quote, then book as the demo resident."""
        o = int(self.rng.integers(len(self.stops)))
        choices = np.flatnonzero(self._far[o])
        if len(choices) == 0:
            return
        dest = int(choices[self.rng.integers(len(choices))])
        wheelchair = self.rng.random() < 0.05
        seats = 0 if wheelchair else (2 if self.rng.random() < 0.15 else 1)
        notice = float(self.rng.uniform(0.0, self.MAX_NOTICE_S))
        req = RideRequest(
            origin=self._near(o),
            destination=self._near(dest),
            requested_at=now,
            earliest_pickup=now + notice,
            seats=seats,
            wheelchairs=int(wheelchair),
            user_id=self.user_id,
            request_id=f"demo-{uuid.uuid4().hex[:16]}",
        )
        self.stats.requested += 1
        refused = self.book(req)
        if refused is not None:
            self.stats.rejected[refused] += 1
        else:
            self.stats.booked += 1

    def _book_here(self, req: RideRequest) -> str | None:
        """Quote, then book the quote on this dispatcher (one process)."""
        q = self.d.quote(req, req.requested_at)
        if isinstance(q, Rejection):
            return q.reason.value
        ride = self.d.book(q.quote_id, str(req.user_id), req.requested_at)
        return ride.reason.value if isinstance(ride, Rejection) else None

    def active_rides(self) -> int:
        return sum(
            r.status in (RideStatus.ASSIGNED, RideStatus.ONBOARD)
            for r in self.d.rides(self.user_id)
        )


class DemoLoop:
    """Runs :meth:`DemoRiders.step` every ``tick_s`` wall seconds in a worker thread."""

    def __init__(self, riders: DemoRiders, clock: Callable[[], float], tick_s: float) -> None:
        self.riders = riders
        self.clock = clock
        self.tick_s = tick_s
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.riders.last_t = self.clock()
        self.task = asyncio.get_running_loop().create_task(self._run(), name="demo-riders")

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.tick_s)
            if self._stop.is_set():
                break
            try:
                await asyncio.to_thread(self.riders.step, self.clock())
            except Exception:  # one bad step must not end the demo
                self.riders.stats.errors += 1
                log.exception("demo_step_failed")

    async def stop(self) -> None:
        """Ask the loop to end and wait for its current step (cancel after 10 s)."""
        self._stop.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 10.0)
        except TimeoutError:
            self.task.cancel()


# --- cluster mode (REDIS_URL): the demo zone is one catalog row, its loop runs on its owner ----
def install_demo_catalog(
    engine: Engine, tt: CompiledTimetable, spec: DemoZoneSpec = DEFAULT_SPEC
) -> DemoCity | None:
    """Cluster mode's :func:`install_demo_city`: insert the demo zone's catalog row with its
    fleet in the first snapshot, once across every process (the insert is idempotent); None
    when the catalog holds other zones (an operator's set-up is never mixed with the demo)."""
    from app.dispatch.store import catalog_zones, insert_zone
    from dispatch.scale_out import zone_snapshot
    from dispatch.travel_times import StraightLineTravelTimes

    now = time.time()
    zone, stops = build_demo_zone(tt, spec, now)
    fleet = demo_vehicles(zone, stops, now, spec)
    ids, _ = catalog_zones(engine, definitions=False)
    others = sorted(z for z in ids if z != spec.zone_id)
    if others:
        log.info("demo_zone_skipped", reason="the catalog holds other zones", zones=others)
        return None
    scratch = Dispatcher(StraightLineTravelTimes(1.3))  # only to write the first snapshot
    scratch.add_zone(zone)
    for v in fleet:
        scratch.add_vehicle(v)
    created = insert_zone(engine, zone, zone_snapshot(scratch, zone.zone_id))
    if created:
        log.info("demo_zone_created", zone_id=zone.zone_id, vehicles=[v.vehicle_id for v in fleet])
    return DemoCity(zone, stops, [v.vehicle_id for v in fleet], created)


async def shared_clock_origin(redis: Any, key: str) -> float:
    """The wall time the accelerated demo clock started, the same in every process (the first
    to start sets it; Redis ``SET NX``). It lasts a day: a cluster started later begins a new
    demo day rather than jumping ``scale`` times its downtime ahead."""
    await redis.set(key, repr(time.time()), nx=True, ex=86400)
    return float(await redis.get(key))


def gateway_booker(
    gateway: Any, loop: asyncio.AbstractEventLoop, timeout_s: float
) -> Callable[[RideRequest], str | None]:
    """A simulated rider's booking through the cluster gateway, as a rider's app books
    (``POST /rides/quote`` then ``POST /rides``), from the demo's worker thread: None when
    booked (or queued, 202), else the refusal's code; ``timeout_s`` bounds the wait."""

    async def quote_and_book(req: RideRequest) -> None:
        q = await gateway.quote(req)
        await gateway.book_quote(str(q["quote_id"]), str(req.user_id))

    def book(req: RideRequest) -> str | None:
        fut = asyncio.run_coroutine_threadsafe(quote_and_book(req), loop)
        try:
            fut.result(timeout_s)
        except ApiError as exc:
            return exc.code
        except TimeoutError:
            fut.cancel()
            return "timeout"
        return None

    return book


async def _start_cluster_demo(
    services: Services, gateway: Any, tt: CompiledTimetable, spec: DemoZoneSpec
) -> DemoCity | None:
    """Every process knows the demo city (``GET /api/v1/demo``); only the zone's owner drives
    its fleet and riders, started when it takes the zone and stopped when it leaves it."""
    s = services.settings
    try:
        city = await asyncio.to_thread(install_demo_catalog, services.engine, tt, spec)
    except (DemoSetupError, ValueError) as exc:
        log.warning("demo_fleet_skipped", reason=str(exc))
        return None
    if city is None:
        return None
    await gateway.worker.sync()  # the zone has an owner from here on
    d: Dispatcher = services.dispatcher
    if s.demo_time_scale != 1.0:
        clock = ScaledClock(s.demo_time_scale, d.clock)
        clock.t0 = await shared_clock_origin(gateway.redis, f"{s.redis_prefix}demo.clock_origin")
        d.clock = clock
        city.time_scale = s.demo_time_scale
    user_id = ""
    if s.demo_riders_per_hour > 0:
        user_id = await asyncio.to_thread(
            ensure_demo_rider, services.engine, services.identity.passwords
        )

    async def on_acquire(zone_id: str) -> None:
        if zone_id != city.zone.zone_id:
            return
        # Riders book through the gateway (the zone's stream), as residents do.
        book = gateway_booker(gateway, asyncio.get_running_loop(), s.dispatch_reply_timeout_s + 5)
        city.riders = DemoRiders(
            d, zone_id, city.stops, user_id, s.demo_riders_per_hour, s.demo_seed, book
        )
        city.loop = DemoLoop(city.riders, d.clock, s.demo_tick_s)
        city.loop.start()

    async def on_release(zone_id: str) -> None:
        if zone_id != city.zone.zone_id or city.loop is None:
            return
        loop, city.loop, city.riders = city.loop, None, None
        await loop.stop()

    await gateway.add_zone_hooks(on_acquire, on_release)

    async def stop() -> None:
        await on_release(city.zone.zone_id)

    services.on_stop.append(stop)
    return city


# --- start-up hook --------------------------------------------------------------------------------
async def start_demo_fleet(services: Services) -> None:
    """Start-up hook (after ``app.dispatch.service:start_dispatcher``)."""
    s = services.settings
    d: Dispatcher | None = services.dispatcher
    if not (s.demo and s.demo_fleet) or d is None or services.feeds is None:
        return
    # ``dispatch_demo_vehicles`` vans plus the autonomous shuttle (a mixed fleet on purpose).
    spec = replace(DEFAULT_SPEC, fleet=((VAN, s.dispatch_demo_vehicles), (SHUTTLE, 1)))
    # The city the district lies in, which is not the default network when a larger city's
    # feed is published beside the demo city's.
    net = demo_network(services.feeds, spec)
    tt = net.timetable if net is not None else None
    if tt is None:
        log.warning("demo_fleet_skipped", reason="no published network")
        return
    gateway = services.dispatch
    if getattr(gateway, "worker", None) is not None:
        cluster_city = await _start_cluster_demo(services, gateway, tt, spec)
        if cluster_city is not None:
            services.demo_city = cluster_city

            async def cluster_readiness() -> dict[str, Any]:
                assert cluster_city is not None
                loop = cluster_city.loop
                return {
                    "ok": loop is None or loop.running,
                    "zone": cluster_city.zone.zone_id,
                    "driven_here": loop is not None,
                }

            services.readiness["demo_fleet"] = cluster_readiness
        return
    try:
        city = await asyncio.to_thread(install_demo_city, d, tt, spec)
    except (DemoSetupError, ValueError) as exc:
        log.warning("demo_fleet_skipped", reason=str(exc))
        return
    if city is None:
        return
    services.demo_city = city
    # Nobody drives the demo vans: the loop drives them along their plans (residents' own
    # bookings included) even when no simulated rider is configured.
    user_id = ""
    if s.demo_riders_per_hour > 0:
        user_id = await asyncio.to_thread(
            ensure_demo_rider, services.engine, services.identity.passwords
        )
    if s.demo_time_scale != 1.0:
        # The whole on-demand service (quotes over HTTP too) runs on the demo clock.
        d.clock = ScaledClock(s.demo_time_scale, d.clock)
        city.time_scale = s.demo_time_scale
    city.riders = DemoRiders(
        d, city.zone.zone_id, city.stops, user_id, s.demo_riders_per_hour, s.demo_seed
    )
    city.loop = DemoLoop(city.riders, d.clock, s.demo_tick_s)
    city.loop.start()
    services.on_stop.append(city.loop.stop)

    async def readiness() -> dict[str, Any]:
        loop = city.loop
        return {"ok": loop is None or loop.running, "zone": city.zone.zone_id}

    services.readiness["demo_fleet"] = readiness


def demo_summary(services: Services) -> dict[str, Any]:
    """The ``GET /api/v1/demo`` body: the two clocks of the demo, its zone, fleet and riders."""
    s = services.settings
    feeds = services.feeds
    city: DemoCity | None = services.demo_city
    # The transit side of the demo is the city its zone lies in (the district's city before
    # a zone is installed), not the default network: another, larger city may be published.
    net = zone_city(feeds, city.zone) if city is not None else None
    if net is None:
        net = demo_network(feeds)
    service_date = net.service_date if net is not None else None
    tt = net.timetable if net is not None else None
    transit = {
        "network": net.name if net is not None and net.name else None,
        "service_date": service_date.isoformat() if service_date else None,
        "service_date_rule": net.service_date_rule if net is not None else None,
        "timezone": tt.timezone if tt is not None else None,
        "note": "Timetables are those of the feed's demo service date (the same weekday as "
        "today, inside the feed's calendar): plan trips for that date.",
    }
    d: Dispatcher | None = services.dispatcher
    on_demand: dict[str, Any] = {"enabled": city is not None}
    if city is not None and d is not None:
        now = d.clock()
        z = city.zone
        on_demand.update(
            {
                "now": now,
                "clock": "wall" if city.time_scale == 1.0 else "accelerated",
                "time_scale": city.time_scale,
                "zone_id": z.zone_id,
                "zone_name": z.name,
                "geometry": {"type": "MultiPolygon", "coordinates": z.polygons},
                "service_hours": z.service_hours,
                "utc_offset_s": z.utc_offset_s,
                "min_notice_s": z.min_notice_s,
                "max_notice_s": z.max_notice_s,
                "vehicles": city.vehicle_ids,
                "riders": None
                if city.riders is None
                else {
                    "running": city.loop is not None and city.loop.running,
                    "per_hour": city.riders.rate_per_hour,
                    "active_rides": city.riders.active_rides(),
                    **city.riders.stats.to_dict(),
                },
                "note": "On-demand rides run now, on the dispatcher's clock"
                + ("" if city.time_scale == 1.0 else f" ({city.time_scale:g}x accelerated)")
                + "; transit timetables are those of the demo service date.",
            }
        )
    return {"enabled": bool(s.demo), "city": "Muroran", "transit": transit, "on_demand": on_demand}
