"""GTFS fields that compilation drops but GTFS-RT matching needs: the keys of a timetable.

* ``direction_id`` of each compiled trip [T] (-1 unknown): TripDescriptors without ``trip_id``
  are matched by route + direction + start time.
* ``exact_times`` of the ``frequencies.txt`` row each compiled trip copy comes from [T] (-1: not
  a frequency trip): a frequency-based (``exact_times=0``) instance may be named by an
  arbitrary ``start_time`` (see :class:`gtfs.realtime.TripMatcher`), a schedule-based one only
  by its exact start.

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
    trip_exact_times: Int8Array | None = None  # [T], -1 not from frequencies.txt; None unknown

    @classmethod
    def build(cls, tt: CompiledTimetable, feeds: Sequence[Feed]) -> RealtimeKeys:
        return cls(trip_directions(tt, feeds), trip_exact_times(tt, feeds))

    def save(self, path: str | Path) -> None:
        arrays = {"trip_direction": self.trip_direction}
        if self.trip_exact_times is not None:
            arrays["trip_exact_times"] = self.trip_exact_times
        np.savez(Path(path), **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> RealtimeKeys:
        with np.load(Path(path), allow_pickle=False) as z:
            # Keys saved before exact_times was kept: unknown (matching stays lenient).
            exact = z["trip_exact_times"] if "trip_exact_times" in z.files else None
            return cls(z["trip_direction"], exact)


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


_FREQ_SUFFIX = r"@(\d+:\d\d:\d\d)$"


def trip_exact_times(tt: CompiledTimetable, feeds: Sequence[Feed]) -> Int8Array:
    """``int8`` [T]: ``exact_times`` (0/1, blank = 0) of the ``frequencies.txt`` row each
    compiled trip copy (``"id@HH:MM:SS"``) was expanded from, -1 for other trips."""
    from gtfs.times import parse_times

    out = np.full(tt.n_trips, -1, dtype=np.int8)
    if all(f.table("frequencies").empty for f in feeds):
        return out  # the common case: no trip is a frequencies.txt copy
    feed_of, ids = _original_trip_ids(tt)
    copy_start = pd.Series(tt.trip_ids.astype(str)).str.extract(_FREQ_SUFFIX)[0]
    is_copy = copy_start.notna().to_numpy()
    if not is_copy.any():
        return out
    prefixed = bool(tt.meta.get("id_prefix"))
    frames = []
    for f in feeds:
        fq = f.table("frequencies")
        if fq.empty or "trip_id" not in fq.columns:
            continue
        exact = pd.to_numeric(f.column("frequencies", "exact_times"), errors="coerce")
        frames.append(
            pd.DataFrame(
                {
                    "feed": f.feed_id if prefixed else "",
                    "trip_id": fq["trip_id"].astype(str),
                    "lo": parse_times(f.column("frequencies", "start_time"))[0],
                    "hi": parse_times(f.column("frequencies", "end_time"))[0],
                    "exact": exact.fillna(0).to_numpy(),
                }
            )
        )
    if not frames:
        return out
    copies = pd.DataFrame(
        {
            "t": np.flatnonzero(is_copy),
            "feed": feed_of[is_copy].to_numpy(),
            "trip_id": ids[is_copy].to_numpy(),
            "start": parse_times(copy_start[is_copy].reset_index(drop=True))[0],
        }
    )
    rows = copies.merge(pd.concat(frames, ignore_index=True), on=["feed", "trip_id"])
    # A copy comes from the row whose [start_time, end_time) window holds its start.
    rows = rows[(rows["lo"] <= rows["start"]) & (rows["start"] < rows["hi"])]
    rows = rows.drop_duplicates("t")
    ok = rows["exact"].isin((0, 1)).to_numpy()
    out[rows["t"].to_numpy()[ok]] = rows["exact"].to_numpy()[ok].astype(np.int8)
    # A copy whose row cannot be told (malformed window): frequency-based, the lenient reading.
    out[is_copy & (out < 0)] = 0
    return out
