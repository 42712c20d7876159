"""Accessibility against hand-computed values: a three-stop line, one census mesh cell."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import h3
import numpy as np
import numpy.typing as npt
import pytest

import gtfs
from routing.access import (
    UNREACHED,
    AccessEngine,
    OnDemand,
    Population,
    decode_mesh,
    departure_times,
    isochrone,
    population_share,
    read_destinations,
    read_hospitals,
)
from routing.access.places import read_population
from routing.on_demand import TRANSFER_BUFFER_S, OnDemandAnswer, OnDemandRequest
from routing.street.geo import haversine_m
from routing.transit import TransitData
from tests.gtfs.conftest import BASE_FEED, write_zip

# Stop A sits on the centre of the 500 m mesh cell 644142881 (hand-decoded: first order 6441
# -> 42.6667 N, 141 E; second 42 -> +20' N, +15' E; third 88 -> +240" N, +360" E; quarter 1 =
# south-west: 15" x 22.5" from (43.0667, 141.35), centre +7.5" N, +11.25" E).
A = (43 + 4 / 60 + 7.5 / 3600, 141.35 + 11.25 / 3600)
B = (A[0] + 0.02, A[1])  # 2.2 km apart: no walking between stops
C = (A[0] + 0.04, A[1])
D = (C[0], C[1] + 0.04)  # 3.2 km east of C: only a ride reaches it
DAY = dt.date(2030, 1, 7)  # a Monday
STARTS = [8 * 60, 8 * 60 + 15, 8 * 60 + 30, 8 * 60 + 45]  # A -> B 10 min, B -> C 10 min


def _hm(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}:00"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> AccessEngine:
    rows = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    for i, m in enumerate(STARTS):
        for k, s in enumerate(("A", "B", "C")):
            rows.append(f"T{i},{_hm(m + 10 * k)},{_hm(m + 10 * k)},{s},{k + 1}")
    files: dict[str, str | bytes] = dict(BASE_FEED)
    files["stops.txt"] = "stop_id,stop_name,stop_lat,stop_lon\n" + "".join(
        f"{n},{n},{p[0]:.7f},{p[1]:.7f}\n" for n, p in (("A", A), ("B", B), ("C", C))
    )
    files["trips.txt"] = "route_id,service_id,trip_id\n" + "".join(
        f"R1,WK,T{i}\n" for i in range(len(STARTS))
    )
    files["stop_times.txt"] = "\n".join(rows) + "\n"
    path = write_zip(tmp_path_factory.mktemp("line") / "line.zip", files)
    tt = gtfs.compile_timetable(gtfs.read_feed(path))
    return AccessEngine(TransitData(tt), DAY)


def _walk_s(a: tuple[float, float], b: tuple[float, float]) -> int:
    m = float(haversine_m(np.array(a[0]), np.array(a[1]), np.array(b[0]), np.array(b[1])))
    return math.ceil(m * 1.3 / 1.2 - 1e-9)


# Departures 08:00, 08:05, 08:10 from A: B at 08:10 / 08:25 / 08:25 -> 10, 20, 15 min (median
# 15); C at 08:20 / 08:35 / 08:35 -> 20, 30, 25 (median 25).
DEPS = departure_times(8 * 3600, 15 * 60, 3)


def test_departures_and_median_to_stops(engine: AccessEngine) -> None:
    assert DEPS.tolist() == [28800, 29100, 29400]
    secs = engine.travel_times(
        np.array([A[0]]), np.array([A[1]]), np.array([B[0], C[0]]), np.array([B[1], C[1]]),
        None, DEPS,
    )  # fmt: skip
    assert secs.tolist() == [[15 * 60, 25 * 60]]
    # One departure only: 08:05 -> 20 and 30 minutes.
    one = engine.travel_times(
        np.array([A[0]]), np.array([A[1]]), np.array([B[0], C[0]]), np.array([B[1], C[1]]),
        None, np.array([29100], dtype=np.int32),
    )  # fmt: skip
    assert one.tolist() == [[20 * 60, 30 * 60]]
    # The planner's one-query path agrees at every departure.
    per = np.array([engine.one_query(A[0], A[1], int(d)) for d in DEPS])
    c = int(np.flatnonzero(engine.data.tt.stop_ids == "C")[0])
    assert sorted(per[:, c].tolist()) == [20 * 60, 25 * 60, 30 * 60]


def test_isochrone_on_a_three_stop_line(engine: AccessEngine) -> None:
    iso = isochrone(engine, A[0], A[1], DEPS, resolution=9, max_minutes=60)
    cb = h3.latlng_to_cell(B[0], B[1], 9)
    cc = h3.latlng_to_cell(C[0], C[1], 9)
    ca = h3.latlng_to_cell(A[0], A[1], 9)
    wb = _walk_s(B, h3.cell_to_latlng(cb))
    wc = _walk_s(C, h3.cell_to_latlng(cc))
    assert iso[cb] == pytest.approx((15 * 60 + wb) / 60, abs=0.01)
    assert iso[cc] == pytest.approx((25 * 60 + wc) / 60, abs=0.01)
    assert iso[ca] == pytest.approx(_walk_s(A, h3.cell_to_latlng(ca)) / 60, abs=0.01)
    assert h3.latlng_to_cell(D[0], D[1], 9) not in iso
    short = isochrone(engine, A[0], A[1], DEPS, resolution=9, max_minutes=20)
    assert cb in short and cc not in short


class _Zone:
    """A zone around C and D; rides at 30 km/h on the straight line."""

    def __init__(self, stop_c: int) -> None:
        self.stop_c = stop_c

    def zone_at(self, lat: float, lon: float) -> str | None:
        return "z" if lat > C[0] - 0.005 and lon >= C[1] - 0.005 else None

    def stops_in_zone(self, zone_id: str) -> npt.NDArray[np.int32]:
        return np.array([self.stop_c], dtype=np.int32)

    def hub_stops(self, zone_id: str) -> frozenset[int]:
        return frozenset()

    def estimate_s(self, o: tuple[float, float], d: tuple[float, float]) -> float | None:
        m = float(haversine_m(np.array(o[0]), np.array(o[1]), np.array(d[0]), np.array(d[1])))
        return m / (30 / 3.6)

    def quote(self, day: dt.date, requests: Sequence[OnDemandRequest]) -> list[OnDemandAnswer]:
        raise AssertionError("accessibility uses estimates, never quotes")


def test_on_demand_reaches_beyond_the_line(engine: AccessEngine) -> None:
    c = int(np.flatnonzero(engine.data.tt.stop_ids == "C")[0])
    od = OnDemand(_Zone(c), wait_s=300)
    args = (np.array([A[0]]), np.array([A[1]]), np.array([D[0]]), np.array([D[1]]), None, DEPS)
    assert engine.travel_times(*args).tolist() == [[UNREACHED]]
    drive = math.ceil(od.provider.estimate_s(C, D) or 0)
    got = engine.travel_times(*args, on_demand=od)
    assert got.tolist() == [[25 * 60 + 300 + TRANSFER_BUFFER_S + drive]]
    cd = h3.latlng_to_cell(D[0], D[1], 9)
    assert cd in isochrone(engine, A[0], A[1], DEPS, 9, 90, on_demand=od)


def test_mesh_decoding_by_hand() -> None:
    m = decode_mesh(["644142881", "644142884", "64414288", "6441"])
    assert m.centre_lat[0] == pytest.approx(A[0]) and m.centre_lon[0] == pytest.approx(A[1])
    # Quarter 4 = north-east; the third-order cell is 30" x 45"; the first order 40' x 1 deg.
    assert m.south[1] == pytest.approx(43 + 4 / 60 + 15 / 3600)
    assert m.west[1] == pytest.approx(141.35 + 22.5 / 3600)
    assert (m.dlat[2], m.dlon[2]) == pytest.approx((30 / 3600, 45 / 3600))
    assert (m.south[3], m.west[3], m.dlat[3]) == pytest.approx((64 / 1.5, 141.0, 2 / 3))
    for bad in ("64414288x", "644142885", "6441428", "644182881"):
        with pytest.raises(ValueError):
            decode_mesh([bad])


def test_population_share_of_a_grid_cell(engine: AccessEngine) -> None:
    # Cell 644142881 (100 people, its centre on stop A) reaches the hospital at C in a median
    # 25 min; cell 644142884's centre (north-east quarter) lies ~690 m from A, a 745 s walk:
    # leaving 08:00 / 08:05 / 08:10 it reaches A at 08:12 / 08:17 / 08:22, rides the 08:15 /
    # 08:30 / 08:30 to C (08:35 / 08:50 / 08:50): 35, 45, 40 min, median 40. A far cell (50
    # people) reaches nothing.
    pop = read_population("644142881,100,50,50,40\n644142884,30,15,15,10\n644100001,50,25,25,20\n")
    dest = read_destinations(f"name,kind,lat,lon\nGeneral,hospital,{C[0]},{C[1]}\n")
    shares = {s.kind: s for s in population_share(engine, pop, dest, DEPS, minutes=30)}
    h = shares["hospital"]
    assert (h.residents, h.reached) == (180, 100)
    assert h.share == pytest.approx(100 / 180)
    cells = decode_mesh(["644142884"])
    w = _walk_s((float(cells.centre_lat[0]), float(cells.centre_lon[0])), A)
    assert 720 < w < 780 and h.cell_minutes[1] == 40.0
    assert math.isnan(h.cell_minutes[2])
    wide = population_share(engine, pop, dest, DEPS, minutes=40)[0]
    assert wide.reached == 130


def test_destination_files(shared_data: Path) -> None:
    gj = read_destinations(
        '{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point",'
        '"coordinates":[141.0,43.0]},"properties":{"name":"Hall","kind":"city_hall"}}]}'
    )
    assert (gj.name, gj.kind, float(gj.lat[0])) == (["Hall"], ["city_hall"], 43.0)
    for bad in ("name,lat\nx,1\n", "name,lat,lon\nx,95,1\n", '{"features": [{"geometry": {}}]}'):
        with pytest.raises(ValueError):
            read_destinations(bad)
    hosp = read_hospitals((shared_data / "planning" / "hokkaido_hospitals_2015.csv").read_bytes())
    # 574 records (the data README's 580 counts lines: quoted fields span lines), 249 emergency.
    assert len(hosp) == 574 and hosp.kind.count("emergency_hospital") == 249
    i = hosp.name.index("市立室蘭総合病院")
    assert (hosp.kind[i], float(hosp.lon[i])) == ("emergency_hospital", 140.9762629)
    pop = read_population(
        (shared_data / "planning" / "hokkaido_population_mesh500_2010.csv").read_bytes()
    )
    assert isinstance(pop, Population) and len(pop.people) == 45_723
    muroran = pop.within(42.28, 140.88, 42.45, 141.08)
    assert 100_000 < int(muroran.people.sum()) < 160_000
