"""Key figures of a simulated day."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dispatch.rides import Rejection, Ride, RideStatus


@dataclass
class Kpis:
    """Service and efficiency figures (times in minutes, distances in km)."""

    requests: int = 0
    served: int = 0
    service_rate: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)
    mean_wait_min: float = 0.0
    p95_wait_min: float = 0.0
    mean_detour: float = 0.0
    vehicle_km: float = 0.0
    empty_km_share: float = 0.0
    passengers_per_vehicle_hour: float = 0.0
    reoptimisations_applied: int = 0
    rebalancing_moves: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_kpis(
    rides: list[Ride],
    rejections: list[Rejection],
    vehicle_km: float,
    empty_km: float,
    vehicle_hours: float,
    reopt_applied: int = 0,
) -> Kpis:
    """Figures from the rides of a finished simulation."""
    done = [r for r in rides if r.status is RideStatus.COMPLETED]
    waits = np.array(
        [(r.picked_up_at or 0.0) - r.request.departure for r in done], dtype=np.float64
    )
    detours = np.array(
        [((r.dropped_off_at or 0.0) - (r.picked_up_at or 0.0)) / max(r.direct_s, 1.0) for r in done]
    )
    n = len(rides) + len(rejections)
    pax = sum(r.request.seats + r.request.wheelchairs for r in done)
    return Kpis(
        requests=n,
        served=len(done),
        service_rate=len(done) / n if n else 0.0,
        rejected=dict(Counter(j.reason.value for j in rejections)),
        mean_wait_min=float(waits.mean() / 60) if len(waits) else 0.0,
        p95_wait_min=float(np.percentile(waits, 95) / 60) if len(waits) else 0.0,
        mean_detour=float(detours.mean()) if len(detours) else 0.0,
        vehicle_km=vehicle_km,
        empty_km_share=empty_km / vehicle_km if vehicle_km else 0.0,
        passengers_per_vehicle_hour=pax / vehicle_hours if vehicle_hours else 0.0,
        reoptimisations_applied=reopt_applied,
    )
