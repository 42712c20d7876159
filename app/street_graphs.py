"""The OSM street graphs of ``settings.osm_path``, loaded once per process and shared.

The planner walks on the walking graph, and the feed compile step times its footpaths on it,
so both read the same extract once. No extract, or an unreadable one, means ``None``: callers
fall back to the documented straight-line model (``routing.street.StraightLineAccess``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from app.logging import get_logger

log = get_logger("tsunagu.street")

_graphs: dict[str, Any] = {}
_lock = threading.Lock()


def walk_graph(osm_path: str | Path | None) -> Any:
    """The walking ``routing.street.StreetGraph`` of ``osm_path``, or None without a usable one."""
    if not osm_path:
        return None
    key = str(osm_path)
    with _lock:
        if key not in _graphs:
            from routing.street import StreetError, load_osm

            try:
                _graphs[key] = load_osm(osm_path, ["walk"])["walk"]
            except (StreetError, OSError, ValueError) as exc:
                log.warning("osm_unusable", path=key, error=str(exc))
                _graphs[key] = None
        return _graphs[key]
