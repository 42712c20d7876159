"""Kernels compiled before the process reports ready.

The trip planner (RAPTOR, McRAPTOR) and the dispatcher's insertion quotes run numba kernels
that are compiled, or loaded from numba's on-disk cache, on their first call: seconds to over
a minute on a loaded machine with a cold cache. Left to the first request, that request pays
it (a first ``/plan`` took 13.5 s while ``/readyz`` already said ready).

:func:`warm_kernels` is the last start-up hook: it runs one quote on a throwaway dispatcher
and, on every published city's network, plans on it (depart-at, arrive-by, and the CO2
criterion, which runs McRAPTOR), building each city's planner on the way. The start-up, and
so ``/readyz``, waits for it. A failure is logged and does not stop the process (the kernels
then compile on first use, as before); ``/readyz`` shows the outcome under ``kernels``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from app.services import Services

log = structlog.get_logger("tsunagu.warm_up")


def warm_dispatcher() -> None:
    """One quote on a throwaway dispatcher: compiles the insertion kernel."""
    from dispatch.dispatcher import Dispatcher
    from dispatch.request import RideRequest
    from dispatch.travel_times import StraightLineTravelTimes
    from dispatch.vehicle import VAN, Vehicle
    from dispatch.zone import ServiceZone

    t0 = 9 * 3600.0
    d = Dispatcher(StraightLineTravelTimes(1.3), clock=lambda: t0)
    ring = [(140.95, 42.30), (141.00, 42.30), (141.00, 42.34), (140.95, 42.34), (140.95, 42.30)]
    zone = ServiceZone("warm-up", "warm-up", [[ring]])
    d.add_zone(zone)
    c = zone.centroid()
    d.add_vehicle(Vehicle("warm-up", VAN, c, 0, t0 + 11 * 3600, c, t0, zone_id="warm-up"))
    d.quote(
        RideRequest(
            origin=(42.31, 140.96),
            destination=(42.33, 140.99),
            requested_at=t0,
            earliest_pickup=t0 + 600,
        )
    )


def published_cities(feeds: Any) -> list[Any]:
    """The published networks with a timetable: the default network first, then the other
    cities by name; none without a registry."""
    if feeds is None:
        return []
    default = feeds.network
    others = [n for _, n in sorted(feeds.networks.items()) if n is not default]
    return [n for n in (default, *others) if n is not None and n.timetable is not None]


def warm_planner(np_: Any, services: Services) -> int:
    """Plan between two stops of the published network, each way the API can ask; returns
    the number of plans run."""
    from app.api.plan import realtime_days_versioned
    from routing.options import RoutingOptions
    from routing.planner import PlanPlace, PlanRequest

    tt = np_.planner.tt
    n = len(tt.stop_lat)
    if n < 2:
        return 0
    a, b = 0, n // 2
    origin = PlanPlace(lat=float(tt.stop_lat[a]), lon=float(tt.stop_lon[a]), stop=a)
    dest = PlanPlace(lat=float(tt.stop_lat[b]), lon=float(tt.stop_lon[b]), stop=b)
    day = np_.network.service_date or dt.date.today()
    rt, version = realtime_days_versioned(services, day, np_.network)
    runs = 0
    for arrive_by, co2 in ((False, False), (True, False), (False, True)):
        req = PlanRequest(
            origin,
            dest,
            day,
            (18 if arrive_by else 8) * 3600,
            arrive_by,
            RoutingOptions(optimize_co2=co2),
        )
        np_.planner.plan(req, rt, realtime_version=version)
        runs += 1
    return runs


async def warm_kernels(services: Services) -> None:
    """Start-up hook: compile the planner's and the dispatcher's kernels now."""
    outcome: dict[str, Any] = {"ok": True}
    start = time.perf_counter()
    try:
        await asyncio.to_thread(warm_dispatcher)
        outcome["dispatcher"] = True
        cities = published_cities(services.feeds)
        if cities:
            from app.api.plan import network_planner

            # Every city's planner, not only the default network's: a second city's first
            # /plan would otherwise build its planner (feed extras, fares, street transfers).
            plans = 0
            for net in cities:
                np_ = await network_planner(services, net)
                plans += await asyncio.to_thread(warm_planner, np_, services)
            outcome["plans"] = plans
            outcome["networks"] = [net.name for net in cities]
    except Exception as exc:  # an optimisation: never a reason not to serve
        log.warning("kernel_warm_up_failed", error=repr(exc))
        outcome["error"] = type(exc).__name__
    outcome["seconds"] = round(time.perf_counter() - start, 2)
    log.info("kernels_warmed_up", **outcome)

    async def check() -> dict[str, Any]:
        return outcome

    services.readiness["kernels"] = check
