"""Position reports (#16): a report that leaves the plan alone redrives only the vehicle's first
leg and way home, in its slot, and every answer stays that of a fresh rebuild."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from dispatch import plan_arrays
from dispatch.dispatcher import Dispatcher, distance_to_bbox_m
from dispatch.plan_arrays import FleetArrays, VehicleArrays
from dispatch.rides import Quote, Rejection
from dispatch.vehicle import Vehicle
from tests.dispatch.test_dispatcher import NOW, make, req

ZONE = "muroran"


def _point(rng: random.Random) -> tuple[float, float]:
    return (42.295 + rng.random() * 0.05, 140.935 + rng.random() * 0.08)


def _busy(vehicles: int = 6, rides: int = 18) -> Dispatcher:
    """A dispatcher whose vans have several stops planned each."""
    d, _, _ = make(vehicles=vehicles)
    rng = random.Random(7)
    for _ in range(rides):
        q = d.quote(req(_point(rng), _point(rng)), NOW)
        if isinstance(q, Quote):
            d.book(q.quote_id, "u", NOW)
    assert sum(len(v.plan) for v in d.vehicles()) >= 2 * vehicles
    return d


def _report_positions(d: Dispatcher, rng: random.Random, t: float) -> None:
    for v in d.vehicles():
        lat, lon = v.position
        d.update_position(v.vehicle_id, lat + rng.uniform(-2e-3, 2e-3), lon + 2e-3, t)


def _answer(q: Quote | Rejection) -> object:
    """A quote without its id and expiry (fresh per call)."""
    if isinstance(q, Rejection):
        return q.reason
    return (dataclasses.replace(q, quote_id="", expires_at=0.0), q.request.request_id)


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"build": 0, "signature": 0}
    build, signature = VehicleArrays.build.__func__, plan_arrays.plan_signature  # type: ignore[attr-defined]

    def counted_build(cls: type[VehicleArrays], *a: object) -> VehicleArrays:
        calls["build"] += 1
        return build(cls, *a)  # type: ignore[no-any-return]

    def counted_signature(v: Vehicle) -> tuple[object, ...]:
        calls["signature"] += 1
        return signature(v)

    monkeypatch.setattr(VehicleArrays, "build", classmethod(counted_build))
    monkeypatch.setattr(plan_arrays, "plan_signature", counted_signature)
    return calls


def test_a_position_report_does_not_rebuild_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _busy()
    zs = d.zone_state(ZONE)
    d.quote(req(), NOW)  # every slot written
    slots = zs.arrays._slots
    before = {v.vehicle_id: zs.arrays.arrays(v) for v in d.vehicles()}
    calls = _counting(monkeypatch)
    _report_positions(d, random.Random(1), NOW + 30)
    assert calls == {"build": 0, "signature": 0}
    for v in d.vehicles():
        after = zs.arrays.arrays(v)
        # The plan's own arrays are the very same objects; only the first leg is new.
        for f in ("points", "early", "late", "serv", "ds", "dw", "pair", "maxride", "depot"):
            assert getattr(after, f) is getattr(before[v.vehicle_id], f)
        assert after.leg is not before[v.vehicle_id].leg
    d.quote(req(), NOW + 30)
    assert zs.arrays._slots is slots  # no slot rebuilt: the positions were written in place
    assert calls["build"] == 0


def test_a_plan_change_still_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _busy()
    d.quote(req(), NOW)
    calls = _counting(monkeypatch)
    q = d.quote(req((42.32, 140.95), (42.30, 140.99)), NOW)
    assert isinstance(q, Quote)
    d.book(q.quote_id, "u", NOW)
    assert calls["build"] == 1
    v = d.vehicle(q.vehicle_id)
    d.update_position(v.vehicle_id, v.position[0] + 1e-3, v.position[1], NOW + 5)
    assert calls["build"] == 1  # the new plan's arrays moved, not built again


@pytest.mark.parametrize("quote_between", [False, True])
def test_answers_after_position_reports_equal_a_fresh_rebuild(quote_between: bool) -> None:
    d = _busy()
    zs = d.zone_state(ZONE)
    rng = random.Random(4)
    for step in range(4):
        t = NOW + 20.0 * (step + 1)
        _report_positions(d, rng, t)
        if quote_between:
            d.quote(req(_point(rng), _point(rng), requested_at=t), t)
    t = NOW + 100.0
    probes = [req(_point(rng), _point(rng), requested_at=t) for _ in range(12)]
    kept = zs.arrays
    schedules = [d.schedule(v, t) for v in d.vehicles()]
    answers = [_answer(d.quote(r, t)) for r in probes]
    kept_slots = zs.arrays._slots
    assert kept_slots is not None
    zs.arrays = FleetArrays(kept.travel, kept.profile)
    fresh_answers = [_answer(d.quote(r, t)) for r in probes]
    assert answers == fresh_answers
    assert any(isinstance(a, tuple) for a in answers)  # some probes quoted
    for v, s in zip(d.vehicles(), schedules, strict=True):
        np.testing.assert_array_equal(d.schedule(v, t), s)
    fresh = zs.arrays._slots
    assert fresh is not None
    for f in ("pos", "pos_depot", "ready", "count", "seats0"):
        np.testing.assert_array_equal(getattr(kept_slots, f), getattr(fresh, f))
    for k in range(len(fresh.ids)):
        n = int(fresh.count[k])
        a, b = kept_slots.cap * k, fresh.cap * k
        for f, arr in fresh.stops.items():
            np.testing.assert_array_equal(kept_slots.stops[f][a : a + n], arr[b : b + n])


def test_a_position_report_still_bumps_the_version_and_publishes_etas() -> None:
    d, sink, _ = make(vehicles=1)
    q = d.quote(req(), NOW)
    assert isinstance(q, Quote)
    d.book(q.quote_id, "u", NOW)
    zs = d.zone_state(ZONE)
    version = zs.versions["v0"]
    n = len(sink.events)
    d.update_position("v0", 42.30, 140.95, NOW + 60)  # farther from the pick-up
    assert zs.versions["v0"] == version + 1
    plans = [e for _, e in sink.events[n:] if e.get("type") == "plan"]
    assert len(plans) == 1 and plans[0]["position"] == [42.30, 140.95]
    assert plans[0]["stops"][0]["eta"] == pytest.approx(
        float(d.schedule(d.vehicle("v0"), NOW + 60)[0])
    )


def test_distance_to_bbox_inside_and_outside() -> None:
    bbox = (42.29, 140.93, 42.35, 141.02)
    assert distance_to_bbox_m(42.30, 140.95, bbox) == 0.0
    assert distance_to_bbox_m(42.29, 141.02, bbox) == 0.0  # on the edge
    # 0.01 degree of latitude north of the box: about 1.11 km.
    assert distance_to_bbox_m(42.36, 140.95, bbox) == pytest.approx(1112, rel=1e-3)
