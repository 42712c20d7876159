"""Wires the on-demand dispatcher into the app: ``Services.dispatcher`` and its event sink.

The dispatcher (``dispatch.dispatcher.Dispatcher``) is synchronous and thread-safe (a lock per
zone); routes call it in a worker thread so a quote never blocks the event loop. Its events go
to the app's event bus (topics ``fleet.vehicle.<id>`` and ``user.<user_id>.ride``) through
:class:`BusEventSink`, which hands each publish to the loop without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from app.dispatch.cluster_gateway import start_cluster
from app.dispatch.demo_fleet import DEFAULT_SPEC
from app.dispatch.local_gateway import LocalGateway, persist
from app.dispatch.store import restore_zones
from dispatch.dispatcher import Dispatcher
from dispatch.reoptimize import ReoptimizationLoop
from dispatch.request import ServiceRules
from dispatch.street_times import street_travel_times
from dispatch.travel_times import StraightLineTravelTimes, TravelTimes
from routing.street import StreetError

if TYPE_CHECKING:
    from app.services import Services
    from app.settings import Settings

log = structlog.get_logger("tsunagu.dispatch")


class BusEventSink:
    """Publishes dispatcher events on the app's event bus from any thread."""

    def __init__(self, bus: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.bus = bus
        self.loop = loop

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.bus is None or self.loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.loop.create_task(self._send(topic, payload))
        else:
            asyncio.run_coroutine_threadsafe(self._send(topic, payload), self.loop)

    async def _send(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            await self.bus.publish(topic, payload)
        except Exception as exc:  # a lost live event must never break dispatch
            log.warning("dispatch_event_failed", topic=topic, error=type(exc).__name__)


def dispatch_travel_times(settings: Settings) -> TravelTimes:
    """Driving times on the OSM graph of ``settings.osm_path`` when it is set and readable
    (``dispatch.street_times``; points off the network fall back to straight lines there), else
    the straight-line model (great-circle x 1.3)."""
    path = settings.osm_path
    if path:
        try:
            travel = street_travel_times(Path(path))
        except (StreetError, OSError, ValueError) as exc:  # no usable extract: straight lines
            log.warning("dispatch_osm_unusable", path=str(path), error=str(exc))
        else:
            log.info("dispatch_travel_times", model="osm_drive", path=str(path))
            return travel
    return StraightLineTravelTimes(1.3)


def build_dispatcher(services: Services, loop: asyncio.AbstractEventLoop) -> Dispatcher:
    """A dispatcher on :func:`dispatch_travel_times`, publishing on the app's bus.

    It starts with no zone: zones come from published GTFS-Flex feeds (``app.feeds``), from
    operators (``/api/fleet``), or with ``settings.demo`` from ``app.dispatch.demo_fleet``, which derives
    the demo zone from the published Muroran network (one mechanism, no hand-drawn stand-in).
    """
    travel = dispatch_travel_times(services.settings)
    return Dispatcher(
        travel,
        ServiceRules(),
        BusEventSink(services.bus, loop),
        speeds=services.settings.speed_windows,
    )


async def _save_periodically(services: Services, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await persist(services)


async def start_dispatcher(services: Services) -> None:
    """Start-up hook: put the dispatcher on ``services.dispatcher`` and the API's door to it
    on ``services.dispatch`` (``app.dispatch.gateway``): with ``redis_url`` the zones are
    shared by every process (cluster mode, ``app.dispatch.cluster_gateway``), else this
    process serves them all (``app.dispatch.local_gateway``)."""
    settings = services.settings
    loop = asyncio.get_running_loop()
    # The demo zone is served only while the demo fleet is on (its bookings stay in the
    # residents' history either way).
    skip = () if settings.demo and settings.demo_fleet else (DEFAULT_SPEC.zone_id,)
    cluster = bool(settings.redis_url) and services.bus is not None
    if cluster:
        gateway = await start_cluster(
            services, lambda: build_dispatcher(services, loop), frozenset(skip)
        )
        services.dispatch = gateway
        services.dispatcher = gateway.dispatcher

        async def stop_cluster() -> None:
            await gateway.close()

        services.on_stop.append(stop_cluster)
    else:
        services.dispatcher = build_dispatcher(services, loop)
        services.dispatch = LocalGateway(services, services.dispatcher)
    if services.engine is not None and not cluster:  # cluster: the worker restores owned zones
        await asyncio.to_thread(restore_zones, services.engine, services.dispatcher, skip)
        saver = asyncio.create_task(
            _save_periodically(services, settings.dispatch_persist_interval_s)
        )

        async def stop_saving() -> None:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saver
            await persist(services)

        services.on_stop.append(stop_saving)
    if settings.dispatch_reopt_interval_s > 0:
        # In cluster mode the dispatcher holds only the owned zones: only their owner
        # re-optimises them (a zone released mid-pass fails that zone's pass, logged).
        reopt = ReoptimizationLoop(
            services.dispatcher,
            interval_s=settings.dispatch_reopt_interval_s,
            time_limit_s=settings.dispatch_reopt_time_limit_s,
            # OR-Tools holds the GIL while it searches: in this process it would freeze the
            # event loop (quotes, bookings) for the whole pass.
            isolate=True,
        )
        reopt.start()

        async def stop_loop() -> None:
            await asyncio.to_thread(reopt.stop)

        services.on_stop.append(stop_loop)

    async def readiness() -> dict[str, Any]:
        d: Dispatcher = services.dispatcher
        out: dict[str, Any] = {"ok": True, "zones": len(d.zones()), "vehicles": len(d.vehicles())}
        worker = getattr(services.dispatch, "worker", None)
        if worker is not None:  # cluster mode: this process's share
            out.update(mode="cluster", process=worker.worker_id, owned=sorted(worker.owned))
        return out

    services.readiness["dispatch"] = readiness
