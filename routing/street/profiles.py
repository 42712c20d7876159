"""Vehicle profiles and time-of-day speed factors for driving travel times.

A :class:`VehicleProfile` turns the free-flow speed of a street edge (its ``maxspeed`` or the
default speed of its highway class) into the speed this vehicle drives there::

    speed = min(edge_speed_kmh * speed_factor * time_of_day_factor, max_speed_kmh)

and bars it from highway classes it may not use. :data:`SHUTTLE` is a low-speed autonomous
shuttle sharing streets with pedestrians: capped at 18 km/h on every edge, allowed on
residential and living streets, barred from motorways and trunks.

:class:`TimeOfDaySpeeds` holds congestion windows, e.g. 0.7 from 07:00 to 09:00 and from 17:00
to 19:00 (:data:`DEFAULT_PEAKS`); the factor applies by departure time (seconds after midnight,
GTFS-style values past 24:00 wrap).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_S = 86_400

# Highway classes a driving graph keeps (index = the per-edge ``highway`` code).
DRIVE_HIGHWAYS: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "service",
    "road",
)


@dataclass(frozen=True)
class VehicleProfile:
    """How one kind of vehicle drives the street graph.

    Parameters
    ----------
    name
        Stable identifier (also the cache key).
    max_speed_kmh
        Hard cap on every edge.
    speed_factor
        Multiplier of the edge's free-flow speed (< 1 for slow, heavy vehicles).
    barred_highways
        Highway classes this vehicle never uses.
    """

    name: str
    max_speed_kmh: float
    speed_factor: float = 1.0
    barred_highways: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.max_speed_kmh > 0 or not self.speed_factor > 0:
            raise ValueError(f"profile {self.name!r}: speeds must be positive")
        unknown = self.barred_highways - set(DRIVE_HIGHWAYS)
        if unknown:
            raise ValueError(f"profile {self.name!r}: unknown highway classes {sorted(unknown)}")


CAR = VehicleProfile("car", max_speed_kmh=130.0)
VAN = VehicleProfile("van", max_speed_kmh=100.0, speed_factor=0.9)
SHUTTLE = VehicleProfile(
    "shuttle",
    max_speed_kmh=18.0,
    barred_highways=frozenset({"motorway", "motorway_link", "trunk", "trunk_link"}),
)
PROFILES: dict[str, VehicleProfile] = {p.name: p for p in (CAR, VAN, SHUTTLE)}

DEFAULT_PEAKS: tuple[tuple[int, int, float], ...] = (
    (7 * 3600, 9 * 3600, 0.7),
    (17 * 3600, 19 * 3600, 0.7),
)


@dataclass(frozen=True)
class TimeOfDaySpeeds:
    """Speed factors by time of day: ``(start_s, end_s, factor)`` windows, 1.0 elsewhere.

    Windows are half-open ``[start_s, end_s)`` in seconds after midnight; the first window that
    contains the time wins.
    """

    windows: tuple[tuple[int, int, float], ...] = DEFAULT_PEAKS

    def __post_init__(self) -> None:
        for start, end, factor in self.windows:
            if not (0 <= start < end <= DAY_S) or not factor > 0:
                raise ValueError(f"bad speed window {(start, end, factor)}")

    def factor(self, depart_s: int | None) -> float:
        """The speed factor at ``depart_s`` (``None`` means free flow, 1.0)."""
        if depart_s is None:
            return 1.0
        t = int(depart_s) % DAY_S
        for start, end, factor in self.windows:
            if start <= t < end:
                return float(factor)
        return 1.0


FREE_FLOW = TimeOfDaySpeeds(windows=())
