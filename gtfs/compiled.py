"""The compiled timetable: a published feed version as flat numpy arrays.

This is the narrow contract between ``gtfs`` (which builds it) and ``routing`` /
``dispatch`` (which read it). It holds no pandas objects and no per-query state, is valid for
any service date (services are a day bitmap), and round-trips through a single ``.npz`` file so
that a restart does not recompile.

Conventions
-----------
* Times are ``int32`` seconds after "noon minus 12h" of the service day (GTFS time), so they may
  exceed 86 400 for trips running past midnight.
* Index arrays are ``int32``; ``-1`` means "none".
* ``*_ptr`` arrays are CSR offsets: the items of row ``i`` are ``items[ptr[i]:ptr[i + 1]]``.
* A *pattern* (a RAPTOR "route") is a stop sequence shared by trips that never overtake each
  other; its trips are sorted by departure at the first stop.
* The stop times of trip ``t`` are ``st_*[trip_st_ptr[t]:trip_st_ptr[t + 1]]``, one per stop of
  the trip's pattern, in order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]
BoolArray = npt.NDArray[np.bool_]

# 2: trip_bikes (bikes_allowed) added; an older artifact is recompiled, not read without it.
# 3: rule_* rows naming an id that is not compiled are dropped (before, their -1 read as
#    "any"), as are type 2 rows without min_transfer_time.
FORMAT_VERSION = 3


@dataclass(frozen=True, eq=False)
class CompiledTimetable:
    """A feed (or several feeds merged into one network) compiled for routing."""

    # --- stops [S] -----------------------------------------------------------------------
    stop_ids: StrArray
    stop_names: StrArray
    stop_lat: FloatArray
    stop_lon: FloatArray
    stop_parent: IntArray  # index of parent station or -1
    stop_wheelchair: Int8Array  # GTFS wheelchair_boarding (0 unknown, 1 yes, 2 no), inherited
    # --- agencies [A] and routes [R] -------------------------------------------------------
    agency_ids: StrArray
    agency_names: StrArray
    route_ids: StrArray
    route_agency: IntArray
    route_short_names: StrArray
    route_long_names: StrArray
    route_types: IntArray
    route_colors: StrArray
    # --- patterns [P] ----------------------------------------------------------------------
    pattern_route: IntArray
    pattern_stop_ptr: IntArray  # [P+1]
    pattern_stops: IntArray
    pattern_trip_ptr: IntArray  # [P+1] into the pattern-ordered trip index space
    # --- trips [T], ordered so that trips of pattern p are pattern_trip_ptr[p]..[p+1] -------
    trip_ids: StrArray
    trip_route: IntArray
    trip_pattern: IntArray
    trip_service: IntArray
    trip_headsigns: StrArray
    trip_wheelchair: Int8Array  # GTFS wheelchair_accessible (0 unknown, 1 yes, 2 no)
    trip_shape: IntArray  # index into shape_ids or -1
    trip_st_ptr: Int64Array  # [T+1]
    # --- stop times [N] -------------------------------------------------------------------
    st_arrival: IntArray
    st_departure: IntArray
    st_pickup: Int8Array  # GTFS pickup_type
    st_dropoff: Int8Array  # GTFS drop_off_type
    # --- stop -> patterns [S+1] CSR ----------------------------------------------------------
    stop_pattern_ptr: IntArray
    stop_patterns: IntArray
    stop_pattern_pos: IntArray  # position of the stop within that pattern
    # --- transfers / footpaths [S+1] CSR ---------------------------------------------------
    transfer_ptr: IntArray
    transfer_to: IntArray
    transfer_s: IntArray  # walking or minimum transfer time, seconds
    # --- services [V] x days [D] -----------------------------------------------------------
    service_ids: StrArray
    service_start: dt.date  # the date of column 0 of service_days
    service_days: BoolArray  # [V, D]
    # --- shapes ----------------------------------------------------------------------------
    shape_ids: StrArray
    shape_ptr: Int64Array  # [shapes+1]
    shape_lat: FloatArray
    shape_lon: FloatArray
    # --- metadata ----------------------------------------------------------------------------
    timezone: str = "UTC"
    feed_ids: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    # --- transfer rules [X] from transfers.txt that name routes or trips ---------------------
    # (stop-to-stop rules are already folded into transfer_*). -1 means "any"/"not given".
    # rule_type is the GTFS transfer_type: 1 timed, 2 minimum time (rule_min_s), 3 not
    # possible, 4 in-seat (stay on board from from_trip to to_trip), 5 in-seat not allowed.
    rule_from_stop: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))
    rule_to_stop: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))
    rule_from_route: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))
    rule_to_route: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))
    rule_from_trip: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))
    rule_to_trip: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))
    rule_type: Int8Array = field(default_factory=lambda: np.zeros(0, np.int8))
    rule_min_s: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))
    # --- per stop time [N] (empty when built by hand) -----------------------------------------
    st_stop_sequence: IntArray = field(default_factory=lambda: np.zeros(0, np.int32))  # GTFS
    # --- more per-trip attributes [T] (empty when built by hand) ------------------------------
    trip_short_names: StrArray = field(default_factory=lambda: np.zeros(0, np.str_))
    trip_directions: Int8Array = field(default_factory=lambda: np.zeros(0, np.int8))  # -1 none
    trip_blocks: StrArray = field(default_factory=lambda: np.zeros(0, np.str_))  # "" none
    trip_bikes: Int8Array = field(default_factory=lambda: np.zeros(0, np.int8))  # bikes_allowed

    # ---------------------------------------------------------------------------------------
    @property
    def n_stops(self) -> int:
        return int(self.stop_ids.shape[0])

    @property
    def n_trips(self) -> int:
        return int(self.trip_ids.shape[0])

    @property
    def n_patterns(self) -> int:
        return int(self.pattern_route.shape[0])

    @property
    def n_stop_times(self) -> int:
        return int(self.st_arrival.shape[0])

    def day_index(self, day: dt.date) -> int:
        """Column of ``service_days`` for ``day``, or -1 when outside the compiled range."""
        i = (day - self.service_start).days
        return i if 0 <= i < self.service_days.shape[1] else -1

    def active_services(self, day: dt.date) -> BoolArray:
        """Boolean mask [V] of the services running on ``day``."""
        i = self.day_index(day)
        if i < 0:
            return np.zeros(self.service_days.shape[0], dtype=np.bool_)
        return self.service_days[:, i].copy()

    def active_trips(self, day: dt.date) -> BoolArray:
        """Boolean mask [T] of the trips running on ``day`` (service day, not calendar day)."""
        return self.active_services(day)[self.trip_service]

    @property
    def last_service_date(self) -> dt.date:
        return self.service_start + dt.timedelta(days=int(self.service_days.shape[1]) - 1)

    # --- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write every array to one compressed ``.npz`` (no pickles)."""
        arrays: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                arrays[f.name] = v
        import json

        header = {
            "format_version": FORMAT_VERSION,
            "service_start": self.service_start.isoformat(),
            "timezone": self.timezone,
            "feed_ids": list(self.feed_ids),
            "meta": self.meta,
        }
        arrays["__header__"] = np.array(json.dumps(header))
        np.savez_compressed(Path(path), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> CompiledTimetable:
        import json

        with np.load(Path(path), allow_pickle=False) as z:
            header = json.loads(str(z["__header__"]))
            if header.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"{path}: compiled format {header.get('format_version')} "
                    f"!= {FORMAT_VERSION}; recompile the feed"
                )
            kwargs: dict[str, Any] = {k: z[k] for k in z.files if k != "__header__"}
        kwargs["service_start"] = dt.date.fromisoformat(header["service_start"])
        kwargs["timezone"] = header["timezone"]
        kwargs["feed_ids"] = tuple(header["feed_ids"])
        kwargs["meta"] = header["meta"]
        return cls(**kwargs)
