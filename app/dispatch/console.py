"""What the dispatcher console reads and records (``app.api.dispatcher``): the audit log,
residents found by name or telephone, rides named by the places they go between, the live
KPIs and the rides whose promise is at risk.

KPIs and risk are computed from ride dicts (``Ride.to_dict``, with ``user_id``) and vehicle
views (``app.dispatch.gateway.vehicle_view``), the shapes both gateways give, so they read the
same in one process and scaled out.
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models.audit import DispatchAuditEntry
from app.models.dispatch import RideRecord
from app.models.identity import User

#: A promise is "at risk" when the live ETA is less than this before its bound (pick-up window
#: end, latest arrival): a dispatcher still has time to act; past the bound it is "late".
AT_RISK_MARGIN_S = 120.0
#: A place is named after the nearest stop within this distance; farther, by coordinates.
PLACE_RADIUS_M = 600.0
#: Ride statuses that are still the dispatcher's business.
OPEN_STATUSES = ("pending", "assigned", "onboard")


# --- audit ------------------------------------------------------------------------------------
def write_audit(
    engine: Engine,
    *,
    actor_id: str,
    actor_email: str | None,
    action: str,
    target_kind: str,
    target_id: str,
    reason: str = "",
    outcome: str = "done",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record one action (synchronous: call in a thread); the entry as the API shows it."""
    entry = DispatchAuditEntry(
        actor_id=actor_id,
        actor_email=actor_email,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        reason=reason,
        outcome=outcome,
        details=details or {},
    )
    with Session(engine) as db:
        db.add(entry)
        db.commit()
        db.refresh(entry)
        return audit_json(entry)


async def record_action(
    engine: Engine,
    who: Any,
    action: str,
    kind: str,
    target: str,
    reason: str = "",
    outcome: str = "done",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`write_audit` of an action by the principal ``who`` (its ``user_id`` and
    ``email``), in a worker thread: the console's actions and watchers' calls alike."""
    return await asyncio.to_thread(
        write_audit,
        engine,
        actor_id=who.user_id,
        actor_email=who.email,
        action=action,
        target_kind=kind,
        target_id=target,
        reason=reason,
        outcome=outcome,
        details=details,
    )


def audit_json(e: DispatchAuditEntry) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "at": e.at.timestamp(),
        "actor_id": e.actor_id,
        "actor_email": e.actor_email,
        "action": e.action,
        "target_kind": e.target_kind,
        "target_id": e.target_id,
        "reason": e.reason,
        "outcome": e.outcome,
        "details": e.details,
    }


def read_audit(engine: Engine, limit: int, target_id: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` entries (of one target), newest first."""
    q = select(DispatchAuditEntry)
    if target_id is not None:
        q = q.where(DispatchAuditEntry.target_id == target_id)
    q = q.order_by(col(DispatchAuditEntry.at).desc()).limit(limit)
    with Session(engine) as db:
        return [audit_json(e) for e in db.exec(q).all()]


# --- residents --------------------------------------------------------------------------------
def phone_digits(phone: str) -> str:
    """A telephone number as its digits, with a leading + kept (``"0143-22-1234"`` ->
    ``"0143221234"``)."""
    digits = re.sub(r"\D", "", phone)
    return ("+" + digits) if phone.strip().startswith("+") and digits else digits


def resident_json(u: User) -> dict[str, Any]:
    return {
        "user_id": str(u.id),
        "display_name": u.display_name,
        "email": u.email,
        "phone": u.phone,
    }


def find_residents(engine: Engine, q: str, limit: int) -> list[dict[str, Any]]:
    """Enabled users whose name or e-mail contains ``q`` (any case), or whose telephone
    number contains its digits (however either was written), by name."""
    text = q.strip().lower()
    digits = re.sub(r"\D", "", q)
    conds: list[ColumnElement[bool]] = [
        # autoescape: a "%" or "_" typed by the dispatcher is a character, not a wildcard.
        col(User.display_name).icontains(text, autoescape=True),
        col(User.email).icontains(text, autoescape=True),
    ]
    if len(digits) >= 3:
        conds.append(col(User.phone).contains(digits))
    stmt = (
        select(User)
        .where(or_(*conds), col(User.disabled).is_(False))
        .order_by(col(User.display_name))
        .limit(limit)
    )
    with Session(engine) as db:
        return [resident_json(u) for u in db.exec(stmt).all()]


def users_by_id(engine: Engine, ids: set[str]) -> dict[str, User]:
    keys = []
    for i in ids:
        try:
            keys.append(uuid.UUID(i))
        except ValueError:  # an external issuer's subject: no local profile
            continue
    if not keys:
        return {}
    with Session(engine) as db:
        rows = db.exec(select(User).where(col(User.id).in_(keys))).all()
        return {str(u.id): u for u in rows}


def rides_since(engine: Engine, t0: float) -> list[dict[str, Any]]:
    """Saved rides booked at or after ``t0`` (dispatcher clock), with their ``user_id``."""
    with Session(engine) as db:
        rows = db.exec(select(RideRecord).where(col(RideRecord.booked_at) >= t0)).all()
        return [{**dict(r.ride), "user_id": r.user_id} for r in rows]


# --- places -----------------------------------------------------------------------------------
class PlaceNamer:
    """Names points after their nearest stop of the published network (both languages)."""

    def __init__(
        self,
        lats: np.ndarray,
        lons: np.ndarray,
        names_ja: list[str],
        names_en: list[str],
    ) -> None:
        ok = np.isfinite(lats) & np.isfinite(lons)
        self.lats, self.lons = lats[ok], lons[ok]
        idx = np.flatnonzero(ok)
        self.ja = [names_ja[i] for i in idx]
        self.en = [names_en[i] for i in idx]

    def name(self, lat: float, lon: float) -> dict[str, Any]:
        """``{"lat", "lon", "name_ja", "name_en", "distance_m"}``; names None when no stop is
        within :data:`PLACE_RADIUS_M`."""
        out: dict[str, Any] = {"lat": lat, "lon": lon, "name_ja": None, "name_en": None}
        if self.lats.size == 0:
            return out
        p1, p2 = math.radians(lat), np.radians(self.lats)
        dp, dl = p2 - p1, np.radians(self.lons - lon)
        a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        dist = 2 * 6371008.8 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
        k = int(np.argmin(dist))
        if dist[k] <= PLACE_RADIUS_M:
            out.update(name_ja=self.ja[k], name_en=self.en[k], distance_m=round(float(dist[k])))
        return out


# --- risk and KPIs ----------------------------------------------------------------------------
def risk_of(ride: dict[str, Any]) -> str | None:
    """``"late"`` when the live ETA already breaks the promise (pick-up after the window's
    end, or arrival after the latest arrival), ``"at_risk"`` when it is within
    :data:`AT_RISK_MARGIN_S` of doing so, else None. Only rides still to be served."""
    status = ride.get("status")
    bounds: list[tuple[float | None, float | None]] = []
    if status == "assigned":
        window = ride.get("pickup_window") or [None, None]
        bounds.append((ride.get("eta_pickup"), window[1]))
    if status in ("assigned", "onboard"):
        bounds.append((ride.get("eta_dropoff"), ride.get("latest_arrival")))
    worst: str | None = None
    for eta, bound in bounds:
        if eta is None or bound is None:
            continue
        if eta > bound:
            return "late"
        if eta > bound - AT_RISK_MARGIN_S:
            worst = "at_risk"
    return worst


def kpis(
    rides: list[dict[str, Any]], vehicles: list[dict[str, Any]], since: float
) -> dict[str, Any]:
    """The console's KPIs over the rides booked since ``since`` and the fleet now.

    ``requests``: rides booked. ``served_share``: completed / (completed + cancelled +
    no-show) of those that ended (None before any did). ``mean_wait_s``: mean of pick-up time
    minus requested pick-up time (booking time for "leave now"; arrive-by rides have none)
    over the rides picked up. ``occupancy``: passengers on board (seats and wheelchairs) over
    the capacity of the vehicles in service, now.
    """
    booked = [r for r in rides if float(r.get("booked_at") or 0.0) >= since]
    by_status: dict[str, int] = {}
    for r in booked:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    ended = sum(by_status.get(s, 0) for s in ("completed", "cancelled", "no_show"))
    waits = [
        max(0.0, float(r["picked_up_at"]) - float(r["requested_pickup"]))
        for r in booked
        if r.get("picked_up_at") is not None and r.get("requested_pickup") is not None
    ]
    onboard = {rid for v in vehicles for rid in v.get("onboard", [])}
    riding = sum(
        int(r.get("seats") or 0) + int(r.get("wheelchairs") or 0)
        for r in rides
        if r.get("ride_id") in onboard
    )
    capacity = sum(
        int(v.get("seats") or 0) + int(v.get("wheelchair_spaces") or 0)
        for v in vehicles
        if v.get("in_service", True)
    )
    return {
        "since": since,
        "requests": len(booked),
        "by_status": by_status,
        "served_share": by_status.get("completed", 0) / ended if ended else None,
        "mean_wait_s": sum(waits) / len(waits) if waits else None,
        "occupancy": riding / capacity if capacity else None,
        "passengers_onboard": riding,
        "capacity": capacity,
        "vehicles_in_service": sum(1 for v in vehicles if v.get("in_service", True)),
    }
