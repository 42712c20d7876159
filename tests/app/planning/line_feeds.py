"""A small synthetic network for planning tests: stops A, B, C on a line; route one runs A-B
every 15 minutes from 07:00 (8 trips), route two runs B-C 12 minutes later (the only way to C);
10 minutes between stops; weekdays of 2030 (BASE_FEED's calendar)."""

from __future__ import annotations

from pathlib import Path

from tests.gtfs.conftest import BASE_FEED, write_zip

Point = tuple[float, float]


def three_stop_line(
    path: Path,
    stops: tuple[Point, Point, Point],
    *,
    routes: tuple[str, str] = ("R1", "R2"),
    stop_prefix: str = "",
) -> Path:
    """Write the network as a GTFS zip at ``path`` (stop ids ``stop_prefix`` + A, B, C)."""
    rows = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    trips = ["route_id,service_id,trip_id,direction_id"]
    for i in range(8):
        m = 7 * 60 + 15 * i
        for route, seq, off in ((routes[0], "AB", 0), (routes[1], "BC", 12)):
            tid = f"{route}_{i}"
            trips.append(f"{route},WK,{tid},0")
            for k, s in enumerate(seq):
                t = m + off + 10 * k
                hm = f"{t // 60:02d}:{t % 60:02d}:00"
                rows.append(f"{tid},{hm},{hm},{stop_prefix}{s},{k}")
    files: dict[str, str | bytes] = dict(BASE_FEED)
    files["stops.txt"] = "stop_id,stop_name,stop_lat,stop_lon\n" + "".join(
        f"{stop_prefix}{n},{n},{p[0]},{p[1]}\n" for n, p in zip("ABC", stops, strict=True)
    )
    files["routes.txt"] = (
        "route_id,agency_id,route_short_name,route_long_name,route_type\n"
        f"{routes[0]},A,1,One,3\n{routes[1]},A,2,Two,3\n"
    )
    files["trips.txt"] = "\n".join(trips) + "\n"
    files["stop_times.txt"] = "\n".join(rows) + "\n"
    return write_zip(path, files)
