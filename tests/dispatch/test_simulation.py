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
