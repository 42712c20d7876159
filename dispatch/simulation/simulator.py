"""Accelerated-time replay of requests through the live dispatcher.

Each step of ``step_s`` simulated seconds: requests made during the step are quoted and booked
at their own time; every vehicle drives its plan (serving the stops whose service starts within
the step, boarding and alighting through the dispatcher's vehicle events, then reporting its
position mid-leg); optionally the re-optimiser runs; and the invariants are checked.

Vehicles drive with the dispatcher's own travel model, time-of-day speed periods included
(:meth:`Dispatcher.speed_profile`): a vehicle reports itself where the free-flow seconds it
covered since it set off put it, so the invariants checked at every step hold the promises to
the model they were made with.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.rides import Rejection, Ride
from dispatch.simulation.invariants import plan_violations, served_violations
from dispatch.simulation.kpis import Kpis, compute_kpis
from dispatch.vehicle import Vehicle


@dataclass
class SimulationResult:
    kpis: Kpis
    violations: list[str] = field(default_factory=list)
    steps: int = 0


class Simulator:
    """Drive ``dispatcher`` through ``requests``.

    Parameters
    ----------
    dispatcher
        A dispatcher whose zones and vehicles are set up; its clock is ignored (times are
        passed explicitly).
    requests
        Sorted by ``requested_at``.
    step_s
        Simulated seconds per step.
    check_invariants
        Check plans at every step (tests); else only at the end.
    check_every_s
        With ``check_invariants``, check the plans every this many simulated seconds instead
        of every step (a city's day: the check walks every ride). The final state is always
        checked.
    reoptimise
        ``f(now) -> applied`` called every ``reopt_every_s`` simulated seconds.
    rebalance
        ``f(now) -> moves`` called every ``rebalance_every_s`` simulated seconds.
    position_mode
        ``"interpolate"``: vehicles report positions mid-leg (exact for the straight-line
        model, whose legs scale linearly). ``"commit"``: a vehicle that sets off is committed
        to its next stop and reports itself there at its arrival time (exact for any model,
        e.g. street networks, where a mid-leg point has no linear share of the leg).
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        requests: list[RideRequest],
        step_s: float = 30.0,
        check_invariants: bool = True,
        reoptimise: Callable[[float], int] | None = None,
        reopt_every_s: float = 300.0,
        position_mode: str = "interpolate",
        rebalance: Callable[[float], int] | None = None,
        rebalance_every_s: float = 600.0,
        check_every_s: float | None = None,
    ) -> None:
        self.check_every_s = check_every_s
        #: Wall seconds of the quote and of the booking of each request, in request order (the
        #: zone owner's live path); NaN booking time for a request whose quote was refused.
        self.quote_s: list[float] = []
        self.book_s: list[float] = []
        self.rebalance = rebalance
        self.rebalance_every_s = rebalance_every_s
        self.rebalance_moves = 0
        if position_mode not in ("interpolate", "commit"):
            raise ValueError("position_mode must be 'interpolate' or 'commit'")
        self.position_mode = position_mode
        self.d = dispatcher
        self.requests = requests
        self.step_s = step_s
        self.check = check_invariants
        self.reoptimise = reoptimise
        self.reopt_every_s = reopt_every_s
        self.rejections: list[Rejection] = []
        self.vehicle_km = 0.0
        self.empty_km = 0.0
        self.reopt_applied = 0
        #: Times the plans in force were checked against the invariants (the final one too).
        self.plan_checks = 0

    def _drive(self, v: Vehicle, t0: float, t1: float) -> None:
        d = self.d
        while v.plan:
            times = d.schedule(v, t0)
            if times[0] > t1:
                break
            stop = v.plan[0]
            self._odometer(v, stop.latlon)
            d.serve_next(v.vehicle_id, float(times[0]))
        if v.plan:
            goal = v.plan[0].latlon
        elif v.heading is not None:
            goal = v.heading  # rebalancing move of an idle vehicle
        else:
            return
        depart = max(t0, v.position_time, v.shift_start)
        if t1 <= depart:
            return
        leg = float(d.travel.matrix([v.position], [goal], v.vtype.speed_kmh)[0, 0])
        profile = d.speed_profile(v.zone_id)
        if self.position_mode == "commit":
            if v.position != goal:
                self._odometer(v, goal)
                d.update_position(v.vehicle_id, goal[0], goal[1], profile.arrive(depart, leg))
            if not v.plan:
                v.heading = None
            return
        # The share of the leg's free-flow time driven by t1 (slower in a peak period).
        f = 1.0 if leg <= 0 else min(1.0, profile.covered(depart, t1) / leg)
        lat = v.position[0] + f * (goal[0] - v.position[0])
        lon = v.position[1] + f * (goal[1] - v.position[1])
        self._odometer(v, (lat, lon))
        d.update_position(v.vehicle_id, lat, lon, t1)
        if not v.plan and f >= 1.0:
            v.heading = None

    def _request(self, r: RideRequest, now: float) -> Ride | Rejection:
        """Quote then book, as :meth:`Dispatcher.request_ride` does, timing each."""
        t = time.perf_counter()
        q = self.d.quote(r, now)
        self.quote_s.append(time.perf_counter() - t)
        if isinstance(q, Rejection):
            self.book_s.append(math.nan)
            return q
        t = time.perf_counter()
        res = self.d.book(q.quote_id, r.user_id, now)
        self.book_s.append(time.perf_counter() - t)
        return res

    def _odometer(self, v: Vehicle, to: tuple[float, float]) -> None:
        km = float(self.d.travel.distance_m([v.position], [to])[0, 0]) / 1000.0
        self.vehicle_km += km
        if not v.onboard:
            self.empty_km += km

    def run(self, start_s: float, end_s: float) -> SimulationResult:
        """Simulate from ``start_s`` until every plan is done (at most 6 h after ``end_s``)."""
        d = self.d
        t = start_s
        k = 0
        steps = 0
        violations: list[str] = []
        next_reopt = start_s + self.reopt_every_s
        next_rebalance = start_s + self.rebalance_every_s
        next_check = start_s
        horizon = end_s + 6 * 3600
        while t < horizon:
            t1 = t + self.step_s
            for v in d.vehicles():
                self._drive(v, t, t1)
            while k < len(self.requests) and self.requests[k].requested_at < t1:
                r = self.requests[k]
                k += 1
                res = self._request(r, max(r.requested_at, t1))
                if isinstance(res, Rejection):
                    self.rejections.append(res)
            if self.rebalance is not None and t1 >= next_rebalance:
                self.rebalance_moves += self.rebalance(t1)
                next_rebalance += self.rebalance_every_s
            if self.reoptimise is not None and t1 >= next_reopt:
                self.reopt_applied += self.reoptimise(t1)
                next_reopt += self.reopt_every_s
            if self.check and t1 >= next_check:
                violations += [f"t={t1:.0f}: {m}" for m in plan_violations(d, t1)]
                self.plan_checks += 1
                next_check = t1 + (self.check_every_s or 0.0)
            t = t1
            steps += 1
            if t >= end_s and k >= len(self.requests) and not any(v.plan for v in d.vehicles()):
                break
        violations += plan_violations(d, t) + served_violations(d)
        self.plan_checks += 1
        hours = sum(
            (min(v.shift_end, t) - v.shift_start) / 3600.0
            for v in d.vehicles()
            if t > v.shift_start
        )
        kpis = compute_kpis(
            d.rides(), self.rejections, self.vehicle_km, self.empty_km, hours, self.reopt_applied
        )
        kpis.rebalancing_moves = self.rebalance_moves
        return SimulationResult(kpis=kpis, violations=violations, steps=steps)


def lost_or_duplicated(d: Dispatcher, requests: list[RideRequest], rejections: int) -> list[str]:
    """Every request is either one ride or one rejection."""
    ids = [r.ride_id for r in d.rides()]
    out = []
    if len(ids) != len(set(ids)):
        out.append("a request was booked twice")
    if len(ids) + rejections != len(requests):
        out.append(f"{len(requests)} requests, {len(ids)} rides + {rejections} rejections")
    return out
