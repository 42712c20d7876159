"""FIFO time-dependent driving times: time-of-day speed factors that never break a promise.

Live dispatch plans hours ahead; a travel-time model where a leg simply costs
``free_flow / factor(departure)`` is not FIFO (leaving just before a peak could arrive after
leaving just after it), so a vehicle waiting at a stop could make a feasible plan infeasible.
Here a leg follows the Ichoua–Gendreau–Potvin model instead: the day is cut into periods of
constant speed factor ``f`` (from :class:`routing.street.TimeOfDaySpeeds`, factor < 1 = slower);
within a period the vehicle covers ``f`` free-flow seconds per second, and at a period boundary
its speed changes. Arrival times are then non-decreasing in the departure time (FIFO), the model
composes (``arrive(arrive(t, a), b) == arrive(t, a + b)``), and waiting or insertion logic
reasoned on free-flow plans stays valid.

:func:`compile_speeds` turns the windows (local time of the zone) into a :class:`SpeedProfile`
whose period starts are seconds of the **UTC** day, so the numba kernels take dispatcher-clock
times directly. Without windows the profile has one period of factor 1 and :func:`arrive`
returns exactly ``t + d``.

:func:`parse_speed_windows` reads windows from configuration text such as
``"07:00-09:00=0.7,17:00-19:00=0.7"``.

Numba caches a kernel calling these functions (``dispatch.insertion._kernel``) under its own
file only: after changing this module, delete ``dispatch/__pycache__/*.nb[ic]`` so that the
kernel is compiled against the new code.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

from routing.street import FREE_FLOW, TimeOfDaySpeeds
from routing.street.profiles import DAY_S as _DAY_S_INT

F = NDArray[np.float64]

DAY_S = float(_DAY_S_INT)


@nb.njit(cache=True)
def _period(phase: float, starts: F) -> int:
    """Index of the period holding ``phase`` (``starts[0] == 0``, increasing)."""
    return int(np.searchsorted(starts, phase, side="right")) - 1


@nb.njit(cache=True)
def _day_capacity(starts: F, factors: F) -> float:
    """Free-flow seconds covered in one whole day."""
    n = starts.shape[0]
    total = 0.0
    for k in range(n):
        end = starts[k + 1] if k + 1 < n else DAY_S
        total += (end - starts[k]) * factors[k]
    return total


@nb.njit(cache=True)
def arrive(t: float, d: float, starts: F, factors: F) -> float:
    """Arrival time of a leg of free-flow duration ``d`` leaving at ``t``.

    Parameters
    ----------
    t
        Departure, in the frame of ``starts`` (dispatcher clock for a compiled profile).
    d
        Free-flow duration of the leg, seconds (``<= 0``: arrive at once).
    starts, factors
        The periods of a :class:`SpeedProfile`.

    Returns
    -------
    float
        The arrival time; exactly ``t + d`` for a single period of factor 1.
    """
    n = starts.shape[0]
    if n == 1:
        # One speed all day: no boundary to cross (and exactly t + d in free flow).
        return t + d / factors[0]
    if d <= 0.0:
        return t
    phase = t % DAY_S
    base = t - phase  # midnight of t's day, exact: a multiple of DAY_S below t
    k = _period(phase, starts)
    cur = t
    rem = d
    while True:
        end = base + (starts[k + 1] if k + 1 < n else DAY_S)
        cap = (end - cur) * factors[k]
        if rem <= cap:
            # min(): rounding must not carry the arrival past the boundary, where the next
            # period's arrivals start (FIFO holds bit for bit).
            return min(cur + rem / factors[k], end)
        rem -= cap
        cur = end
        k += 1
        if k == n:
            k = 0
            base += DAY_S
            # A leg longer than a whole day skips whole days at once.
            per_day = _day_capacity(starts, factors)
            if rem > per_day:
                days = math.floor(rem / per_day)
                rem -= days * per_day
                base += days * DAY_S
                cur = base


@nb.njit(cache=True)
def depart_by(t: float, d: float, starts: F, factors: F) -> float:
    """Latest departure of a leg of free-flow duration ``d`` that arrives by ``t``.

    The inverse of :func:`arrive`, driven backwards through the periods.
    """
    n = starts.shape[0]
    if n == 1:
        return t - d / factors[0]
    if d <= 0.0:
        return t
    phase = t % DAY_S
    base = t - phase
    # At a boundary the time just before it belongs to the previous period.
    k = int(np.searchsorted(starts, phase, side="left")) - 1
    if k < 0:
        k = n - 1
        base -= DAY_S
    cur = t
    rem = d
    while True:
        begin = base + starts[k]
        cap = (cur - begin) * factors[k]
        if rem <= cap:
            return max(cur - rem / factors[k], begin)
        rem -= cap
        cur = begin
        k -= 1
        if k < 0:
            k = n - 1
            base -= DAY_S
            per_day = _day_capacity(starts, factors)
            if rem > per_day:
                days = math.floor(rem / per_day)
                rem -= days * per_day
                base -= days * DAY_S
                cur = base + DAY_S


@nb.njit(cache=True)
def covered(t0: float, t1: float, starts: F, factors: F) -> float:
    """Free-flow seconds driven between ``t0`` and ``t1`` (0 if ``t1 <= t0``)."""
    if t1 <= t0:
        return 0.0
    n = starts.shape[0]
    if n == 1:
        return (t1 - t0) * factors[0]
    phase = t0 % DAY_S
    base = t0 - phase
    k = _period(phase, starts)
    cur = t0
    total = 0.0
    while cur < t1:
        end = min(base + (starts[k + 1] if k + 1 < n else DAY_S), t1)
        total += (end - cur) * factors[k]
        cur = end
        k += 1
        if k == n:
            k = 0
            base += DAY_S
    return total


@nb.njit(cache=True)
def arrive_many(t: F, d: F, starts: F, factors: F) -> F:
    """:func:`arrive` element-wise over equally long arrays of departures and durations."""
    out = np.empty(t.shape[0])
    for i in range(t.shape[0]):
        out[i] = arrive(t[i], d[i], starts, factors)
    return out


@nb.njit(cache=True)
def chain_schedule(t0: float, leg: F, early: F, serv: F, starts: F, factors: F) -> F:
    """Service start of each stop of a plan: leave at ``t0``, drive ``leg[k]`` free-flow
    seconds into stop ``k``, wait until ``early[k]``, dwell ``serv[k]``."""
    out = np.empty(leg.shape[0])
    t = t0
    for k in range(leg.shape[0]):
        b = max(arrive(t, leg[k], starts, factors), early[k])
        out[k] = b
        t = b + serv[k]
    return out


@dataclass(frozen=True, eq=False)
class SpeedProfile:
    """Periods of constant speed factor over one day, in the frame of the dispatcher clock.

    Attributes
    ----------
    starts
        Period starts, seconds of the day; ``starts[0] == 0``, strictly increasing.
    factors
        Speed factor of each period (free-flow seconds covered per second).
    """

    starts: F
    factors: F

    @property
    def free_flow(self) -> bool:
        """One period of factor 1: every leg takes its free-flow time."""
        return self.starts.shape[0] == 1 and float(self.factors[0]) == 1.0

    def arrive(self, t: float, d: float) -> float:
        """See :func:`arrive`."""
        return float(arrive(float(t), float(d), self.starts, self.factors))

    def depart_by(self, t: float, d: float) -> float:
        """See :func:`depart_by`."""
        return float(depart_by(float(t), float(d), self.starts, self.factors))

    def covered(self, t0: float, t1: float) -> float:
        """See :func:`covered`."""
        return float(covered(float(t0), float(t1), self.starts, self.factors))

    def slowest(self, t0: float, t1: float) -> float:
        """The smallest speed factor in force at some time of ``[t0, t1)`` (1.0 if empty)."""
        if t1 <= t0:
            return 1.0
        if t1 - t0 >= DAY_S:
            return float(self.factors.min())
        p0 = t0 % DAY_S
        p1 = p0 + (t1 - t0)  # may run past midnight: look at the day twice
        ends = np.append(self.starts[1:], DAY_S)
        two_starts = np.concatenate([self.starts, self.starts + DAY_S])
        two_ends = np.concatenate([ends, ends + DAY_S])
        hit = (two_starts < p1) & (two_ends > p0)
        return float(np.concatenate([self.factors, self.factors])[hit].min())


def compile_speeds(speeds: TimeOfDaySpeeds | None, utc_offset_s: float = 0.0) -> SpeedProfile:
    """The periods of ``speeds`` (windows in local time) on the UTC day of a zone.

    Parameters
    ----------
    speeds
        Congestion windows; ``None`` or no windows: free flow.
    utc_offset_s
        Local time = UTC + ``utc_offset_s`` (:attr:`dispatch.zone.ServiceZone.utc_offset_s`).

    Returns
    -------
    SpeedProfile
        Adjacent periods of equal factor merged; the window that
        :meth:`TimeOfDaySpeeds.factor` picks decides each period's factor.
    """
    if speeds is None or not speeds.windows:
        return SpeedProfile(np.zeros(1), np.ones(1))
    off = float(utc_offset_s)
    if not math.isfinite(off):
        raise ValueError(f"utc_offset_s must be finite, not {utc_offset_s!r}")
    local = {float(b) for w in speeds.windows for b in w[:2]}
    cuts = np.unique(np.array([0.0, *[(b - off) % DAY_S for b in local]]))
    ends = np.append(cuts[1:], DAY_S)
    # Each piece holds one factor; its midpoint floored stays inside the piece's local window
    # span (window bounds are whole seconds), which is what TimeOfDaySpeeds.factor looks up.
    mids = ((cuts + ends) / 2.0 + off) % DAY_S
    factors = np.array([speeds.factor(int(m)) for m in mids], dtype=np.float64)
    keep = np.ones(len(cuts), dtype=bool)
    keep[1:] = factors[1:] != factors[:-1]
    return SpeedProfile(np.ascontiguousarray(cuts[keep]), np.ascontiguousarray(factors[keep]))


FREE_FLOW_PROFILE = compile_speeds(None)

_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")


def _clock_s(text: str, window: str) -> int:
    m = _TIME.match(text.strip())
    if m is None:
        raise ValueError(f"speed window {window!r}: {text.strip()!r} is not a time (HH:MM or H)")
    hours, minutes = int(m.group(1)), int(m.group(2) or 0)
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"speed window {window!r}: {text.strip()!r} is not a time of day")
    return hours * 3600 + minutes * 60


def parse_speed_windows(text: str) -> TimeOfDaySpeeds:
    """Speed windows from ``"START-END=FACTOR,..."`` (local times ``HH:MM`` or ``H``).

    ``"07:00-09:00=0.7,17:00-19:00=0.7"``: 30 % slower in both rush hours. A window may run
    past midnight (``"22:00-02:00=0.9"``); ``24:00`` ends the day. An empty text is free flow.

    Raises
    ------
    ValueError
        A malformed window, a bad time, an empty window, a factor that is not a positive
        finite number, or overlapping windows; the message names the offending window.
    """
    if not text.strip():
        return FREE_FLOW
    spans: list[tuple[int, int, float, str]] = []
    for raw in text.split(","):
        item = raw.strip()
        span, eq, factor_text = item.partition("=")
        start_text, dash, end_text = span.partition("-")
        if not eq or not dash:
            raise ValueError(
                f"speed window {item!r}: expected START-END=FACTOR, e.g. 07:00-09:00=0.7"
            )
        start, end = _clock_s(start_text, item), _clock_s(end_text, item)
        try:
            factor = float(factor_text)
        except ValueError:
            raise ValueError(
                f"speed window {item!r}: factor {factor_text.strip()!r} is not a number"
            ) from None
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"speed window {item!r}: the factor must be a positive number")
        start %= _DAY_S_INT  # 24:00 as a start is the next midnight
        if start == end:
            raise ValueError(f"speed window {item!r}: start and end are the same time")
        if start < end:
            spans.append((start, end, factor, item))
        else:  # runs past midnight: two windows of the same day
            spans.append((start, _DAY_S_INT, factor, item))
            if end > 0:
                spans.append((0, end, factor, item))
    spans.sort()
    for a, b in itertools.pairwise(spans):
        if b[0] < a[1]:
            raise ValueError(f"speed windows {a[3]!r} and {b[3]!r} overlap")
    return TimeOfDaySpeeds(tuple((s, e, f) for s, e, f, _ in spans))
