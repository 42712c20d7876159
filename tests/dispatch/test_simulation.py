"""Simulator: invariants at every step on a short seeded run; same seed, same KPIs; CSV demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.simulation.demand import (
    DemandModel,
    generate_requests,
    read_requests_csv,
    write_requests_csv,
)
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.simulation.simulator import Simulator, lost_or_duplicated
from dispatch.time_dependent import parse_speed_windows
from dispatch.zone import ServiceZone

START = 8 * 3600.0
END = 9 * 3600.0
#: Peaks the simulated hour keeps driving into and out of (rides booked off-peak cross them).
PEAKS = parse_speed_windows("08:15-08:40=0.5,08:55-09:30=0.7")


def _run(seed: int, rate: float = 90.0) -> tuple[Simulator, object]:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    reqs = generate_requests(zone, DemandModel(rate_per_hour=rate), START, END, seed)
    d = build_dispatcher([zone], 4, (START - 600, END + 3 * 3600), seed)
    sim = Simulator(d, reqs, step_s=30.0, check_invariants=True)
    return sim, sim.run(START - 600, END)


def test_invariants_hold_at_every_step() -> None:
    sim, res = _run(7)
    assert res.violations == []  # type: ignore[attr-defined]
    k = res.kpis  # type: ignore[attr-defined]
    assert k.requests >= 60 and k.served > 0.3 * k.requests
    assert lost_or_duplicated(sim.d, sim.requests, len(sim.rejections)) == []
    assert 0 < k.empty_km_share < 1 and k.vehicle_km > 0
    assert k.mean_detour >= 0.9
    assert k.served + sum(k.rejected.values()) == k.requests


def test_same_seed_same_kpis() -> None:
    _, a = _run(11, rate=40)
    _, b = _run(11, rate=40)
    assert a.kpis.to_dict() == b.kpis.to_dict()  # type: ignore[attr-defined]


def test_csv_round_trip_and_errors(tmp_path: Path) -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    reqs = generate_requests(zone, DemandModel(rate_per_hour=20), START, END, 3)
    p = tmp_path / "demand.csv"
    write_requests_csv(reqs, p)
    assert read_requests_csv(p) == sorted(
        [
            type(r)(
                **{
                    **{f: getattr(r, f) for f in r.__dataclass_fields__},
                    "user_id": f"csv-{r.request_id}",
                }
            )
            for r in reqs
        ],
        key=lambda r: (r.requested_at, r.request_id),
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("request_id,requested_at\nx,1\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_requests_csv(bad)
    text = p.read_text().splitlines()
    text[1] = text[1].replace(text[1].split(",")[3], "north", 1)
    bad.write_text("\n".join(text))
    with pytest.raises(ValueError, match=":2:"):
        read_requests_csv(bad)


def test_commit_mode_keeps_invariants_too() -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    reqs = generate_requests(zone, DemandModel(rate_per_hour=60), START, END, 4)
    d = build_dispatcher([zone], 3, (START - 600, END + 3 * 3600), 4)
    res = Simulator(d, reqs, position_mode="commit").run(START - 600, END)
    assert res.violations == []
    assert res.kpis.served > 0
    with pytest.raises(ValueError):
        Simulator(d, reqs, position_mode="teleport")


@pytest.mark.parametrize("peaks", [False, True])
def test_invariants_hold_with_reoptimisation_every_few_minutes(peaks: bool) -> None:
    # With peaks the re-optimiser's plans must also hold through them (the dispatcher refuses
    # those that would not).
    from dispatch.reoptimize import reoptimise_zone

    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    reqs = generate_requests(
        zone, DemandModel(rate_per_hour=80, notice_s=(600, 2400)), START, END, 21
    )
    d = build_dispatcher(
        [zone], 3, (START - 600, END + 3 * 3600), 21, speeds=PEAKS if peaks else None
    )
    sim = Simulator(
        d, reqs, reoptimise=lambda now: reoptimise_zone(d, "muroran", now, 0.3), reopt_every_s=300
    )
    res = sim.run(START - 600, END)
    assert res.violations == []
    assert lost_or_duplicated(d, reqs, len(sim.rejections)) == []
    assert res.kpis.served > 0


@pytest.mark.parametrize("mode", ["interpolate", "commit"])
def test_promises_hold_when_vehicles_drive_through_peaks(mode: str) -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    reqs = generate_requests(zone, DemandModel(rate_per_hour=90), START, END, 7)
    d = build_dispatcher([zone], 4, (START - 600, END + 3 * 3600), 7, speeds=PEAKS)
    sim = Simulator(d, reqs, step_s=30.0, check_invariants=True, position_mode=mode)
    res = sim.run(START - 600, END)
    assert res.violations == []
    assert lost_or_duplicated(d, reqs, len(sim.rejections)) == []
    assert res.kpis.served > 0.3 * res.kpis.requests
    # The peaks did shape the promises: rides asked for in a peak got a longer direct time.
    speed = d.vehicles()[0].vtype.speed_kmh
    slowed = [
        r
        for r in d.rides()
        if r.direct_s
        > 1.2 * float(d.travel.matrix([r.request.origin], [r.request.destination], speed)[0, 0])
    ]
    assert len(slowed) >= 5
    # ... and the vehicles drove slower: the riders served in both runs ride longer in all than
    # in free flow.
    free = build_dispatcher([zone], 4, (START - 600, END + 3 * 3600), 7)
    free_res = Simulator(free, reqs, step_s=30.0, position_mode=mode).run(START - 600, END)
    assert free_res.violations == []

    def rides_s(dd: Dispatcher) -> dict[str, float]:
        return {
            r.ride_id: r.dropped_off_at - r.picked_up_at
            for r in dd.rides()
            if r.dropped_off_at is not None and r.picked_up_at is not None
        }

    slow_s, free_s = rides_s(d), rides_s(free)
    both = slow_s.keys() & free_s.keys()
    assert len(both) >= 10
    assert sum(slow_s[k] for k in both) > 1.05 * sum(free_s[k] for k in both)


_HEADER = (
    "request_id,requested_at,earliest_pickup,origin_lat,origin_lon,"
    "destination_lat,destination_lon,seats,wheelchairs"
)
_GOOD = "a,28000,29000,42.31,140.96,42.33,140.99,1,0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty file"),
        (f"{_HEADER}\n{_GOOD},extra\n", r"demand.csv:2: more values than the header"),
        (f"{_HEADER}\n{_GOOD}\n,1,2,42.31,140.96,42.33,140.99,1,0\n", r":3: column 'request_id'"),
        (f"{_HEADER}\na,nan,29000,42.31,140.96,42.33,140.99,1,0\n", r":2: column 'requested_at'"),
        (f"{_HEADER}\na,28000,27000,42.31,140.96,42.33,140.99,1,0\n", "before requested_at"),
        (f"{_HEADER}\na,28000,29000,142.31,140.96,42.33,140.99,1,0\n", "not a latitude"),
        (f"{_HEADER}\na,28000,29000,42.31,140.96,42.33,240.99,1,0\n", "not a longitude"),
        (f"{_HEADER}\na,28000,29000,42.31,140.96,42.33,140.99,1.5,0\n", r"column 'seats'"),
        (f"{_HEADER}\na,28000,29000,42.31,140.96,42.33,140.99\n", r"column 'seats': an empty"),
        (f"{_HEADER}\na,28000,29000,42.31,140.96,42.33,140.99,0,0\n", "the party has no one"),
        (f"{_HEADER}\n{_GOOD}\n{_GOOD}\n", r":3: column 'request_id': 'a' repeats line 2"),
        # A field past the csv module's size limit (a binary or broken file) is a csv.Error.
        (f"{_HEADER}\n{'x' * 200_000},1\n", "cannot read the requests file"),
    ],
)
def test_csv_errors_name_the_line_and_column(tmp_path: Path, body: str, message: str) -> None:
    p = tmp_path / "demand.csv"
    p.write_text(body)
    with pytest.raises(ValueError, match=message):
        read_requests_csv(p)


def test_csv_unreadable_files_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such requests file"):
        read_requests_csv(tmp_path / "none.csv")
    with pytest.raises(ValueError, match="cannot read the requests file"):
        read_requests_csv(tmp_path)  # a folder
    binary = tmp_path / "demand.csv"
    binary.write_bytes(b"\xff\xfe\x00request_id")
    with pytest.raises(ValueError, match="cannot read the requests file"):
        read_requests_csv(binary)


def test_csv_empty_earliest_pickup_means_as_soon_as_booked(tmp_path: Path) -> None:
    p = tmp_path / "demand.csv"
    # Columns in another order, spaces around the names, an extra column: all accepted.
    p.write_text(
        "seats, wheelchairs,request_id,requested_at,earliest_pickup,origin_lat,origin_lon,"
        "destination_lat,destination_lon,note\n0,1,w,28000,,42.31,140.96,42.33,140.99,hi\n"
    )
    (r,) = read_requests_csv(p)
    assert r.earliest_pickup is None and r.departure == 28000.0
    assert (r.seats, r.wheelchairs, r.request_id) == (0, 1, "w")


def test_fixed_alns_iterations_raise_the_reopt_time_limit() -> None:
    from dispatch.simulation.scenario import ITERATIONS_CAP_S, reopt_time_limit

    assert reopt_time_limit(0.5, None) == 0.5  # OR-Tools / time-bound ALNS: as asked
    assert reopt_time_limit(0.5, 100) == ITERATIONS_CAP_S  # the iterations end the pass
    assert reopt_time_limit(2 * ITERATIONS_CAP_S, 100) == 2 * ITERATIONS_CAP_S
