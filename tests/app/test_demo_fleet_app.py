"""The demo city's on-demand service in the running app: created once on start, quoted over
HTTP, riders booking and vehicles moving in accelerated time, stopped with the app, and off by
its setting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.dispatch.demo_fleet import DEMO_RIDER_EMAIL, DemoCity, ScaledClock, ensure_demo_rider
from app.main import create_app
from app.models.identity import User
from app.services import Services
from app.settings import Settings
from dispatch.rides import RideStatus
from tests.app.conftest import assert_error, both_backends, services_of, settings_for

ZONE_ID = "muroran-higashi"
STATION_WEST = {"lat": 42.349466, "lon": 141.0247499}  # 東室蘭駅西口
NAKAJIMA_1 = {"lat": 42.3538896, "lon": 141.0161829}  # 中島町1丁目
MURORAN_STATION = {"lat": 42.3177339, "lon": 140.9736236}  # 室蘭駅前, outside the zone


@pytest.fixture(scope="module")
def demo_settings(tmp_path_factory: pytest.TempPathFactory, signing_key_pem: Path) -> Settings:
    """A data dir shared by the module's apps: the feed is imported by the first start only."""
    return settings_for(
        tmp_path_factory.mktemp("demo") / "data",
        jwt_private_key_path=signing_key_pem,
        demo=True,
        demo_riders_per_hour=0.0,
        dispatch_reopt_interval_s=0.0,
    )


@pytest.fixture
def start(demo_settings: Settings) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def factory(**overrides: Any) -> TestClient:
        c = TestClient(create_app(demo_settings.model_copy(update=overrides)))
        c.__enter__()
        opened.append(c)
        return c

    yield factory
    for c in reversed(opened):
        c.__exit__(None, None, None)


def _demo_users(services: Services) -> int:
    with Session(services.engine) as db:
        return int(db.exec(select(func.count()).where(User.email == DEMO_RIDER_EMAIL)).one())


def test_zone_and_fleet_once_and_quoted_over_http(
    start: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    c = start(demo_tick_s=0.1)
    services = services_of(c)
    d = services.dispatcher
    assert [z.zone_id for z in d.zones()] == [ZONE_ID]  # the drawn stand-in zone replaced
    kinds = sorted(v.vtype.name for v in d.vehicles())
    assert kinds == ["autonomous_shuttle", "van", "van", "van", "van"]

    info = c.get("/api/v1/demo").json()
    od = info["on_demand"]
    assert info["enabled"] and od["enabled"] and od["zone_id"] == ZONE_ID
    assert od["clock"] == "wall" and od["time_scale"] == 1.0 and abs(od["now"] - time.time()) < 60
    assert len(od["vehicles"]) == 5
    assert od["riders"]["per_hour"] == 0 and od["riders"]["running"]  # driving only
    assert od["service_hours"] == [[0.0, 86400.0]] and od["utc_offset_s"] == 9 * 3600
    net = c.get("/api/v1/network").json()
    assert info["transit"]["service_date"] == net["demo_service_date"] is not None
    assert info["transit"]["timezone"] == "Asia/Tokyo"

    # A resident quotes a ride inside the zone and gets a pick-up window.
    resident = make_user(client=c)
    h = auth(resident, c)
    r = c.post(
        "/api/v1/rides/quote", json={"origin": NAKAJIMA_1, "destination": STATION_WEST}, headers=h
    )
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["zone_id"] == ZONE_ID and q["vehicle_id"] in od["vehicles"]
    lo, hi = q["pickup_window"]
    assert time.time() - 60 <= lo <= q["eta_pickup"] <= hi < time.time() + 3600
    # Booked, the simulated van sets off toward the pick-up at once.
    r = c.post("/api/v1/rides", json={"quote_id": q["quote_id"]}, headers=h)
    assert r.status_code == 201, r.text
    van = d.vehicle(q["vehicle_id"])
    deadline = time.monotonic() + 60  # generous: a slow, loaded machine
    while van.position == van.depot and time.monotonic() < deadline:
        time.sleep(0.1)
    assert van.position != van.depot
    assert c.get(f"/api/v1/rides/{r.json()['ride_id']}", headers=h).json()["status"] == "assigned"
    r = c.post(
        "/api/v1/rides/quote",
        json={"origin": STATION_WEST, "destination": MURORAN_STATION},
        headers=h,
    )
    assert_error(r, 409, "outside_zone")
    assert_error(c.post("/api/v1/rides/quote", json={"origin": STATION_WEST}, headers=h), 422)

    # A second process on the same data: the same zone and fleet, nothing doubled.
    c2 = start()
    s2 = services_of(c2)
    assert s2.feeds.compiles == 0
    assert [z.zone_id for z in s2.dispatcher.zones()] == [ZONE_ID]
    assert sorted(v.vehicle_id for v in s2.dispatcher.vehicles()) == sorted(od["vehicles"])
    assert _demo_users(s2) == 0  # no riders, no demo rider


def test_riders_book_and_vehicles_move_then_stop_with_the_app(
    start: Callable[..., TestClient],
) -> None:
    c = start(demo_riders_per_hour=240.0, demo_time_scale=120.0, demo_tick_s=0.1)
    services = services_of(c)
    city: DemoCity = services.demo_city
    assert city.loop is not None and city.loop.running and city.riders is not None
    d = services.dispatcher
    depots = {v.vehicle_id: v.position for v in d.vehicles()}
    deadline = time.monotonic() + 60  # generous: a slow, loaded machine
    moved: set[str] = set()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        moved = {v.vehicle_id for v in d.vehicles() if v.position != depots[v.vehicle_id]}
        if city.riders.stats.booked >= 2 and moved:
            break
    assert city.riders.stats.booked >= 2 and moved, city.riders.stats.to_dict()
    # The zone was restored with the module's earlier bookings (residents'): count the loop's.
    rides = [r for r in d.rides() if r.user_id == city.riders.user_id]
    user_ids = {r.user_id for r in rides}
    assert len(rides) >= 2 and len(user_ids) == 1 and _demo_users(services) == 1
    assert all(r.status in tuple(RideStatus) for r in rides)
    clock = d.clock
    assert isinstance(clock, ScaledClock) and clock.scale == 120.0
    before = time.time()
    od = c.get("/api/v1/demo").json()["on_demand"]
    assert od["clock"] == "accelerated" and od["time_scale"] == 120.0
    assert od["riders"]["running"] and od["riders"]["booked"] >= 2
    assert od["now"] >= clock.t0 + 120.0 * (before - clock.t0)  # the demo clock runs ahead
    assert c.get("/readyz").json()["checks"]["demo_fleet"]["ok"] is True

    # The consoles see the vehicles move: plan events with positions on the event bus.
    async def next_vehicle_event() -> Any:
        async with services.bus.subscribe(["fleet.vehicle.*"]) as sub:
            return await sub.get(timeout=60)

    ev = c.portal.call(next_vehicle_event)  # type: ignore[union-attr]
    assert ev is not None and ev.topic.startswith(f"fleet.vehicle.{ZONE_ID}-")
    assert ev.data["type"] == "plan" and len(ev.data["position"]) == 2

    # Another start: the same demo rider, not a second one.
    c2 = start(demo_riders_per_hour=240.0)
    assert services_of(c2).demo_city.riders.user_id == next(iter(user_ids))
    assert _demo_users(services_of(c2)) == 1

    c.__exit__(None, None, None)
    assert city.loop.task is not None and city.loop.task.done() and not city.loop.running
    steps = city.riders.stats.steps
    time.sleep(0.4)
    assert city.riders.stats.steps == steps


def test_setting_off_creates_nothing(start: Callable[..., TestClient]) -> None:
    c = start(demo_fleet=False, demo_riders_per_hour=240.0)
    services = services_of(c)
    users = _demo_users(services)
    assert services.demo_city is None
    assert ZONE_ID not in {z.zone_id for z in services.dispatcher.zones()}
    assert "demo_fleet" not in services.readiness
    info = c.get("/api/v1/demo").json()
    assert info["enabled"] and info["on_demand"] == {"enabled": False}
    assert info["transit"]["service_date"] is not None
    assert _demo_users(services) == users


def test_no_demo_no_zone(app_client: TestClient) -> None:
    services = services_of(app_client)  # demo off: the test suite's default
    assert services.demo_city is None and services.dispatcher.zones() == []
    info = app_client.get("/api/v1/demo").json()
    assert info == {
        "enabled": False,
        "city": "Muroran",
        "transit": info["transit"],
        "on_demand": {"enabled": False},
    }
    assert info["transit"]["service_date"] is None


@both_backends
def test_demo_rider_is_created_once(app_client: TestClient) -> None:
    services = services_of(app_client)
    uid = ensure_demo_rider(services.engine, services.identity.passwords)
    assert ensure_demo_rider(services.engine, services.identity.passwords) == uid
    assert _demo_users(services) == 1
    with Session(services.engine) as db:
        user = db.exec(select(User).where(User.email == DEMO_RIDER_EMAIL)).one()
        assert str(user.id) == uid and user.roles == ["resident"]


def test_van_count_comes_from_settings(start: Callable[..., TestClient], tmp_path: Path) -> None:
    # A data dir of its own: the module's database holds the demo zone the earlier tests
    # saved, and a restart serves the saved fleet (its vans may carry rides), whatever the
    # setting says; the setting sizes a new demo zone.
    d = services_of(start(dispatch_demo_vehicles=2, data_dir=tmp_path / "data")).dispatcher
    assert [z.zone_id for z in d.zones()] == [ZONE_ID]
    kinds = sorted(v.vtype.name for v in d.vehicles())
    assert kinds == ["autonomous_shuttle", "van", "van"]
