"""Recover the original GTFS ``stop_sequence`` of each compiled stop time.

The compiled timetable keeps positions, not the feed's ``stop_sequence`` values (which may be
sparse: 2, 7, 13...). GTFS-RT updates often name stops by ``stop_sequence`` only, so the app
computes this [N] array once per published version (from the feeds it compiled) and stores it
next to ``compiled.npz``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from gtfs.compiled import CompiledTimetable, IntArray
from gtfs.feed import Feed


def stop_sequences(tt: CompiledTimetable, feeds: Sequence[Feed]) -> IntArray:
    """``int32`` [N]: the ``stop_sequence`` of each stop time of ``tt`` (-1 when unknown).

    A compiled trip ``"feed:id"`` (merged networks) or ``"id@HH:MM:SS"`` (frequency expansion)
    is traced back to trip ``id`` of its feed; its k-th stop time is the k-th row of that trip
    in stop_sequence order.
    """
    n_trips = tt.n_trips
    lengths = np.diff(tt.trip_st_ptr)
    ids = pd.Series(tt.trip_ids.astype(str))
    feed_of = pd.Series([""] * n_trips)
    if tt.meta.get("id_prefix"):
        parts = ids.str.split(":", n=1, expand=True)
        feed_of, ids = parts[0], parts[1].fillna("")
    ids = ids.str.replace(r"@\d+:\d\d:\d\d$", "", regex=True)
    compiled = pd.DataFrame(
        {
            "feed": np.repeat(feed_of.to_numpy(dtype=object), lengths),
            "trip_id": np.repeat(ids.to_numpy(dtype=object), lengths),
            "k": np.arange(tt.n_stop_times) - np.repeat(tt.trip_st_ptr[:-1], lengths),
        }
    )
    frames = []
    prefixed = bool(tt.meta.get("id_prefix"))
    for f in feeds:
        st = f.stop_times
        if st.empty or "stop_sequence" not in st.columns:
            continue
        seq = pd.to_numeric(st["stop_sequence"], errors="coerce")
        df = pd.DataFrame({"trip_id": st["trip_id"].astype(str), "seq": seq}).dropna()
        df = df.sort_values(["trip_id", "seq"], kind="stable")
        df["k"] = df.groupby("trip_id").cumcount()
        df["feed"] = f.feed_id if prefixed else ""
        frames.append(df)
    out = np.full(tt.n_stop_times, -1, dtype=np.int32)
    if not frames:
        return out
    table = pd.concat(frames, ignore_index=True)
    merged = compiled.merge(table, on=["feed", "trip_id", "k"], how="left")
    seqs = merged["seq"].to_numpy(dtype=np.float64)
    ok = np.isfinite(seqs)
    out[ok] = seqs[ok].astype(np.int32)
    return out
