"""GTFS fields that compilation drops but GTFS-RT matching needs: the keys of a timetable.

* ``direction_id`` of each compiled trip [T] (-1 unknown): TripDescriptors without ``trip_id``
  are matched by route + direction + start time.

(``stop_sequence`` is kept by the compiled timetable itself: ``tt.st_stop_sequence``.) The app
computes :class:`RealtimeKeys` once per published version (from the feeds it compiled) and
stores them next to ``compiled.npz`` (``realtime_keys.npz``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gtfs.compiled import CompiledTimetable, Int8Array
from gtfs.feed import Feed


@dataclass(frozen=True, eq=False)
class RealtimeKeys:
    """GTFS-RT matching keys of one compiled timetable."""

    trip_direction: Int8Array  # [T], -1 unknown

    @classmethod
    def build(cls, tt: CompiledTimetable, feeds: Sequence[Feed]) -> RealtimeKeys:
        return cls(trip_directions(tt, feeds))

    def save(self, path: str | Path) -> None:
        np.savez(Path(path), trip_direction=self.trip_direction)

    @classmethod
    def load(cls, path: str | Path) -> RealtimeKeys:
        with np.load(Path(path), allow_pickle=False) as z:
            return cls(z["trip_direction"])


def _original_trip_ids(tt: CompiledTimetable) -> tuple[pd.Series, pd.Series]:
    """(feed id or "", trip id in its feed) of each compiled trip."""
    ids = pd.Series(tt.trip_ids.astype(str))
    feed_of = pd.Series([""] * tt.n_trips)
    if tt.meta.get("id_prefix"):
        parts = ids.str.split(":", n=1, expand=True)
        feed_of, ids = parts[0], parts[1].fillna("")
    return feed_of, ids.str.replace(r"@\d+:\d\d:\d\d$", "", regex=True)


def trip_directions(tt: CompiledTimetable, feeds: Sequence[Feed]) -> Int8Array:
    """``int8`` [T]: the ``direction_id`` (0/1) of each compiled trip, -1 when not given."""
    feed_of, ids = _original_trip_ids(tt)
    prefixed = bool(tt.meta.get("id_prefix"))
    frames = []
    for f in feeds:
        trips = f.trips
        if trips.empty or "direction_id" not in trips.columns:
            continue
        d = pd.to_numeric(trips["direction_id"], errors="coerce")
        frames.append(
            pd.DataFrame(
                {
                    "feed": f.feed_id if prefixed else "",
                    "trip_id": trips["trip_id"].astype(str),
                    "dir": d,
                }
            ).drop_duplicates(["feed", "trip_id"])
        )
    out = np.full(tt.n_trips, -1, dtype=np.int8)
    if not frames:
        return out
    table = pd.concat(frames, ignore_index=True)
    merged = pd.DataFrame({"feed": feed_of, "trip_id": ids}).merge(
        table, on=["feed", "trip_id"], how="left"
    )
    dirs = merged["dir"].to_numpy(dtype=np.float64)
    ok = np.isin(dirs, (0.0, 1.0))
    out[ok] = dirs[ok].astype(np.int8)
    return out
