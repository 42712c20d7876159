"""Itineraries that join fixed lines with on-demand rides quoted from the live fleet.

For one query the planner (:class:`routing.planner.Planner`) asks this module for on-demand
itineraries of three kinds: **direct** (one ride, origin to destination, when one zone holds
both), **access** (a ride from the origin to a stop of the origin's zone, then transit) and
**egress** (transit, then a ride from a stop of the destination's zone). Both at once (a ride,
transit, a ride) come from the same searches.

The legs are quoted, not guessed (OpenTripPlanner offers flex legs from the GTFS-Flex schedule
alone): every on-demand leg of an answer is an offer of the live fleet with its pick-up window,
arrival and quote id. The order of work keeps quoting to a handful of rides per query:

* Leaving at ``t``: the access rides are quoted first (a van's wait and ride are known before
  RAPTOR runs, so the search only boards buses the van really reaches, with
  :data:`~routing.on_demand.TRANSFER_BUFFER_S` to spare). Egress rides enter RAPTOR as the
  direct drive time (a lower bound), and each journey's egress is then quoted for the moment
  its bus arrives; a journey whose egress the fleet cannot serve is dropped, its reason kept.
* Arriving by ``t``: mirrored. Egress rides are quoted first with "arrive by ``t``", access
  rides enter as the drive time and are quoted afterwards with "arrive by the bus's departure
  minus the buffer".

The rides are quoted in two batches (:class:`BatchedQuotes`): those known before RAPTOR (the
direct ride and the first side's), then every journey's follow-up rides at once. Scaled out a
batch is one round trip to the zone's owner (issue #10), not one per ride.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gtfs.geo import haversine_m
from routing.itinerary import Itinerary, ItineraryBuilder, ItineraryLeg, Place
from routing.on_demand import (
    TRANSFER_BUFFER_S,
    OnDemandAnswer,
    OnDemandOffer,
    OnDemandProvider,
    OnDemandRefusal,
    OnDemandRequest,
    candidate_stops,
)
from routing.raptor.journey import Journey, WalkLeg

IntArray = npt.NDArray[np.int32]

EGRESS_SLACK_S = 60
"""From a bus's arrival to the earliest pick-up of the van waiting for it."""
LEAVE_LATER_AFTER_S = 600
"""An access ride that would leave the rider waiting longer than this at the stop is asked
again to arrive just in time for the bus."""
MEETING_POINT_WALK_M = 30.0
"""A pick-up moved farther than this (to a meeting point) gets a walking leg of its own."""

# Search callbacks the planner passes in: (access stops, secs, egress stops, secs) -> journeys.
Search = Callable[[IntArray, IntArray, IntArray, IntArray], list[Journey]]


class BatchedQuotes:
    """``provider`` with the answers to rides asked in advance (:meth:`prefetch`, one
    ``quote`` call for them all) kept for the query's later ``quote`` calls, which ask the
    provider only for the rides not fetched. One per query: offers are the fleet's now."""

    def __init__(self, provider: OnDemandProvider, day: dt.date) -> None:
        self.provider = provider
        self.day = day
        self.known: dict[OnDemandRequest, OnDemandAnswer] = {}

    def prefetch(self, requests: Sequence[OnDemandRequest]) -> None:
        new = [r for r in dict.fromkeys(requests) if r not in self.known]
        if new:
            self.known.update(zip(new, self.provider.quote(self.day, new), strict=True))

    def quote(self, day: dt.date, requests: Sequence[OnDemandRequest]) -> list[OnDemandAnswer]:
        if day != self.day:
            return self.provider.quote(day, requests)
        self.prefetch(requests)
        return [self.known[r] for r in requests]

    def zone_at(self, lat: float, lon: float) -> str | None:
        return self.provider.zone_at(lat, lon)

    def stops_in_zone(self, zone_id: str) -> IntArray:
        return self.provider.stops_in_zone(zone_id)

    def hub_stops(self, zone_id: str) -> frozenset[int]:
        return self.provider.hub_stops(zone_id)

    def estimate_s(
        self, origin: tuple[float, float], destination: tuple[float, float]
    ) -> float | None:
        return self.provider.estimate_s(origin, destination)


@dataclass
class OnDemandResult:
    """On-demand itineraries of one query and the reasons rides were refused."""

    itineraries: list[Itinerary] = field(default_factory=list)
    refusals: list[OnDemandRefusal] = field(default_factory=list)

    def refuse(self, answer: OnDemandRefusal, role: str) -> None:
        r = OnDemandRefusal(answer.request, answer.reason, answer.message, role)
        if not any(x.reason == r.reason and x.role == r.role for x in self.refusals):
            self.refusals.append(r)


@dataclass(frozen=True)
class Query:
    """The parts of a plan request this module needs (service-day seconds)."""

    origin: Place
    destination: Place
    day: dt.date
    time_s: int
    arrive_by: bool
    seats: int
    wheelchairs: int
    walk_speed_mps: float
    locale: str


class IntermodalPlanner:
    """Builds on-demand itineraries for one timetable (shared by every query; stateless)."""

    def __init__(self, builder: ItineraryBuilder, served: IntArray) -> None:
        self.builder = builder
        self.tt = builder.tt
        self.served = served  # patterns per stop

    # -----------------------------------------------------------------------------------------
    def plan(
        self,
        q: Query,
        provider: OnDemandProvider,
        walk_access: tuple[IntArray, IntArray],
        walk_egress: tuple[IntArray, IntArray],
        forward: Search,
        backward: Search,
        realtime: object | None,
    ) -> OnDemandResult:
        """The on-demand itineraries of ``q``.

        ``walk_access`` / ``walk_egress`` are the stops (and seconds) reachable on foot;
        ``forward`` runs an earliest-arrival search from ``q.time_s``, ``backward`` a
        latest-departure search arriving by it (both return journeys in forward order).
        """
        out = OnDemandResult()
        o, d = q.origin, q.destination
        zo = provider.zone_at(o.lat, o.lon)
        zd = provider.zone_at(d.lat, d.lon)
        if zo is None and zd is None:
            out.refusals.append(
                OnDemandRefusal(
                    None,
                    "outside_zone",
                    "Neither the origin nor the destination is in an on-demand zone.",
                    "direct",
                )
            )
            return out
        acc = self._candidates(provider, zo, o, exclude=())
        egr = self._candidates(provider, zd, d, exclude=())
        batched = BatchedQuotes(provider, q.day)
        first = self._first_requests(q, acc, egr)
        direct = zo is not None and zo == zd
        batched.prefetch(([self._direct_request(q)] if direct else []) + first)
        provider = batched
        if direct:
            self._direct(q, provider, out)
        if acc.size == 0 and egr.size == 0:
            return out
        if q.arrive_by:
            self._arrive_by(
                q, provider, acc, egr, walk_access, walk_egress, backward, realtime, out
            )
        else:
            self._depart_at(q, provider, acc, egr, walk_access, walk_egress, forward, realtime, out)
        return out

    def _candidates(
        self, provider: OnDemandProvider, zone: str | None, p: Place, exclude: Sequence[int]
    ) -> IntArray:
        if zone is None:
            return np.zeros(0, dtype=np.int32)
        tt = self.tt
        stops = candidate_stops(
            (p.lat, p.lon),
            provider.stops_in_zone(zone),
            tt.stop_lat,
            tt.stop_lon,
            self.served,
            provider.hub_stops(zone),
        )
        # A ride to a stop a few steps away is no ride (the dispatcher refuses it anyway).
        lat = np.full(stops.shape[0], p.lat)
        lon = np.full(stops.shape[0], p.lon)
        far = haversine_m(lat, lon, tt.stop_lat[stops], tt.stop_lon[stops]) > 100.0
        return stops[far & ~np.isin(stops, np.asarray(exclude, dtype=np.int32))]

    def _request(self, q: Query, a: Place | int, b: Place | int, **when: int) -> OnDemandRequest:
        return OnDemandRequest(
            origin=self._latlon(a),
            destination=self._latlon(b),
            seats=q.seats,
            wheelchairs=q.wheelchairs,
            **when,  # type: ignore[arg-type]
        )

    def _latlon(self, p: Place | int) -> tuple[float, float]:
        if isinstance(p, Place):
            return (p.lat, p.lon)
        return (float(self.tt.stop_lat[p]), float(self.tt.stop_lon[p]))

    # --- direct -------------------------------------------------------------------------------
    def _direct_request(self, q: Query) -> OnDemandRequest:
        when = {"arrive_by": q.time_s} if q.arrive_by else {"depart_at": q.time_s}
        return self._request(q, q.origin, q.destination, **when)

    def _first_requests(self, q: Query, acc: IntArray, egr: IntArray) -> list[OnDemandRequest]:
        """The rides quoted before RAPTOR: leaving at t the access rides, arriving by t the
        egress rides (one per candidate stop, in order)."""
        if q.arrive_by:
            return [self._request(q, int(s), q.destination, arrive_by=q.time_s) for s in egr]
        return [self._request(q, q.origin, int(s), depart_at=q.time_s) for s in acc]

    def _direct(self, q: Query, provider: OnDemandProvider, out: OnDemandResult) -> None:
        (ans,) = provider.quote(q.day, [self._direct_request(q)])
        if isinstance(ans, OnDemandRefusal):
            out.refuse(ans, "direct")
            return
        legs = self.flex_legs(ans, q.origin, q.destination, q)
        out.itineraries.append(Itinerary(tuple(legs)))

    # --- leaving at t -------------------------------------------------------------------------
    def _depart_at(
        self,
        q: Query,
        provider: OnDemandProvider,
        acc: IntArray,
        egr: IntArray,
        walk_access: tuple[IntArray, IntArray],
        walk_egress: tuple[IntArray, IntArray],
        search: Search,
        realtime: object | None,
        out: OnDemandResult,
    ) -> None:
        offers: dict[int, OnDemandOffer] = {}
        if acc.size:
            reqs = self._first_requests(q, acc, egr)
            for s, ans in zip(acc, provider.quote(q.day, reqs), strict=True):
                if isinstance(ans, OnDemandOffer):
                    offers[int(s)] = ans
                else:
                    out.refuse(ans, "access")
        a_flex = np.array(list(offers), dtype=np.int32)
        a_secs = np.array(
            [o.dropoff_eta + TRANSFER_BUFFER_S - q.time_s for o in offers.values()],
            dtype=np.int32,
        )
        e_flex, e_secs = self._drive_estimates(provider, egr, q.destination, to_place=True)
        journeys: list[tuple[Journey, bool, bool]] = []
        if a_flex.size and walk_egress[0].size:
            journeys += [(j, True, False) for j in search(a_flex, a_secs, *walk_egress)]
        if e_flex.size and walk_access[0].size:
            journeys += [(j, False, True) for j in search(*walk_access, e_flex, e_secs)]
        if a_flex.size and e_flex.size:
            journeys += [(j, True, True) for j in search(a_flex, a_secs, e_flex, e_secs)]
        if isinstance(provider, BatchedQuotes):  # every journey's rides in one batch
            later: list[OnDemandRequest] = []
            for j, flex_in, flex_out in journeys:
                access = self._access_offer(j, offers) if flex_in and j.rides else None
                if access is not None:
                    later += [req for req, _ in self._leave_later_requests(q, j, access)]
                if flex_out and j.rides and (access is not None or not flex_in):
                    later.append(self._egress_request(q, j))
            provider.prefetch(later)
        for j, flex_in, flex_out in journeys:
            if not j.rides:
                continue
            access = self._access_offer(j, offers) if flex_in else None
            if flex_in and access is None:
                continue
            if access is not None:
                access = self._leave_later(q, provider, j, access)
                if access is None:
                    continue
            egress: OnDemandOffer | None = None
            if flex_out:
                (ans,) = provider.quote(q.day, [self._egress_request(q, j)])
                if isinstance(ans, OnDemandRefusal):
                    out.refuse(ans, "egress")
                    continue
                egress = ans
            out.itineraries.append(self._join(q, j, access, egress, realtime))

    def _leave_later(
        self, q: Query, provider: OnDemandProvider, j: Journey, offer: OnDemandOffer
    ) -> OnDemandOffer | None:
        """The access ride of ``offer`` asked again bound to journey ``j``'s first bus: to
        arrive at the stop by its departure less the buffer, so that the fleet keeps the
        connection when it later inserts other rides (the first quote promised only the
        pick-up). A ride that would leave the rider waiting long at the stop (the next bus is
        far off) is asked to leave later, arriving just in time. None when the fleet cannot
        bind the ride to the bus."""
        for req, latest in self._leave_later_requests(q, j, offer):
            (ans,) = provider.quote(q.day, [req])
            if isinstance(ans, OnDemandOffer) and ans.dropoff_eta <= latest:
                return ans
        return None

    def _leave_later_requests(
        self, q: Query, j: Journey, offer: OnDemandOffer
    ) -> list[tuple[OnDemandRequest, int]]:
        """The rides :meth:`_leave_later` asks, in its order, each with its latest drop-off."""
        s, t_dep = self._access_stop(j)
        latest = t_dep - TRANSFER_BUFFER_S
        starts = [q.time_s]
        if latest - offer.dropoff_eta > LEAVE_LATER_AFTER_S:
            starts.insert(0, max(q.time_s, latest - offer.ride_s - LEAVE_LATER_AFTER_S // 2))
        return [
            (self._request(q, q.origin, s, depart_at=t, arrive_by=latest), latest) for t in starts
        ]

    def _egress_request(self, q: Query, j: Journey) -> OnDemandRequest:
        """Journey ``j``'s egress ride, leaving at its bus's arrival plus the slack."""
        s, t_arr = self._egress_stop(j)
        return self._request(q, s, q.destination, depart_at=t_arr + EGRESS_SLACK_S)

    # --- arriving by t ------------------------------------------------------------------------
    def _arrive_by(
        self,
        q: Query,
        provider: OnDemandProvider,
        acc: IntArray,
        egr: IntArray,
        walk_access: tuple[IntArray, IntArray],
        walk_egress: tuple[IntArray, IntArray],
        search: Search,
        realtime: object | None,
        out: OnDemandResult,
    ) -> None:
        offers: dict[int, OnDemandOffer] = {}
        if egr.size:
            reqs = self._first_requests(q, acc, egr)
            for s, ans in zip(egr, provider.quote(q.day, reqs), strict=True):
                if isinstance(ans, OnDemandOffer):
                    offers[int(s)] = ans
                else:
                    out.refuse(ans, "egress")
        # Latest-departure searches count egress seconds back from t: the bus must be in
        # before the van's pick-up (with the slack) for the van to wait for it.
        e_flex = np.array(list(offers), dtype=np.int32)
        e_secs = np.array(
            [q.time_s - (o.pickup_window[0] - EGRESS_SLACK_S) for o in offers.values()],
            dtype=np.int32,
        )
        a_flex, a_secs = self._drive_estimates(provider, acc, q.origin, to_place=False)
        journeys: list[tuple[Journey, bool, bool]] = []
        if e_flex.size and walk_access[0].size:
            journeys += [(j, False, True) for j in search(*walk_access, e_flex, e_secs)]
        if a_flex.size and walk_egress[0].size:
            journeys += [(j, True, False) for j in search(a_flex, a_secs, *walk_egress)]
        if a_flex.size and e_flex.size:
            journeys += [(j, True, True) for j in search(a_flex, a_secs, e_flex, e_secs)]
        if isinstance(provider, BatchedQuotes):  # every journey's access ride in one batch
            provider.prefetch(
                [
                    self._access_request(q, j)
                    for j, flex_in, flex_out in journeys
                    if j.rides and flex_in and self._egress_fits(j, offers, flex_out)
                ]
            )
        for j, flex_in, flex_out in journeys:
            if not j.rides:
                continue
            egress = None
            if flex_out:
                s, t_arr = self._egress_stop(j)
                egress = offers.get(s)
                if egress is None or t_arr + EGRESS_SLACK_S > egress.pickup_window[0]:
                    continue
            access = None
            if flex_in:
                _, t_dep = self._access_stop(j)
                (ans,) = provider.quote(q.day, [self._access_request(q, j)])
                if isinstance(ans, OnDemandRefusal):
                    out.refuse(ans, "access")
                    continue
                if ans.dropoff_eta + TRANSFER_BUFFER_S > t_dep:
                    continue
                access = ans
            out.itineraries.append(self._join(q, j, access, egress, realtime))

    def _access_request(self, q: Query, j: Journey) -> OnDemandRequest:
        """Journey ``j``'s access ride, arriving by its first bus less the buffer."""
        s, t_dep = self._access_stop(j)
        return self._request(q, q.origin, s, arrive_by=t_dep - TRANSFER_BUFFER_S)

    def _egress_fits(self, j: Journey, offers: dict[int, OnDemandOffer], flex_out: bool) -> bool:
        """Whether journey ``j`` (arriving by t) meets its quoted egress ride, if it has one."""
        if not flex_out:
            return True
        s, t_arr = self._egress_stop(j)
        egress = offers.get(s)
        return egress is not None and t_arr + EGRESS_SLACK_S <= egress.pickup_window[0]

    # --- pieces -------------------------------------------------------------------------------
    def _drive_estimates(
        self, provider: OnDemandProvider, stops: IntArray, place: Place, *, to_place: bool
    ) -> tuple[IntArray, IntArray]:
        """Stops and the direct drive (plus the transfer slack) to/from ``place``, a lower
        bound of the on-demand leg that RAPTOR then uses as a walk."""
        keep: list[int] = []
        secs: list[int] = []
        for s in stops:
            a, b = (int(s), place) if to_place else (place, int(s))
            est = provider.estimate_s(self._latlon(a), self._latlon(b))
            if est is not None:
                keep.append(int(s))
                secs.append(int(est) + (EGRESS_SLACK_S if to_place else TRANSFER_BUFFER_S))
        return np.array(keep, dtype=np.int32), np.array(secs, dtype=np.int32)

    @staticmethod
    def _access_stop(j: Journey) -> tuple[int, int]:
        """The stop the access leg reaches and the departure of the first ride from there
        (walking transfers between them included in the time)."""
        first = j.legs[0]
        assert isinstance(first, WalkLeg) and first.from_stop == -1
        return first.to_stop, first.arrival

    @staticmethod
    def _egress_stop(j: Journey) -> tuple[int, int]:
        last = j.legs[-1]
        assert isinstance(last, WalkLeg) and last.to_stop == -1
        return last.from_stop, last.departure

    def _access_offer(self, j: Journey, offers: dict[int, OnDemandOffer]) -> OnDemandOffer | None:
        first = j.legs[0]
        if not isinstance(first, WalkLeg) or first.from_stop != -1:
            return None
        return offers.get(first.to_stop)

    def _join(
        self,
        q: Query,
        j: Journey,
        access: OnDemandOffer | None,
        egress: OnDemandOffer | None,
        realtime: object | None,
    ) -> Itinerary:
        """The itinerary of journey ``j`` with its first (last) walk replaced by ``access``
        (``egress``)."""
        middle = list(j.legs)
        if access is not None:
            middle = middle[1:]
        if egress is not None:
            middle = middle[:-1]
        core = self.builder.build(
            Journey(tuple(middle)),
            q.origin,
            q.destination,
            speed=q.walk_speed_mps,
            locale=q.locale,
            realtime=realtime,
            day=q.day,
        )
        legs = list(core.legs)
        if access is not None:
            stop = legs[0].origin if legs else q.destination
            legs = self.flex_legs(access, q.origin, stop, q) + legs
        if egress is not None:
            stop = legs[-1].destination
            legs = legs + self.flex_legs(egress, stop, q.destination, q)
        return Itinerary(tuple(legs), j)

    def flex_legs(self, offer: OnDemandOffer, a: Place, b: Place, q: Query) -> list[ItineraryLeg]:
        """The on-demand leg of ``offer`` from ``a`` to ``b``, with walks to and from the
        meeting points when the fleet moved the pick-up or drop-off."""
        legs: list[ItineraryLeg] = []
        pickup = Place("Pick-up" if q.locale != "ja" else "乗車地点", *offer.pickup)
        dropoff = Place("Drop-off" if q.locale != "ja" else "降車地点", *offer.dropoff)
        walk_in = _distance_m((a.lat, a.lon), offer.pickup) > MEETING_POINT_WALK_M
        walk_out = _distance_m((b.lat, b.lon), offer.dropoff) > MEETING_POINT_WALK_M
        start_place = pickup if walk_in else a
        end_place = dropoff if walk_out else b
        if walk_in:
            legs.append(self._walk(a, pickup, offer.pickup_window[0], q, arrive=True))
        legs.append(
            ItineraryLeg(
                mode="FLEX",
                start=offer.pickup_eta,
                end=offer.dropoff_eta,
                origin=_timed(start_place, departure=offer.pickup_eta),
                destination=_timed(end_place, arrival=offer.dropoff_eta),
                distance_m=offer.distance_m,
                geometry=offer.geometry or ((start_place.lat, start_place.lon), offer.dropoff),
                route_short_name=offer.zone_name,
                agency_name=offer.zone_name,
                co2_g=offer.co2_g,
                scheduled_start=offer.pickup_window[0],
                scheduled_end=offer.latest_arrival,
                on_demand=offer,
            )
        )
        if walk_out:
            legs.append(self._walk(dropoff, b, offer.dropoff_eta, q, arrive=False))
        return legs

    def _walk(self, a: Place, b: Place, t: int, q: Query, *, arrive: bool) -> ItineraryLeg:
        secs, meters, coords = self.builder.walk.walk(a.lat, a.lon, b.lat, b.lon, q.walk_speed_mps)
        start, end = (t - int(secs), t) if arrive else (t, t + int(secs))
        return ItineraryLeg(
            mode="WALK",
            start=start,
            end=end,
            origin=_timed(a, departure=start),
            destination=_timed(b, arrival=end),
            distance_m=float(meters),
            geometry=tuple((float(x), float(y)) for x, y in coords),
        )


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(
        haversine_m(np.array([a[0]]), np.array([a[1]]), np.array([b[0]]), np.array([b[1]]))[0]
    )


def _timed(p: Place, *, arrival: int | None = None, departure: int | None = None) -> Place:
    return Place(
        p.name,
        p.lat,
        p.lon,
        p.stop_index,
        p.stop_id,
        p.reading,
        arrival=arrival,
        departure=departure,
    )


__all__ = ["IntermodalPlanner", "OnDemandAnswer", "OnDemandResult", "Query"]
