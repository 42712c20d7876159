"""What a zone's save shows of a command whose reply and recorded outcome were both lost.

A command flows API route -> :mod:`app.dispatch.cluster_gateway` -> the zone's stream -> its
owner, which saves the zone (:mod:`app.dispatch.db_adapters`), then records the outcome and
replies (:mod:`app.dispatch.zone_owner`). The owner records every outcome before anything else
shows it, so a command without a recorded outcome was at most saved, by an owner that died
before recording it (the next owner handles it again). The asker, its reply timed out and no
record found, looks here for what the save shows before it answers 202 or 503: a booking's
ride, a vehicle event's trace in its ride's history, a new vehicle, a console action's effect.
Every function is synchronous (it reads the database): call it in a worker thread, except
:func:`booking_outcome`, which hands its read to one itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.dispatch.gateway import vehicle_view
from app.dispatch.store import load_zone_state, saved_ride
from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.scale_out import restore_zone
from dispatch.zone import ServiceZone

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: The ride status a vehicle event leaves in the ride's history (at the event's time).
EVENT_STATUS = {"boarded": "onboard", "alighted": "completed", "no_show": "no_show"}


@dataclass(frozen=True)
class SavedZone:
    """Where a zone's last save is read from, and into what.

    Parameters
    ----------
    engine
        The database of the zones' saves.
    zone_id, zone
        The zone and its definition (None: not in this process's catalog, nothing to read).
    scratch
        An empty dispatcher to restore the saved state into (the asker's travel model, rules
        and clock, so the ETAs match the owner's).
    """

    engine: Engine
    zone_id: str
    zone: ServiceZone | None
    scratch: Callable[[], Dispatcher]

    def restored(self) -> Dispatcher | None:
        """The zone's saved state in a scratch dispatcher; None when there is none."""
        if self.zone is None:
            return None
        text = load_zone_state(self.engine, self.zone_id)
        if text is None:
            return None
        d = self.scratch()
        restore_zone(d, self.zone, text)
        return d


async def booking_outcome(engine: Engine, request_id: str, user_id: str) -> dict[str, Any] | None:
    """The saved ride of a booking (the ride id is the request id), None if not saved (a
    refusal saves nothing: it is recorded with the outcome)."""
    saved = await asyncio.to_thread(saved_ride, engine, request_id)
    if saved is not None and saved[0] == user_id:
        return {"ride": saved[1]}
    return None


def vehicle_outcome(saved: SavedZone, data: dict[str, Any]) -> dict[str, Any] | None:
    """A vehicle command (``add_vehicle`` or ``vehicle_event`` ``data``) without a recorded
    outcome, looked up in its zone's ``saved`` state.

    Returns
    -------
    dict or None
        ``{"vehicle_id", "vehicle"}`` (the vehicle's view, ETAs from now); None when the save
        does not show the command done. A status event is recognised by the entry it leaves
        in its ride's history (status at the event's time) or, for one that ended the ride
        (which then left the live state), by the ride's saved record (:func:`ended_by`); a new
        vehicle by its presence (its id was free when asked). Arrivals and positions leave no
        such trace: never recognised.
    """
    op = data.get("op")
    if op == "vehicle_event" and data.get("type") not in EVENT_STATUS:
        return None
    d = saved.restored()
    if d is None:
        return None
    if op == "add_vehicle":
        vid = str(data["vehicle"]["vehicle_id"])
    elif op == "vehicle_event":
        vid = str(data["vehicle_id"])
        rid, t = str(data["ride_id"]), float(data["t"])
        ride = d.ride(rid)
        entry = (t, EVENT_STATUS[str(data["type"])])
        if ride is not None and entry not in ride.history:
            return None
        if ride is None and not ended_by(saved.engine, rid, entry):
            return None
    else:
        return None
    try:
        return {"vehicle_id": vid, "vehicle": vehicle_view(d, d.vehicle(vid))}
    except DispatchError:  # not (or no longer) in the saved state
        return None


def ended_by(engine: Engine, ride_id: str, entry: tuple[float, str]) -> bool:
    """Whether the saved record of a ride no longer live shows the end ``entry`` (time,
    status) gave it: completed at its drop-off time, or a no-show."""
    saved = saved_ride(engine, ride_id)
    if saved is None or saved[1].get("status") != entry[1]:
        return False
    return entry[1] != "completed" or saved[1].get("dropped_off_at") == entry[0]


def console_outcome(saved: SavedZone, msg: dict[str, Any]) -> dict[str, Any] | None:
    """A console command ``msg`` without a recorded outcome, looked up in what the zone's owner
    ``saved``: a ride reassigned to the vehicle asked for, marked a no-show or cancelled; a
    vehicle whose service state is the one asked for (its view; which rides moved is not
    saved: none listed). None when the save does not show it."""
    op = msg.get("op")
    if op in ("reassign", "mark_no_show", "cancel"):
        found = saved_ride(saved.engine, str(msg["ride_id"]))
        if found is None:
            return None
        ride = found[1]
        done = {
            "reassign": ride.get("status") == "assigned"
            and ride.get("vehicle_id") == msg.get("vehicle_id"),
            "mark_no_show": ride.get("status") == "no_show",
            "cancel": ride.get("status") == "cancelled",
        }[str(op)]
        return (
            {"ride_id": ride["ride_id"], "status": ride["status"], "ride": ride} if done else None
        )
    if op != "vehicle_service":
        return None
    d = saved.restored()
    if d is None:
        return None
    vid = str(msg["vehicle_id"])
    try:
        v = d.vehicle(vid)
    except DispatchError:
        return None
    if v.in_service != (msg.get("action") == "in_service"):
        return None
    return {
        "vehicle_id": vid,
        "moved": {},
        "cancelled": [],
        "vehicle": vehicle_view(d, v),
    }
