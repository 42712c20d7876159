"""One city's street network, or its absence: what the app wires into routing and dispatch.

``StreetNetwork.load(settings.osm_path)`` reads the OSM extract when one is configured and
otherwise stands for the documented straight-line model (Muroran, the Japanese demo city, has no
OSM extract). Its factories hand out the matching implementation of each interface, so callers
never branch on "is there OSM?".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy.typing as npt

from gtfs.compiled import FloatArray
from gtfs.footpaths import Footpaths
from routing.street.errors import OsmLoadError
from routing.street.footpaths import footpath_source
from routing.street.graph import StreetGraph
from routing.street.interfaces import WalkAccess
from routing.street.osm_access import OsmWalkAccess
from routing.street.osm_loader import load_osm
from routing.street.profiles import TimeOfDaySpeeds
from routing.street.straight_line import StraightLineAccess
from routing.street.travel_times import TravelTimeModel


@dataclass(frozen=True, eq=False)
class StreetNetwork:
    """Walking and driving graphs of one extract, or ``None`` for the straight-line model."""

    walk: StreetGraph | None = None
    drive: StreetGraph | None = None
    source: str = "straight-line model"

    @classmethod
    def load(
        cls, osm_path: str | Path | None, cache_dir: str | Path | None = None
    ) -> StreetNetwork:
        """Read ``osm_path`` (raises :class:`OsmLoadError` if unreadable); ``None``: no OSM.

        With ``cache_dir`` the graphs are kept as ``.npz`` files named after the extract's
        name, size and modification time, so a restart skips parsing the extract.
        """
        if osm_path is None or str(osm_path) == "":
            return cls()
        path = Path(osm_path)
        if not path.is_file():
            raise OsmLoadError(f"OSM extract not found: {path}")
        cached: dict[str, Path] = {}
        if cache_dir is not None:
            st = path.stat()
            stem = f"{path.name}-{st.st_size}-{st.st_mtime_ns}"
            cached = {m: Path(cache_dir) / f"{stem}.{m}.npz" for m in ("walk", "drive")}
            if all(p.is_file() for p in cached.values()):
                try:
                    graphs = {m: StreetGraph.load(p) for m, p in cached.items()}
                    return cls(walk=graphs["walk"], drive=graphs["drive"], source=str(path))
                except OsmLoadError:
                    pass  # a damaged cache is rebuilt below
        graphs = load_osm(path)
        for mode, target in cached.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp.npz")
            graphs[mode].save(tmp)
            tmp.replace(target)  # atomic: a concurrent reader never sees half a file
        return cls(walk=graphs["walk"], drive=graphs["drive"], source=str(path))

    @property
    def model(self) -> Literal["osm", "straight_line"]:
        return "osm" if self.walk is not None else "straight_line"

    def walk_access(self, stop_lat: npt.ArrayLike, stop_lon: npt.ArrayLike) -> WalkAccess:
        """Walking access/egress to these stops."""
        if self.walk is None:
            return StraightLineAccess(stop_lat, stop_lon)
        return OsmWalkAccess(self.walk, stop_lat, stop_lon)

    def travel_times(
        self,
        time_of_day: TimeOfDaySpeeds | None = None,
        off_network: Literal["raise", "straight_line"] = "raise",
    ) -> TravelTimeModel:
        """Driving matrices and routes (straight-line inside when there is no OSM)."""
        return TravelTimeModel(self.drive, time_of_day=time_of_day, off_network=off_network)

    def footpaths(self, radius_m: float = 400.0) -> Callable[[FloatArray, FloatArray], Footpaths]:
        """A ``footpaths=`` callable for ``compile_timetable``."""
        return footpath_source(self.walk, radius_m)
