"""Small GTFS zips with the transfer rules a feed may state (``block_id``, transfers.txt),
written from plain lists, and random ones for the property tests against
:class:`tests.routing.reference.RuleReference`."""

from __future__ import annotations

import csv
import io
import itertools
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Trip:
    trip_id: str
    route_id: str
    stops: list[int]
    times: list[int]  # arrival = departure + 0 unless dwell
    service_id: str = "ALL"
    block_id: str = ""
    dwell: int = 0
    pickup: list[int] | None = None
    dropoff: list[int] | None = None


@dataclass
class Transfer:
    from_stop: int | None = None
    to_stop: int | None = None
    transfer_type: int = 2
    min_s: int | None = None
    from_route: str = ""
    to_route: str = ""
    from_trip: str = ""
    to_trip: str = ""


@dataclass
class RuleFeed:
    n_stops: int
    trips: list[Trip]
    transfers: list[Transfer] = field(default_factory=list)

    def write(self, path: Path) -> Path:
        def table(rows: Sequence[Sequence[object]]) -> str:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(rows)
            return buf.getvalue()

        def hms(s: int) -> str:
            return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"

        routes = sorted({t.route_id for t in self.trips})
        files = {
            "agency.txt": table(
                [
                    ["agency_id", "agency_name", "agency_url", "agency_timezone"],
                    ["A", "Agency", "https://example.org", "Asia/Tokyo"],
                ]
            ),
            # Stops ~5.5 km apart: no footpath joins them.
            "stops.txt": table(
                [["stop_id", "stop_name", "stop_lat", "stop_lon"]]
                + [[f"S{i}", f"Stop {i}", 35.0 + 0.05 * i, 139.0] for i in range(self.n_stops)]
            ),
            "routes.txt": table(
                [["route_id", "agency_id", "route_short_name", "route_type"]]
                + [[r, "A", r, 3] for r in routes]
            ),
            "calendar.txt": table(
                [
                    [
                        "service_id",
                        "monday",
                        "tuesday",
                        "wednesday",
                        "thursday",
                        "friday",
                        "saturday",
                        "sunday",
                        "start_date",
                        "end_date",
                    ],
                    ["ALL", 1, 1, 1, 1, 1, 1, 1, "20240101", "20240131"],
                    ["WD", 1, 1, 1, 1, 1, 0, 0, "20240101", "20240131"],
                    ["SA", 0, 0, 0, 0, 0, 1, 0, "20240101", "20240131"],
                ]
            ),
            "trips.txt": table(
                [["route_id", "service_id", "trip_id", "block_id"]]
                + [[t.route_id, t.service_id, t.trip_id, t.block_id] for t in self.trips]
            ),
            "stop_times.txt": table(
                [
                    [
                        "trip_id",
                        "arrival_time",
                        "departure_time",
                        "stop_id",
                        "stop_sequence",
                        "pickup_type",
                        "drop_off_type",
                    ]
                ]
                + [
                    [
                        t.trip_id,
                        hms(x),
                        hms(x + t.dwell),
                        f"S{s}",
                        i + 1,
                        t.pickup[i] if t.pickup else 0,
                        t.dropoff[i] if t.dropoff else 0,
                    ]
                    for t in self.trips
                    for i, (s, x) in enumerate(zip(t.stops, t.times, strict=True))
                ]
            ),
        }
        if self.transfers:
            files["transfers.txt"] = table(
                [["from_stop_id", "to_stop_id", "from_route_id", "to_route_id", "from_trip_id",
                  "to_trip_id", "transfer_type", "min_transfer_time"]]
                + [
                    ["" if x.from_stop is None else f"S{x.from_stop}",
                     "" if x.to_stop is None else f"S{x.to_stop}",
                     x.from_route, x.to_route, x.from_trip, x.to_trip, x.transfer_type,
                     "" if x.min_s is None else x.min_s]
                    for x in self.transfers
                ]
            )  # fmt: skip
        with zipfile.ZipFile(path, "w") as z:
            for name, text in files.items():
                z.writestr(name, text)
        return path


def random_rule_feed(rng: np.random.Generator, *, n_stops: int = 9) -> RuleFeed:
    """A random small network with vehicles running blocks of trips over several routes
    (on different service days, sometimes starting where the last trip ended, sometimes
    elsewhere), loose trips, change times at some stops and in-seat rules (types 4 and 5)."""
    routes = {
        f"R{r}": [int(s) for s in rng.choice(n_stops, int(rng.integers(3, 6)), replace=False)]
        for r in range(5)
    }
    names = list(routes)
    trips: list[Trip] = []
    blocks: list[list[Trip]] = []

    def make(tid: str, start: int, block: str) -> Trip:
        r = names[int(rng.integers(len(names)))]
        hops = rng.integers(120, 480, len(routes[r]) - 1)
        times = [start, *(start + np.cumsum(hops)).tolist()]
        n = len(times)
        pickup = [0] * n
        dropoff = [0] * n
        if rng.random() < 0.5:
            pickup[-1] = 1
            dropoff[0] = 1
        if rng.random() < 0.15:
            pickup[int(rng.integers(n))] = 1
        svc = str(rng.choice(["ALL", "ALL", "ALL", "WD", "SA"]))
        return Trip(tid, r, routes[r], [int(x) for x in times], svc, block, 0, pickup, dropoff)

    for v in range(4):
        block = f"B{v}" if rng.random() < 0.85 else ""
        t = int(rng.integers(6 * 3600, 7 * 3600))
        chain = []
        for j in range(int(rng.integers(2, 5))):
            trip = make(f"v{v}_{j}", t, block)
            chain.append(trip)
            t = trip.times[-1] + int(rng.integers(0, 600)) + 1
        trips.extend(chain)
        blocks.append(chain)
    for j in range(8):
        trips.append(make(f"x{j}", int(rng.integers(6 * 3600, 8 * 3600)), ""))
    transfers: list[Transfer] = []
    for s in rng.choice(n_stops, 3, replace=False):
        transfers.append(Transfer(int(s), int(s), 2, int(rng.integers(240, 900))))
    for chain in blocks:
        for a, b in itertools.pairwise(chain):
            if a.block_id and rng.random() < 0.25:
                transfers.append(Transfer(transfer_type=5, from_trip=a.trip_id, to_trip=b.trip_id))
    for _ in range(2):
        a, b = (trips[int(i)] for i in rng.choice(len(trips), 2, replace=False))
        if b.times[0] >= a.times[-1]:
            transfers.append(Transfer(transfer_type=4, from_trip=a.trip_id, to_trip=b.trip_id))
    return RuleFeed(n_stops, trips, transfers)
