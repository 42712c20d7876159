"""The trip sweeper: a background pass every ``trip_sweep_interval_s`` in every process.

Each pass, in any process (the state is in the database, so a crashed process's trips are
swept by the others):

1. PENDING trips past ``expires_at`` (an unconfirmed hold, or a booking a crash left
   unfinished) are claimed by one conditional UPDATE each (``store.claim_expired``: exactly one
   process wins a row), become EXPIRED, and their rides are cancelled (an unknown ride is fine:
   the process may have died before booking it);
2. trips whose seats could not all be given back yet (``release_pending``: the dispatcher was
   busy, a process died mid-release) are claimed for a while and released again;
3. PENDING trips with a leg the cluster gateway queued (202) are settled from their rides.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from app.models.identity import utcnow
from app.trips import store
from app.trips.service import RELEASE_LEASE_S, TripService

if TYPE_CHECKING:
    from app.services import Services

log = structlog.get_logger("tsunagu.trips.sweeper")


async def sweep_once(service: TripService) -> int:
    """One pass (see the module docstring); the number of trips this process acted on."""
    engine = service.engine
    acted = 0
    now = utcnow()
    for trip_id in await asyncio.to_thread(store.expired_ids, engine, now):
        if await asyncio.to_thread(store.claim_expired, engine, trip_id, now, RELEASE_LEASE_S):
            trip = await service.get(trip_id)
            await service.release(trip)
            await service.publish(await service.get(trip_id), reason="expired")
            acted += 1
    now = utcnow()
    for trip_id in await asyncio.to_thread(store.release_ids, engine, now):
        if await asyncio.to_thread(store.claim_release, engine, trip_id, now, RELEASE_LEASE_S):
            await service.release(await service.get(trip_id))
            acted += 1
    for trip_id in await asyncio.to_thread(store.unresolved_ids, engine):
        trip = await service.get(trip_id)
        if any(r["booking"] == "pending" for r in trip.legs):
            await service.resolve(trip)
            acted += 1
    return acted


async def run_sweeper(service: TripService, interval_s: float) -> None:
    """Sweep every ``interval_s`` until cancelled; a failed pass is logged, not fatal."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            acted = await sweep_once(service)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database away for a moment: the next pass retries
            log.exception("trip_sweep_failed")
        else:
            if acted:
                log.info("trips_swept", trips=acted)


async def start_trip_sweeper(services: Services) -> None:
    """Start-up hook: run the sweeper for as long as the app runs."""
    service = TripService(services)
    task = asyncio.create_task(
        run_sweeper(service, services.settings.trip_sweep_interval_s), name="trip-sweeper"
    )

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    services.on_stop.append(stop)
