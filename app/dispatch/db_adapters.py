"""The database behind the zone owners of a scaled-out city (``dispatch.scale_out`` protocols).

``dispatch.scale_out.ZoneWorker`` knows its zones' catalog, their saved states and the
finished rides only through small protocols; these are their PostgreSQL (or SQLite)
implementations over :mod:`app.dispatch.store`: :class:`DbCatalog` (which zones exist),
:class:`DbZoneStore` (a zone's state, saved under its owner's epoch) and
:class:`DbRideHistory` (rides that have left the live state). In the flow of a command
(:mod:`app.dispatch.gateway`) they are the owner's save, between applying a batch and
recording its outcomes.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from app.dispatch.store import (
    catalog_zones,
    delete_zone,
    save_zones,
    saved_rides,
    take_zone_state,
)
from dispatch.dispatcher import Dispatcher
from dispatch.zone import ServiceZone

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class DbZoneStore:
    """Zone states in ``dispatch_zone_states`` (+ ``dispatch_rides``), one transaction a save,
    fenced: loading a zone (taking it over) bumps its epoch, and a save by an owner whose epoch
    is no longer the row's fails (``StaleZoneError``) instead of overwriting its successor."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.epochs: dict[str, int] = {}
        # Saves in threads of their own, not queued in asyncio's default pool (6 threads on 2
        # cores) behind the process's quotes and look-ups: a zone's commands wait for them.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zone-saves")

    async def load(self, zone_id: str) -> str | None:
        epoch, state = await asyncio.to_thread(take_zone_state, self.engine, zone_id)
        self.epochs[zone_id] = epoch
        return state

    async def save(self, d: Dispatcher, zone_id: str) -> None:
        # Finished rides leave the owner's live state once saved (DbRideHistory has them).
        epochs = {zone_id: self.epochs.get(zone_id, -1)}
        save = functools.partial(save_zones, self.engine, d, [zone_id], epochs, drop_finished=True)
        await asyncio.get_running_loop().run_in_executor(self._pool, save)

    async def delete(self, zone_id: str, instance: str | None) -> bool:
        epoch = self.epochs.get(zone_id, -1)
        return await asyncio.to_thread(delete_zone, self.engine, zone_id, epoch, instance)


class DbRideHistory:
    """The zone owner's :class:`dispatch.scale_out.RideHistory`: ``dispatch_rides``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def rides(self, ride_ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        return await asyncio.to_thread(saved_rides, self.engine, ride_ids)


class DbCatalog:
    """The zone catalog: every row of ``dispatch_zone_states`` but ``skip`` (definitions are
    parsed once per process; a re-read fetches only the ids and the new rows)."""

    def __init__(self, engine: Engine, skip: frozenset[str] = frozenset()) -> None:
        self.engine = engine
        self.skip = skip
        self._zones: dict[str, ServiceZone] = {}

    async def zones(self) -> list[ServiceZone]:
        ids, new = await asyncio.to_thread(catalog_zones, self.engine, set(self._zones))
        # A zone gone from the table is forgotten: added again, its definition is read anew.
        self._zones = {i: z for i, z in self._zones.items() if i in ids}
        self._zones.update((z.zone_id, z) for z in new)
        return [self._zones[i] for i in ids if i in self._zones and i not in self.skip]
