"""Every city's planner is built at start (#13): with two cities published, the warm-up plans
on each city's network, not on the default network only, so a second city's first /plan does
not pay for building its planner (its feed extras, fares and transfers)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from fastapi.testclient import TestClient

from app.api import plan as plan_api
from app.warm_up import published_cities
from tests.app.conftest import services_of
from tests.app.test_feeds_regions import two_cities

__all__ = ["two_cities"]  # the fixture, used by name


def test_each_citys_planner_is_warmed_at_start(
    two_cities: tuple[TestClient, dict[str, str]],
    make_app_client: Callable[..., TestClient],
) -> None:
    first, _ = two_cities
    assert sorted(services_of(first).feeds.networks) == ["kawasaki", "sample"]
    again = make_app_client(demo=False)  # a restart on the same data: both cities load
    services = services_of(again)
    check = again.get("/readyz").json()["checks"]["kernels"]
    assert check["ok"] is True and "error" not in check, check
    assert check["networks"] == ["kawasaki", "sample"]  # the default (larger) city first
    assert check["plans"] == 6  # depart-at, arrive-by and CO2 in each city
    for name, net in services.feeds.networks.items():
        assert plan_api._planners[name].network is net, name  # built by this start


def test_published_cities_without_a_timetable_or_registry() -> None:
    assert published_cities(None) == []
    empty = SimpleNamespace(timetable=None)
    assert published_cities(SimpleNamespace(network=empty, networks={})) == []
