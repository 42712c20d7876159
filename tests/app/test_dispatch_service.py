"""The dispatcher's events reach the app's event bus, from request threads and the loop alike."""

from __future__ import annotations

import asyncio

from app.dispatch.service import BusEventSink
from app.events import InProcessEventBus
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.rides import Ride
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle
from dispatch.zone import ServiceZone

NOW = 9 * 3600.0
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[140.93, 42.29], [141.02, 42.29], [141.02, 42.35], [140.93, 42.35], [140.93, 42.29]]
    ],
}


async def test_booking_in_a_worker_thread_publishes_on_the_bus() -> None:
    bus = InProcessEventBus()
    await bus.start()
    try:
        sink = BusEventSink(bus, asyncio.get_running_loop())
        d = Dispatcher(StraightLineTravelTimes(), events=sink, clock=lambda: NOW)
        d.add_zone(ServiceZone.from_geojson("z", SQUARE))
        d.add_vehicle(
            Vehicle(
                "van", VAN, (42.31, 140.96), 0, NOW + 3600 * 8, (42.31, 140.96), NOW, zone_id="z"
            )
        )
        async with bus.subscribe(["user.alice.*", "fleet.vehicle.*"]) as sub:
            req = RideRequest((42.31, 140.96), (42.33, 140.99), NOW, user_id="alice")
            ride = await asyncio.to_thread(d.request_ride, req, "alice")
            assert isinstance(ride, Ride)
            topics = set()
            for _ in range(2):
                ev = await sub.get(timeout=30)  # liveness bound: delivery is asynchronous
                assert ev is not None
                topics.add(ev.topic)
                if ev.topic == "user.alice.ride":
                    assert ev.data["ride_id"] == ride.ride_id and ev.data["status"] == "assigned"
            assert topics == {"user.alice.ride", "fleet.vehicle.van"}
            # From the loop's own thread too (e.g. a cancel handled inline).
            d.cancel(ride.ride_id)
            statuses = []
            for _ in range(2):
                ev = await sub.get(timeout=30)  # liveness bound: delivery is asynchronous
                assert ev is not None
                if ev.topic == "user.alice.ride":
                    statuses.append(ev.data["status"])
            assert statuses == ["cancelled"]
    finally:
        await bus.close()


async def test_demo_setting_adds_no_zone_of_its_own() -> None:
    """One mechanism for the demo zone: ``app.dispatch.demo_fleet`` derives it from the network; the
    dispatcher itself starts empty even with ``demo`` on (no hand-drawn stand-in to fight)."""
    from types import SimpleNamespace

    from app.dispatch.service import build_dispatcher
    from app.settings import Settings

    settings = Settings(_env_file=None, demo=True)  # type: ignore[call-arg]
    services = SimpleNamespace(settings=settings, bus=None)
    d = build_dispatcher(services, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert d.zones() == [] and d.vehicles() == []
    q = d.quote(RideRequest((42.3175, 140.9880), (42.3150, 140.9750), d.clock(), user_id="r"))
    assert q.__class__.__name__ == "Rejection", q
