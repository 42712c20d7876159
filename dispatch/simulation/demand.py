"""Demand for the simulator: generated (Poisson over a zone) or read from a CSV file."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dispatch.geo import point_distance_m
from dispatch.request import RideRequest
from dispatch.zone import ServiceZone

CSV_FIELDS = (
    "request_id",
    "requested_at",
    "earliest_pickup",
    "origin_lat",
    "origin_lon",
    "destination_lat",
    "destination_lon",
    "seats",
    "wheelchairs",
)


@dataclass(frozen=True)
class DemandModel:
    """Poisson arrivals with a spatial mix of uniform points and hotspots.

    Parameters
    ----------
    rate_per_hour
        Mean requests per hour over the whole service period.
    hotspot_share
        Share of trip ends drawn near one of ``n_hotspots`` random points (shops, stations).
    notice_s
        ``(min, max)`` seconds between booking and the requested pick-up.
    wheelchair_share, group_share
        Share of wheelchair users, and of parties of two or three.
    """

    rate_per_hour: float = 60.0
    hotspot_share: float = 0.4
    n_hotspots: int = 3
    hotspot_radius_deg: float = 0.002
    notice_s: tuple[float, float] = (0.0, 1800.0)
    wheelchair_share: float = 0.05
    group_share: float = 0.2
    min_trip_m: float = 300.0


def generate_requests(
    zone: ServiceZone, model: DemandModel, start_s: float, end_s: float, seed: int
) -> list[RideRequest]:
    """Requests whose pick-ups fall in ``[start_s, end_s)``, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    hours = (end_s - start_s) / 3600.0
    n = int(rng.poisson(model.rate_per_hour * hours))
    pickups = np.sort(rng.uniform(start_s, end_s, n))
    hot = zone.random_points(rng, model.n_hotspots)
    out: list[RideRequest] = []

    def point() -> tuple[float, float]:
        if rng.random() < model.hotspot_share:
            h = hot[rng.integers(len(hot))]
            for _ in range(20):
                p = h + rng.normal(0, model.hotspot_radius_deg, 2)
                if zone.contains(float(p[0]), float(p[1])):
                    return (float(p[0]), float(p[1]))
        p = zone.random_points(rng, 1)[0]
        return (float(p[0]), float(p[1]))

    for k, tp in enumerate(pickups):
        o = point()
        d = point()
        while point_distance_m(o, d) < model.min_trip_m:
            d = point()
        notice = float(rng.uniform(*model.notice_s))
        wc = int(rng.random() < model.wheelchair_share)
        seats = 0 if wc else (int(rng.integers(2, 4)) if rng.random() < model.group_share else 1)
        out.append(
            RideRequest(
                origin=o,
                destination=d,
                requested_at=float(tp) - notice,
                earliest_pickup=float(tp),
                seats=seats,
                wheelchairs=wc,
                user_id=f"sim-user-{k % 97}",
                request_id=f"q{k:05d}",
            )
        )
    out.sort(key=lambda r: (r.requested_at, r.request_id))
    return out


def write_requests_csv(requests: list[RideRequest], path: Path) -> None:
    """Save requests in the simulator's CSV format."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in requests:
            w.writerow(
                [
                    r.request_id,
                    r.requested_at,
                    r.departure,
                    *r.origin,
                    *r.destination,
                    r.seats,
                    r.wheelchairs,
                ]
            )


def read_requests_csv(path: Path) -> list[RideRequest]:
    """Requests from a CSV with the columns of :data:`CSV_FIELDS` (times in seconds).

    Raises
    ------
    ValueError
        On a missing column or a non-numeric value, naming the line.
    """
    out: list[RideRequest] = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = set(CSV_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path.name}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                out.append(
                    RideRequest(
                        origin=(float(row["origin_lat"]), float(row["origin_lon"])),
                        destination=(float(row["destination_lat"]), float(row["destination_lon"])),
                        requested_at=float(row["requested_at"]),
                        earliest_pickup=float(row["earliest_pickup"]),
                        seats=int(row["seats"]),
                        wheelchairs=int(row["wheelchairs"]),
                        request_id=row["request_id"],
                        user_id=f"csv-{row['request_id']}",
                    )
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path.name}:{line}: {exc}") from exc
    out.sort(key=lambda r: (r.requested_at, r.request_id))
    return out
