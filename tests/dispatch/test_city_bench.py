"""``python -m bench.city``: a city's day over zone-owner processes, and its demand generator."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench import city
from dispatch.simulation.city import CityLayout, assign_zones, share_out
from dispatch.simulation.demand import (
    DAILY_PROFILE,
    CityDemand,
    generate_city_requests,
    hourly_rates,
)


def test_city_requests_follow_the_daily_profile_and_stay_in_one_zone() -> None:
    layout = CityLayout(rows=2, cols=2, side_km=3.0)
    zones = layout.zones()
    demand = CityDemand(total=4000)
    day = generate_city_requests(zones, layout.weights(), demand, seed=5)
    assert abs(len(day) - 4000) < 300  # Poisson counts around the total
    assert len({r.request_id for r in day}) == len(day)
    assert all(
        any(z.contains(*r.origin) and z.contains(*r.destination) for z in zones) for r in day
    )
    hours = Counter(int(r.departure // 3600) for r in day)
    # The morning and evening peaks hold more than the quiet late evening and early morning.
    assert hours[8] > 2 * hours[6] and hours[18] > 2 * hours[23]
    assert all(6 * 3600 <= r.departure < 23.5 * 3600 for r in day)
    assert [r.requested_at for r in day] == sorted(r.requested_at for r in day)
    again = generate_city_requests(zones, layout.weights(), demand, seed=5)
    assert [(r.request_id, r.origin) for r in again] == [(r.request_id, r.origin) for r in day]
    # Central zones are busier; with a 2x2 grid all four are equally central.
    by_zone = Counter(r.request_id.split("-")[1] for r in day)
    assert min(by_zone.values()) > 0.2 * len(day)


def test_hourly_rates_sum_to_the_total_within_the_service_span() -> None:
    rates = hourly_rates(CityDemand(total=1000, start_s=6 * 3600.0, end_s=23.5 * 3600.0))
    assert rates.sum() == pytest.approx(1000)
    assert rates[:6].sum() == 0 and rates[23] == pytest.approx(
        1000
        * 0.5
        * DAILY_PROFILE[23]
        / (np.dot(DAILY_PROFILE[6:23], np.ones(17)) + 0.5 * DAILY_PROFILE[23])
    )
    with pytest.raises(ValueError, match="24"):
        hourly_rates(CityDemand(profile=(1.0,) * 23))


def test_fleet_shared_out_and_zones_balanced_over_workers() -> None:
    n = share_out(2000, CityLayout().weights())
    assert sum(n) == 2000 and min(n) >= 1 and max(n) > min(n)  # centre zones get more
    owners = assign_zones(n, 2)
    assert sorted(k for o in owners for k in o) == list(range(len(n)))
    loads = [sum(n[k] for k in o) for o in owners]
    assert abs(loads[0] - loads[1]) <= max(n)


def test_quick_city_day_has_no_violation(tmp_path: Path) -> None:
    out = tmp_path / "city.json"
    # The --quick city with one latency size, so the test stays well under a minute.
    city.main(["--quick", "--latency-sizes", "50", "--json", str(out)])
    r = json.loads(out.read_text())
    assert r["zones"] == 4 and r["workers"] == 2 and r["vehicles"] == 40
    assert r["violations"] == 0, r["violation_examples"]
    # Every plan in force was checked at every step of each worker's day (and once more at
    # its end), not every few simulated minutes.
    assert r["run"]["check_every_s"] == 60.0
    assert r["worker_plan_checks"] == [n + 1 for n in r["worker_steps"]]
    assert r["requests"] > 900 and r["served_share"] > 0.8
    assert r["quotes"] == r["requests"]
    assert 0 < r["mean_wait_min"] <= 20.0 and r["p95_detour"] >= r["mean_detour"] >= 1.0
    assert r["reopt_passes"] > 0 and r["reopt_saved_km"] >= 0.0
    # Kernels are loaded before the day (parent and each worker), not on its first pass.
    assert r["warmup_s"] >= 0.0 and len(r["worker_warmup_s"]) == 2
    assert r["reopt_wall_per_pass_s"] == pytest.approx(r["reopt_wall_s"] / r["reopt_passes"])
    assert r["speedup_vs_real_time"] > 1.0 and r["peak_rss_mb_max_worker"] > 0
    z = r["zone_latency"]["50_vehicles"]
    # About 100 quotes each (min_quotes of --quick; Poisson arrivals).
    assert z["pruned"]["quotes_timed"] >= 70 and z["unpruned"]["quotes_timed"] >= 70
    assert z["pruned"]["quote_p95_ms"] > 0
    # What the pruning left of the fleet: every vehicle without it, no more than all with it.
    assert z["unpruned"]["candidates_mean"] == pytest.approx(50.0, abs=1.0)
    assert 0 < z["pruned"]["candidates_share"] <= 1.0
