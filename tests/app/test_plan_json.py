"""``/plan`` writes its answer without validating it, byte for byte as ``response_model``
did (#10): the declared fields in declared order, floats and ints as pydantic coerces them,
the rest as it came."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

import app.api.plan as plan_api
from app.api.plan import PlanOut, plan_json
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import settings_for
from tests.app.test_plan_on_demand import MURORAN_STATION, daytime, far_from_stops

PLAN = "/api/v1/plan"
_ADAPTER = TypeAdapter(PlanOut)


def _validated(body: dict[str, Any]) -> bytes:
    """What FastAPI's response_model path wrote: validate, dump by alias, no unset fields."""
    return _ADAPTER.dump_json(_ADAPTER.validate_python(body), by_alias=True, exclude_unset=True)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, signing_key_pem: Path) -> Iterator[TestClient]:
    settings: Settings = settings_for(
        tmp_path_factory.mktemp("plan-json") / "data",
        jwt_private_key_path=signing_key_pem,
        demo=True,
        demo_riders_per_hour=0.0,
        dispatch_reopt_interval_s=0.0,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_plan_answers_are_the_validated_bytes(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    bodies: list[dict[str, Any]] = []
    real = plan_api.plan_json

    def spy(body: dict[str, Any]) -> bytes:
        bodies.append(body)
        return real(body)

    monkeypatch.setattr(plan_api, "plan_json", spy)
    day, hhmm = daytime()
    origin, metres = far_from_stops(client)
    h = auth(make_user(client=client), client)
    queries: list[dict[str, Any]] = [
        {"fromPlace": "0016_A", "toPlace": "0082_C"},
        {"fromPlace": "0016_A", "toPlace": "0082_C", "arriveBy": "true", "numItineraries": 5},
        {"fromPlace": "0082_C", "toPlace": "0016_A", "optimizeCo2": "true", "locale": "ja"},
        {"fromPlace": "0016_A", "toPlace": "0082_C", "healthierMinutes": 15},
        {"fromPlace": MURORAN_STATION, "toPlace": "0082_C", "maxWalkDistance": 1500},
        {"fromPlace": origin, "toPlace": MURORAN_STATION, "maxWalkDistance": int(metres) - 100},
        {"fromPlace": origin, "toPlace": MURORAN_STATION, "mode": "TRANSIT,WALK,FLEX"},
        {"fromPlace": MURORAN_STATION, "toPlace": origin, "mode": "FLEX"},
        {"fromPlace": "0016_A", "toPlace": "0082_C", "date": "2199-12-31"},  # no service
    ]
    for q in queries:
        r = client.get(PLAN, params={"date": day, "time": hhmm, **q}, headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.content == _validated(bodies[-1]), q
    assert len(bodies) == len(queries)
    legs = [leg for b in bodies for it in b["plan"]["itineraries"] for leg in it["legs"]]
    assert {"WALK", "BUS", "FLEX"} <= {leg["mode"] for leg in legs}
    assert any("steps" in leg for leg in legs) and any("error" in b for b in bodies)
    assert any(b.get("onDemand", {}).get("refusals") is not None for b in bodies)


def test_fields_are_ordered_and_coerced_as_validation_does() -> None:
    leg = {
        "extraFirst": {"b": 1, "a": [1, 2.5]},
        "to": {"name": "B", "lat": 42, "lon": 141.0},
        "from": {"name": "A", "lat": 42.1, "lon": 141},
        "distance": 120,  # an int in a float field: 120.0
        "transitLeg": False,
        "endTime": 2000.0,  # a whole float in an int field: 2000
        "startTime": 1000,
        "mode": "WALK",
        "steps": [
            {
                "lon": 141,
                "lat": 42,
                "distance": 3,
                "bogusName": True,
                "streetName": None,
                "absoluteDirection": "NORTH",
                "relativeDirection": "DEPART",
                "extra": "kept",
            }
        ],
    }
    itinerary = {
        "legs": [leg],
        "transfers": 0,
        "walkDistance": 120,
        "endTime": 2000,
        "startTime": 1000,
        "duration": 1.0e3,
        "note": '日本語 \u2028 "quoted"',
    }
    body = {
        "error": {"id": 404},
        "debugOutput": {"totalTime": 1.5},
        "plan": {
            "itineraries": [itinerary],
            "to": {"name": None, "lat": 42, "lon": 141, "stopId": "S2"},
            "from": {"name": "A", "lat": 42.5, "lon": 141.25},
            "date": 0,
        },
        "requestParameters": {"via": [], "walkSpeed": 1.2, "maxWalkDistance": 1000},
    }
    assert plan_json(body) == _validated(body)
