"""Demand for the simulator: generated (Poisson over a zone) or read from a CSV file.

The requests CSV (``tsunagu simulate --requests`` / ``--write-requests``, the same options of
``python -m bench.simulate``) has a header row and one request a row, in any column order:

``request_id``
    Unique text id of the request.
``requested_at``
    When the rider books, seconds after the service day's midnight (local time of the zones).
``earliest_pickup``
    Earliest pick-up the rider asks for, seconds after midnight (empty: as soon as booked).
``origin_lat``, ``origin_lon``, ``destination_lat``, ``destination_lon``
    Trip ends in WGS84 degrees.
``seats``, ``wheelchairs``
    Seats and wheelchair places the party needs (non-negative integers, at least one place).

Further columns are ignored. Writing then reading a day gives the same requests (floats are
written in full precision), so a replayed day reproduces the generated run.
"""

from __future__ import annotations

import csv
import math
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

#: The CSV columns in one line, for ``--help`` texts.
CSV_HELP = (
    "CSV columns: request_id, requested_at and earliest_pickup (seconds after midnight; "
    "earliest_pickup may be empty: as soon as booked), origin_lat, origin_lon, "
    "destination_lat, destination_lon (degrees), seats, wheelchairs"
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


def _number(row: dict[str | None, str | None], column: str, where: str) -> float:
    """The finite number in ``column`` (``ValueError`` naming the line and column)."""
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = repr(text) if text else "an empty value"
        raise ValueError(f"{where}: column {column!r}: {shown} is not a finite number")
    return value


def _count(row: dict[str | None, str | None], column: str, where: str) -> int:
    """The non-negative integer in ``column`` (``ValueError`` naming the line and column)."""
    text = (row.get(column) or "").strip()
    if not text.isdigit():
        shown = repr(text) if text else "an empty value"
        raise ValueError(f"{where}: column {column!r}: {shown} is not a non-negative integer")
    return int(text)


def _point(row: dict[str | None, str | None], prefix: str, where: str) -> tuple[float, float]:
    lat = _number(row, f"{prefix}_lat", where)
    lon = _number(row, f"{prefix}_lon", where)
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"{where}: column '{prefix}_lat': {lat} is not a latitude")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"{where}: column '{prefix}_lon': {lon} is not a longitude")
    return (lat, lon)


def _parse_row(row: dict[str | None, str | None], where: str) -> RideRequest:
    """One CSV row as a request; ``ValueError`` naming the line and the faulty column."""
    if row.get(None):  # csv.DictReader keeps the values beyond the header under None
        raise ValueError(f"{where}: more values than the header has columns")
    request_id = (row.get("request_id") or "").strip()
    if not request_id:
        raise ValueError(f"{where}: column 'request_id': an empty value is not an id")
    requested_at = _number(row, "requested_at", where)
    earliest = (
        _number(row, "earliest_pickup", where)
        if (row.get("earliest_pickup") or "").strip()
        else None
    )
    if earliest is not None and earliest < requested_at:
        raise ValueError(
            f"{where}: column 'earliest_pickup': {earliest} is before requested_at {requested_at}"
        )
    origin = _point(row, "origin", where)
    destination = _point(row, "destination", where)
    seats = _count(row, "seats", where)
    wheelchairs = _count(row, "wheelchairs", where)
    if seats + wheelchairs == 0:
        raise ValueError(f"{where}: columns 'seats' and 'wheelchairs': the party has no one")
    return RideRequest(
        origin=origin,
        destination=destination,
        requested_at=requested_at,
        earliest_pickup=earliest,
        seats=seats,
        wheelchairs=wheelchairs,
        request_id=request_id,
        user_id=f"csv-{request_id}",
    )


def read_requests_csv(path: Path) -> list[RideRequest]:
    """Requests from a CSV with the columns of :data:`CSV_FIELDS` (see the module docstring),
    sorted by booking time then id.

    Raises
    ------
    ValueError
        When the file is missing or unreadable, has no header, lacks a column, or a row has a
        bad value (naming the line and the column) or repeats a request id.
    """
    out: list[RideRequest] = []
    seen: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise ValueError(f"{path.name}: empty file, expected a header with {CSV_FIELDS}")
            missing = set(CSV_FIELDS) - {c.strip() for c in reader.fieldnames}
            if missing:
                raise ValueError(f"{path.name}: missing columns {sorted(missing)}")
            reader.fieldnames = [c.strip() for c in reader.fieldnames]
            for row in reader:
                # line_num counts physical lines, so quoted multi-line values keep it right.
                where = f"{path.name}:{reader.line_num}"
                r = _parse_row(row, where)
                if r.request_id in seen:
                    raise ValueError(
                        f"{where}: column 'request_id': {r.request_id!r} repeats line "
                        f"{seen[r.request_id]}"
                    )
                seen[r.request_id] = reader.line_num
                out.append(r)
    except FileNotFoundError as exc:
        raise ValueError(f"no such requests file: {path}") from exc
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read the requests file {path}: {exc}") from exc
    out.sort(key=lambda r: (r.requested_at, r.request_id))
    return out
