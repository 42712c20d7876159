"""``GET /api/v1/plan`` with the query options of #15 (demo city, Muroran), end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import settings_for

DAY = "2020-06-01"
BASE = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(Path(tmp_path_factory.mktemp("plan_opts")) / "data", demo=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _its(client: TestClient, **extra: object) -> list[dict]:  # type: ignore[type-arg]
    r = client.get("/api/v1/plan", params={**BASE, **extra})
    assert r.status_code == 200, r.text
    return r.json()["plan"]["itineraries"]  # type: ignore[no-any-return]


def test_options_reach_the_planner(client: TestClient) -> None:
    plain = _its(client)
    assert plain
    fastest = min(it["duration"] for it in plain)
    # A limit below the fastest journey leaves no transit itinerary.
    tight = _its(client, maxTravelTime=max(1, fastest // 60 - 5))
    assert all(not any(leg["transitLeg"] for leg in it["legs"]) for it in tight)
    assert _its(client, transferFactor=2.0, transferSlack=120, stationMatch=True, minJourneys=3)
    r = client.get("/api/v1/plan", params={**BASE, "bikes": True})
    assert r.status_code == 200  # Muroran states no bikes_allowed: no trip takes bikes
    assert all(
        not any(leg["transitLeg"] for leg in it["legs"]) for it in r.json()["plan"]["itineraries"]
    )
    echoed = client.get("/api/v1/plan", params={**BASE, "via": "0082_C@5"}).json()
    assert echoed["requestParameters"]["via"] == ["0082_C@5"]


def test_via_passes_the_stop(client: TestClient) -> None:
    plain = _its(client)
    first = next(it for it in plain if any(leg["transitLeg"] for leg in it["legs"]))
    ride = next(leg for leg in first["legs"] if leg["transitLeg"])
    via = ride["to"]["stopId"]
    its = _its(client, via=f"{via}@10")
    assert len(its) >= 1
    stops = [leg["to"].get("stopId") for it in its[:1] for leg in it["legs"]]
    assert via in stops


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"via": "nope"}, 404, "unknown_stop"),
        ({"via": "0082_C@x"}, 400, "invalid_via"),
        ({"via": ["0082_C"] * 4}, 400, "invalid_via"),
        ({"transferFactor": 0.5}, 422, None),
        ({"maxTravelTime": -1}, 422, None),
    ],
)
def test_bad_options_are_a_clear_4xx(
    client: TestClient,
    params: dict,
    status: int,
    code: str | None,  # type: ignore[type-arg]
) -> None:
    r = client.get("/api/v1/plan", params={**BASE, **params})
    assert r.status_code == status, r.text
    if code is not None:
        assert code in r.text
