"""transfers.txt rows naming trips or routes: compiled rules, dropped rows, validation notices
and which rule applies (GTFS specificity ranking, :mod:`gtfs.transfer_rules`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gtfs import read_feed
from gtfs.compile import compile_timetable
from gtfs.compiled import CompiledTimetable
from gtfs.transfer_rules import NOT_POSSIBLE, TransferRules, specificity
from gtfs.validation.validate import validate_feed

STOPS = (
    "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "ST,Station,35.0000,139.0000,1,\n"
    "S1,One,35.0000,139.0000,0,ST\n"
    "S2,Two,35.0045,139.0000,0,\n"
    "S3,Three,35.0090,139.0000,0,\n"
)
ROUTES = (
    "route_id,agency_id,route_short_name,route_long_name,route_type\n"
    "R1,A,1,Line,3\n"
    "R2,A,2,Other,3\n"
)
TRIPS = "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR2,WK,T3\nR2,WK,T4\n"
STOP_TIMES = (
    "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
    "T1,08:00:00,08:00:00,S1,1\nT1,08:05:00,08:05:00,S2,2\n"
    "T2,09:00:00,09:00:00,S1,1\nT2,09:05:00,09:05:00,S2,2\n"
    "T3,08:10:00,08:10:00,S2,1\nT3,08:15:00,08:15:00,S3,2\n"
    "T4,09:10:00,09:10:00,S2,1\nT4,09:15:00,09:15:00,S3,2\n"
)
HEADER = (
    "from_stop_id,to_stop_id,from_route_id,to_route_id,from_trip_id,to_trip_id,"
    "transfer_type,min_transfer_time\n"
)


def _feed(make_feed: Callable[..., Path], rows: str) -> Path:
    return make_feed(
        {
            "stops.txt": STOPS,
            "routes.txt": ROUTES,
            "trips.txt": TRIPS,
            "stop_times.txt": STOP_TIMES,
            "transfers.txt": HEADER + rows,
        }
    )


def _rules(tt: CompiledTimetable) -> list[tuple[str, ...]]:
    def name(ids: np.ndarray, i: int) -> str:
        return str(ids[i]) if i >= 0 else ""

    return [
        (
            name(tt.stop_ids, int(tt.rule_from_stop[x])),
            name(tt.stop_ids, int(tt.rule_to_stop[x])),
            name(tt.route_ids, int(tt.rule_from_route[x])),
            name(tt.route_ids, int(tt.rule_to_route[x])),
            name(tt.trip_ids, int(tt.rule_from_trip[x])),
            name(tt.trip_ids, int(tt.rule_to_trip[x])),
            str(int(tt.rule_type[x])),
            str(int(tt.rule_min_s[x])),
        )
        for x in range(len(tt.rule_type))
    ]


def test_trip_and_route_rows_compile_to_rules(
    make_feed: Callable[..., Path], tmp_path: Path
) -> None:
    rows = (
        "S2,S2,R1,R2,,,2,300\n"
        "S2,S2,,,T1,T3,3,\n"
        "S2,S2,,,T2,,1,\n"
        "S2,S2,,,,,2,60\n"  # stop-to-stop: the stop's change time, not a rule
    )
    tt = compile_timetable(read_feed(_feed(make_feed, rows)))
    assert _rules(tt) == [
        ("S2", "S2", "R1", "R2", "", "", "2", "300"),
        ("S2", "S2", "", "", "T1", "T3", "3", "-1"),
        ("S2", "S2", "", "", "T2", "", "1", "-1"),
    ]
    assert tt.meta["transfer_rules_dropped"] == 0
    # The .npz keeps them.
    tt.save(tmp_path / "tt.npz")
    back = CompiledTimetable.load(tmp_path / "tt.npz")
    assert _rules(back) == _rules(tt)


def test_rows_that_cannot_apply_are_dropped_not_widened(make_feed: Callable[..., Path]) -> None:
    rows = (
        "S2,S2,,,T1,NOPE,3,\n"  # unknown trip: would read as "to any trip"
        "S2,S2,RX,R2,,,3,\n"  # unknown route
        "S2,S9,,,T1,T3,3,\n"  # unknown stop
        "S2,S2,,,T1,T3,2,\n"  # minimum time without the time
        "S2,S2,R1,R2,,,2,120\n"  # the only usable row
    )
    path = _feed(make_feed, rows)
    tt = compile_timetable(read_feed(path))  # no crash
    assert _rules(tt) == [("S2", "S2", "R1", "R2", "", "", "2", "120")]
    assert tt.meta["transfer_rules_dropped"] == 4
    notices = {n.code: n for n in validate_feed(read_feed(path)).notices}
    missing = notices["missing_required_field"]
    assert missing.total == 1
    assert missing.samples[0]["fieldName"] == "min_transfer_time"
    assert missing.samples[0]["csvRowNumber"] == 5
    fk = notices["foreign_key_violation"]
    assert {s["fieldValue"] for s in fk.samples} >= {"NOPE", "RX", "S9"}


def test_no_notice_for_complete_rows(make_feed: Callable[..., Path]) -> None:
    path = _feed(make_feed, "S2,S2,R1,R2,,,2,120\nS2,S2,,,T1,T3,3,\n")
    codes = {n.code for n in validate_feed(read_feed(path)).notices}
    assert "missing_required_field" not in codes
    assert "foreign_key_violation" not in codes


def test_specificity_follows_the_gtfs_ranking() -> None:
    # both trips > trip + route > one trip > both routes > one route > stops only
    got = specificity(
        [0, 0, 0, -1, -1, -1], [0, -1, -1, -1, -1, -1],
        [-1, -1, -1, 0, 0, -1], [-1, 0, -1, 0, -1, -1],
    )  # fmt: skip
    assert got.tolist() == sorted(got.tolist(), reverse=True)
    assert len(set(got.tolist())) == len(got)
    # a route with the trip on the same side counts as the trip
    assert specificity([0], [0], [0], [0]).tolist() == specificity([0], [0], [-1], [-1]).tolist()


def _idx(tt: CompiledTimetable, ids: np.ndarray, name: str) -> int:
    return int(np.flatnonzero(ids == name)[0])


@pytest.mark.parametrize(
    ("rows", "expect"),
    [
        # route-to-route applies to every pair of their trips
        ("S2,S2,R1,R2,,,2,300\n", {("T1", "T3"): (2, 300), ("T2", "T4"): (2, 300)}),
        # a trip beats its route; the route rule still covers the other trips
        (
            "S2,S2,R1,R2,,,2,300\nS2,S2,,,T1,T3,3,\n",
            {("T1", "T3"): (3, 0), ("T1", "T4"): (2, 300), ("T2", "T3"): (2, 300)},
        ),
        # file order does not matter for different ranks
        ("S2,S2,,,T1,T3,3,\nS2,S2,R1,R2,,,2,300\n", {("T1", "T3"): (3, 0), ("T2", "T3"): (2, 300)}),
        # trip + route beats one trip alone
        ("S2,S2,,,T1,,1,\nS2,S2,,R2,T1,,2,200\n", {("T1", "T3"): (2, 200)}),
        # one trip beats both routes; a rule naming one side leaves the other open
        ("S2,S2,R1,R2,,,3,\nS2,S2,,,,T4,2,30\n", {("T1", "T3"): (3, 0), ("T1", "T4"): (2, 30)}),
        # equal rank: the exact stop beats the station, then the earlier row
        ("S2,S2,,,T1,T3,2,100\nS2,S2,,,T1,T3,2,200\n", {("T1", "T3"): (2, 100)}),
    ],
)
def test_most_specific_rule_applies(
    make_feed: Callable[..., Path], rows: str, expect: dict[tuple[str, str], tuple[int, int]]
) -> None:
    tt = compile_timetable(read_feed(_feed(make_feed, rows)))
    rules = TransferRules(tt)
    s2 = _idx(tt, tt.stop_ids, "S2")
    for (a, b), want in expect.items():
        got = rules.rule_for(_idx(tt, tt.trip_ids, a), s2, _idx(tt, tt.trip_ids, b), s2)
        assert got == want, (a, b)


def test_rules_hold_only_at_their_stops(make_feed: Callable[..., Path]) -> None:
    rows = "ST,S2,,,T1,T3,3,\nS1,S2,,,T1,T3,2,90\nS3,S3,R1,R2,,,2,500\n"
    tt = compile_timetable(read_feed(_feed(make_feed, rows)))
    rules = TransferRules(tt)
    assert len(rules) == 3
    t1, t3 = _idx(tt, tt.trip_ids, "T1"), _idx(tt, tt.trip_ids, "T3")
    s1, s2, s3 = (_idx(tt, tt.stop_ids, s) for s in ("S1", "S2", "S3"))
    st = _idx(tt, tt.stop_ids, "ST")
    # S1 is a platform of ST: the exact-stop row beats the station row of the same rank
    assert rules.rule_for(t1, s1, t3, s2) == (2, 90)
    assert rules.rule_for(t1, st, t3, s2) == (NOT_POSSIBLE, 0)
    assert rules.rule_for(t1, s2, t3, s2) is None  # no row for S2 -> S2
    assert rules.rule_for(t1, s3, t3, s3) == (2, 500)
    assert rules.rule_for(t1, s1, t3, s3) is None
