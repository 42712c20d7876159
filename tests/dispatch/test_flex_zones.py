"""Service zones from the real CobbLinc GTFS-Flex feed, and the rules they impose on quotes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.flex_zones import load_flex_zones
from dispatch.request import RideRequest
from dispatch.rides import Quote, Rejection, RejectReason
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle


def test_cobblinc_zones_hours_and_notice(gtfs_dir: Path) -> None:
    zones = load_flex_zones(gtfs_dir / "us_cobblinc_flex.zip")
    assert [z.zone_id for z in zones] == ["zone_1", "zone_2", "zone_3"]
    for z in zones:
        assert z.service_hours == [(7 * 3600.0, 19 * 3600.0)]
        assert (z.min_notice_s, z.max_notice_s) == (7200.0, 86400.0)
        assert z.contains(*z.centroid()) and len(z.interior_cells) > 10
        assert not z.contains(33.0, -84.0)
    z = zones[0]
    d = Dispatcher(StraightLineTravelTimes())
    d.add_zone(z)
    c = z.centroid()
    d.add_vehicle(Vehicle("v", VAN, c, 6 * 3600, 20 * 3600, c, 6 * 3600, zone_id=z.zone_id))
    pts = z.random_points(np.random.default_rng(1), 2)
    o, dst = (float(pts[0, 0]), float(pts[0, 1])), (float(pts[1, 0]), float(pts[1, 1]))

    def ask(now: float, pickup: float) -> Quote | Rejection:
        return d.quote(RideRequest(o, dst, now, earliest_pickup=pickup), now)

    short = ask(8 * 3600, 8.5 * 3600)
    assert isinstance(short, Rejection) and short.reason is RejectReason.INSUFFICIENT_NOTICE
    evening = ask(8 * 3600, 19.5 * 3600)
    assert isinstance(evening, Rejection) and evening.reason is RejectReason.OUTSIDE_SERVICE_HOURS
    assert isinstance(ask(8 * 3600, 10.5 * 3600), Quote)


def test_feed_without_flex_zones_is_refused(gtfs_dir: Path) -> None:
    with pytest.raises(ValueError, match="no GTFS-Flex polygon zone"):
        load_flex_zones(gtfs_dir / "google_sample.zip")
