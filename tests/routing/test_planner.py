"""The planner and itineraries on Muroran (straight-line walking) and Cairns (shapes)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from routing.itinerary import (
    decode_polyline,
    encode_polyline,
    ride_geometry,
    service_day_epoch_ms,
    to_otp,
)
from routing.options import RoutingOptions
from routing.planner import (
    LOCATION_NOT_ACCESSIBLE,
    NO_TRANSIT_CONNECTION,
    OUTSIDE_SERVICE_PERIOD,
    Planner,
    PlanPlace,
    PlanRequest,
)
from routing.raptor import RideLeg
from tests.routing.conftest import FeedCase
from tests.routing.reference import check_journey

DAY = dt.date(2020, 6, 1)


@pytest.fixture(scope="module")
def planner(muroran: FeedCase) -> Planner:
    return Planner(muroran.data, readings={257: "どっくまえ"})


def _at(case: FeedCase, i: int, dlat: float = 0.0) -> PlanPlace:
    return PlanPlace(float(case.tt.stop_lat[i]) + dlat, float(case.tt.stop_lon[i]))


def test_polyline_round_trip() -> None:
    pts = [(42.3392, 140.95306), (42.31773, 140.97362), (-16.9186, 145.7781)]
    assert np.allclose(decode_polyline(encode_polyline(pts)), pts, atol=1e-5)
    # The reference example of Google's format.
    assert encode_polyline([(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)]) == (
        "_p~iF~ps|U_ulLnnqC_mqNvxq`@"
    )


def test_epoch_of_service_day() -> None:
    # GTFS time 0 is noon minus 12 h: midnight in Tokyo (no DST) = 15:00 UTC the day before.
    ms = service_day_epoch_ms(DAY, "Asia/Tokyo")
    assert dt.datetime.fromtimestamp(ms / 1000, dt.UTC) == dt.datetime(
        2020, 5, 31, 15, tzinfo=dt.UTC
    )


def test_plan_from_coordinates(planner: Planner, muroran: FeedCase) -> None:
    tt = muroran.tt
    req = PlanRequest(_at(muroran, 257, 0.001), _at(muroran, 287), DAY, 8 * 3600, locale="ja")
    plan = planner.plan(req)
    assert plan.error is None and plan.itineraries
    for it in plan.itineraries:
        assert it.start >= 8 * 3600
        assert it.legs[0].mode == "WALK" and it.legs[0].origin.stop_index == -1
        assert it.walk_time + it.transit_time + it.waiting_time == it.duration
        # Each ride is a real trip of the raw timetable.
        assert it.journey is not None
        check_journey(muroran.ref, tt.trip_ids, tt.stop_ids, it.journey, DAY)
        for leg in it.legs:
            if leg.transit:
                assert leg.agency_name and leg.trip_id
                assert leg.geometry[0] == (leg.origin.lat, leg.origin.lon)
                assert leg.geometry[-1] == (leg.destination.lat, leg.destination.lon)
                names = [p.name for p in leg.intermediate_stops]
                assert leg.origin.name not in names[:1] or len(names) > 1
    ride = next(leg for it in plan.itineraries for leg in it.legs if leg.transit)
    assert ride.origin.name == "ドック前" and ride.origin.reading == "どっくまえ"
    otp = to_otp(plan.itineraries[0], DAY, tt.timezone)
    assert otp["legs"][0]["mode"] == "WALK"
    assert (
        otp["startTime"]
        == service_day_epoch_ms(DAY, tt.timezone) + plan.itineraries[0].start * 1000
    )
    # Sorted by arrival, no two ride the same trips.
    ends = [it.end for it in plan.itineraries]
    assert ends == sorted(ends)
    keys = [it.trips_key() for it in plan.itineraries]
    assert len(set(keys)) == len(keys)


def test_plan_arrive_by(planner: Planner, muroran: FeedCase) -> None:
    req = PlanRequest(_at(muroran, 257), _at(muroran, 287), DAY, 9 * 3600, arrive_by=True)
    plan = planner.plan(req)
    assert plan.itineraries
    assert all(it.end <= 9 * 3600 for it in plan.itineraries)
    starts = [it.start for it in plan.itineraries]
    assert starts == sorted(starts, reverse=True)


def test_plan_errors(planner: Planner, muroran: FeedCase) -> None:
    o, d = _at(muroran, 257), _at(muroran, 287)
    assert planner.plan(PlanRequest(o, d, dt.date(2030, 1, 1), 8 * 3600)).error.id == (  # type: ignore[union-attr]
        OUTSIDE_SERVICE_PERIOD
    )
    far = PlanPlace(35.68, 139.76)
    assert planner.plan(PlanRequest(far, d, DAY, 8 * 3600)).error.id == LOCATION_NOT_ACCESSIBLE  # type: ignore[union-attr]
    assert planner.plan(PlanRequest(o, far, DAY, 8 * 3600)).error.id == LOCATION_NOT_ACCESSIBLE  # type: ignore[union-attr]
    none = planner.plan(
        PlanRequest(o, d, DAY, 8 * 3600, options=RoutingOptions(modes=frozenset({"RAIL"})))
    )
    assert none.error is not None and none.error.id == NO_TRANSIT_CONNECTION
    assert none.itineraries == ()


def test_short_trips_walk(planner: Planner, muroran: FeedCase) -> None:
    # Two points 100 m apart: walking is one of the answers.
    req = PlanRequest(_at(muroran, 257), _at(muroran, 257, 0.0009), DAY, 8 * 3600)
    plan = planner.plan(req)
    assert any(all(not leg.transit for leg in it.legs) for it in plan.itineraries)


def test_ride_geometry_follows_the_shape(cairns: FeedCase) -> None:
    tt = cairns.tt
    t = int(np.flatnonzero(tt.trip_shape >= 0)[0])
    n = int(tt.trip_st_ptr[t + 1] - tt.trip_st_ptr[t])
    pts = ride_geometry(tt, t, 1, n - 2)
    k = int(tt.trip_shape[t])
    assert len(pts) > n  # more points than stops: the shape, not straight lines
    shape = set(zip(tt.shape_lat[tt.shape_ptr[k] : tt.shape_ptr[k + 1]].tolist(),
                    tt.shape_lon[tt.shape_ptr[k] : tt.shape_ptr[k + 1]].tolist(), strict=True))  # fmt: skip
    assert all(p in shape for p in pts[1:-1])
    # Sliced: strictly fewer points than the whole shape.
    assert len(pts) - 2 < int(tt.shape_ptr[k + 1] - tt.shape_ptr[k])


def test_planner_uses_realtime(cairns: FeedCase) -> None:
    from gtfs.realtime import RealtimeState

    tt = cairns.tt
    planner = Planner(cairns.data)
    day = dt.date(2014, 6, 2)
    o, d = 0, 0
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    o, d = int(served[3]), int(served[40])
    req = PlanRequest(PlanPlace(0, 0, stop=o), PlanPlace(0, 0, stop=d), day, 8 * 3600)
    base = planner.plan(req)
    assert base.itineraries
    first = base.itineraries[0]
    rides = [leg for leg in first.journey.legs if isinstance(leg, RideLeg)]  # type: ignore[union-attr]
    rt = RealtimeState.scheduled(tt, day)
    trip = rides[-1].trip
    a, b = int(tt.trip_st_ptr[trip]), int(tt.trip_st_ptr[trip + 1])
    rt.arrival[a:b] += 120
    rt.departure[a:b] += 120
    rt.trip_updated[trip] = True
    live = planner.plan(req, rt)
    leg = next(leg for leg in live.itineraries[0].legs if leg.trip_id == str(tt.trip_ids[trip]))
    assert leg.realtime and leg.end - leg.scheduled_end == 120  # type: ignore[operator]


def test_station_stands_for_its_platforms(gtfs_dir: object) -> None:
    from pathlib import Path

    from tests.routing.conftest import load_case

    case = load_case(Path(str(gtfs_dir)), "nyc")
    tt = case.tt
    stations = np.flatnonzero(np.diff(tt.stop_pattern_ptr) == 0)
    parents = [int(s) for s in stations if (tt.stop_parent == s).any()]
    assert len(parents) > 10
    planner = Planner(case.data)
    day = tt.service_start + dt.timedelta(days=1)
    req = PlanRequest(
        PlanPlace(0, 0, stop=parents[0]), PlanPlace(0, 0, stop=parents[-1]), day, 8 * 3600
    )
    plan = planner.plan(req)
    assert plan.error is None and plan.itineraries
    first = plan.itineraries[0].legs[0]
    assert int(tt.stop_parent[first.origin.stop_index]) == parents[0]


def test_osm_walking_with_straight_line_fallback(gtfs_dir: object) -> None:
    """Terre Haute with its OSM extract: walking legs follow streets; a point off the
    extract falls back to straight lines instead of failing."""
    from pathlib import Path

    import gtfs
    from routing.street import load_osm
    from routing.street.osm_access import OsmWalkAccess
    from routing.transit import TransitData

    root = Path(str(gtfs_dir)).parent
    tt = gtfs.compile_timetable(gtfs.read_feed(root / "gtfs" / "us_terre_haute.zip"))
    graph = load_osm(root / "osm" / "us_terre_haute.osm.pbf", ["walk"])["walk"]
    planner = Planner(TransitData(tt), OsmWalkAccess(graph, tt.stop_lat, tt.stop_lon))
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    day = tt.service_start + dt.timedelta(days=int(np.argmax(tt.service_days.sum(axis=0))))
    o, d = int(served[0]), int(served[len(served) // 2])
    req = PlanRequest(
        PlanPlace(float(tt.stop_lat[o]) + 0.002, float(tt.stop_lon[o])),
        PlanPlace(float(tt.stop_lat[d]), float(tt.stop_lon[d]) + 0.002),
        day,
        9 * 3600,
        options=RoutingOptions(max_walk_m=1500),
    )
    plan = planner.plan(req)
    assert plan.itineraries, plan.error
    walks = [leg for it in plan.itineraries for leg in it.legs if not leg.transit]
    assert any(len(leg.geometry) > 2 for leg in walks)  # street geometry, not a segment
    # 40 km away from any street of the extract: the straight-line model answers.
    far = PlanRequest(PlanPlace(39.8, -87.4), req.destination, day, 9 * 3600)
    assert planner.plan(far).error is not None
