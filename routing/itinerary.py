"""OTP-like itineraries built from core journeys: legs with names, times, geometry, totals.

An :class:`Itinerary` is plain data in service-day seconds; :func:`to_otp` renders it with
OpenTripPlanner's field names (epoch milliseconds, ``legGeometry`` as an encoded polyline).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gtfs.compiled import CompiledTimetable
from routing.co2 import Co2Factors, pattern_co2_cumulative, ride_grams
from routing.on_demand import OnDemandOffer
from routing.options import route_type_mode
from routing.raptor.journey import Journey, RideLeg, WalkLeg
from routing.street.directions import walk_graph_of, walk_steps
from routing.transit import overlay_for

LatLon = tuple[float, float]


@dataclass(frozen=True)
class Place:
    """An end of a leg: a stop (``stop_index >= 0``) or the query's origin/destination."""

    name: str
    lat: float
    lon: float
    stop_index: int = -1
    stop_id: str | None = None
    reading: str | None = None  # kana reading (GTFS-JP ja-Hrkt) when the feed has one
    arrival: int | None = None  # service-day seconds
    departure: int | None = None


@dataclass(frozen=True)
class ItineraryLeg:
    """One leg; transit fields are empty for walks."""

    mode: str
    start: int  # service-day seconds (realtime when known)
    end: int
    origin: Place
    destination: Place
    distance_m: float
    geometry: tuple[LatLon, ...]
    route_id: str | None = None
    route_short_name: str | None = None
    route_long_name: str | None = None
    route_color: str | None = None
    route_type: int | None = None
    agency_name: str | None = None
    agency_id: str | None = None
    trip_id: str | None = None
    headsign: str | None = None
    intermediate_stops: tuple[Place, ...] = ()
    scheduled_start: int | None = None
    scheduled_end: int | None = None
    realtime: bool = False
    service_day_offset: int = 0  # seconds: trips of the day before run at -86400
    co2_g: int = 0  # grams per passenger (routing.co2); walks emit nothing
    #: The fleet's offer behind an on-demand leg (``mode == "FLEX"``), else None.
    on_demand: OnDemandOffer | None = None
    #: The rider stays on board from the previous leg (the same vehicle continues as this
    #: trip: ``block_id`` or an in-seat transfer, :attr:`RideLeg.stay_seated`): OTP's
    #: ``interlineWithPreviousLeg``; no change of vehicle, so not a transfer.
    interline_with_previous_leg: bool = False
    #: The walking street graph a walk leg was found on: its steps are named from it when the
    #: leg is returned (:func:`to_otp`); None for straight-line walks.
    street: Any = field(default=None, compare=False, repr=False)

    @property
    def transit(self) -> bool:
        return self.mode != "WALK"

    @property
    def duration(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Itinerary:
    legs: tuple[ItineraryLeg, ...]
    journey: Journey | None = field(default=None, compare=False)
    #: The same trip by private car: door-to-door road distance (m) and grams of CO2 (None:
    #: the planner has no car factor).
    car_distance_m: float | None = field(default=None, compare=False)
    car_co2_g: int | None = field(default=None, compare=False)
    #: The planner's "healthier" choice (``RoutingOptions.healthier_s``): (seconds later than
    #: the fastest itinerary, seconds more walking); None for the others.
    healthier: tuple[int, int] | None = field(default=None, compare=False)
    #: False for an itinerary built without its legs' shapes, walking paths and intermediate
    #: stops (``ItineraryBuilder.build(detail=False)``): enough to compare and filter it, not
    #: to show it (``ItineraryBuilder.detailed`` completes it).
    detailed: bool = field(default=True, compare=False)

    @property
    def start(self) -> int:
        return self.legs[0].start

    @property
    def end(self) -> int:
        return self.legs[-1].end

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def walk_time(self) -> int:
        return sum(leg.duration for leg in self.legs if not leg.transit)

    @property
    def walk_distance(self) -> float:
        return sum(leg.distance_m for leg in self.legs if not leg.transit)

    @property
    def transit_time(self) -> int:
        return sum(leg.duration for leg in self.legs if leg.transit)

    @property
    def transfers(self) -> int:
        """Changes of vehicle: rides boarded, less the first; staying seated into the
        vehicle's next trip (an interlined leg) is no change."""
        boarded = sum(1 for leg in self.legs if leg.transit and not leg.interline_with_previous_leg)
        return max(0, boarded - 1)

    @property
    def co2_g(self) -> int:
        """Grams of CO2 per passenger (:mod:`routing.co2` factors)."""
        return sum(leg.co2_g for leg in self.legs)

    @property
    def waiting_time(self) -> int:
        return self.duration - self.walk_time - self.transit_time

    @property
    def on_demand(self) -> bool:
        """Whether a leg is an on-demand ride (booked through the fleet)."""
        return any(leg.on_demand is not None for leg in self.legs)

    def trips_key(self) -> tuple[str | None, ...]:
        return tuple(
            leg.trip_id
            if leg.on_demand is None
            else f"flex:{leg.on_demand.zone_id}:{leg.origin.stop_id}:{leg.destination.stop_id}"
            for leg in self.legs
            if leg.transit
        )


# --- geometry ---------------------------------------------------------------------------------
def encode_polyline(points: Sequence[LatLon], precision: int = 5) -> str:
    """Google's encoded polyline (the format OTP uses for ``legGeometry.points``)."""
    return _encode_array(np.asarray(points, dtype=np.float64).reshape(-1, 2), precision)


#: 5-bit groups of a zig-zagged 64-bit delta (13 x 5 >= 64).
_GROUPS = np.arange(13, dtype=np.int64) * 5


def _encode_array(a: np.ndarray, precision: int = 5) -> str:
    """:func:`encode_polyline` of an ``(n, 2)`` array of ``(lat, lon)``, vectorised: each
    coordinate rounded (half to even, as Python's ``round``), delta-coded, zig-zagged and cut
    into 5-bit groups, every group but a value's last with the continuation bit."""
    if a.shape[0] == 0:
        return ""
    ints = np.round(a * float(10**precision)).astype(np.int64).ravel()
    deltas = np.diff(ints.reshape(-1, 2), axis=0, prepend=np.zeros((1, 2), np.int64)).ravel()
    v = (deltas << 1) ^ (deltas >> 63)  # zig-zag: ~(d << 1) for a negative d
    groups = (v[:, None] >> _GROUPS[None, :]) & 0x1F
    # Groups a value needs: up to its highest set bit (at least one).
    used = np.maximum(1, (v[:, None] >> _GROUPS[None, :]).astype(bool).sum(axis=1))
    j = np.arange(_GROUPS.shape[0])[None, :]
    chars = np.where(j < used[:, None] - 1, groups | 0x20, groups) + 63
    return chars[j < used[:, None]].astype(np.uint8).tobytes().decode("ascii")


def decode_polyline(text: str, precision: int = 5) -> list[LatLon]:
    """Inverse of :func:`encode_polyline`."""
    coords: list[LatLon] = []
    idx = lat = lon = 0
    factor = 10**precision
    while idx < len(text):
        vals = []
        for _ in range(2):
            shift = result = 0
            while True:
                b = ord(text[idx]) - 63
                idx += 1
                result |= (b & 0x1F) << shift
                shift += 5
                if b < 0x20:
                    break
            vals.append(~(result >> 1) if result & 1 else result >> 1)
        lat += vals[0]
        lon += vals[1]
        coords.append((lat / factor, lon / factor))
    return coords


def path_length_m(points: Sequence[LatLon]) -> float:
    """Great-circle length of a polyline, metres."""
    if len(points) < 2:
        return 0.0
    a = np.asarray(points, dtype=np.float64)
    return _length_m(a[:, 0], a[:, 1])


def _length_m(lat: np.ndarray, lon: np.ndarray) -> float:
    """:func:`path_length_m` of the points ``(lat[i], lon[i])`` (degrees)."""
    if lat.shape[0] < 2:
        return 0.0
    la, lo = np.radians(lat), np.radians(lon)
    dlat = np.diff(la)
    dlon = np.diff(lo)
    h = np.sin(dlat / 2) ** 2 + np.cos(la[:-1]) * np.cos(la[1:]) * np.sin(dlon / 2) ** 2
    return float(2 * 6371008.8 * np.arcsin(np.sqrt(np.clip(h, 0, 1))).sum())


def _nearest(lat: np.ndarray, lon: np.ndarray, plat: float, plon: float) -> int:
    d = (lat - plat) ** 2 + ((lon - plon) * np.cos(np.radians(plat))) ** 2
    return int(np.argmin(d))


def ride_geometry(
    tt: CompiledTimetable, trip: int, board_pos: int, alight_pos: int
) -> list[LatLon]:
    """The trip's shape between the board and alight stops (nearest shape points), or the
    stops' coordinates when the trip has no shape."""
    lat, lon = _ride_geometry_arrays(tt, trip, board_pos, alight_pos)
    return list(zip(lat.tolist(), lon.tolist(), strict=True))


def _ride_geometry_arrays(
    tt: CompiledTimetable, trip: int, board_pos: int, alight_pos: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ride_geometry` as arrays of latitudes and longitudes (float64)."""
    p = int(tt.trip_pattern[trip])
    p0 = int(tt.pattern_stop_ptr[p])
    stops = tt.pattern_stops[p0 + board_pos : p0 + alight_pos + 1]
    stop_lat = np.asarray(tt.stop_lat[stops], dtype=np.float64)
    stop_lon = np.asarray(tt.stop_lon[stops], dtype=np.float64)
    k = int(tt.trip_shape[trip])
    if k < 0:
        return stop_lat, stop_lon
    a, b = int(tt.shape_ptr[k]), int(tt.shape_ptr[k + 1])
    lat, lon = tt.shape_lat[a:b], tt.shape_lon[a:b]
    if lat.shape[0] < 2:
        return stop_lat, stop_lon
    i = _nearest(lat, lon, float(stop_lat[0]), float(stop_lon[0]))
    j = i + _nearest(lat[i:], lon[i:], float(stop_lat[-1]), float(stop_lon[-1]))
    if j <= i:
        return stop_lat, stop_lon
    # The board stop, the shape's points between, the alight stop.
    out_lat = np.concatenate((stop_lat[:1], lat[i : j + 1], stop_lat[-1:])).astype(np.float64)
    out_lon = np.concatenate((stop_lon[:1], lon[i : j + 1], stop_lon[-1:])).astype(np.float64)
    return out_lat, out_lon


# --- building ---------------------------------------------------------------------------------
class ItineraryBuilder:
    """Turns core journeys into itineraries for one timetable (names, shapes, realtime)."""

    def __init__(
        self,
        tt: CompiledTimetable,
        walk: Any,
        *,
        readings: dict[int, str] | None = None,
        translations: dict[str, dict[int, str]] | None = None,
        co2: Co2Factors | None = None,
    ) -> None:
        self.tt = tt
        self.walk = walk
        self.readings = readings or {}
        self.translations = translations or {}
        self.co2 = co2
        self._co2: np.ndarray | None = None
        # Python lists of the stops' fields, made on first use: a stop place reads a handful
        # of values per stop, and numpy scalar indexing costs more than the rest of it.
        self._stops: tuple[list[str], list[float], list[float], list[str]] | None = None
        #: Ride geometries (points, metres) by (pattern, shape, board position, alight
        #: position): what :func:`_ride_geometry_arrays` reads of a trip. Shown rides repeat
        #: from plan to plan and cutting a shape cost most of completing one (#10); the
        #: timetable is fixed for the builder's life, so an entry never goes stale.
        self._ride_geometries: dict[
            tuple[int, int, int, int], tuple[tuple[LatLon, ...], float]
        ] = {}

    @property
    def pattern_co2(self) -> np.ndarray:
        """Cumulative grams along each pattern (built on first use)."""
        if self._co2 is None:
            self._co2 = pattern_co2_cumulative(self.tt, self.co2)
        return self._co2

    def stop_place(
        self, s: int, locale: str, arrival: int | None = None, departure: int | None = None
    ) -> Place:
        if self._stops is None:
            tt = self.tt
            self._stops = (
                [str(x) for x in tt.stop_names.tolist()],
                [float(x) for x in tt.stop_lat.tolist()],
                [float(x) for x in tt.stop_lon.tolist()],
                [str(x) for x in tt.stop_ids.tolist()],
            )
        names, lats, lons, ids = self._stops
        name = names[s]
        if locale != "ja":
            name = self.translations.get(locale, {}).get(s, name)
        return Place(
            name=name,
            lat=lats[s],
            lon=lons[s],
            stop_index=s,
            stop_id=ids[s],
            reading=self.readings.get(s) if locale == "ja" else None,
            arrival=arrival,
            departure=departure,
        )

    def build(
        self,
        journey: Journey,
        origin: Place,
        destination: Place,
        *,
        speed: float,
        locale: str = "en",
        realtime: Any | None = None,
        day: dt.date | None = None,
        detail: bool = True,
    ) -> Itinerary:
        """The itinerary of ``journey``; ``realtime`` (one overlay, or several: one per service
        date) gives each ride the times of its own service day's run.

        ``detail=False`` leaves out what only showing it needs: the rides' shapes, distances
        and intermediate stops and the walks' paths and distances (no street search). Times,
        stops, trips, transfers and CO2 are the same, so it filters and sorts as the detailed
        one does; the planner builds a dozen candidates per query and shows three, and
        :meth:`detailed` completes those (#10)."""
        legs: list[ItineraryLeg] = []
        jlegs = journey.legs
        for i, leg in enumerate(jlegs):
            if isinstance(leg, RideLeg):
                legs.append(self._ride(leg, locale, realtime, day, detail))
            elif _stays_at_stop(leg, jlegs[i + 1] if i + 1 < len(jlegs) else None):
                # The rider never leaves the vehicle: a stay at the stop before the trip it
                # continues into is no walk of the trip (no leg, no change time shown).
                continue
            else:
                legs.append(self._walk(leg, origin, destination, speed, locale, detail))
        return Itinerary(tuple(_merge_walks(legs)), journey, detailed=detail)

    def detailed(
        self,
        it: Itinerary,
        origin: Place,
        destination: Place,
        *,
        speed: float,
        locale: str = "en",
        realtime: Any | None = None,
        day: dt.date | None = None,
    ) -> Itinerary:
        """``it`` with its shapes, walking paths and intermediate stops (as :meth:`build` with
        ``detail=True`` of its journey, the same arguments), its planner marks kept."""
        if it.detailed or it.journey is None:
            return it
        full = self.build(
            it.journey, origin, destination, speed=speed, locale=locale, realtime=realtime, day=day
        )
        return replace(
            full, car_distance_m=it.car_distance_m, car_co2_g=it.car_co2_g, healthier=it.healthier
        )

    def _end(self, s: int, place: Place, locale: str, t: int, arriving: bool) -> Place:
        if s >= 0:
            return self.stop_place(
                s, locale, arrival=t if arriving else None, departure=None if arriving else t
            )
        return Place(
            place.name,
            place.lat,
            place.lon,
            place.stop_index,
            place.stop_id,
            place.reading,
            arrival=t if arriving else None,
            departure=None if arriving else t,
        )

    def _walk(
        self,
        leg: WalkLeg,
        origin: Place,
        destination: Place,
        speed: float,
        locale: str,
        detail: bool = True,
    ) -> ItineraryLeg:
        a = self._end(leg.from_stop, origin, locale, leg.departure, False)
        b = self._end(leg.to_stop, destination, locale, leg.arrival, True)
        if not detail:
            return ItineraryLeg("WALK", leg.departure, leg.arrival, a, b, 0.0, ())
        _, meters, coords = self.walk.walk(a.lat, a.lon, b.lat, b.lon, speed)
        return ItineraryLeg(
            mode="WALK",
            start=leg.departure,
            end=leg.arrival,
            origin=a,
            destination=b,
            distance_m=float(meters),
            geometry=tuple((float(x), float(y)) for x, y in coords),
            street=walk_graph_of(self.walk),
        )

    def _ride(
        self,
        leg: RideLeg,
        locale: str,
        realtime: Any | None,
        day: dt.date | None,
        detail: bool = True,
    ) -> ItineraryLeg:
        tt = self.tt
        t = leg.trip
        r = int(tt.trip_route[t])
        ag = int(tt.route_agency[r])
        st0 = int(tt.trip_st_ptr[t])
        p = int(tt.trip_pattern[t])
        p0 = int(tt.pattern_stop_ptr[p])
        off = leg.day_offset
        sched_dep = int(tt.st_departure[st0 + leg.board_pos]) + off
        sched_arr = int(tt.st_arrival[st0 + leg.alight_pos]) + off
        # The overlay of the service day this copy of the trip runs on (yesterday's for a ride
        # past midnight on yesterday's run): ``realtime`` may hold several days' overlays.
        ov = None if day is None else overlay_for(realtime, day + dt.timedelta(seconds=off))
        rt = ov is not None and bool(getattr(ov, "trip_updated", np.zeros(tt.n_trips, np.bool_))[t])
        times_arr = ov.arrival if rt else tt.st_arrival  # type: ignore[union-attr]
        times_dep = ov.departure if rt else tt.st_departure  # type: ignore[union-attr]
        inter: tuple[Place, ...] = ()
        geom: tuple[LatLon, ...] = ()
        meters = 0.0
        if detail:
            lo, hi = leg.board_pos + 1, leg.alight_pos
            stops = tt.pattern_stops[p0 + lo : p0 + hi].tolist()
            arrs = times_arr[st0 + lo : st0 + hi].tolist()
            deps = times_dep[st0 + lo : st0 + hi].tolist()
            inter = tuple(
                self.stop_place(int(s), locale, arrival=int(a) + off, departure=int(d) + off)
                for s, a, d in zip(stops, arrs, deps, strict=True)
            )
            geom, meters = self._ride_geometry(t, p, leg.board_pos, leg.alight_pos)
        return ItineraryLeg(
            mode=route_type_mode(int(tt.route_types[r])),
            start=leg.departure,
            end=leg.arrival,
            origin=self.stop_place(leg.board_stop, locale, departure=leg.departure),
            destination=self.stop_place(leg.alight_stop, locale, arrival=leg.arrival),
            distance_m=meters,
            geometry=geom,
            route_id=str(tt.route_ids[r]),
            route_short_name=str(tt.route_short_names[r]) or None,
            route_long_name=str(tt.route_long_names[r]) or None,
            route_color=str(tt.route_colors[r]) or None,
            route_type=int(tt.route_types[r]),
            agency_name=str(tt.agency_names[ag]) if ag >= 0 else None,
            agency_id=str(tt.agency_ids[ag]) if ag >= 0 else None,
            trip_id=str(tt.trip_ids[t]),
            headsign=str(tt.trip_headsigns[t]) or None,
            intermediate_stops=inter,
            scheduled_start=sched_dep,
            scheduled_end=sched_arr,
            realtime=rt,
            service_day_offset=off,
            co2_g=ride_grams(self.pattern_co2, p0, leg.board_pos, leg.alight_pos),
            interline_with_previous_leg=leg.stay_seated,
        )

    def _ride_geometry(
        self, trip: int, pattern: int, board_pos: int, alight_pos: int
    ) -> tuple[tuple[LatLon, ...], float]:
        """The points and length (m) of ``trip`` ridden between two positions of its
        pattern (:func:`ride_geometry`, :func:`path_length_m`), cached."""
        key = (pattern, int(self.tt.trip_shape[trip]), board_pos, alight_pos)
        hit = self._ride_geometries.get(key)
        if hit is None:
            lat, lon = _ride_geometry_arrays(self.tt, trip, board_pos, alight_pos)
            if len(self._ride_geometries) >= RENDER_CACHE_SIZE:
                self._ride_geometries.clear()
            hit = self._ride_geometries[key] = (
                tuple(zip(lat.tolist(), lon.tolist(), strict=True)),
                _length_m(lat, lon),
            )
        return hit


def _stays_at_stop(walk: WalkLeg, nxt: Any) -> bool:
    """Whether ``walk`` only waits at one stop before a ride stayed seated into."""
    return (
        isinstance(nxt, RideLeg)
        and nxt.stay_seated
        and walk.from_stop == walk.to_stop
        and walk.from_stop >= 0
    )


def _merge_walks(legs: list[ItineraryLeg]) -> list[ItineraryLeg]:
    """Consecutive walks (a footpath then the egress, say) become one walk leg."""
    out: list[ItineraryLeg] = []
    for leg in legs:
        prev = out[-1] if out else None
        if prev is not None and not prev.transit and not leg.transit:
            out[-1] = ItineraryLeg(
                mode="WALK",
                start=prev.start,
                end=prev.start + prev.duration + leg.duration,
                origin=prev.origin,
                destination=leg.destination,
                distance_m=prev.distance_m + leg.distance_m,
                geometry=prev.geometry + leg.geometry[1:],
                street=prev.street or leg.street,
            )
        else:
            out.append(leg)
    return out


# --- filtering ----------------------------------------------------------------------------------
def filter_itineraries(
    items: Sequence[Itinerary], limit: int, arrive_by: bool = False, co2: bool = False
) -> list[Itinerary]:
    """Drop dominated and near-duplicate itineraries, order them, keep ``limit``.

    Dominated: another one departs no earlier, arrives no later, with no more transfers and
    no more walking (one strictly better; with ``co2``, also no more CO2). Near-duplicates
    ride the same trips; the one arriving first (then walking least) is kept. With ``co2``
    the lowest-emission itinerary that rides is always among those kept.
    """
    by_trips: dict[tuple[str | None, ...], Itinerary] = {}
    for it in items:
        key = it.trips_key() or ("walk",)
        old = by_trips.get(key)
        if old is None or (it.end, it.walk_time, -it.start) < (old.end, old.walk_time, -old.start):
            by_trips[key] = it
    cands = list(by_trips.values())

    def dominates(a: Itinerary, b: Itinerary) -> bool:
        ka = (-a.start, a.end, a.transfers, a.walk_time, a.co2_g if co2 else 0)
        kb = (-b.start, b.end, b.transfers, b.walk_time, b.co2_g if co2 else 0)
        return all(x <= y for x, y in zip(ka, kb, strict=True)) and ka != kb

    kept = [b for b in cands if not any(dominates(a, b) for a in cands if a is not b)]
    if arrive_by:
        kept.sort(key=lambda it: (-it.start, it.end, it.transfers))
    else:
        kept.sort(key=lambda it: (it.end, -it.start, it.transfers))
    out = kept[:limit]
    rides = [it for it in kept if any(leg.transit for leg in it.legs)]
    if co2 and rides:
        cleanest = min(rides, key=lambda it: (it.co2_g, it.end))
        if cleanest not in out:
            out[-1] = cleanest
    return out


# --- rendering ----------------------------------------------------------------------------------
def service_day_epoch_ms(day: dt.date, timezone: str) -> int:
    """Epoch ms of GTFS time 0 on ``day``: noon local time minus 12 hours."""
    try:
        tz = ZoneInfo(timezone)
    except Exception:  # unknown zone names in a feed: treat as UTC rather than fail
        tz = ZoneInfo("UTC")
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=tz)
    return int(noon.timestamp() * 1000) - 12 * 3600 * 1000


def _place_otp(p: Place, base_ms: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "lat": p.lat, "lon": p.lon}
    if p.stop_id is not None:
        out["stopId"] = p.stop_id
        out["stopIndex"] = p.stop_index
    if p.reading:
        out["nameReading"] = p.reading
    out["vertexType"] = "TRANSIT" if p.stop_id is not None else "NORMAL"
    if p.arrival is not None:
        out["arrival"] = base_ms + p.arrival * 1000
    if p.departure is not None:
        out["departure"] = base_ms + p.departure * 1000
    return out


def co2_json(grams: int) -> dict[str, Any]:
    """An amount of CO2 as the API shows it: ``{"co2": grams, "unit": "g"}``."""
    return {"co2": int(grams), "unit": "g"}


#: Geometries at most this long are encoded in plain Python: numpy's per-call overhead is
#: most of the cost of a short one (a straight walk has two points).
_SMALL_GEOMETRY = 16
#: Bound of each rendering cache below (entries); a full cache is emptied and refilled.
RENDER_CACHE_SIZE = 512
#: ``legGeometry`` parts by the leg's points: (encoded polyline, GeoJSON coordinates). A
#: ride's shape between two stops is the same in every plan riding it, and encoding it cost
#: about a third of :func:`to_otp` (#10). The cached lists are shared by the answers that
#: show them: read only.
_geometries: dict[tuple[LatLon, ...], tuple[str, list[list[float]]]] = {}
#: Walk steps (OTP dicts) by (points, ``id`` of the street graph): (the graph, the steps).
#: The graph is kept in the entry, so its ``id`` is not reused while the entry lives.
_walk_steps: dict[tuple[tuple[LatLon, ...], int], tuple[Any, list[dict[str, Any]]]] = {}


def clear_render_caches() -> None:
    """Empty :func:`to_otp`'s caches (tests; they hold only what the points determine)."""
    _geometries.clear()
    _walk_steps.clear()


def _encode_small(points: Sequence[LatLon], precision: int = 5) -> str:
    """:func:`_encode_array` of a few points in plain Python, the same characters: each
    coordinate scaled and rounded half to even (``round`` of the same float product as
    ``np.round``), delta-coded, zig-zagged and cut into 5-bit groups."""
    scale = float(10**precision)
    out: list[str] = []
    prev_lat = prev_lon = 0
    for lat, lon in points:
        ilat, ilon = round(float(lat) * scale), round(float(lon) * scale)
        for delta in (ilat - prev_lat, ilon - prev_lon):
            v = ~(delta << 1) if delta < 0 else delta << 1
            while v >= 0x20:
                out.append(chr((0x20 | (v & 0x1F)) + 63))
                v >>= 5
            out.append(chr(v + 63))
        prev_lat, prev_lon = ilat, ilon
    return "".join(out)


def _render_geometry(geometry: Sequence[LatLon]) -> tuple[str, list[list[float]]]:
    """(encoded polyline, GeoJSON ``[lon, lat]`` coordinates) of ``geometry``."""
    if len(geometry) <= _SMALL_GEOMETRY:
        return _encode_small(geometry), [[float(lon), float(lat)] for lat, lon in geometry]
    pts = np.asarray(geometry, dtype=np.float64).reshape(-1, 2)
    coords: list[list[float]] = pts[:, ::-1].tolist()
    return _encode_array(pts), coords


def _geometry_json(geometry: tuple[LatLon, ...]) -> dict[str, Any]:
    """A leg's ``legGeometry``: encoded polyline, point count, GeoJSON line (lon, lat)."""
    try:
        hit = _geometries.get(geometry)
    except TypeError:  # points given as lists (unhashable): rendered, not cached
        hit = _render_geometry(geometry)
    if hit is None:
        if len(_geometries) >= RENDER_CACHE_SIZE:
            _geometries.clear()
        hit = _geometries[geometry] = _render_geometry(geometry)
    return {
        "points": hit[0],
        "length": len(geometry),
        "geojson": {"type": "LineString", "coordinates": hit[1]},
    }


def _steps_json(geometry: tuple[LatLon, ...], street: Any) -> list[dict[str, Any]]:
    """OTP's ``steps`` of a walk along ``geometry`` on ``street`` (fresh dicts: the caller
    may change them)."""
    key = (geometry, id(street))
    try:
        hit = _walk_steps.get(key)
    except TypeError:  # unhashable points: not cached
        return [step.to_otp() for step in walk_steps(geometry, street)]
    if hit is None or hit[0] is not street:
        if len(_walk_steps) >= RENDER_CACHE_SIZE:
            _walk_steps.clear()
        hit = _walk_steps[key] = (
            street,
            [step.to_otp() for step in walk_steps(geometry, street)],
        )
    return [dict(step) for step in hit[1]]


def to_otp(it: Itinerary, day: dt.date, timezone: str) -> dict[str, Any]:
    """The itinerary with OpenTripPlanner's field names."""
    base = service_day_epoch_ms(day, timezone)
    legs = []
    for leg in it.legs:
        d: dict[str, Any] = {
            "mode": leg.mode,
            "transitLeg": leg.transit,
            "startTime": base + leg.start * 1000,
            "endTime": base + leg.end * 1000,
            "duration": leg.duration,
            "distance": round(leg.distance_m, 1),
            "from": _place_otp(leg.origin, base),
            "to": _place_otp(leg.destination, base),
            "legGeometry": _geometry_json(leg.geometry),
            "realTime": leg.realtime,
        }
        if not leg.transit:
            d["emissionsPerPerson"] = co2_json(0)
            steps = _steps_json(leg.geometry, leg.street)
            if leg.street is None and len(steps) == 1:
                # A straight-line walk (no street graph) is drawn as the crow flies but
                # walked with the detour factor: its one step says the distance walked.
                steps[0]["distance"] = round(leg.distance_m, 1)
            d["steps"] = steps
        if leg.on_demand is not None:
            d.update(_on_demand_otp(leg.on_demand, base))
        elif leg.transit:
            assert leg.scheduled_start is not None and leg.scheduled_end is not None
            d.update(
                {
                    "routeId": leg.route_id,
                    "routeShortName": leg.route_short_name,
                    "routeLongName": leg.route_long_name,
                    "routeColor": leg.route_color,
                    "routeType": leg.route_type,
                    "agencyName": leg.agency_name,
                    "agencyId": leg.agency_id,
                    "tripId": leg.trip_id,
                    "headsign": leg.headsign,
                    "serviceDate": (day + dt.timedelta(seconds=leg.service_day_offset)).isoformat(),
                    "intermediateStops": [_place_otp(p, base) for p in leg.intermediate_stops],
                    "scheduledStartTime": base + leg.scheduled_start * 1000,
                    "scheduledEndTime": base + leg.scheduled_end * 1000,
                    "departureDelay": leg.start - leg.scheduled_start,
                    "arrivalDelay": leg.end - leg.scheduled_end,
                    "emissionsPerPerson": co2_json(leg.co2_g),
                    # OTP's flag: the rider stays on board (same vehicle, no transfer).
                    "interlineWithPreviousLeg": leg.interline_with_previous_leg,
                }
            )
        legs.append(d)
    out: dict[str, Any] = {
        "startTime": base + it.start * 1000,
        "endTime": base + it.end * 1000,
        "duration": it.duration,
        "walkTime": it.walk_time,
        "walkDistance": round(it.walk_distance, 1),
        "transitTime": it.transit_time,
        "waitingTime": it.waiting_time,
        "transfers": it.transfers,
        # OTP 2's emissions field: grams of CO2 per passenger (the planner's factors).
        "emissionsPerPerson": co2_json(it.co2_g),
        "legs": legs,
        "onDemand": it.on_demand,
    }
    if it.car_co2_g is not None and it.car_distance_m is not None:
        # The same door-to-door trip driven alone, and what this itinerary saves against it.
        out["carCo2"] = {**co2_json(it.car_co2_g), "distance": round(it.car_distance_m, 1)}
        out["co2Saving"] = co2_json(it.car_co2_g - it.co2_g)
    if it.healthier is not None:
        out["healthier"] = {"extraTime": it.healthier[0], "extraWalkTime": it.healthier[1]}
    offers = [leg.on_demand for leg in it.legs if leg.on_demand is not None]
    if offers:
        # Bookable as one trip (POST /api/v1/trips) while every leg's quote holds.
        out["bookable"] = True
        out["quoteExpiresAt"] = base + min(o.expires_at for o in offers) * 1000
    return out


def _on_demand_otp(offer: OnDemandOffer, base: int) -> dict[str, Any]:
    """The fields of an on-demand leg (OTP's flex leg fields where OTP has them)."""
    b = offer.booking
    info: dict[str, Any] = {
        "minimumBookingNotice": int(b.min_notice_s),
        "message": b.message or None,
        "contactInfo": {"phoneNumber": b.phone or None, "bookingUrl": b.url or None},
    }
    if b.max_notice_s is not None:
        info["maximumBookingNotice"] = int(b.max_notice_s)
    if b.latest_booking is not None:
        info["latestBookingTime"] = base + b.latest_booking * 1000
    return {
        "transitLeg": True,
        "onDemand": True,
        "zoneId": offer.zone_id,
        "zoneName": offer.zone_name,
        "routeShortName": offer.zone_name,
        "vehicleType": offer.vehicle_type,
        "vehicleId": offer.vehicle_id,
        "pickupWindow": {
            "start": base + offer.pickup_window[0] * 1000,
            "end": base + offer.pickup_window[1] * 1000,
        },
        "latestArrivalTime": base + offer.latest_arrival * 1000,
        "bookingQuoteId": offer.quote_id,
        "bookingRequestId": offer.ride_id,
        "quoteExpiresAt": base + offer.expires_at * 1000,
        "pickupBookingInfo": info,
        "fare": offer.fare,
        "emissionsPerPerson": co2_json(offer.co2_g),
    }
