"""Fares on planned itineraries (GTFS-JP fares v1 of the demo feed): every bus leg carries the
cheapest matching fare of its ride and the itinerary the total, in yen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from gtfs import read_feed
from gtfs.fares import FareTable
from tests.app.conftest import REPO_ROOT_FOR_TESTS, settings_for

DEMO_FEED = REPO_ROOT_FOR_TESTS / "app" / "demo_data" / "jp_donan_bus_muroran.zip"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, signing_key_pem: Path) -> Iterator[TestClient]:
    settings: Settings = settings_for(
        tmp_path_factory.mktemp("fares") / "data",
        jwt_private_key_path=signing_key_pem,
        demo=True,
        demo_fleet=False,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_bus_legs_carry_their_fare_and_the_itinerary_the_total(client: TestClient) -> None:
    table = FareTable(read_feed(DEMO_FEED))
    r = client.get(
        "/api/v1/plan",
        params={
            "fromPlace": "42.3487,141.0261",
            "toPlace": "42.3177339,140.9736236",
            "time": "08:00",
            "numItineraries": 5,
        },
    )
    its = r.json()["plan"]["itineraries"]
    assert its
    for it in its:
        total = 0.0
        for leg in it["legs"]:
            if leg["mode"] != "BUS":
                assert "fare" not in leg
                continue
            fare = table.fare(leg["routeId"], leg["from"]["stopId"], leg["to"]["stopId"])
            assert fare is not None
            assert leg["fare"] == {"fareId": fare.fare_id, "price": fare.price, "currency": "JPY"}
            total += fare.price
        assert it["fare"] == {"total": total, "currency": "JPY", "complete": True}
        assert total > 0
