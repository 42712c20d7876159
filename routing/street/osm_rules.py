"""OSM tagging rules: which ways a pedestrian or a car may use, oneway, and speeds.

Walking: footways, paths, pedestrian streets, steps, tracks, cycleways, sidewalks and crossings,
and every road class below motorways (residential, service, tertiary ... trunk, as US and JP
law allow pedestrians there unless signed). Excluded: motorways, ``motorroad=yes`` roads,
``foot=no|use_sidepath``, ``access=no|private`` without a ``foot`` permission, and ways under
construction or proposed.
Walking ignores ``oneway``.

Driving: the classes of :data:`routing.street.profiles.DRIVE_HIGHWAYS`; excluded are
``area=yes``, ``service=emergency_access`` and access restrictions (the most specific of
``motorcar``, ``motor_vehicle``, ``vehicle``, ``access`` decides; ``no``/``private`` and similar
bar the way). ``oneway=yes|true|1`` is forward, ``-1|reverse`` is backward,
``reversible|alternating`` ways are skipped, and roundabouts and motorways are oneway by default.
Speed is ``maxspeed`` (km/h; ``mph`` and ``knots`` converted; ``walk`` is 6 km/h; the first
of ``a;b`` lists) or else the class default of :data:`DEFAULT_SPEED_KMH`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from routing.street.graph import HIGHWAY_CLASSES

WALK_HIGHWAYS = frozenset(HIGHWAY_CLASSES) - {"motorway", "motorway_link"}
DENY = frozenset({"no", "private", "agricultural", "forestry", "delivery", "use_sidepath"})
ALLOW = frozenset({"yes", "designated", "permissive", "destination", "customers", "official"})

# Free-flow speeds (km/h) per class when ``maxspeed`` is absent or unparseable.
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 65.0,
    "primary_link": 45.0,
    "secondary": 55.0,
    "secondary_link": 40.0,
    "tertiary": 45.0,
    "tertiary_link": 35.0,
    "unclassified": 40.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 30.0,
}
DRIVE_HIGHWAYS = frozenset(DEFAULT_SPEED_KMH)

_SPEED_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph|knots)?\s*$", re.IGNORECASE)
_UNIT = {"mph": 1.609344, "knots": 1.852}


def walk_allowed(tags: Mapping[str, str]) -> bool:
    """Whether a pedestrian may walk along a way with these tags."""
    hw = tags.get("highway", "")
    if hw not in WALK_HIGHWAYS:
        return False
    foot = tags.get("foot", "")
    if foot in DENY:
        return False
    if tags.get("motorroad") == "yes" and foot not in ALLOW:
        return False  # expressway-class road: no pedestrians unless signed
    return not (tags.get("access", "") in DENY and foot not in ALLOW)


def parse_maxspeed(value: str | None) -> float | None:
    """``maxspeed`` in km/h, or ``None`` when absent or symbolic (``none``, ``US:urban``...)."""
    if not value:
        return None
    first = value.split(";")[0].strip().lower()
    if first == "walk":
        return 6.0
    m = _SPEED_RE.match(first)
    if m is None:
        return None
    speed = float(m.group(1)) * _UNIT.get((m.group(2) or "").lower(), 1.0)
    return speed if speed > 0 else None


def oneway_of(tags: Mapping[str, str]) -> int | None:
    """1 forward only, -1 backward only, 0 both ways, ``None`` for reversible ways (skipped)."""
    ow = tags.get("oneway", "").strip().lower()
    if ow in ("yes", "true", "1"):
        return 1
    if ow in ("-1", "reverse"):
        return -1
    if ow in ("reversible", "alternating"):
        return None
    if ow in ("no", "false", "0"):
        return 0
    if tags.get("junction", "") in ("roundabout", "circular"):
        return 1
    return 1 if tags.get("highway") == "motorway" else 0


def drive_attributes(tags: Mapping[str, str]) -> tuple[int, float] | None:
    """``(oneway, speed_kmh)`` for a drivable way, ``None`` when cars may not use it."""
    hw = tags.get("highway", "")
    if hw not in DRIVE_HIGHWAYS or tags.get("area") == "yes":
        return None
    if tags.get("service") == "emergency_access":
        return None
    for key in ("motorcar", "motor_vehicle", "vehicle", "access"):
        v = tags.get(key)
        if v is not None:
            if v in DENY:
                return None
            if v in ALLOW:
                break
    oneway = oneway_of(tags)
    if oneway is None:
        return None
    speed = parse_maxspeed(tags.get("maxspeed")) or DEFAULT_SPEED_KMH[hw]
    return oneway, speed
