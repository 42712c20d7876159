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


#: Share of a day's requests per local hour (0-23): a weekday of urban ride-hailing, quiet at
#: night, a morning peak at 08:00 and a longer evening peak at 17:00-19:00 (the shape of the
#: NYC taxi hourly pick-up counts; values need not sum to 1, they are normalised).
DAILY_PROFILE: tuple[float, ...] = (
    0.8, 0.5, 0.3, 0.2, 0.2, 0.4, 1.2, 3.0, 4.6, 4.0, 3.0, 3.0,
    3.3, 3.2, 3.2, 3.6, 4.2, 5.0, 5.2, 4.4, 3.5, 2.8, 2.0, 1.4,
)  # fmt: skip


@dataclass(frozen=True)
class CityDemand:
    """A city's day: ``total`` requests over its zones, by the hour of :data:`DAILY_PROFILE`.

    Trip ends cluster: each zone has ``n_homes`` residential and ``n_works`` business
    hotspots; a ``hotspot_share`` of trip ends is drawn near one (Gaussian, ``radius_deg``),
    the rest uniformly. Before noon trips lean from homes to work places, after noon back
    (``commute_bias`` of the clustered ends follow the commute direction).
    ``prebooked_share`` of the riders book ``prebook_s`` ahead; the others want to leave
    within ``asap_notice_s`` of booking.
    """

    total: int = 50_000
    profile: tuple[float, ...] = DAILY_PROFILE
    start_s: float = 6 * 3600.0
    end_s: float = 23.5 * 3600.0
    hotspot_share: float = 0.6
    n_homes: int = 4
    n_works: int = 2
    radius_deg: float = 0.003
    commute_bias: float = 0.7
    prebooked_share: float = 0.3
    prebook_s: tuple[float, float] = (1800.0, 3 * 3600.0)
    asap_notice_s: tuple[float, float] = (0.0, 600.0)
    wheelchair_share: float = 0.03
    group_share: float = 0.15
    min_trip_m: float = 500.0


def hourly_rates(demand: CityDemand) -> np.ndarray:
    """Expected requests per hour of day (24 values) for pick-ups in the service span."""
    prof = np.asarray(demand.profile, dtype=np.float64)
    if prof.shape != (24,) or (prof < 0).any() or prof.sum() <= 0:
        raise ValueError("a daily profile has 24 non-negative weights, not all zero")
    hours = np.arange(24) * 3600.0
    # Share of each hour inside [start_s, end_s).
    inside = np.clip(
        np.minimum(hours + 3600.0, demand.end_s) - np.maximum(hours, demand.start_s), 0, 3600
    )
    w = prof * inside / 3600.0
    return demand.total * w / w.sum()


def generate_city_requests(
    zones: list[ServiceZone], weights: list[float], demand: CityDemand, seed: int
) -> list[RideRequest]:
    """A city's day of requests, each within one zone (the zone's owner serves it whole).

    Zone ``k`` gets a ``weights[k]`` share of the day. Pick-up times follow the hourly
    profile (uniform within each hour), reproducible from ``seed``. Ids are unique over the
    city; the result is sorted by booking time.
    """
    if len(zones) != len(weights) or not zones:
        raise ValueError("one weight per zone, at least one zone")
    rng = np.random.default_rng(seed)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    rates = hourly_rates(demand)
    per_hour = rng.poisson(rates)
    pickups = np.concatenate(
        [rng.uniform(max(h * 3600.0, demand.start_s), min((h + 1) * 3600.0, demand.end_s), n)
         for h, n in enumerate(per_hour) if n]
    )  # fmt: skip
    zone_of = rng.choice(len(zones), size=len(pickups), p=w)
    homes = [z.random_points(rng, demand.n_homes) for z in zones]
    works = [z.random_points(rng, demand.n_works) for z in zones]
    out: list[RideRequest] = []

    def point(z: ServiceZone, spots: np.ndarray) -> tuple[float, float]:
        if rng.random() < demand.hotspot_share:
            h = spots[rng.integers(len(spots))]
            for _ in range(20):
                p = h + rng.normal(0, demand.radius_deg, 2) * (1.0, 1.3)
                if z.contains(float(p[0]), float(p[1])):
                    return (float(p[0]), float(p[1]))
        p = z.random_points(rng, 1)[0]
        return (float(p[0]), float(p[1]))

    for k, (tp, zk) in enumerate(zip(pickups, zone_of, strict=True)):
        z = zones[zk]
        commute = rng.random() < demand.commute_bias
        morning = tp < 12 * 3600.0
        src, dst = (homes[zk], works[zk]) if morning == commute else (works[zk], homes[zk])
        o = point(z, src)
        d = point(z, dst)
        for _ in range(50):
            if point_distance_m(o, d) >= demand.min_trip_m:
                break
            d = point(z, dst if rng.random() < 0.5 else homes[zk])
        else:
            continue
        if rng.random() < demand.prebooked_share:
            notice = float(rng.uniform(*demand.prebook_s))
            earliest: float | None = float(tp)
        else:
            notice = float(rng.uniform(*demand.asap_notice_s))
            earliest = float(tp) if notice > 0 else None
        wc = int(rng.random() < demand.wheelchair_share)
        seats = 0 if wc else (int(rng.integers(2, 4)) if rng.random() < demand.group_share else 1)
        out.append(
            RideRequest(
                origin=o,
                destination=d,
                requested_at=float(tp) - notice,
                earliest_pickup=earliest,
                seats=seats,
                wheelchairs=wc,
                user_id=f"city-user-{k % 5003}",
                request_id=f"c{k:06d}-{z.zone_id}",
            )
        )
    out.sort(key=lambda r: (r.requested_at, r.request_id))
    return out
