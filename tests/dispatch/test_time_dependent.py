"""FIFO time-dependent travel (Ichoua–Gendreau–Potvin periods) and the speed-window parser."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.time_dependent import (
    DAY_S,
    FREE_FLOW_PROFILE,
    SpeedProfile,
    arrive_many,
    chain_schedule,
    compile_speeds,
    parse_speed_windows,
)
from routing.street import DEFAULT_PEAKS, FREE_FLOW, TimeOfDaySpeeds

H = 3600.0
DAY0 = 20_000 * DAY_S  # an epoch-like midnight (UTC), far from 0: rounding as in production


def _profile(text: str, utc_offset_s: float = 0.0) -> SpeedProfile:
    return compile_speeds(parse_speed_windows(text), utc_offset_s)


def _random_profile(rng: np.random.Generator) -> SpeedProfile:
    cuts = np.sort(rng.choice(np.arange(1, 24 * 60), size=2 * rng.integers(1, 5), replace=False))
    windows = tuple(
        (int(a) * 60, int(b) * 60, float(rng.uniform(0.2, 1.5))) for a, b in cuts.reshape(-1, 2)
    )
    return compile_speeds(TimeOfDaySpeeds(windows), float(rng.integers(-12, 13) * 1800))


def test_no_windows_is_exactly_free_flow() -> None:
    rng = np.random.default_rng(1)
    t = DAY0 + rng.uniform(-3 * DAY_S, 3 * DAY_S, 2000)
    d = rng.uniform(0, 2 * DAY_S, 2000)
    for profile in (FREE_FLOW_PROFILE, compile_speeds(None), compile_speeds(FREE_FLOW, 9 * H)):
        assert profile.free_flow
        got = arrive_many(t, d, profile.starts, profile.factors)
        assert np.array_equal(got, t + d)  # bit for bit, legs past midnight included
        assert profile.slowest(t[0], t[0] + 5 * H) == 1.0


def test_crossing_into_a_peak() -> None:
    p = _profile("07:00-09:00=0.5")
    # 10 min at free flow to 07:00, then the remaining 10 free-flow minutes take 20.
    assert p.arrive(DAY0 + 6 * H + 50 * 60, 1200) == DAY0 + 7 * H + 20 * 60
    # Leaving the peak: 10 min at half speed cover 5, the other 15 at full speed.
    assert p.arrive(DAY0 + 8 * H + 50 * 60, 1200) == DAY0 + 9 * H + 15 * 60
    # Inside the peak: twice the free-flow time.
    assert p.arrive(DAY0 + 7 * H + 60, 600) == DAY0 + 7 * H + 60 + 1200
    # Before and after: free flow.
    assert p.arrive(DAY0 + 5 * H, 600) == DAY0 + 5 * H + 600
    assert p.arrive(DAY0 + 9 * H, 600) == DAY0 + 9 * H + 600


def test_spanning_a_whole_period() -> None:
    p = _profile("07:00-09:00=0.5")
    # 10 min before, the 2 h peak (1 h of free-flow driving), 10 min after.
    assert p.arrive(DAY0 + 6 * H + 50 * 60, 600 + 3600 + 600) == DAY0 + 9 * H + 10 * 60
    assert p.covered(DAY0 + 6 * H, DAY0 + 10 * H) == pytest.approx(3600 + 3600 + 3600)


def test_wrap_past_midnight() -> None:
    p = _profile("23:00-24:00=0.5")
    # 10 min at half speed cover 5 free-flow minutes; the other 5 after midnight.
    assert p.arrive(DAY0 + 23 * H + 50 * 60, 600) == DAY0 + DAY_S + 5 * 60
    overnight = _profile("22:00-02:00=0.5")
    assert overnight.arrive(DAY0 + 23.5 * H, 1800) == DAY0 + 24.5 * H
    assert overnight.arrive(DAY0 + 1.5 * H, 1800) == DAY0 + 2.25 * H
    # A leg of several days skips whole days: 3 days of capacity, then 10 min at full speed.
    per_day = 20 * H + 4 * H * 0.5
    assert overnight.arrive(DAY0 + 12 * H, 3 * per_day + 600) == pytest.approx(
        DAY0 + 3 * DAY_S + 12 * H + 600
    )
    assert overnight.depart_by(DAY0 + 3 * DAY_S + 12 * H + 600, 3 * per_day + 600) == (
        pytest.approx(DAY0 + 12 * H)
    )


def test_time_zone_offset() -> None:
    # Peaks are local: 07:00-09:00 in Japan (UTC+9) is 22:00-24:00 UTC.
    jst = _profile("07:00-09:00=0.5", 9 * H)
    assert jst.arrive(DAY0 + 21 * H + 50 * 60, 1200) == DAY0 + 22 * H + 20 * 60
    assert jst.arrive(DAY0 + 7 * H, 600) == DAY0 + 7 * H + 600  # 16:00 local: free flow
    # UTC-5: 07:00-09:00 local is 12:00-14:00 UTC.
    est = _profile("07:00-09:00=0.5", -5 * H)
    assert est.arrive(DAY0 + 12 * H, 600) == DAY0 + 12 * H + 1200
    # A peak straddling UTC midnight is cut at 0 and still one 2-h window.
    ist = _profile("05:00-07:00=0.5", 5.5 * H)  # 23:30-01:30 UTC
    assert ist.arrive(DAY0 + 23.5 * H, 3600) == DAY0 + DAY_S + 1.5 * H
    assert list(ist.starts) == [0.0, 1.5 * H, 23.5 * H]
    assert list(ist.factors) == [0.5, 1.0, 0.5]


def test_arrivals_are_fifo_and_compose() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        p = _random_profile(rng)
        d = float(rng.uniform(0, 4 * H))
        t = np.sort(DAY0 + rng.uniform(0, 2 * DAY_S, 3000))
        # Boundaries are where FIFO could break: depart exactly at and next to each of them.
        edges = np.concatenate([DAY0 + p.starts, DAY0 + p.starts + DAY_S])
        t = np.sort(np.concatenate([t, edges, np.nextafter(edges, -np.inf)]))
        a = arrive_many(t, np.full(len(t), d), p.starts, p.factors)
        assert np.all(np.diff(a) >= 0.0)  # t1 < t2 => arrive(t1) <= arrive(t2), bit for bit
        assert np.all(a >= t)
        k = int(rng.integers(len(t)))
        split = float(rng.uniform(0, d))
        assert p.arrive(p.arrive(t[k], split), d - split) == pytest.approx(p.arrive(t[k], d))
        assert p.covered(t[k], a[k]) == pytest.approx(d, abs=1e-6)
        assert p.depart_by(a[k], d) == pytest.approx(t[k], abs=1e-6)


def test_non_positive_leg_arrives_at_once() -> None:
    p = _profile("07:00-09:00=0.5")
    assert p.arrive(DAY0 + 8 * H, 0.0) == DAY0 + 8 * H
    assert p.arrive(DAY0 + 8 * H, -5.0) == DAY0 + 8 * H
    assert p.depart_by(DAY0 + 8 * H, 0.0) == DAY0 + 8 * H
    assert p.covered(DAY0 + 8 * H, DAY0 + 7 * H) == 0.0


def test_depart_by_at_a_boundary_uses_the_period_before() -> None:
    p = _profile("07:00-09:00=0.5")
    # Arrive by 09:00: the last 10 free-flow minutes were driven at half speed.
    assert p.depart_by(DAY0 + 9 * H, 600) == DAY0 + 9 * H - 1200
    # Arrive by midnight with no window before it: free flow.
    assert p.depart_by(DAY0 + DAY_S, 600) == DAY0 + DAY_S - 600


def test_chain_schedule_waits_and_dwells() -> None:
    p = _profile("07:00-09:00=0.5")
    leg = np.array([600.0, 600.0])
    early = np.array([0.0, DAY0 + 8 * H])
    serv = np.array([30.0, 30.0])
    out = chain_schedule(DAY0 + 6 * H + 50 * 60, leg, early, serv, p.starts, p.factors)
    first = DAY0 + 7 * H  # 10 free-flow minutes reach 07:00 exactly
    assert out[0] == first
    assert out[1] == DAY0 + 8 * H  # 20 min at half speed from 07:00:30, then wait for 08:00


def test_slowest_speed_factor() -> None:
    p = compile_speeds(TimeOfDaySpeeds((*DEFAULT_PEAKS, (12 * 3600, 13 * 3600, 0.5))))
    assert p.slowest(DAY0 + 5 * H, DAY0 + 7 * H) == 1.0  # half-open: 07:00 not included
    assert p.slowest(DAY0 + 5 * H, DAY0 + 7 * H + 1) == 0.7
    assert p.slowest(DAY0 + 8 * H, DAY0 + 12.5 * H) == 0.5
    assert p.slowest(DAY0 + 18.5 * H, DAY0 + DAY_S + 7.5 * H) == 0.7  # across midnight
    assert p.slowest(DAY0 + 20 * H, DAY0 + DAY_S + 6 * H) == 1.0
    assert p.slowest(DAY0, DAY0 + 2 * DAY_S) == 0.5
    assert p.slowest(DAY0 + 8 * H, DAY0 + 8 * H) == 1.0  # empty interval


def test_compile_merges_periods_and_keeps_the_first_window() -> None:
    touching = _profile("07:00-08:00=0.7,08:00-09:00=0.7")
    assert list(touching.starts) == [0.0, 7 * H, 9 * H]
    # TimeOfDaySpeeds lets windows overlap and the first one wins: the compiled profile agrees.
    first_wins = compile_speeds(
        TimeOfDaySpeeds(((7 * 3600, 9 * 3600, 0.7), (8 * 3600, 10 * 3600, 0.5)))
    )
    assert list(first_wins.starts) == [0.0, 7 * H, 9 * H, 10 * H]
    assert list(first_wins.factors) == [1.0, 0.7, 0.5, 1.0]
    with pytest.raises(ValueError, match="finite"):
        compile_speeds(TimeOfDaySpeeds(DEFAULT_PEAKS), float("nan"))


def test_parse_speed_windows() -> None:
    assert parse_speed_windows("07:00-09:00=0.7, 17:00-19:00=0.7").windows == DEFAULT_PEAKS
    assert parse_speed_windows("7-9=0.7,17-19=0.7").windows == DEFAULT_PEAKS
    assert parse_speed_windows("  ") is FREE_FLOW
    assert parse_speed_windows("22:30-02:00=0.9").windows == (
        (0, 2 * 3600, 0.9),
        (22 * 3600 + 1800, 86_400, 0.9),
    )
    assert parse_speed_windows("00:00-24:00=0.8").windows == ((0, 86_400, 0.8),)
    assert parse_speed_windows("23:00-00:00=0.8").windows == ((23 * 3600, 86_400, 0.8),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("07:00-09:00=0.7,08:00-10:00=0.5", "'07:00-09:00=0.7' and '08:00-10:00=0.5' overlap"),
        ("22:00-02:00=0.9,01:00-03:00=0.9", "overlap"),
        ("07:00-09:00=0", "the factor must be a positive number"),
        ("07:00-09:00=-0.5", "the factor must be a positive number"),
        ("07:00-09:00=inf", "the factor must be a positive number"),
        ("07:00-09:00=fast", "factor 'fast' is not a number"),
        ("07:60-09:00=0.7", "'07:60' is not a time of day"),
        ("25:00-26:00=0.7", "'25:00' is not a time of day"),
        ("24:30-02:00=0.7", "'24:30' is not a time of day"),
        ("7h-9h=0.7", "'7h' is not a time"),
        ("07:00-07:00=0.7", "start and end are the same time"),
        ("07:00-09:00", "expected START-END=FACTOR"),
        ("07:00=0.7", "expected START-END=FACTOR"),
        ("07:00-09:00=0.7,", "expected START-END=FACTOR"),
    ],
)
def test_parse_speed_windows_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_speed_windows(text)
