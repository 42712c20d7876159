"""transfers.txt rows that state too little to apply (``missing_required_field``).

GTFS makes ``min_transfer_time`` required for ``transfer_type=2``: without it the row states
no time, so the compiler drops it (:mod:`gtfs.compile`). Ids naming no stop, route or trip
are foreign-key violations (:mod:`gtfs.validation.references`); such rows are dropped too.
"""

from __future__ import annotations

from gtfs.feed import Feed
from gtfs.notices import NoticeSink


def check_transfers(feed: Feed, sink: NoticeSink) -> None:
    """Notice every ``transfer_type=2`` row without ``min_transfer_time``."""
    tr = feed.table("transfers")
    if tr.empty or "transfer_type" not in tr.columns:
        return
    ty = feed.column("transfers", "transfer_type").astype(str).str.strip()
    mn = feed.column("transfers", "min_transfer_time").astype(str).str.strip()
    bad = ((ty == "2") & (mn == "")).to_numpy()
    if bad.any():
        cols = [
            c
            for c in ("from_stop_id", "to_stop_id", "from_trip_id", "to_trip_id")
            if c in tr.columns
        ]
        sink.add_rows(
            "missing_required_field",
            tr.loc[bad, cols],
            filename="transfers.txt",
            extra={"field_name": "min_transfer_time"},
        )
