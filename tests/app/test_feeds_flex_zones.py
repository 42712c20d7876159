"""A published GTFS-Flex feed becomes the dispatcher's zones, with the feed's hours and notice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from dispatch.request import RideRequest
from dispatch.rides import Quote, Rejection, RejectReason
from dispatch.vehicle import VAN, Vehicle
from tests.app.conftest import services_of


def _upload(c: TestClient, h: dict[str, str], feed_id: str, path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        r = c.post(
            f"/api/v1/feeds/{feed_id}/versions",
            files={"file": (path.name, f, "application/zip")},
            headers=h,
        )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_published_flex_feed_defines_dispatch_zones(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    gtfs_dir: Path,
) -> None:
    c = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    boss = auth(make_user(roles=("dispatcher",), client=c), client=c)
    d = services_of(c).dispatcher
    assert d.zones() == []

    flex = _upload(c, op, "cobb", gtfs_dir / "us_cobblinc_flex.zip")
    assert flex["status"] == "valid", flex
    assert d.zones() == []  # uploaded, not yet published: nothing served
    r = c.post(f"/api/v1/feeds/cobb/versions/{flex['id']}/publish", headers=op)
    assert r.status_code == 200, r.text
    ids = sorted(z.zone_id for z in d.zones())
    assert ids == ["cobb:zone_1", "cobb:zone_2", "cobb:zone_3"]
    listed = c.get("/api/v1/fleet/zones", headers=boss).json()["zones"]
    assert sorted(z["zone_id"] for z in listed) == ids

    # The feed's rules (stop_times windows 07:00-19:00, booking_rules notice 2 h .. 1 day, in
    # the agency's time zone, America/New_York) hold for quotes.
    zone = d.zone_state("cobb:zone_1").zone
    assert zone.service_hours == [(7 * 3600.0, 19 * 3600.0)]
    assert (zone.min_notice_s, zone.max_notice_s) == (7200.0, 86400.0)
    ny = dt.datetime.now(ZoneInfo("America/New_York")).utcoffset()
    assert ny is not None and zone.utc_offset_s == ny.total_seconds()
    # Dispatcher times whose local time of day (clock + the zone's offset) is h o'clock.
    base = dt.datetime(2030, 1, 8, tzinfo=dt.UTC).timestamp()
    at = {h: base + h * 3600 - zone.utc_offset_s for h in (6, 8, 8.5, 10.5, 19.5, 21)}
    c0 = zone.centroid()
    d.add_vehicle(Vehicle("cobb-van", VAN, c0, at[6], at[21], c0, at[6], zone_id=zone.zone_id))
    lat, lon = c0

    def ask(now: float, pickup: float) -> Quote | Rejection:
        req = RideRequest((lat, lon), (lat + 0.002, lon + 0.002), now, earliest_pickup=pickup)
        return d.quote(req, now)

    short = ask(at[8], at[8.5])
    assert isinstance(short, Rejection) and short.reason is RejectReason.INSUFFICIENT_NOTICE
    late = ask(at[8], at[19.5])
    assert isinstance(late, Rejection) and late.reason is RejectReason.OUTSIDE_SERVICE_HOURS
    assert isinstance(ask(at[8], at[10.5]), Quote)

    # A fixed-route version of the same feed id replaces it: empty flex zones go, the one
    # with a vehicle stays; rolling back brings them all back.
    bus = _upload(c, op, "cobb", gtfs_dir / "us_cobblinc_bus30.zip")
    assert c.post(f"/api/v1/feeds/cobb/versions/{bus['id']}/publish", headers=op).is_success
    assert sorted(z.zone_id for z in d.zones()) == ["cobb:zone_1"]
    r = c.post("/api/v1/feeds/cobb/rollback", headers=op)
    assert r.status_code == 200, r.text
    assert sorted(z.zone_id for z in d.zones()) == ids
    # A server starting on the same database serves the published zones from the start.
    c2 = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    assert sorted(z.zone_id for z in services_of(c2).dispatcher.zones()) == ids


def test_fixed_route_feeds_add_no_zone(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    gtfs_dir: Path,
) -> None:
    c = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    v = _upload(c, op, "sample", gtfs_dir / "google_sample.zip")
    assert c.post(f"/api/v1/feeds/sample/versions/{v['id']}/publish", headers=op).is_success
    assert services_of(c).dispatcher.zones() == []


def test_flex_zones_of_a_city_that_is_not_the_default_stay_served(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    gtfs_dir: Path,
) -> None:
    """Cobb County's flex zones stay served once a larger city (Kumagaya, the default network
    then) is published beside it, and each zone is listed in the city it lies in (#13)."""
    c = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    flex = _upload(c, op, "cobb", gtfs_dir / "us_cobblinc_flex.zip")
    assert c.post(f"/api/v1/feeds/cobb/versions/{flex['id']}/publish", headers=op).is_success
    kuma = _upload(c, op, "kumagaya", gtfs_dir / "jp_kumagaya_yuyubus.zip")
    assert c.post(f"/api/v1/feeds/kumagaya/versions/{kuma['id']}/publish", headers=op).is_success
    reg = services_of(c).feeds
    assert reg.network.name == "kumagaya" and sorted(reg.networks) == ["cobb", "kumagaya"]
    ids = ["cobb:zone_1", "cobb:zone_2", "cobb:zone_3"]
    assert sorted(z.zone_id for z in services_of(c).dispatcher.zones()) == ids
    zones = c.get("/api/v1/network/zones", params={"network": "cobb"}).json()["features"]
    assert sorted(f["id"] for f in zones) == ids
    assert {f["properties"]["network"] for f in zones} == {"cobb"}
    assert c.get("/api/v1/network/zones", params={"network": "kumagaya"}).json()["features"] == []
    # A restart serves them from the start too.
    c2 = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    assert sorted(z.zone_id for z in services_of(c2).dispatcher.zones()) == ids
