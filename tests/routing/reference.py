"""An independent brute-force reference: a connection scan over the RAW GTFS files.

Nothing here uses the router or the compiled arrays' logic: stop times, calendars and
pickup/drop-off rules are read with the ``csv`` module straight from the zip. Only the footpath
list (straight-line pairs and transfers.txt, which are data the compiler produced, not logic)
is taken from the compiled timetable by stop id.

Semantics (the router's documented rules): a query on date ``D`` may ride trips of ``D - 1``,
``D`` and ``D + 1`` (times shifted by -24 h / +24 h); boarding needs ``pickup_type != 1``,
alighting ``drop_off_type != 1``; after a ride one footpath may follow; boarding after a ride
at the same stop needs the stop's change time (transfers.txt ``from == to``, at least the
slack), after a walk the slack; walks from the origin need no slack.

Realtime (:class:`RawOverlay`, one per service date, keyed by raw trip id): the copy of that
date takes the overlay's times, drops its cancelled trips and neither boards nor alights at its
skipped stop times; the other copies keep the schedule.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

BIG = 2**30


def _time(s: str) -> int | None:
    s = s.strip()
    if not s:
        return None
    h, m, sec = s.split(":")
    return int(h) * 3600 + int(m) * 60 + int(sec)


def _read(z: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    if name not in z.namelist():
        return []
    with z.open(name) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig")
        return [
            {k.strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(text)
        ]


def _hav(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


@dataclass
class RawTrip:
    trip_id: str
    service_id: str
    route_id: str
    stops: list[str]
    arr: list[int]
    dep: list[int]
    pickup: list[int]
    dropoff: list[int]


@dataclass
class RawOverlay:
    """Realtime of ONE service date over raw trips: replaced times, skipped stop times (by
    position in the trip), cancelled trips."""

    service_date: dt.date
    times: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    skipped: dict[str, list[bool]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)


@dataclass
class RawFeed:
    stop_ids: list[str]
    stop_index: dict[str, int]
    trips: dict[str, RawTrip]
    calendar: dict[str, tuple[list[bool], dt.date, dt.date]]
    exceptions: dict[tuple[str, dt.date], int]
    _conn_cache: dict[dt.date, tuple[np.ndarray, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> RawFeed:
        with zipfile.ZipFile(path) as z:
            stops = _read(z, "stops.txt")
            trips = _read(z, "trips.txt")
            st_rows = _read(z, "stop_times.txt")
            cal = _read(z, "calendar.txt")
            cal_dates = _read(z, "calendar_dates.txt")
        stop_ids = [r["stop_id"] for r in stops]
        coords = {
            r["stop_id"]: (float(r["stop_lat"] or "nan"), float(r["stop_lon"] or "nan"))
            for r in stops
        }
        by_trip: dict[str, list[dict[str, str]]] = {}
        for r in st_rows:
            by_trip.setdefault(r["trip_id"], []).append(r)
        raw: dict[str, RawTrip] = {}
        for t in trips:
            rows = sorted(by_trip.get(t["trip_id"], []), key=lambda r: int(r["stop_sequence"]))
            if len(rows) < 2:
                continue
            arr = [_time(r.get("arrival_time", "")) for r in rows]
            dep = [_time(r.get("departure_time", "")) for r in rows]
            for i in range(len(rows)):
                if arr[i] is None:
                    arr[i] = dep[i]
                if dep[i] is None:
                    dep[i] = arr[i]
            if arr[0] is None or arr[-1] is None:
                continue
            # Blank intermediate times: in proportion to the distance along the stops.
            cum = [0.0]
            for a, b in itertools.pairwise(rows):
                (la1, lo1), (la2, lo2) = coords[a["stop_id"]], coords[b["stop_id"]]
                cum.append(cum[-1] + _hav(la1, lo1, la2, lo2))
            i = 0
            while i < len(rows):
                if arr[i] is None:
                    p = i - 1
                    q = i
                    while arr[q] is None:
                        q += 1
                    for j in range(i, q):
                        span = cum[q] - cum[p]
                        f = (cum[j] - cum[p]) / span if span > 0 else (j - p) / (q - p)
                        v = round(dep[p] + (arr[q] - dep[p]) * f)  # type: ignore[operator]
                        arr[j] = dep[j] = v
                    i = q
                i += 1
            ok = all(a <= d for a, d in zip(arr, dep, strict=True)) and all(  # type: ignore[operator]
                dep[i] <= arr[i + 1]
                for i in range(len(rows) - 1)  # type: ignore[operator]
            )
            if not ok:
                continue
            raw[t["trip_id"]] = RawTrip(
                trip_id=t["trip_id"],
                service_id=t["service_id"],
                route_id=t["route_id"],
                stops=[r["stop_id"] for r in rows],
                arr=[int(x) for x in arr],  # type: ignore[arg-type]
                dep=[int(x) for x in dep],  # type: ignore[arg-type]
                pickup=[int(r.get("pickup_type") or 0) for r in rows],
                dropoff=[int(r.get("drop_off_type") or 0) for r in rows],
            )
        days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        calendar = {
            r["service_id"]: (
                [r[d] == "1" for d in days],
                dt.datetime.strptime(r["start_date"], "%Y%m%d").date(),
                dt.datetime.strptime(r["end_date"], "%Y%m%d").date(),
            )
            for r in cal
        }
        exceptions = {
            (r["service_id"], dt.datetime.strptime(r["date"], "%Y%m%d").date()): int(
                r["exception_type"]
            )
            for r in cal_dates
        }
        return cls(stop_ids, {s: i for i, s in enumerate(stop_ids)}, raw, calendar, exceptions)

    def service_active(self, service_id: str, day: dt.date) -> bool:
        ex = self.exceptions.get((service_id, day))
        if ex == 1:
            return True
        if ex == 2:
            return False
        c = self.calendar.get(service_id)
        return bool(c and c[1] <= day <= c[2] and c[0][day.weekday()])

    def _base_connections(self) -> tuple[np.ndarray, ...]:
        if "base" not in self.__dict__:
            cols: list[list[int]] = [[] for _ in range(8)]
            services = sorted({t.service_id for t in self.trips.values()})
            sidx = {sv: i for i, sv in enumerate(services)}
            for k, t in enumerate(self.trips.values()):
                for i in range(len(t.stops) - 1):
                    for col, val in zip(
                        cols,
                        (
                            t.dep[i],
                            t.arr[i + 1],
                            self.stop_index[t.stops[i]],
                            self.stop_index[t.stops[i + 1]],
                            k,
                            int(t.pickup[i] != 1),
                            int(t.dropoff[i + 1] != 1),
                            sidx[t.service_id],
                        ),
                        strict=True,
                    ):
                        col.append(val)
            self.__dict__["services"] = services
            self.__dict__["base"] = tuple(np.array(c, dtype=np.int64) for c in cols)
        return self.__dict__["base"]  # type: ignore[no-any-return]

    def connections(
        self, day: dt.date, realtime: tuple[RawOverlay, ...] = ()
    ) -> tuple[np.ndarray, ...]:
        """Elementary connections of trips of day-1, day, day+1, sorted by departure."""
        # Only the schedule's connections are cached (overlays are built per test).
        if not realtime and day in self._conn_cache:
            return self._conn_cache[day]
        dep, arr, u, v, trip, board, alight, svc = self._base_connections()
        services: list[str] = self.__dict__["services"]
        seq = np.arange(len(dep))
        n_trips = len(self.trips)
        by_date = {o.service_date: o for o in realtime}
        parts = []
        for c, off in enumerate((-1, 0, 1)):
            d = day + dt.timedelta(days=off)
            on = np.array([self.service_active(sv, d) for sv in services], dtype=np.bool_)
            m = on[svc] if len(svc) else np.zeros(0, dtype=np.bool_)
            dep_c, arr_c = dep, arr
            board_c, alight_c = board, alight
            ov = by_date.get(d)
            if ov is not None:
                dep_c, arr_c = dep.copy(), arr.copy()
                board_c, alight_c = board.copy(), alight.copy()
                index = self._trip_rows()
                for tid in set(ov.times) | set(ov.skipped) | ov.cancelled:
                    rows = self._conn_rows(index[tid])
                    if tid in ov.cancelled:
                        m = m.copy()
                        m[rows] = False
                    if tid in ov.times:
                        a, b = ov.times[tid]
                        dep_c[rows] = b[:-1]
                        arr_c[rows] = a[1:]
                    if tid in ov.skipped:
                        sk = np.asarray(ov.skipped[tid], dtype=np.bool_)
                        board_c[rows] &= ~sk[:-1]
                        alight_c[rows] &= ~sk[1:]
            parts.append((m, off * 86400, c * n_trips, dep_c, arr_c, board_c, alight_c))
        cat = [
            np.concatenate([p[3][p[0]] + p[1] for p in parts]),
            np.concatenate([p[4][p[0]] + p[1] for p in parts]),
            np.concatenate([u[p[0]] for p in parts]),
            np.concatenate([v[p[0]] for p in parts]),
        ]
        tr = np.concatenate([trip[p[0]] + p[2] for p in parts])
        bo = np.concatenate([p[5][p[0]] for p in parts]).astype(np.bool_)
        al = np.concatenate([p[6][p[0]] for p in parts]).astype(np.bool_)
        sq = np.concatenate([seq[p[0]] for p in parts])
        order = np.lexsort((sq, cat[1], cat[0]))
        out = (
            cat[0][order],
            cat[1][order],
            cat[2][order],
            cat[3][order],
            tr[order],
            bo[order],
            al[order],
            sq[order],
            np.int64(3 * n_trips),
        )
        if not realtime:
            self._conn_cache[day] = out
        return out

    def _trip_rows(self) -> dict[str, int]:
        """Raw trip id -> its index in the connection arrays' ``trip`` column."""
        if "trip_rows" not in self.__dict__:
            self.__dict__["trip_rows"] = {tid: k for k, tid in enumerate(self.trips)}
        return self.__dict__["trip_rows"]  # type: ignore[no-any-return]

    def _conn_rows(self, k: int) -> np.ndarray:
        """The connections of trip ``k`` in order (one per hop)."""
        if "conn_ptr" not in self.__dict__:
            lengths = [len(t.stops) - 1 for t in self.trips.values()]
            self.__dict__["conn_ptr"] = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        ptr = self.__dict__["conn_ptr"]
        return np.arange(ptr[k], ptr[k + 1])


@dataclass
class RawFootpaths:
    """Footpaths by raw stop index (CSR) and change times at stops."""

    ptr: np.ndarray
    to: np.ndarray
    secs: np.ndarray
    change: np.ndarray

    @classmethod
    def from_lists(
        cls, n_stops: int, rows: list[tuple[int, int, int]], slack: int = 0
    ) -> RawFootpaths:
        change = np.full(n_stops, slack, dtype=np.int64)
        adj: list[list[tuple[int, int]]] = [[] for _ in range(n_stops)]
        for a, b, s in rows:
            if a == b:
                change[a] = max(change[a], s)
            else:
                adj[a].append((b, s))
        ptr = np.zeros(n_stops + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(x) for x in adj])
        to = np.array([b for x in adj for b, _ in x], dtype=np.int64)
        secs = np.array([s for x in adj for _, s in x], dtype=np.int64)
        return cls(ptr, to, secs, change)


@njit(cache=True)
def csa_earliest(
    c_dep: np.ndarray,
    c_arr: np.ndarray,
    c_u: np.ndarray,
    c_v: np.ndarray,
    c_trip: np.ndarray,
    c_board: np.ndarray,
    c_alight: np.ndarray,
    c_seq: np.ndarray,
    n_copies: int,
    fp_ptr: np.ndarray,
    fp_to: np.ndarray,
    fp_s: np.ndarray,
    change: np.ndarray,
    slack: int,
    max_walk: int,
    origin: int,
    t0: int,
) -> np.ndarray:
    """Earliest arrival at every stop from ``origin`` at ``t0`` (connection scan)."""
    n = change.shape[0]
    arrival = np.full(n, BIG, dtype=np.int64)
    ready = np.full(n, BIG, dtype=np.int64)
    ride_best = np.full(n, BIG, dtype=np.int64)
    on_from = np.full(n_copies, BIG, dtype=np.int64)
    arrival[origin] = t0
    ready[origin] = t0
    for e in range(fp_ptr[origin], fp_ptr[origin + 1]):
        if fp_s[e] <= max_walk:
            w = fp_to[e]
            arrival[w] = min(arrival[w], t0 + fp_s[e])
            ready[w] = min(ready[w], t0 + fp_s[e])
    lo = np.searchsorted(c_dep, t0)
    n_c = c_dep.shape[0]
    g = lo
    while g < n_c:
        # Connections departing at the same second are scanned until nothing changes, so
        # zero-duration hops (dep == arr) feed each other whatever their order.
        h = g
        while h < n_c and c_dep[h] == c_dep[g]:
            h += 1
        changed = True
        while changed:
            changed = False
            for c in range(g, h):
                tr = c_trip[c]
                # A trip is ridden from the connection where it was boarded onwards only.
                if on_from[tr] > c_seq[c]:
                    if c_board[c] and ready[c_u[c]] <= c_dep[c]:
                        on_from[tr] = c_seq[c]
                        changed = True
                    else:
                        continue
                if not c_alight[c]:
                    continue
                v = c_v[c]
                a = c_arr[c]
                if a < arrival[v]:
                    arrival[v] = a
                if a + change[v] < ready[v]:
                    ready[v] = a + change[v]
                    changed = True
                if a < ride_best[v]:
                    ride_best[v] = a
                    for e in range(fp_ptr[v], fp_ptr[v + 1]):
                        if fp_s[e] > max_walk:
                            continue
                        w = fp_to[e]
                        b = a + fp_s[e]
                        if b < arrival[w]:
                            arrival[w] = b
                        if b + slack < ready[w]:
                            ready[w] = b + slack
                            changed = True
        g = h
    return arrival


class Reference:
    """The brute-force EA oracle for one feed."""

    def __init__(self, raw: RawFeed, footpaths: list[tuple[str, str, int]]) -> None:
        self.raw = raw
        idx = raw.stop_index
        rows = [(idx[a], idx[b], s) for a, b, s in footpaths if a in idx and b in idx]
        self.rows = rows
        self.fp_cache: dict[int, RawFootpaths] = {}

    def footpaths(self, slack: int) -> RawFootpaths:
        if slack not in self.fp_cache:
            self.fp_cache[slack] = RawFootpaths.from_lists(len(self.raw.stop_ids), self.rows, slack)
        return self.fp_cache[slack]

    def earliest(
        self,
        origin: str,
        day: dt.date,
        t0: int,
        *,
        slack: int = 0,
        max_walk: int = 10**6,
        realtime: tuple[RawOverlay, ...] = (),
    ) -> dict[str, int]:
        """Earliest arrival (seconds of ``day``) at every reached stop id."""
        c = self.raw.connections(day, realtime)
        fp = self.footpaths(slack)
        arr = csa_earliest(
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            int(c[8]),
            fp.ptr,
            fp.to,
            fp.secs,
            fp.change,
            slack,
            max_walk,
            self.raw.stop_index[origin],
            t0,
        )
        return {self.raw.stop_ids[i]: int(arr[i]) for i in np.flatnonzero(arr < BIG)}


def check_journey(
    ref: Reference,
    trip_ids: np.ndarray,
    stop_ids: np.ndarray,
    journey: object,
    day: dt.date,
    *,
    slack: int = 0,
    realtime: tuple[RawOverlay, ...] = (),
) -> None:
    """Assert that a router journey is feasible against the raw timetable.

    Each ride is a real trip running on its service day whose raw stop times match the leg,
    with boarding/alighting allowed; each walk is a footpath no longer than the leg; every
    boarding leaves the change time (or slack) it needs.
    """
    from routing.raptor.journey import Journey, RideLeg, WalkLeg

    assert isinstance(journey, Journey)
    raw = ref.raw
    fp = ref.footpaths(slack)
    walk = {(a, b): s for a, b, s in ref.rows}
    prev_end: int | None = None
    prev_kind = "origin"
    prev_stop: str | None = None
    for leg in journey.legs:
        assert leg.arrival >= leg.departure, leg
        if prev_end is not None:
            assert leg.departure >= prev_end, (leg, prev_end)
        if isinstance(leg, RideLeg):
            t = raw.trips[str(trip_ids[leg.trip])]
            assert leg.day_offset % 86400 == 0
            service_day = day + dt.timedelta(days=leg.day_offset // 86400)
            assert raw.service_active(t.service_id, service_day), (t.trip_id, service_day)
            b, a = leg.board_pos, leg.alight_pos
            assert b < a
            assert t.stops[b] == str(stop_ids[leg.board_stop])
            assert t.stops[a] == str(stop_ids[leg.alight_stop])
            ov = next((o for o in realtime if o.service_date == service_day), None)
            t_arr, t_dep = ov.times.get(t.trip_id, (t.arr, t.dep)) if ov else (t.arr, t.dep)
            assert t_dep[b] + leg.day_offset == leg.departure
            assert t_arr[a] + leg.day_offset == leg.arrival
            assert t.pickup[b] != 1 and t.dropoff[a] != 1
            if ov is not None:
                assert t.trip_id not in ov.cancelled, ("cancelled", t.trip_id, service_day)
                sk = ov.skipped.get(t.trip_id)
                assert sk is None or not (sk[b] or sk[a]), ("skipped", t.trip_id, service_day)
            here = str(stop_ids[leg.board_stop])
            if prev_kind == "ride":
                assert prev_stop == here
                need = int(fp.change[raw.stop_index[here]])
                assert leg.departure >= prev_end + need, ("change time", leg)  # type: ignore[operator]
            elif prev_kind == "walk_after_ride":
                assert leg.departure >= prev_end + slack, ("slack", leg)  # type: ignore[operator]
            prev_kind = "ride"
            prev_stop = str(stop_ids[leg.alight_stop])
        else:
            assert isinstance(leg, WalkLeg)
            if leg.from_stop >= 0 and leg.to_stop >= 0 and leg.from_stop != leg.to_stop:
                key = (
                    raw.stop_index[str(stop_ids[leg.from_stop])],
                    raw.stop_index[str(stop_ids[leg.to_stop])],
                )
                assert key in walk, ("no such footpath", key)
                assert leg.seconds >= walk[key]
                if prev_kind == "ride":
                    assert prev_stop == str(stop_ids[leg.from_stop])
                    prev_kind = "walk_after_ride"
            prev_stop = str(stop_ids[leg.to_stop]) if leg.to_stop >= 0 else None
        prev_end = leg.arrival


# --- transfer rules the feed states: stay-seated continuations -------------------------------


class RuleReference:
    """Brute force over the raw GTFS with the feed's transfer rules (for small feeds).

    Round ``k`` holds every (stop, how one got there) label with at most ``k`` vehicles:
    ``via`` is None for the origin, ``("w0", d)`` for a walk of ``d`` seconds from it,
    ``(copy, trip_id)`` for a ride and ``("w", copy, trip_id, stop, d)`` for a walk of ``d``
    seconds from ``stop`` after that ride. Walks are the footpaths the raw ``transfers.txt``
    states between two stops (type 2 rows with ``min_transfer_time``, type 1 rows 0 s; the
    test feeds' stops lie too far apart for any other), one after the origin or a ride,
    none longer than ``max_walk_s``. A trip copy is boarded at its first stop time (not its
    last) whose departure is no earlier than a label there allows — the origin's time (a first
    ride leaving the origin by ``first_by``), the end of the walk from it, or after a ride
    the arrival plus :meth:`change_time` of that change — and alighted at any later stop time.
    Staying seated (rules read from the raw ``trips.txt`` ``block_id`` and ``transfers.txt``):
    at a trip's last stop a rider stays on board into the vehicle's next trip of the same
    service day — the block's running trip that starts first at or after the trip's end —
    unless a ``transfer_type=5`` rule names the pair, and into every running ``to_trip_id`` of
    a ``transfer_type=4`` rule, in both cases only when that trip leaves no earlier than this
    one arrives; it then alights at any of its stop times but the first, no vehicle added.

    The rider's transfer options (:class:`routing.options.RoutingOptions`) are ``factor``
    (``transfer_factor``) and ``extra`` (``transfer_extra_s``); the minimum change time is 0.
    """

    def __init__(self, path: Path, *, factor: float = 1.0, extra: int = 0) -> None:
        self.raw = RawFeed.load(path)
        self.factor = factor
        self.extra = extra
        self.max_walk_s = BIG
        with zipfile.ZipFile(path) as z:
            trips = _read(z, "trips.txt")
            transfers = _read(z, "transfers.txt")
            stops = _read(z, "stops.txt")
        self.block = {r["trip_id"]: r.get("block_id", "") for r in trips}
        self.route = {r["trip_id"]: r.get("route_id", "") for r in trips}
        self.parent = {r["stop_id"]: r.get("parent_station", "") for r in stops}
        self.change: dict[str, int] = {}
        #: Footpaths ``(from, to) -> seconds`` stated by stop-to-stop rows (the last row wins).
        self.walks: dict[tuple[str, str], int] = {}
        self.in_seat: set[tuple[str, str]] = set()
        self.not_seated: set[tuple[str, str]] = set()
        #: transfers.txt rows of types 1-3 naming a trip or a route, in file order.
        self.trip_rules: list[dict[str, str]] = []
        for r in transfers:
            ty = int(r.get("transfer_type") or 0)
            a, b = r.get("from_trip_id", ""), r.get("to_trip_id", "")
            names = a or b or r.get("from_route_id") or r.get("to_route_id")
            if ty == 4 and a and b:
                self.in_seat.add((a, b))
            elif ty == 5 and a and b:
                self.not_seated.add((a, b))
            elif ty in (1, 2, 3) and names:
                if ty == 2 and not r.get("min_transfer_time"):
                    continue  # states no time: applies nowhere
                self.trip_rules.append(r)
            elif not names and r["from_stop_id"] == r["to_stop_id"]:
                m = int(r.get("min_transfer_time") or 0) if ty == 2 else 0
                s = r["from_stop_id"]
                self.change[s] = max(self.change.get(s, 0), m)
            elif not names and ty in (1, 2):
                m = int(r.get("min_transfer_time") or 0) if ty == 2 else 0
                self.walks[(r["from_stop_id"], r["to_stop_id"])] = m

    def _scaled(self, seconds: int) -> int:
        """A change time the feed states, for this rider: times the factor, rounded up."""
        return math.ceil(seconds * self.factor - 1e-9) + self.extra

    def walk_s(self, a: str, b: str) -> int | None:
        """Seconds of the footpath from stop ``a`` to ``b``, None when none may be walked."""
        d = self.walks.get((a, b))
        return d if d is not None and d <= self.max_walk_s else None

    def change_time(
        self, from_trip: str, stop: str, to_trip: str, to_stop: str | None = None
    ) -> int | None:
        """Seconds needed between alighting ``from_trip`` at ``stop`` and boarding ``to_trip``
        at ``to_stop`` (default: ``stop``), or None when the feed forbids that transfer (or
        no footpath joins the two stops).

        Written from the GTFS reference, apart from :mod:`gtfs.transfer_rules`: among the rules
        of types 1-3 whose given fields all match (a blank one matches anything, a station its
        platforms) the one naming the most wins — both trips, then a trip and a route, one trip,
        both routes, one route; then the one naming the stops themselves over their station,
        then the first row. Type 1 needs 0 s, 2 its ``min_transfer_time``, 3 forbids; with no
        rule, the stop's change time. Between two stops the change is the footpath: its walk
        by default, a rule's time when longer (the rule's time is the whole transfer). Every
        time the feed states is the rider's (:meth:`_scaled`); a walk gets ``extra`` only."""
        to_stop = stop if to_stop is None else to_stop
        walk = 0
        if to_stop != stop:
            got = self.walk_s(stop, to_stop)
            if got is None:
                return None
            walk = got
        best: dict[str, str] | None = None
        best_key = (-1, -1)
        for r in self.trip_rules:
            key_sides = 0
            ok = True
            for trip_col, route_col, trip in (
                ("from_trip_id", "from_route_id", from_trip),
                ("to_trip_id", "to_route_id", to_trip),
            ):
                want_trip, want_route = r.get(trip_col, ""), r.get(route_col, "")
                if want_trip and want_trip != trip:
                    ok = False
                if want_route and want_route != self.route.get(trip):
                    ok = False
                key_sides += 3 if want_trip else (1 if want_route else 0)
            exact = 0
            for col, here in (("from_stop_id", stop), ("to_stop_id", to_stop)):
                rs = r.get(col, "")
                if not rs or rs == here:
                    exact += 2
                elif self.parent.get(here) == rs:
                    exact += 1
                else:
                    ok = False
            if ok and (key_sides, exact) > best_key:
                best, best_key = r, (key_sides, exact)
        if to_stop != stop:
            if best is None:
                return walk + self.extra
            ty = int(best["transfer_type"])
            if ty == 3:
                return None
            m = int(best["min_transfer_time"]) if ty == 2 else 0
            return max(self._scaled(m), walk + self.extra)
        if best is None:
            return self._scaled(self.change.get(stop, 0))
        ty = int(best["transfer_type"])
        if ty == 3:
            return None
        return self._scaled(int(best["min_transfer_time"]) if ty == 2 else 0)

    def _copies(self, day: dt.date) -> list[tuple[int, int, RawTrip]]:
        out = []
        for c, off in enumerate((-1, 0, 1)):
            d = day + dt.timedelta(days=off)
            for t in self.raw.trips.values():
                if self.raw.service_active(t.service_id, d):
                    out.append((c, off * 86400, t))
        return out

    def seated_into(self, day: dt.date, copy: int, trip_id: str) -> list[str]:
        """The trips a rider on ``trip_id`` (copy ``copy`` of ``day``) stays seated into."""
        raw = self.raw
        d = day + dt.timedelta(days=copy - 1)
        t = raw.trips[trip_id]
        end = t.arr[-1]
        out = []
        b = self.block.get(trip_id, "")
        if b:
            later = [
                u
                for u in raw.trips.values()
                if u.trip_id != trip_id
                and self.block.get(u.trip_id) == b
                and raw.service_active(u.service_id, d)
                and u.dep[0] >= end
            ]
            if later:
                nxt = min(later, key=lambda u: u.dep[0])
                if (trip_id, nxt.trip_id) not in self.not_seated:
                    out.append(nxt.trip_id)
        for a, b2 in sorted(self.in_seat):
            u = raw.trips.get(b2)
            if (
                a == trip_id
                and u is not None
                and raw.service_active(u.service_id, d)
                and u.dep[0] >= end
            ):
                out.append(b2)
        return out

    def _walks_from(self, stop: str) -> list[tuple[str, int]]:
        return [
            (b, d) for (a, b) in self.walks if a == stop and (d := self.walk_s(a, b)) is not None
        ]

    def rounds(
        self, origin: str, day: dt.date, t0: int, max_rides: int, first_by: int = BIG
    ) -> list[dict[str, int]]:
        """``[k]``: earliest arrival at each stop id with at most ``k`` vehicles (on foot or
        not), the first ride leaving the origin no later than ``first_by`` (a range query's
        window: a walk's seconds later from the stop a walk from the origin reaches)."""
        copies = self._copies(day)
        labels: dict[tuple[str, object], int] = {(origin, None): t0}
        for y, d in self._walks_from(origin):
            labels[(y, ("w0", d))] = t0 + d
        first: dict[str, int] = {}
        for (s, _), a in labels.items():
            first[s] = min(first.get(s, BIG), a)
        out = [first]
        for _ in range(max_rides):
            by_stop: dict[str, list[tuple[object, int]]] = {}
            for (s, via), a in labels.items():
                by_stop.setdefault(s, []).append((via, a))
            new = dict(labels)

            def relax(stop: str, via: object, a: int, new: dict[tuple[str, object], int]) -> None:
                if a < new.get((stop, via), BIG):
                    new[(stop, via)] = a

            for c, off, t in copies:
                board = None
                for i, s in enumerate(t.stops):
                    if board is None:
                        if t.pickup[i] == 1 or s not in by_stop or i == len(t.stops) - 1:
                            continue
                        dep = t.dep[i] + off
                        ready = BIG
                        for via, a in by_stop[s]:
                            if via is None:
                                if dep <= first_by:
                                    ready = min(ready, a)
                                continue
                            assert isinstance(via, tuple)
                            if via[0] == "w0":
                                if dep <= first_by + via[1]:
                                    ready = min(ready, a)
                                continue
                            if via[0] == "w":
                                _, _, trip, x, d = via
                                need = self.change_time(trip, x, t.trip_id, s)
                                if need is not None:
                                    ready = min(ready, a - d + need)
                                continue
                            need = self.change_time(via[1], s, t.trip_id)
                            if need is not None:
                                ready = min(ready, a + need)
                        if dep >= ready:
                            board = i
                        continue
                    if t.dropoff[i] != 1:
                        relax(s, (c, t.trip_id), t.arr[i] + off, new)
                if board is None:
                    continue
                seen = {t.trip_id}
                queue = [t.trip_id]
                while queue:
                    x = queue.pop()
                    for y in self.seated_into(day, c, x):
                        if y in seen:
                            continue
                        seen.add(y)
                        queue.append(y)
                        u = self.raw.trips[y]
                        for j, s in enumerate(u.stops):
                            if j > 0 and u.dropoff[j] != 1:
                                relax(s, (c, y), u.arr[j] + off, new)
            # One walk after each ride.
            for (s, via), a in list(new.items()):
                if isinstance(via, tuple) and via[0] not in ("w", "w0"):
                    for y, d in self._walks_from(s):
                        relax(y, ("w", via[0], via[1], s, d), a + d, new)
            labels = new
            best: dict[str, int] = {}
            for (s, _), a in labels.items():
                best[s] = min(best.get(s, BIG), a)
            out.append(best)
        return out


def check_rule_journey(
    ref: RuleReference, trip_ids: np.ndarray, stop_ids: np.ndarray, journey: object, day: dt.date
) -> None:
    """Assert that ``journey`` is feasible on the raw timetable with its transfer rules: each
    ride a running trip with its raw times; a ride stayed seated into follows the previous
    ride's last stop as one of the trips :meth:`RuleReference.seated_into` allows; any other
    ride after a ride boards at the stop alighted, or a footpath's walk away, after
    :meth:`RuleReference.change_time`; each walk a footpath of the feed."""
    from routing.raptor.journey import Journey, RideLeg, WalkLeg

    assert isinstance(journey, Journey)
    raw = ref.raw
    prev: RideLeg | None = None
    prev_end: int | None = None
    walked: WalkLeg | None = None  # the walk since the previous ride
    for leg in journey.legs:
        if prev_end is not None:
            assert leg.departure >= prev_end, (leg, prev_end)
        if isinstance(leg, WalkLeg):
            a, b = leg.from_stop, leg.to_stop
            if a >= 0 and b >= 0 and a != b:
                walk_s = ref.walk_s(str(stop_ids[a]), str(stop_ids[b]))
                assert walk_s is not None, ("no such footpath", leg)
                assert leg.seconds >= walk_s
                assert walked is None, ("two walks in a row", leg)
                if prev is not None:
                    assert prev.alight_stop == a
                walked = leg
            prev_end = leg.arrival
            continue
        assert isinstance(leg, RideLeg)
        t = raw.trips[str(trip_ids[leg.trip])]
        copy = leg.day_offset // 86400 + 1
        service_day = day + dt.timedelta(days=copy - 1)
        assert raw.service_active(t.service_id, service_day)
        b, a = leg.board_pos, leg.alight_pos
        assert t.stops[a] == str(stop_ids[leg.alight_stop])
        assert t.arr[a] + leg.day_offset == leg.arrival
        assert t.dropoff[a] != 1
        if leg.stay_seated:
            assert prev is not None and b == 0 and a >= 1 and walked is None
            pt = raw.trips[str(trip_ids[prev.trip])]
            assert prev.alight_pos == len(pt.stops) - 1 and prev.day_offset == leg.day_offset
            assert t.trip_id in ref.seated_into(day, copy, pt.trip_id), (pt.trip_id, t.trip_id)
        else:
            assert b < a
            assert t.stops[b] == str(stop_ids[leg.board_stop])
            assert t.dep[b] + leg.day_offset == leg.departure
            assert t.pickup[b] != 1
            if prev is not None:
                here = t.stops[b]
                there = str(stop_ids[prev.alight_stop])
                if walked is None:
                    assert there == here
                else:
                    assert str(stop_ids[walked.to_stop]) == here
                need = ref.change_time(str(trip_ids[prev.trip]), there, t.trip_id, here)
                assert need is not None, ("forbidden transfer", prev, leg)
                assert leg.departure >= prev.arrival + need, (prev, walked, leg, need)
        prev = leg
        walked = None
        prev_end = leg.arrival
