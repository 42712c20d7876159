"""The demo fleet with several cities published (#13): the default network is the largest
city, which need not be the demo city; the demo zone, its depots and the simulated riders'
stops come from the network the district (東室蘭駅…) lies in, and ``GET /api/v1/demo``
tells that city's service date and time zone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.dispatch.demo_fleet import DEFAULT_SPEC, demo_network, zone_city
from app.feeds.dispatch_zones import zone_network
from app.feeds.network import Network
from gtfs import compile_timetable, read_feed
from tests.app.conftest import services_of


def test_the_demo_zone_lies_in_the_demo_city_not_in_the_default_network(
    make_app_client: Callable[..., TestClient], gtfs_dir: Path
) -> None:
    c = make_app_client(demo=False)
    reg = services_of(c).feeds
    # Cairns and Kumagaya as one region: more stops than Muroran, so the default network.
    for feed, name, region in (
        ("muroran", "jp_donan_bus_muroran.zip", None),
        ("cairns", "au_cairns.zip", "far"),
        ("kumagaya", "jp_kumagaya_yuyubus.zip", "far"),
    ):
        v = reg.upload_file(feed, gtfs_dir / name, network=region)
        assert v.id is not None and v.status == "valid", v.summary
        reg.publish(feed, v.id)
    assert sorted(reg.networks) == ["far", "muroran"] and reg.network.name == "far"

    demo = make_app_client(demo=True, demo_riders_per_hour=0.0, dispatch_reopt_interval_s=0.0)
    services = services_of(demo)
    muroran: Network = services.feeds.networks["muroran"]
    assert muroran.timetable is not None and muroran.service_date is not None
    city = services.demo_city
    # On the default network ("far") no stop is named 東室蘭駅…: the demo used to be skipped.
    assert city is not None and city.zone.zone_id == DEFAULT_SPEC.zone_id
    assert zone_network(services.feeds, city.zone) == "muroran"
    assert zone_city(services.feeds, city.zone) is muroran
    tt = muroran.timetable
    stops = {tuple(p) for p in np.round(np.column_stack([tt.stop_lat, tt.stop_lon]), 6)}
    assert len(city.stops) > 50 and {tuple(p) for p in city.stops} <= stops
    vans = services.dispatcher.vehicles(city.zone.zone_id)
    assert len(vans) == len(city.vehicle_ids) > 0
    assert all(city.zone.contains(*v.depot) for v in vans)
    assert city.zone.utc_offset_s == 9 * 3600  # Muroran's clock, not Cairns' (UTC+10)

    info = demo.get("/api/v1/demo").json()
    assert info["on_demand"]["zone_id"] == DEFAULT_SPEC.zone_id
    transit = info["transit"]
    assert transit["network"] == "muroran" and transit["timezone"] == "Asia/Tokyo"
    assert transit["service_date"] == muroran.service_date.isoformat()


@pytest.fixture(scope="module")
def kawasaki(gtfs_dir: Path) -> Network:
    tt = compile_timetable(read_feed(gtfs_dir / "jp_mlit_sample_kawasaki.zip"))
    return Network(timetable=tt, name="kawasaki")


def test_without_a_district_the_default_network_says_why(kawasaki: Network) -> None:
    """No city has a stop named like the anchor: the default network is answered (building
    the zone there fails with the reason, and the demo fleet is skipped), None without a
    registry; a zone lying in no city has no network."""
    empty = Network(timetable=None, name="empty")
    feeds = SimpleNamespace(
        network=kawasaki,
        networks={"empty": empty, "kawasaki": kawasaki},
        network_at=lambda lat, lon: None,
    )
    assert demo_network(feeds) is kawasaki
    assert demo_network(None) is None
    assert zone_city(None, object()) is None  # type: ignore[arg-type]
    from app.dispatch.demo_fleet import DemoSetupError, build_demo_zone

    with pytest.raises(DemoSetupError, match="no stop named"):
        build_demo_zone(kawasaki.timetable)  # type: ignore[arg-type]
    named = demo_network(feeds, DEFAULT_SPEC.__class__(anchor="川崎駅"))
    assert named is kawasaki
