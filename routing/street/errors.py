"""Errors of the street layer, each with a stable machine-readable ``code``.

They subclass :class:`ValueError` so callers that only know "bad input" still catch them; the
app layer maps ``code`` to its one error shape (``InvalidCoordinates`` and ``TooFarFromNetwork``
are 422, ``OsmLoadError`` is a configuration error).
"""

from __future__ import annotations


class StreetError(ValueError):
    """Base class of every error raised by :mod:`routing.street`."""

    code = "street_error"


class InvalidCoordinates(StreetError):
    """A latitude/longitude is not finite or outside [-90, 90] x [-180, 180]."""

    code = "invalid_coordinates"


class TooFarFromNetwork(StreetError):
    """A point is farther from the street network than the snapping limit allows."""

    code = "too_far_from_street_network"

    def __init__(self, distance_m: float, max_snap_m: float) -> None:
        super().__init__(
            f"point is {distance_m:.0f} m from the street network (limit {max_snap_m:.0f} m): "
            "too far from the street network"
        )
        self.distance_m = float(distance_m)
        self.max_snap_m = float(max_snap_m)


class NoStreetPath(StreetError):
    """No path links two snapped points for this profile (e.g. a shuttle barred from a trunk)."""

    code = "no_street_path"


class OsmLoadError(StreetError):
    """An OSM extract is missing, unreadable, or holds no usable street for a profile."""

    code = "osm_unreadable"
