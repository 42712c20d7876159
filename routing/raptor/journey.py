"""Journeys as the core returns them: rides and walks over stop and trip indices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RideLeg:
    """A ride on trip ``trip`` from pattern position ``board_pos`` to ``alight_pos``.

    Times are seconds of the query's service day (``day_offset`` already added).
    ``stay_seated``: the rider stayed on board from the previous ride (the same vehicle
    continuing as this trip: ``block_id`` or an in-seat transfer) — no boarding, no transfer;
    ``board_pos`` is then the trip's first stop.
    """

    trip: int
    board_pos: int
    alight_pos: int
    board_stop: int
    alight_stop: int
    departure: int
    arrival: int
    day_offset: int
    stay_seated: bool = False


@dataclass(frozen=True)
class WalkLeg:
    """A walk; ``from_stop`` / ``to_stop`` are -1 for the query's origin / destination."""

    from_stop: int
    to_stop: int
    departure: int
    arrival: int

    @property
    def seconds(self) -> int:
        return self.arrival - self.departure


Leg = RideLeg | WalkLeg


@dataclass(frozen=True)
class Journey:
    """A feasible journey: legs in travel order."""

    legs: tuple[Leg, ...]

    @property
    def departure(self) -> int:
        return self.legs[0].departure

    @property
    def arrival(self) -> int:
        return self.legs[-1].arrival

    @property
    def rides(self) -> tuple[RideLeg, ...]:
        return tuple(leg for leg in self.legs if isinstance(leg, RideLeg))

    @property
    def n_vehicles(self) -> int:
        """Vehicles boarded: rides, a stay-seated continuation counted with the ride before."""
        return sum(1 for r in self.rides if not r.stay_seated)

    @property
    def n_transfers(self) -> int:
        return max(0, self.n_vehicles - 1)

    @property
    def walk_seconds(self) -> int:
        return sum(leg.seconds for leg in self.legs if isinstance(leg, WalkLeg))

    @property
    def duration(self) -> int:
        return self.arrival - self.departure

    def key(self) -> tuple[tuple[int, int, int], ...]:
        """The rides that make the journey (for removing duplicates)."""
        return tuple((r.trip, r.board_pos, r.alight_pos) for r in self.rides)
