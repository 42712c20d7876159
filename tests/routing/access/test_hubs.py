"""Hubs: the stop where two lines cross ranks first."""

from __future__ import annotations

import datetime as dt

import pytest

import gtfs
from routing.access.hubs import rank_hubs, stop_route_graph
from routing.transit import TransitData
from tests.gtfs.conftest import BASE_FEED, write_zip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> TransitData:
    # Line 1 runs A-B-C eight times a day, line 2 runs D-B-E twice; they cross at B.
    stops = {"A": (43.0, 141.0), "B": (43.02, 141.0), "C": (43.04, 141.0)}
    stops |= {"D": (43.02, 140.97), "E": (43.02, 141.03)}
    rows = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    trips = ["route_id,service_id,trip_id"]
    for route, seq, n in (("R1", "ABC", 8), ("R2", "DBE", 2)):
        for i in range(n):
            tid = f"{route}_{i}"
            trips.append(f"{route},WK,{tid}")
            for k, s in enumerate(seq):
                m = 7 * 60 + 60 * i + 7 * k
                rows.append(
                    f"{tid},{m // 60:02d}:{m % 60:02d}:00,{m // 60:02d}:{m % 60:02d}:00,{s},{k}"
                )
    files: dict[str, str | bytes] = dict(BASE_FEED)
    files["stops.txt"] = "stop_id,stop_name,stop_lat,stop_lon\n" + "".join(
        f"{s},{s},{a},{b}\n" for s, (a, b) in stops.items()
    )
    files["routes.txt"] = (
        "route_id,agency_id,route_short_name,route_long_name,route_type\n"
        "R1,A,1,One,3\nR2,A,2,Two,3\n"
    )
    files["trips.txt"] = "\n".join(trips) + "\n"
    files["stop_times.txt"] = "\n".join(rows) + "\n"
    path = write_zip(tmp_path_factory.mktemp("hubs") / "hubs.zip", files)
    return TransitData(gtfs.compile_timetable(gtfs.read_feed(path)))


def test_crossing_stop_is_the_top_hub(data: TransitData) -> None:
    day = dt.date(2030, 1, 7)
    hg = stop_route_graph(data, day)
    assert hg.graph.number_of_edges() == 4
    hubs = rank_hubs(data, day, top=5)
    assert hubs.iloc[0]["stop_id"] == "B"
    b = hubs.iloc[0]
    # B: 8 + 2 departures, 2 routes; on directed paths A->C, D->E, A->E, D->C (4 of the
    # 20 ordered pairs, 12 of them connected) B is the only intermediate stop.
    assert (int(b["departures"]), int(b["routes"])) == (10, 2)
    assert b["betweenness"] == pytest.approx(4 / 12)
    assert hubs["betweenness"].iloc[1:].max() == 0.0
    with pytest.raises(ValueError):
        rank_hubs(data, dt.date(2030, 1, 5), top=5)  # Saturday: no service
