"""The dispatch gateway of one process (no ``REDIS_URL``): :class:`LocalGateway`.

A command flows API route -> :class:`LocalGateway` -> this process's ``Dispatcher`` (in a worker
thread, through the zone owner's own code path ``dispatch.scale_out.handle`` where the cluster
uses it) -> saved to the database (:func:`persist`) -> answered. Nothing is queued, so nothing
is lost between the owner and the asker; the answers and errors are those of
:mod:`app.dispatch.gateway`, the same as scaled out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from app.dispatch.gateway import (
    Booked,
    VehicleEvents,
    dispatch_error,
    merge_rides,
    rejection_error,
    vehicle_view,
)
from app.dispatch.store import ride_history, save_zones
from app.errors import ApiError
from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.request import RideRequest
from dispatch.rides import Rejection, Ride
from dispatch.scale_out import handle
from dispatch.vehicle import Vehicle
from dispatch.zone import ServiceZone

log = structlog.get_logger("tsunagu.dispatch.gateway")


async def persist(services: Any, zone_ids: list[str] | None = None) -> None:
    """Save the dispatcher's zones (``zone_ids``, or all) and rides; a failed save is logged
    (the next one retries) and never fails the caller's request.

    In cluster mode (``services.dispatch`` is an ``app.dispatch.cluster_gateway.ClusterGateway``) only
    the zones this process owns are saved, under their leases: another process's rows are
    never overwritten nor deleted.
    """
    worker = getattr(getattr(services, "dispatch", None), "worker", None)
    if worker is not None:
        await worker.save_owned()
        return
    d = getattr(services, "dispatcher", None)
    engine = getattr(services, "engine", None)
    if d is None or engine is None:
        return
    try:
        await asyncio.to_thread(save_zones, engine, d, zone_ids)
    except Exception as exc:
        log.warning("dispatch_save_failed", zones=zone_ids, error=repr(exc))


class LocalGateway(VehicleEvents):
    """Direct calls on this process's dispatcher, saved after each change (no Redis)."""

    def __init__(self, services: Any, dispatcher: Dispatcher) -> None:
        self.services = services
        self.dispatcher = dispatcher

    def now(self) -> float:
        return float(self.dispatcher.clock())

    async def quote(self, request: RideRequest) -> dict[str, Any]:
        q = await asyncio.to_thread(self.dispatcher.quote, request)
        if isinstance(q, Rejection):
            raise rejection_error(q)
        return q.to_dict()

    async def quotes(self, requests: list[RideRequest]) -> list[dict[str, Any] | ApiError]:
        out: list[dict[str, Any] | ApiError] = []
        for r in requests:
            try:
                out.append(await self.quote(r))
            except ApiError as exc:
                out.append(exc)
        return out

    async def _booked(self, res: Ride | Rejection) -> Booked:
        if isinstance(res, Rejection):
            raise rejection_error(res)
        await persist(self.services, [res.zone_id])  # the booking survives a restart
        return Booked(201, res.to_dict())

    async def book_quote(self, quote_id: str, user_id: str) -> Booked:
        return await self._booked(await asyncio.to_thread(self.dispatcher.book, quote_id, user_id))

    async def book_request(self, request: RideRequest) -> Booked:
        d = self.dispatcher
        return await self._booked(await asyncio.to_thread(d.request_ride, request, request.user_id))

    async def ride(self, ride_id: str) -> tuple[str, dict[str, Any]] | None:
        r = self.dispatcher.ride(ride_id)
        return None if r is None else (r.user_id, r.to_dict())

    async def rides_of(self, user_id: str) -> list[dict[str, Any]]:
        live = [r.to_dict() for r in self.dispatcher.rides(user_id)]
        saved: list[dict[str, Any]] = []
        engine = getattr(self.services, "engine", None)
        if engine is not None:
            saved = await asyncio.to_thread(ride_history, engine, user_id)
        return merge_rides(live, saved)

    async def cancel(
        self, ride_id: str, found: tuple[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        del found  # the live ride is read by the dispatcher itself (no look-up to save)
        try:
            ride = await asyncio.to_thread(self.dispatcher.cancel, ride_id)
        except DispatchError as exc:
            raise ApiError(409, exc.code, exc.message) from exc
        await persist(self.services, [ride.zone_id])
        return ride.to_dict()

    async def move_pickup(self, ride_id: str, earliest_pickup: float) -> dict[str, Any]:
        try:
            res = await asyncio.to_thread(self.dispatcher.move_pickup, ride_id, earliest_pickup)
        except DispatchError as exc:
            raise ApiError(
                404 if exc.code == "unknown_ride" else 409, exc.code, exc.message
            ) from exc
        if isinstance(res, Rejection):
            raise rejection_error(res)
        await persist(self.services, [res.zone_id])
        return res.to_dict()

    async def zones(self) -> list[ServiceZone]:
        return self.dispatcher.zones()

    async def add_zone(self, zone: ServiceZone) -> None:
        try:
            self.dispatcher.add_zone(zone)
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc
        await persist(self.services, [zone.zone_id])

    async def vehicles(self, zone_id: str | None) -> list[dict[str, Any]]:
        d = self.dispatcher
        try:
            return [vehicle_view(d, v) for v in d.vehicles(zone_id)]
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc

    async def vehicle(self, vehicle_id: str) -> dict[str, Any]:
        try:
            return vehicle_view(self.dispatcher, self.dispatcher.vehicle(vehicle_id))
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc

    async def add_vehicle(self, vehicle: Vehicle) -> dict[str, Any]:
        try:
            self.dispatcher.add_vehicle(vehicle)
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc
        await persist(self.services, [vehicle.zone_id])
        return vehicle_view(self.dispatcher, vehicle)

    async def _vehicle_event(self, msg: dict[str, Any]) -> dict[str, Any]:
        d = self.dispatcher
        out = await asyncio.to_thread(handle, d, msg)  # the owner's code path in cluster mode
        if "error" in out:
            raise dispatch_error(str(out["error"]), str(out.get("message", "")))
        v = d.vehicle(str(msg["vehicle_id"]))
        if msg["type"] != "position":  # positions are saved periodically; statuses at once
            await persist(self.services, [v.zone_id])
        return vehicle_view(d, v)

    # --- a dispatcher's console (app.api.dispatcher) -------------------------------------------
    async def live_rides(self) -> list[dict[str, Any]]:
        """Every ride the dispatcher holds, as ``Ride.to_dict`` with its ``user_id``."""
        return [{**r.to_dict(), "user_id": r.user_id} for r in self.dispatcher.rides()]

    async def zone_of_vehicle(self, vehicle_id: str) -> str:
        try:
            return self.dispatcher.vehicle(vehicle_id).zone_id
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc

    async def command(
        self, zone_id: str, msg: dict[str, Any], action_id: str | None = None
    ) -> dict[str, Any]:
        """Apply a console command (``dispatch.scale_out.CONSOLE_OPS``, ``cancel``) through
        the zone owner's code path; its outcome (``rejected`` / ``error`` keys included).
        In one process nothing is lost between the owner and the asker: a retry under the
        same ``Idempotency-Key`` is answered by the idempotency layer (``app.idempotency``)."""
        out = await asyncio.to_thread(handle, self.dispatcher, msg)
        if "error" not in out and "rejected" not in out:
            await persist(self.services, [zone_id])
        return out
