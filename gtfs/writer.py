"""Write a :class:`~gtfs.feed.Feed` back to a GTFS zip (tests, synthetic networks, export)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from gtfs.feed import Feed


def write_feed(feed: Feed, path: str | Path) -> Path:
    """Every table as ``name.txt`` (UTF-8, strings as read) plus the non-CSV files."""
    p = Path(path)
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, df in feed.tables.items():
            zf.writestr(f"{name}.txt", df.to_csv(index=False))
        for name, data in feed.files.items():
            zf.writestr(name, data)
    return p
