"""With an OSM extract configured, published networks' footpaths are walks on the streets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app import db
from app.feeds.startup import build_registry
from app.settings import Settings
from gtfs.geo import haversine_m


def _transfers(tt: object) -> dict[tuple[int, int], int]:
    ptr, to, sec = tt.transfer_ptr, tt.transfer_to, tt.transfer_s  # type: ignore[attr-defined]
    return {
        (a, int(to[k])): int(sec[k]) for a in range(len(ptr) - 1) for k in range(ptr[a], ptr[a + 1])
    }


def test_osm_footpaths_are_used_when_publishing(tmp_path: Path, shared_data: Path) -> None:
    feed = shared_data / "gtfs" / "us_terre_haute.zip"
    regs = {}
    for name, osm in (("street", shared_data / "osm" / "us_terre_haute.osm.pbf"), ("line", None)):
        settings = Settings(data_dir=tmp_path / name, osm_path=osm, demo=False)
        engine = db.create_db_engine(f"sqlite:///{tmp_path / name}.db")
        db.upgrade_database(engine)
        reg = build_registry(settings, engine)
        v = reg.upload_file("th", feed, filename="th.zip")
        reg.publish("th", v.id)
        regs[name] = reg.network.timetable
    assert build_registry(Settings(data_dir=tmp_path / "x", demo=False), None).footpaths is None
    street, line = _transfers(regs["street"]), _transfers(regs["line"])
    tt = regs["street"]
    walks = [
        (a, b, s)
        for (a, b), s in street.items()
        if a != b and tt.stop_parent[a] < 0 and street.get((a, b)) != line.get((a, b))
    ]
    assert walks, "the OSM footpaths should differ from the straight-line ones somewhere"
    for a, b, s in walks:
        crow = haversine_m(tt.stop_lat[a], tt.stop_lon[a], tt.stop_lat[b], tt.stop_lon[b])
        # A walk on the streets is never shorter than the crow flies at 1.2 m/s (1 s rounding).
        assert s + 1 >= float(np.floor(crow / 1.2))
