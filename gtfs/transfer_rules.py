"""transfers.txt rules that name trips or routes: which one applies to a transfer.

A rule row names a transfer from ``from_trip_id`` / ``from_route_id`` at ``from_stop_id`` to
``to_trip_id`` / ``to_route_id`` at ``to_stop_id``; a blank field matches anything, a station
matches itself and its platforms. Stop-to-stop rows (no trip, no route) are not rules: the
compiler folds them into the stop change times and footpaths (:mod:`gtfs.compile`), the
default every rule overrides.

When several rules match one transfer the most specific applies (GTFS reference, transfers.txt):

1. both trips given;
2. a trip on one side and a route on the other;
3. one trip only;
4. both routes given;
5. one route only.

A side naming a trip and a route counts as naming the trip (both must match). Rules of equal
rank: a rule naming the exact stops beats one matching through a station, then the earlier row
of the file wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from gtfs.compiled import CompiledTimetable

#: transfer_type values that state a transfer between two vehicles (types 4/5 are in-seat).
TIMED = 1
MIN_TIME = 2
NOT_POSSIBLE = 3


def specificity(
    from_trip: npt.ArrayLike,
    to_trip: npt.ArrayLike,
    from_route: npt.ArrayLike,
    to_route: npt.ArrayLike,
) -> npt.NDArray[np.int32]:
    """The GTFS specificity of rules (compiled indices, -1 for blank): higher is more specific.

    A trip side scores 3, a route side 1, a blank side 0: both trips 6, trip and route 4, one
    trip 3, both routes 2, one route 1 — the order of the GTFS ranking (the module docstring).
    """

    def side(trip: npt.ArrayLike, route: npt.ArrayLike) -> npt.NDArray[np.int32]:
        t = np.asarray(trip) >= 0
        r = np.asarray(route) >= 0
        return np.where(t, 3, np.where(r, 1, 0)).astype(np.int32)

    return side(from_trip, from_route) + side(to_trip, to_route)


class Change(NamedTuple):
    """A transfer from ``from_trip`` alighting at ``from_stop`` to ``to_trip`` boarding at
    ``to_stop`` (compiled indices)."""

    from_trip: int
    from_stop: int
    to_trip: int
    to_stop: int


@dataclass(frozen=True, eq=False)
class TransferRules:
    """The trip/route rules of types 1-3 of one compiled timetable, ready to look up."""

    tt: CompiledTimetable

    @cached_property
    def rows(self) -> npt.NDArray[np.int64]:
        """Indices into the ``rule_*`` arrays of the rules of types 1, 2 and 3."""
        return np.flatnonzero(np.isin(self.tt.rule_type, (TIMED, MIN_TIME, NOT_POSSIBLE)))

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def rank(self) -> npt.NDArray[np.int32]:
        """[X] :func:`specificity` of every rule (all ``rule_*`` rows)."""
        tt = self.tt
        return specificity(tt.rule_from_trip, tt.rule_to_trip, tt.rule_from_route, tt.rule_to_route)

    def _stop_match(self, rule_stop: int, stop: int) -> int:
        """2 the exact stop (or a blank rule stop), 1 through its station, 0 no match."""
        if rule_stop < 0 or rule_stop == stop:
            return 2
        return 1 if int(self.tt.stop_parent[stop]) == rule_stop else 0

    def matching(self, change: Change, rows: Sequence[int] | None = None) -> int:
        """The index (into ``rule_*``) of the rule that applies to ``change``, or -1 when none
        does (the stop's default applies). ``rows``: the rules to consider, in file order
        (default: all), e.g. those that can apply at a stop."""
        from_trip, from_stop, to_trip, to_stop = change
        tt = self.tt
        fr = int(tt.trip_route[from_trip])
        to = int(tt.trip_route[to_trip])
        best = -1
        best_key = (-1, -1)
        for x in self.rows.tolist() if rows is None else rows:
            if tt.rule_from_trip[x] >= 0 and tt.rule_from_trip[x] != from_trip:
                continue
            if tt.rule_to_trip[x] >= 0 and tt.rule_to_trip[x] != to_trip:
                continue
            if tt.rule_from_route[x] >= 0 and tt.rule_from_route[x] != fr:
                continue
            if tt.rule_to_route[x] >= 0 and tt.rule_to_route[x] != to:
                continue
            a = self._stop_match(int(tt.rule_from_stop[x]), from_stop)
            b = self._stop_match(int(tt.rule_to_stop[x]), to_stop)
            if not a or not b:
                continue
            key = (int(self.rank[x]), a + b)
            if key > best_key:  # strictly: the earlier row wins a tie
                best, best_key = x, key
        return best

    def rule_for(
        self,
        from_trip: int,
        from_stop: int,
        to_trip: int,
        to_stop: int,
        rows: Sequence[int] | None = None,
    ) -> tuple[int, int] | None:
        """``(transfer_type, min_transfer_time)`` of the rule that applies to the
        :class:`Change` ``(from_trip, from_stop, to_trip, to_stop)``, or None (the stop's
        default); ``rows`` as in :meth:`matching`.

        ``min_transfer_time`` is 0 for a timed transfer (type 1) and for type 3 (not possible,
        which the caller must treat as no transfer at all)."""
        x = self.matching(Change(from_trip, from_stop, to_trip, to_stop), rows)
        if x < 0:
            return None
        ty = int(self.tt.rule_type[x])
        return ty, int(self.tt.rule_min_s[x]) if ty == MIN_TIME else 0
