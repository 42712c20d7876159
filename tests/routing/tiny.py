"""A hand-written CompiledTimetable builder for small unit tests of the router.

Trips are given as stop sequences with times; trips sharing a stop sequence form a pattern.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from gtfs.compiled import CompiledTimetable


@dataclass
class TinyTrip:
    trip_id: str
    stops: list[int]
    times: list[int]  # arrival = departure at every stop unless `dwell` given
    route: int = 0
    service: int = 0
    dwell: int = 0
    pickup: list[int] | None = None
    dropoff: list[int] | None = None
    wheelchair: int = 0


@dataclass
class TinyFeed:
    n_stops: int
    trips: list[TinyTrip]
    transfers: list[tuple[int, int, int]] = field(default_factory=list)
    route_types: list[int] = field(default_factory=lambda: [3])
    services_days: list[list[bool]] = field(default_factory=lambda: [[True] * 7])
    start: dt.date = dt.date(2024, 1, 1)
    stop_wheelchair: list[int] | None = None

    def compile(self) -> CompiledTimetable:
        pats: dict[tuple[int, ...], list[TinyTrip]] = {}
        for t in self.trips:
            pats.setdefault(tuple(t.stops), []).append(t)
        pattern_stops: list[int] = []
        pattern_stop_ptr = [0]
        pattern_trip_ptr = [0]
        ordered: list[tuple[int, TinyTrip]] = []
        for p, (stops, trips) in enumerate(pats.items()):
            pattern_stops.extend(stops)
            pattern_stop_ptr.append(len(pattern_stops))
            trips.sort(key=lambda t: t.times[0])
            ordered.extend((p, t) for t in trips)
            pattern_trip_ptr.append(len(ordered))
        arr: list[int] = []
        dep: list[int] = []
        pick: list[int] = []
        drop: list[int] = []
        st_ptr = [0]
        for _, t in ordered:
            for i, x in enumerate(t.times):
                arr.append(x)
                dep.append(x + t.dwell)
                pick.append(t.pickup[i] if t.pickup else 0)
                drop.append(t.dropoff[i] if t.dropoff else 0)
            st_ptr.append(len(arr))
        sp: list[list[tuple[int, int]]] = [[] for _ in range(self.n_stops)]
        for p, stops in enumerate(pats):
            for pos, s in enumerate(stops):
                sp[s].append((p, pos))
        sp_ptr = np.cumsum([0] + [len(x) for x in sp])
        tr = sorted(self.transfers)
        tr_ptr = np.zeros(self.n_stops + 1, dtype=np.int32)
        for a, _, _ in tr:
            tr_ptr[a + 1] += 1
        tr_ptr = np.cumsum(tr_ptr).astype(np.int32)
        n_r = max(t.route for t in self.trips) + 1
        rtypes = (self.route_types * n_r)[:n_r]
        s = self.n_stops
        i32 = np.int32
        return CompiledTimetable(
            stop_ids=np.array([f"S{i}" for i in range(s)]),
            stop_names=np.array([f"Stop {i}" for i in range(s)]),
            stop_lat=np.array([35.0 + 0.001 * i for i in range(s)]),
            stop_lon=np.full(s, 139.0),
            stop_parent=np.full(s, -1, dtype=i32),
            stop_wheelchair=np.array(self.stop_wheelchair or [0] * s, dtype=np.int8),
            agency_ids=np.array(["A"]),
            agency_names=np.array(["Agency"]),
            route_ids=np.array([f"R{i}" for i in range(n_r)]),
            route_agency=np.zeros(n_r, dtype=i32),
            route_short_names=np.array([f"{i}" for i in range(n_r)]),
            route_long_names=np.array([f"Route {i}" for i in range(n_r)]),
            route_types=np.array(rtypes, dtype=i32),
            route_colors=np.array([""] * n_r),
            pattern_route=np.array([ts[0].route for ts in pats.values()], dtype=i32),
            pattern_stop_ptr=np.array(pattern_stop_ptr, dtype=i32),
            pattern_stops=np.array(pattern_stops, dtype=i32),
            pattern_trip_ptr=np.array(pattern_trip_ptr, dtype=i32),
            trip_ids=np.array([t.trip_id for _, t in ordered]),
            trip_route=np.array([t.route for _, t in ordered], dtype=i32),
            trip_pattern=np.array([p for p, _ in ordered], dtype=i32),
            trip_service=np.array([t.service for _, t in ordered], dtype=i32),
            trip_headsigns=np.array(["" for _ in ordered]),
            trip_wheelchair=np.array([t.wheelchair for _, t in ordered], dtype=np.int8),
            trip_shape=np.full(len(ordered), -1, dtype=i32),
            trip_st_ptr=np.array(st_ptr, dtype=np.int64),
            st_arrival=np.array(arr, dtype=i32),
            st_departure=np.array(dep, dtype=i32),
            st_pickup=np.array(pick, dtype=np.int8),
            st_dropoff=np.array(drop, dtype=np.int8),
            stop_pattern_ptr=np.asarray(sp_ptr, dtype=i32),
            stop_patterns=np.array([p for x in sp for p, _ in x], dtype=i32),
            stop_pattern_pos=np.array([q for x in sp for _, q in x], dtype=i32),
            transfer_ptr=tr_ptr,
            transfer_to=np.array([b for _, b, _ in tr], dtype=i32),
            transfer_s=np.array([c for _, _, c in tr], dtype=i32),
            service_ids=np.array([f"V{i}" for i in range(len(self.services_days))]),
            service_start=self.start,
            service_days=np.array(self.services_days, dtype=np.bool_),
            shape_ids=np.array([], dtype=str),
            shape_ptr=np.zeros(1, dtype=np.int64),
            shape_lat=np.zeros(0),
            shape_lon=np.zeros(0),
            timezone="Asia/Tokyo",
        )
