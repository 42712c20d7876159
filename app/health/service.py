"""The health service: built in the main process by a start-up hook, or run on its own.

In the main process (the default) :func:`start_health` (listed in
``app.services.startup_hooks``) migrates the service's tables, puts a :class:`HealthService` on
``services.health`` and, with an event bus, starts :class:`WatchRelay`; ``app.main`` mounts the
router. On its own, ``tsunagu serve --service health`` serves :func:`create_health_app` (the
router, ``/healthz``, ``/readyz``), trusting the identity store's tokens through its JWKS only
(``TSUNAGU_IDENTITY_JWKS_URL``), like the emissions service (:mod:`app.secondary`). With
``REDIS_URL`` set it joins the Redis event bus the core publishes ride events on
(:func:`start_standalone_relay`), so its :class:`WatchRelay` tells watchers of completed and
missed rides as it does in the main process, and its notices reach the watcher's event stream
on any app process.

Active travel is read from the mobility core's records (:class:`app.emissions.sources.
MobilityRecords`, the emissions ledger's reader, read only): the walking and cycling legs of the
resident's booked trips (``trips``, CONFIRMED) that are over and whose on-demand rides were all
completed. Itineraries a resident only marked as taken in the emissions ledger keep no leg
times and are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from app import db
from app.emissions.factors import city_factors
from app.emissions.sources import (
    DatabaseMobility,
    MobilityRecords,
    ended_rides_of,
    has_mobility_tables,
)
from app.health import activity, store
from app.health.models import WatchNotice
from app.secondary import core_engine, open_service_database
from app.settings import Settings

log = structlog.get_logger("tsunagu.health")

#: Ride statuses a watcher is told of, and the event they get.
WATCHED_STATUSES = {"completed": "ride.completed", "no_show": "ride.missed"}

#: How far back a relay that (re)subscribes looks for rides that ended unheard.
CATCH_UP_WINDOW = dt.timedelta(hours=24)


def watch_topic(watcher_id: str) -> str:
    """The watcher's own event stream."""
    return f"user.{watcher_id}.watch"


@dataclass
class HealthService:
    """Everything the health routes need.

    ``engine`` holds the service's tables; ``mobility`` reads the core's trips and rides (None
    when the service's process cannot see them); ``bus`` is the main process's event bus
    (None alone); ``dispatch`` the core's ride gateway (None alone: booking on a resident's
    behalf needs the main process).
    """

    settings: Settings
    engine: Engine
    mobility: MobilityRecords | None
    tz: ZoneInfo
    bus: Any = None
    dispatch_of: Any = None  # () -> the main process's DispatchGateway
    relay: WatchRelay | None = None
    _closers: list[Engine] = field(default_factory=list)

    @classmethod
    def build(
        cls, settings: Settings, app_engine: Engine | None = None, *, mobility: bool = True
    ) -> HealthService:
        """Open (and migrate) the service's database; blocking, call it from a thread."""
        tz = ZoneInfo(city_factors(settings).timezone)
        url = settings.effective_health_database_url
        engine, closers = open_service_database(settings, url, store.CHAIN, "health", app_engine)
        try:
            records: MobilityRecords | None = None
            if mobility:
                core = core_engine(settings, url, engine, app_engine, closers)
                if has_mobility_tables(core):
                    records = DatabaseMobility(core)
                else:
                    log.warning("health_without_mobility_records")
        except BaseException:
            for e in closers:
                e.dispose()
            raise
        return cls(settings, engine, records, tz, _closers=closers)

    def close(self) -> None:
        for e in self._closers:
            e.dispose()
        self._closers.clear()

    def ping(self) -> dict[str, Any]:
        """The database's state; with a watch relay, whether it is listening (``events``: the
        API works without it, so it does not make the service unready)."""
        check = db.ping(self.engine)
        if self.relay is not None:
            check = {**check, "events": "listening" if self.relay.listening else "connecting"}
        return check

    # --- active travel -------------------------------------------------------------------------
    def active_legs(self, user_id: str, now: dt.datetime | None = None) -> list[activity.ActiveLeg]:
        """Walking and cycling legs of the user's completed booked trips."""
        if self.mobility is None:
            return []
        now = now or dt.datetime.now(dt.UTC)
        completed = {str(r["ride_id"]) for r in self.mobility.completed_rides(user_id)}
        out: list[activity.ActiveLeg] = []
        for trip in self.mobility.confirmed_trips(user_id):
            if any(str(r.get("ride_id")) not in completed for r in trip["legs"]):
                continue  # a ride not completed (yet): not a completed trip
            legs = activity.active_legs(trip["itinerary"])
            itinerary_legs = trip["itinerary"].get("legs") or []
            try:
                end_s = float(itinerary_legs[-1]["endTime"]) / 1000.0
            except (IndexError, KeyError, TypeError, ValueError):
                continue
            if end_s > now.timestamp():
                continue  # not over yet
            out += legs
        out.sort(key=lambda leg: leg.start)
        return out


class WatchRelay:
    """Tells watchers when a watched resident's booked ride was completed or missed.

    It listens to the dispatcher's ride events (``user.<id>.ride``, status ``completed`` or
    ``no_show``) on the main process's bus; for each watcher with the resident's ``watch_over``
    consent in force it records a :class:`WatchNotice` (unique per watcher, ride and event, so
    several processes hearing the same event tell the watcher once) and publishes
    ``{"type", "residentId", "rideId", "at"}`` on ``user.<watcher>.watch`` — no place, no time
    of the ride.

    Pub/sub delivers only to listeners: each time the relay (re)subscribes — at start, after
    the bus was away — it first catches up (:meth:`catch_up`) from the core's ride records:
    rides that ended while nobody listened are told then, each watcher only of the rides that
    ended after their consent and within :data:`CATCH_UP_WINDOW`.
    """

    def __init__(self, service: HealthService, bus: Any) -> None:
        self.service = service
        self.bus = bus
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.listening = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="health-watch-relay")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                async with self.bus.subscribe(["user.*.ride"]) as sub:
                    self.listening = True
                    self._ready.set()
                    # Subscribed first, so nothing ending from now on is missed; the catch-up
                    # tells what ended while nobody listened (the notice rows deduplicate).
                    await self._catch_up_logged()
                    async for event in sub:
                        await self.handle(event.topic, event.data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus away: subscribe again
                log.warning("health_watch_relay_failed", error=type(exc).__name__)
                self._ready.set()
                await asyncio.sleep(1.0)
            finally:
                self.listening = False

    async def _catch_up_logged(self) -> None:
        try:
            told = await self.catch_up()
        except Exception as exc:  # the core's database away: live events still flow
            log.warning("health_watch_catch_up_failed", error=type(exc).__name__)
            return
        if told:
            log.info("health_watch_caught_up", notices=told)

    async def catch_up(self, now: dt.datetime | None = None) -> int:
        """Tell watchers of the rides that were completed or missed while the relay was not
        listening (read from the core's ride records; a service without them tells nothing):
        each watcher of the rides that ended after their consent was granted and within
        :data:`CATCH_UP_WINDOW`. Returns the notices recorded (already told ones are not)."""
        mobility = self.service.mobility
        if not isinstance(mobility, DatabaseMobility):
            return 0
        engine = self.service.engine
        grants = await asyncio.to_thread(store.watch_grants, engine)
        if not grants:
            return 0
        since = (now or dt.datetime.now(dt.UTC)) - CATCH_UP_WINDOW
        rides = await asyncio.to_thread(
            ended_rides_of, mobility.engine, sorted(grants), tuple(WATCHED_STATUSES), since
        )
        told = 0
        for resident, ride_id, status, at in rides:
            watchers = [w for w, granted in grants[resident].items() if granted <= at]
            data = {"type": "ride", "ride_id": ride_id, "status": status}
            told += await self.handle(f"user.{resident}.ride", data, watchers)
        return told

    async def handle(
        self, topic: str, data: dict[str, Any], watchers: list[str] | None = None
    ) -> int:
        """Relay one ride event (to ``watchers``, by default every watcher with the resident's
        consent in force); the number of watchers told."""
        kind = WATCHED_STATUSES.get(str(data.get("status", "")))
        parts = topic.split(".")
        if kind is None or data.get("type") != "ride" or len(parts) != 3:
            return 0
        resident, ride_id = parts[1], str(data.get("ride_id", ""))
        if not ride_id:
            return 0
        engine = self.service.engine
        if watchers is None:
            watchers = await asyncio.to_thread(store.watchers_of, engine, resident)
        told = 0
        for watcher in watchers:
            notice = WatchNotice(
                watcher_id=watcher, resident_id=resident, ride_id=ride_id, event=kind
            )
            if not await asyncio.to_thread(store.add_notice, engine, notice):
                continue
            await self.bus.publish(
                watch_topic(watcher),
                {
                    "type": kind,
                    "residentId": resident,
                    "rideId": ride_id,
                    "at": notice.at.isoformat(),
                },
            )
            told += 1
        return told


async def start_health(services: Any) -> None:
    """Start-up hook of the main process: ``services.health`` (and the watch relay)."""
    service = await asyncio.to_thread(HealthService.build, services.settings, services.engine)
    service.bus = services.bus
    service.dispatch_of = lambda: getattr(services, "dispatch", None)
    services.health = service
    relay: WatchRelay | None = None
    if services.bus is not None:
        relay = WatchRelay(service, services.bus)
        await relay.start()
        service.relay = relay

    async def stop() -> None:
        if relay is not None:
            await relay.stop()
        service.close()

    async def ready() -> dict[str, Any]:
        return await asyncio.to_thread(service.ping)

    services.on_stop.append(stop)
    services.readiness["health"] = ready
    log.info("health_started", own_database=bool(service._closers))


#: How long a standalone service's start waits for Redis before serving without it (it keeps
#: trying in the background).
BUS_CONNECT_WAIT_S = 10.0


async def start_standalone_relay(
    service: HealthService, settings: Settings
) -> Callable[[], Awaitable[None]]:
    """Start-up hook of ``tsunagu serve --service health``: join the Redis event bus the core
    publishes ride events on (``REDIS_URL``, ``TSUNAGU_REDIS_PREFIX`` as the app's processes)
    and run the :class:`WatchRelay` on it. Without ``REDIS_URL`` there is no bus to join: ride
    notices then need the main process (logged once).

    Redis away at start does not stop the service: the checkups, consents and the watcher's
    page work without it, so the bus is connected in the background (retrying every 2 s) and
    ``/readyz`` reports ``events: connecting`` meanwhile. Ride events published while the
    service is not connected are not replayed (pub/sub); notices already recorded stay on the
    watcher's page.
    """
    from app.events import create_event_bus

    if not settings.redis_url:
        log.warning("health_standalone_without_events", reason="REDIS_URL not set")

        async def nothing() -> None:
            return None

        return nothing
    bus = create_event_bus(settings)
    relay = WatchRelay(service, bus)
    service.bus, service.relay = bus, relay

    async def connect() -> None:
        while True:
            try:
                await bus.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the API serves meanwhile
                log.warning("health_event_bus_unavailable", error=type(exc).__name__)
                await asyncio.sleep(2.0)
        await relay.start()

    task = asyncio.create_task(connect(), name="health-event-bus-connect")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), timeout=BUS_CONNECT_WAIT_S)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await relay.stop()
        await bus.close()

    return stop


def create_health_app(settings: Settings | None = None) -> FastAPI:
    """The health service on its own: its router, health checks, nothing else."""
    from app.health.api import router
    from app.secondary import create_standalone_app
    from app.settings import get_settings

    return create_standalone_app(
        settings or get_settings(),
        name="health",
        title="Tsunagu health",
        router=router,
        build=HealthService.build,
        on_start=start_standalone_relay,
    )
