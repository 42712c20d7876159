"""Trip planning: a query (places, date, time, options) → access/egress → RAPTOR → itineraries.

The planner knows nothing of the app: it takes a :class:`~routing.transit.TransitData` and a
walking model (``routing.street.WalkAccess``: ``nearby_stops`` and ``walk``; the straight-line
model by default) and answers a :class:`Plan` — itineraries, or none with an OTP-style error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from routing.intermodal import IntermodalPlanner, Query
from routing.itinerary import Itinerary, ItineraryBuilder, Place, filter_itineraries
from routing.on_demand import OnDemandProvider, OnDemandRefusal
from routing.options import RoutingOptions
from routing.raptor import (
    earliest_arrival,
    latest_departure,
    mc_raptor,
    range_query,
    via_earliest_arrival,
)
from routing.raptor.journey import Journey, WalkLeg
from routing.transit import TransitData

LatLon = tuple[float, float]


class WalkModel(Protocol):
    """What the planner needs from the street layer (``routing.street.WalkAccess``)."""

    def nearby_stops(
        self, lat: float, lon: float, max_seconds: float, walk_speed_mps: float = 1.2
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...

    def walk(
        self, lat1: float, lon1: float, lat2: float, lon2: float, walk_speed_mps: float = 1.2
    ) -> tuple[int, float, list[LatLon]]: ...


# OTP's planner error ids.
OUTSIDE_SERVICE_PERIOD = "OUTSIDE_SERVICE_PERIOD"
LOCATION_NOT_ACCESSIBLE = "LOCATION_NOT_ACCESSIBLE"
NO_TRANSIT_CONNECTION = "NO_TRANSIT_CONNECTION"
PATH_NOT_FOUND = "PATH_NOT_FOUND"

#: Stops tried at each end for the "healthier" preference (one search each).
HEALTHIER_STOPS = 6

_MESSAGES = {
    OUTSIDE_SERVICE_PERIOD: "The date is outside the service period of the published timetable.",
    LOCATION_NOT_ACCESSIBLE: "No stop is within walking distance of the {which}.",
    NO_TRANSIT_CONNECTION: "No trip was found between the origin and the destination with "
    "these options.",
    PATH_NOT_FOUND: "No path was found.",
}


def plan_message(code: str, **fmt: str) -> str:
    """The readable text of a planner error id."""
    return _MESSAGES[code].format(**fmt)


@dataclass(frozen=True)
class PlanPlace:
    """A query end: a stop index, or coordinates (with an optional display name)."""

    lat: float
    lon: float
    stop: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class PlanRequest:
    origin: PlanPlace
    destination: PlanPlace
    date: dt.date
    time_s: int  # seconds after the start of ``date`` (GTFS time)
    arrive_by: bool = False
    options: RoutingOptions = field(default_factory=RoutingOptions)
    locale: str = "en"


@dataclass(frozen=True)
class PlanError:
    id: str
    message: str
    missing: tuple[str, ...] = ()

    def as_otp(self) -> dict[str, Any]:
        """OTP's planner error object (``id``, ``msg``, ``noPath``; ``message`` repeats the
        readable text for clients that show that field)."""
        return {
            "id": self.id,
            "msg": self.message,
            "message": self.message,
            "noPath": True,
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class Plan:
    request: PlanRequest
    origin: Place
    destination: Place
    itineraries: tuple[Itinerary, ...]
    error: PlanError | None = None
    #: Why on-demand rides were not offered (or not for every part), when they were asked for.
    on_demand_refusals: tuple[OnDemandRefusal, ...] = ()


class FallbackWalk:
    """A street walking model that falls back to another (straight lines) where it fails.

    An OSM extract may not cover every stop or query point (``TooFarFromNetwork``) nor
    connect every pair (``NoStreetPath``); the query then walks the straight-line model
    rather than failing.
    """

    def __init__(self, primary: WalkModel, fallback: WalkModel) -> None:
        self.primary = primary
        self.fallback = fallback

    def nearby_stops(
        self, lat: float, lon: float, max_seconds: float, walk_speed_mps: float = 1.2
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        from routing.street import StreetError

        try:
            found = self.primary.nearby_stops(lat, lon, max_seconds, walk_speed_mps)
        except StreetError:
            return self.fallback.nearby_stops(lat, lon, max_seconds, walk_speed_mps)
        return found

    def walk(
        self, lat1: float, lon1: float, lat2: float, lon2: float, walk_speed_mps: float = 1.2
    ) -> tuple[int, float, list[LatLon]]:
        from routing.street import StreetError

        try:
            return self.primary.walk(lat1, lon1, lat2, lon2, walk_speed_mps)
        except StreetError:
            return self.fallback.walk(lat1, lon1, lat2, lon2, walk_speed_mps)


class Planner:
    """Plans over one published timetable (build once, query many times; thread-safe).

    ``walk`` is the street model for access, egress and walking legs (e.g.
    ``routing.street.OsmWalkAccess``); where it fails the straight-line model takes over.
    """

    def __init__(
        self,
        data: TransitData,
        walk: WalkModel | None = None,
        *,
        readings: dict[int, str] | None = None,
        translations: dict[str, dict[int, str]] | None = None,
    ) -> None:
        self.data = data
        self.tt = data.tt
        from routing.street import StraightLineAccess

        straight = StraightLineAccess(self.tt.stop_lat, self.tt.stop_lon)
        self.walk: WalkModel = straight if walk is None else FallbackWalk(walk, straight)
        self.builder = ItineraryBuilder(
            self.tt, self.walk, readings=readings, translations=translations, co2=data.co2
        )
        #: Whether McRAPTOR's search is cut where it cannot change the answer (``_search``).
        self.bound_mc = True
        self.intermodal = IntermodalPlanner(
            self.builder, np.diff(self.tt.stop_pattern_ptr).astype(np.int32)
        )

    # ---------------------------------------------------------------------------------------
    def _place(self, p: PlanPlace, locale: str, label: str) -> Place:
        if p.stop is not None:
            return self.builder.stop_place(p.stop, locale)
        return Place(name=p.name or label, lat=p.lat, lon=p.lon)

    def _station(self, stop: int, whole: bool) -> npt.NDArray[np.int32]:
        """The stops ``stop`` stands for: itself and, for a station, its platforms (GTFS
        ``parent_station``); with ``whole`` (``RoutingOptions.station_match``) a platform
        stands for its whole station too (the parent and every platform of it)."""
        parent = self.tt.stop_parent
        root = stop
        if whole and parent[stop] >= 0:
            root = int(parent[stop])
        stops = np.flatnonzero(parent == root).astype(np.int32)
        return np.unique(np.concatenate([np.array([stop, root], dtype=np.int32), stops]))

    def _access(
        self, p: PlanPlace, options: RoutingOptions
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        if p.stop is not None:
            stops = self._station(p.stop, options.station_match)
            return stops, np.zeros(stops.shape[0], dtype=np.int32)
        idx, secs, _ = self.walk.nearby_stops(
            p.lat, p.lon, options.max_walk_s, options.walk_speed_mps
        )
        served = np.diff(self.tt.stop_pattern_ptr)[idx] > 0
        return idx[served].astype(np.int32), secs[served].astype(np.int32)

    def plan(
        self,
        req: PlanRequest,
        realtime: Any | None = None,
        *,
        realtime_version: int | None = None,
        on_demand: OnDemandProvider | None = None,
    ) -> Plan:
        """Itineraries for ``req``, best first.

        ``realtime`` (optional): one realtime overlay or several (one per service date, see
        :func:`routing.transit.overlays`). A query on date ``D`` rides the runs of ``D - 1``
        (past midnight), ``D`` and ``D + 1``, so pass the overlays of all three for a late
        night or early morning answer to see their delays, skips and cancellations.

        ``realtime_version`` (optional): the version of the realtime source those overlays
        were read at (it changes with every change of them); queries of one version then share
        their query set-up (:meth:`routing.transit.TransitData.query_arrays`).

        ``on_demand`` (optional): the fleet to quote on-demand legs from, used when
        ``req.options.on_demand`` is set (:mod:`routing.intermodal`). On-demand itineraries
        are returned beside the walk + transit ones (up to ``num_itineraries`` of each), and
        the reasons rides were refused in :attr:`Plan.on_demand_refusals`.
        """
        o = self._place(req.origin, req.locale, "Origin")
        d = self._place(req.destination, req.locale, "Destination")
        if not self.data.covers(req.date):
            code = OUTSIDE_SERVICE_PERIOD
            return Plan(req, o, d, (), PlanError(code, plan_message(code)))
        opts = req.options
        a_stops, a_secs = self._access(req.origin, opts)
        e_stops, e_secs = self._access(req.destination, opts)
        direct = self._direct_walk(req, o, d)
        flex: list[Itinerary] = []
        refusals: tuple[OnDemandRefusal, ...] = ()
        if opts.on_demand and on_demand is not None:
            res = self._on_demand(
                req,
                o,
                d,
                (a_stops, a_secs),
                (e_stops, e_secs),
                on_demand,
                realtime,
                realtime_version,
            )
            flex, refusals = res.itineraries, tuple(res.refusals)

        def fail(code: str, **fmt: str) -> Plan:
            return Plan(req, o, d, (), PlanError(code, plan_message(code, **fmt)), refusals)

        if not flex:
            if a_stops.size == 0 and direct is None:
                return fail(LOCATION_NOT_ACCESSIBLE, which="origin")
            if e_stops.size == 0 and direct is None:
                return fail(LOCATION_NOT_ACCESSIBLE, which="destination")
        n = opts.num_itineraries
        # What a search again in full (below) shares with the cut one: the earliest-arrival
        # searches' journeys and the candidates built of them (by journey object).
        memo: dict[str, Any] = {}
        built: dict[int, tuple[Journey, Itinerary]] = {}

        def candidate(j: Journey) -> Itinerary:
            hit = built.get(id(j))
            if hit is None or hit[0] is not j:
                hit = built[id(j)] = (j, self._candidate(req, j, o, d, realtime))
            return hit[1]

        def candidates(bounded: bool) -> tuple[list[Itinerary], list[Itinerary], int | None]:
            journeys: list[Journey] = []
            bound: int | None = None
            if a_stops.size and e_stops.size:
                journeys, bound = self._searched(
                    req,
                    a_stops,
                    a_secs,
                    e_stops,
                    e_secs,
                    realtime,
                    realtime_version,
                    bounded,
                    memo=memo,
                )
            if opts.max_travel_s > 0:
                # The searches prune from the time they start at; McRAPTOR's extra options and
                # the walks to and from the stops are held to the limit here, door to door.
                journeys = [j for j in journeys if j.arrival - j.departure <= opts.max_travel_s]
            # Candidates without shapes, walking paths and intermediate stops: a dozen are
            # built to keep three, and only those kept are completed (``_shown``).
            items = [candidate(j) for j in journeys if j.rides]
            if direct is not None:
                items.append(direct)
            return items, filter_itineraries(items, n, req.arrive_by, opts.optimize_co2), bound

        items, kept, bound = candidates(self.bound_mc)
        if bound is not None and (len(kept) < n or any(it.end > bound for it in kept)):
            # McRAPTOR's search was cut at ``bound`` and not every itinerary kept arrives by
            # then: one arriving later could be among them, search again in full.
            items, kept, _ = candidates(False)
        if flex:
            # On-demand options beside (not instead of) the walk + transit ones: a rider
            # compares them; dominated ones of either kind still go.
            both = filter_itineraries(kept + flex, 2 * n, req.arrive_by, opts.optimize_co2)
            kept = [it for it in both if not it.on_demand][:n] + [
                it for it in both if it.on_demand
            ][:n]
            if req.arrive_by:
                kept.sort(key=lambda it: (-it.start, it.end, it.transfers))
            else:
                kept.sort(key=lambda it: (it.end, -it.start, it.transfers))
        if opts.healthier_s > 0 and kept:
            kept = self._healthier(
                req, o, d, items, kept, a_stops, a_secs, realtime, realtime_version
            )
        if not kept:
            if a_stops.size == 0:
                return fail(LOCATION_NOT_ACCESSIBLE, which="origin")
            if e_stops.size == 0:
                return fail(LOCATION_NOT_ACCESSIBLE, which="destination")
            return fail(NO_TRANSIT_CONNECTION)
        return Plan(
            req,
            o,
            d,
            tuple(self._with_car(self._shown(req, it, o, d, realtime), o, d) for it in kept),
            None,
            refusals,
        )

    def _candidate(
        self, req: PlanRequest, j: Journey, o: Place, d: Place, realtime: Any | None
    ) -> Itinerary:
        """``j`` as a candidate itinerary: without shapes, walking paths and intermediate
        stops, which only the itineraries kept get (:meth:`_shown`)."""
        return self.builder.build(
            j,
            o,
            d,
            speed=req.options.walk_speed_mps,
            locale=req.locale,
            realtime=realtime,
            day=req.date,
            detail=False,
        )

    def _shown(
        self, req: PlanRequest, it: Itinerary, o: Place, d: Place, realtime: Any | None
    ) -> Itinerary:
        """``it`` complete with its shapes, walking paths and intermediate stops."""
        return self.builder.detailed(
            it,
            o,
            d,
            speed=req.options.walk_speed_mps,
            locale=req.locale,
            realtime=realtime,
            day=req.date,
        )

    def _healthier(
        self,
        req: PlanRequest,
        o: Place,
        d: Place,
        items: list[Itinerary],
        kept: list[Itinerary],
        a_stops: npt.NDArray[np.int32],
        a_secs: npt.NDArray[np.int32],
        realtime: Any | None,
        realtime_version: int | None,
    ) -> list[Itinerary]:
        """``kept`` with the "healthier" itinerary first (``RoutingOptions.healthier_s``).

        The fastest itinerary is the earliest arrival (the latest departure with
        ``arrive_by``), the least walking of those. The healthier one walks the most of the
        itineraries no more than ``healthier_s`` later (earlier) than it: those searched, the
        direct walk on a walking budget ``healthier_s`` longer, and (departing at a time) for
        each of :data:`HEALTHIER_STOPS` stops farther from the destination than the fastest
        itinerary's last stop, and as many farther from the origin than its first stop (on
        that budget, stops of its own line first: getting off one stop earlier, walking to a
        farther stop of the same line), the earliest arrival through that stop alone. It is
        marked with what it costs and gives (:attr:`Itinerary.healthier`: negative seconds
        when it is faster, e.g. a walk beyond ``max_walk_m``) and put first
        (added when it was not among ``kept``: one more than ``num_itineraries``); ``kept``
        as it was when no such itinerary walks more than the fastest.
        """
        opts = req.options
        budget = opts.healthier_s
        if req.arrive_by:
            fastest = min(kept, key=lambda it: (-it.start, it.walk_time))

            def extra(it: Itinerary) -> int:
                return fastest.start - it.start
        else:
            fastest = min(kept, key=lambda it: (it.end, it.walk_time))

            def extra(it: Itinerary) -> int:
                return it.end - fastest.end

        wide = dataclasses.replace(
            opts, max_walk_m=min(20_000.0, opts.max_walk_m + budget * opts.walk_speed_mps)
        )
        pool = list(kept) + list(items)
        direct = self._direct_walk(req, o, d, wide.max_walk_m)
        if direct is not None:
            pool.append(direct)
        journey = fastest.journey
        if not req.arrive_by and not fastest.on_demand and journey is not None and journey.rides:
            data = self.data
            q = data.query_arrays(req.date, opts, realtime, realtime_version=realtime_version)
            first, last = journey.legs[0], journey.legs[-1]
            walked_from = first.seconds if isinstance(first, WalkLeg) else 0
            walked_to = last.seconds if isinstance(last, WalkLeg) else 0
            found: list[Journey] = []
            e_stops, e_secs = self._access(req.destination, wide)
            for stop, secs in self._farther(e_stops, e_secs, walked_to, journey.rides[-1].trip):
                res = earliest_arrival(data.forward, q, req.time_s, a_stops, a_secs, [stop], [secs])
                found.extend(j for j in res.journeys if j.rides)
            e_stops, e_secs = self._access(req.destination, opts)
            w_stops, w_secs = self._access(req.origin, wide)
            for stop, secs in self._farther(w_stops, w_secs, walked_from, journey.rides[0].trip):
                res = earliest_arrival(data.forward, q, req.time_s, [stop], [secs], e_stops, e_secs)
                found.extend(j for j in res.journeys if j.rides)
            pool += [self._candidate(req, j, o, d, realtime) for j in found]
        fits = [it for it in pool if extra(it) <= budget]
        best = max(fits, key=lambda it: (it.walk_time, -extra(it)), default=None)
        if best is None or best.walk_time <= fastest.walk_time:
            return kept
        marked = dataclasses.replace(
            best, healthier=(extra(best), best.walk_time - fastest.walk_time)
        )
        return [marked] + [it for it in kept if it is not best]

    def _farther(
        self,
        stops: npt.NDArray[np.int32],
        secs: npt.NDArray[np.int32],
        walked: int,
        trip: int,
    ) -> list[tuple[int, int]]:
        """Up to :data:`HEALTHIER_STOPS` of ``stops`` more than ``walked`` seconds away, those
        of ``trip``'s line first, then the nearest."""
        tt = self.tt
        p = int(tt.trip_pattern[trip])
        line = set(tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]].tolist())
        farther = [(int(s), int(w)) for s, w in zip(stops, secs, strict=True) if w > walked]
        farther.sort(key=lambda sw: (sw[0] not in line, sw[1]))
        return farther[:HEALTHIER_STOPS]

    def _with_car(self, it: Itinerary, o: Place, d: Place) -> Itinerary:
        """``it`` with the same door-to-door trip by private car (distance and grams), when the
        timetable's CO2 factors have a car factor."""
        factors = self.data.co2
        if factors is None or factors.car_g_per_pkm is None:
            return it
        meters = factors.car_distance_m((o.lat, o.lon), (d.lat, d.lon))
        return dataclasses.replace(it, car_distance_m=meters, car_co2_g=factors.car_grams(meters))

    def _on_demand(
        self,
        req: PlanRequest,
        o: Place,
        d: Place,
        walk_access: tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]],
        walk_egress: tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]],
        provider: OnDemandProvider,
        realtime: Any | None,
        realtime_version: int | None,
    ) -> Any:
        opts = req.options
        data = self.data
        t = req.time_s

        def forward(
            a: npt.NDArray[np.int32],
            a_s: npt.NDArray[np.int32],
            e: npt.NDArray[np.int32],
            e_s: npt.NDArray[np.int32],
        ) -> list[Journey]:
            q = data.query_arrays(req.date, opts, realtime, realtime_version=realtime_version)
            return list(earliest_arrival(data.forward, q, t, a, a_s, e, e_s).journeys)

        def backward(
            a: npt.NDArray[np.int32],
            a_s: npt.NDArray[np.int32],
            e: npt.NDArray[np.int32],
            e_s: npt.NDArray[np.int32],
        ) -> list[Journey]:
            q = data.query_arrays(
                req.date, opts, realtime, reverse=True, realtime_version=realtime_version
            )
            return list(latest_departure(data.backward, q, t, e, e_s, a, a_s).journeys)

        wheel = 1 if opts.wheelchair else 0
        query = Query(
            origin=o,
            destination=d,
            day=req.date,
            time_s=t,
            arrive_by=req.arrive_by,
            seats=0 if wheel else 1,
            wheelchairs=wheel,
            walk_speed_mps=opts.walk_speed_mps,
            locale=req.locale,
        )
        return self.intermodal.plan(
            query, provider, walk_access, walk_egress, forward, backward, realtime
        )

    def _direct_walk(
        self, req: PlanRequest, o: Place, d: Place, max_walk_m: float | None = None
    ) -> Itinerary | None:
        """Walking all the way, when it is within the walking limit (or ``max_walk_m``)."""
        opts = req.options
        secs, meters, _ = self.walk.walk(o.lat, o.lon, d.lat, d.lon, opts.walk_speed_mps)
        if meters > (opts.max_walk_m if max_walk_m is None else max_walk_m):
            return None
        t0 = req.time_s - secs if req.arrive_by else req.time_s
        leg = WalkLeg(
            o.stop_index if o.stop_index >= 0 else -1,
            d.stop_index if d.stop_index >= 0 else -1,
            t0,
            t0 + int(secs),
        )
        j = Journey((leg,))
        return self.builder.build(
            j, o, d, speed=opts.walk_speed_mps, locale=req.locale, day=req.date
        )

    def _search(
        self,
        req: PlanRequest,
        a_stops: npt.NDArray[np.int32],
        a_secs: npt.NDArray[np.int32],
        e_stops: npt.NDArray[np.int32],
        e_secs: npt.NDArray[np.int32],
        realtime: Any | None,
        realtime_version: int | None,
    ) -> list[Journey]:
        """Every candidate journey (McRAPTOR's search not cut)."""
        return self._searched(
            req, a_stops, a_secs, e_stops, e_secs, realtime, realtime_version, False
        )[0]

    def _earliest(
        self,
        req: PlanRequest,
        q: Any,
        a_stops: npt.NDArray[np.int32],
        a_secs: npt.NDArray[np.int32],
        e_stops: npt.NDArray[np.int32],
        e_secs: npt.NDArray[np.int32],
    ) -> tuple[list[Journey], list[Journey]]:
        """A depart-at query's earliest-arrival journeys: the departure window's Pareto set
        (widened until it holds ``min_journeys``), and the first journeys after it."""
        opts = req.options
        forward = self.data.forward
        window = opts.search_window_s
        while True:
            found = range_query(forward, q, req.time_s, window, a_stops, a_secs, e_stops, e_secs)
            if len(found) >= opts.min_journeys or window >= 6 * 3600:
                break
            window = min(6 * 3600, max(2 * window, 900))
        ranged = list(found)
        later: list[Journey] = []
        t = req.time_s
        for _ in range(opts.num_itineraries):
            res = earliest_arrival(forward, q, t, a_stops, a_secs, e_stops, e_secs)
            found = [j for j in res.journeys if j.rides]
            if not found:
                break
            later.extend(found)
            t = min(j.departure for j in found) + 1
        return ranged, later

    def _searched(
        self,
        req: PlanRequest,
        a_stops: npt.NDArray[np.int32],
        a_secs: npt.NDArray[np.int32],
        e_stops: npt.NDArray[np.int32],
        e_secs: npt.NDArray[np.int32],
        realtime: Any | None,
        realtime_version: int | None,
        bounded: bool = False,
        memo: dict[str, Any] | None = None,
    ) -> tuple[list[Journey], int | None]:
        """The candidate journeys, and the arrival McRAPTOR's search was cut at (None: not
        cut).

        With ``bounded`` (depart-at, no CO2 criterion, no "healthier" preference), McRAPTOR
        drops labels arriving after the ``num_itineraries``-th earliest arrival of the other
        searches' journeys (distinct trips): a journey arriving later cannot dominate one
        arriving by then, so the itineraries arriving by then are the same; the caller
        checks that every itinerary it kept arrives by then and otherwise searches again
        unbounded (#10: unbounded, McRAPTOR explored the rest of the service day and took most
        of a /plan's CPU).

        ``memo`` (depart-at): a dict shared by the calls of one query; the range and
        earliest-arrival searches, which ``bounded`` does not change, run in the first call
        only and the search again in full re-runs McRAPTOR alone (#10)."""
        opts = req.options
        data = self.data
        out: list[Journey] = []
        version = realtime_version
        if not req.arrive_by:
            q = data.query_arrays(req.date, opts, realtime, realtime_version=version)
            if opts.via:
                via = [(self._station(stop, opts.station_match), stay) for stop, stay in opts.via]
                j = via_earliest_arrival(
                    data.forward, q, req.time_s, a_stops, a_secs, via, e_stops, e_secs
                )
                return ([] if j is None else [j]), None
            if memo is not None and "earliest" in memo:
                ranged, later = memo["earliest"]
            else:
                ranged, later = self._earliest(req, q, a_stops, a_secs, e_stops, e_secs)
                if memo is not None:
                    memo["earliest"] = (ranged, later)
            out.extend(ranged)
            bound = None
            if bounded and not opts.optimize_co2 and opts.healthier_s == 0:
                first: dict[tuple[int, ...], int] = {}
                for j in out + later:
                    if j.rides:
                        key = tuple(r.trip for r in j.rides)
                        first[key] = min(first.get(key, j.arrival), j.arrival)
                arrivals = sorted(first.values())
                if len(arrivals) >= opts.num_itineraries:
                    bound = arrivals[opts.num_itineraries - 1]
            # Less walking, fewer transfers (or less CO2) at the cost of arriving later.
            co2 = data.pattern_co2 if opts.optimize_co2 else None
            out.extend(
                mc_raptor(
                    data.forward,
                    q,
                    req.time_s,
                    a_stops,
                    a_secs,
                    e_stops,
                    e_secs,
                    pattern_co2=co2,
                    max_arrival=bound,
                )
            )
            return out + later, bound
        q = data.query_arrays(req.date, opts, realtime, reverse=True, realtime_version=version)
        qf = data.query_arrays(req.date, opts, realtime, realtime_version=version)
        t = req.time_s
        departures: set[int] = set()
        for _ in range(2 * opts.num_itineraries):
            res = latest_departure(data.backward, q, t, e_stops, e_secs, a_stops, a_secs)
            found = [j for j in res.journeys if j.rides]
            if not found:
                break
            # Latest departure ties are broken by the earliest arrival: re-run forward from
            # each departure (OTP's "reverse optimisation").
            for j in found:
                fwd = earliest_arrival(
                    data.forward, qf, j.departure, a_stops, a_secs, e_stops, e_secs
                )
                better = [f for f in fwd.journeys if f.rides and f.arrival <= req.time_s]
                out.extend(better or [j])
                departures.add(j.departure)
            t = min(j.arrival for j in out) - 1
            if len(departures) >= opts.num_itineraries:
                break
        return out, None
