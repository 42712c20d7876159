"""The planners' work survives a restart: uploads and scenarios (definition, status,
comparison, who ran it) are kept in the database (SQLite and PostgreSQL), shared by planners."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.errors import ApiError
from app.identity.principal import Principal
from app.models.planning import PlanningScenario, PlanningUpload
from app.planning.demo import DEMO_FEED, MURORAN_BOX
from app.planning.service import planning_of
from routing.access import decode_mesh
from tests.app.conftest import TestUser, assert_error, both_backends, services_of

P = "/api/v1/planning"
DESTS = "name,kind,lat,lon\nNishi,hospital,42.3153,140.9838\nHigashi,clinic,42.3620,141.0250\n"


def _ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def _muroran_cells(shared_data: Path, n: int) -> str:
    lines = (
        (shared_data / "planning" / "hokkaido_population_mesh500_2010.csv").read_text().splitlines()
    )
    s, w, north, e = MURORAN_BOX
    cells = decode_mesh([ln.split(",")[0] for ln in lines])
    keep = [
        ln
        for ln, a, b in zip(lines, cells.centre_lat, cells.centre_lon, strict=True)
        if s <= a <= north and w <= b <= e
    ]
    return "\n".join(keep[:n])


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A PostgreSQL database of this test's own: the test publishes a feed, and left in the
    session's database it outlived its data dir, so later tests' apps restored a published
    feed with no files (and a dispatch restart test failed in CI)."""
    return str(request.getfixturevalue("empty_database_url")) if backend == "postgres" else ""


@both_backends
def test_uploads_and_scenarios_survive_a_restart(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
    tmp_path: Path,
    shared_data: Path,
) -> None:
    c1 = make_app_client()
    reg = services_of(c1).feeds
    assert reg is not None
    src = tmp_path / "muroran.zip"
    shutil.copy(DEMO_FEED, src)
    reg.publish("muroran", reg.upload_file("muroran", src).id)
    alice, bob = make_user(roles=["city_planner"]), make_user(roles=["city_planner"])
    ha = auth(alice, c1)
    _ok(
        c1.put(
            f"{P}/destinations", content=b"name,kind,lat,lon\nOld,hospital,42.3,140.9\n", headers=ha
        )
    )
    dest = _ok(c1.put(f"{P}/destinations", content=DESTS.encode(), headers=ha))
    assert dest["destinations"] == 2 and dest["kinds"] == ["clinic", "hospital"]
    pop = _ok(
        c1.put(f"{P}/population", content=_muroran_cells(shared_data, 40).encode(), headers=ha)
    )
    assert pop["cells"] == 40 and pop["residents"] > 0
    route = _ok(c1.get(f"{P}/network", headers=ha))["routes"][0]["route_id"]
    spec = {
        "name": "drop one",
        "edits": [{"op": "drop_route", "route_id": route}],
        "analysis": {"resolution": 7, "departures": 2, "window_min": 20},
    }
    out = _ok(c1.post(f"{P}/scenarios", json=spec, headers=ha))
    assert out["status"] == "done" and out["created_by"] == alice.id
    assert out["spec"]["edits"] == [{"op": "drop_route", "route_id": route}]
    # A refused edit leaves nothing behind.
    bad = {"edits": [{"op": "drop_route", "route_id": "nope"}]}
    assert_error(c1.post(f"{P}/scenarios", json=bad, headers=ha), 422, "invalid_edit")
    with Session(services_of(c1).engine) as db:
        assert len(db.exec(select(PlanningScenario)).all()) == 1
        # The superseded destinations upload is gone; the one the scenario used is kept.
        kinds = sorted(u.kind for u in db.exec(select(PlanningUpload)).all())
        assert kinds == ["destinations", "population"]

    # A second process on the same database (the first may have crashed): another planner
    # sees the same uploads, lists the scenario and fetches its comparison whole.
    c2 = make_app_client()
    hb = auth(bob, c2)
    net = _ok(c2.get(f"{P}/network", headers=hb))
    assert net["destinations"] == 2 and net["population_cells"] == 40
    gj = c2.get(f"{P}/destinations", headers=hb).json()
    assert sorted(f["properties"]["name"] for f in gj["features"]) == ["Higashi", "Nishi"]
    listed = _ok(c2.get(f"{P}/scenarios", headers=hb))["scenarios"]
    assert [(s["id"], s["name"], s["status"], s["created_by"]) for s in listed] == [
        (out["id"], "drop one", "done", alice.id)
    ]
    assert listed[0]["date"] == out["date"] and listed[0]["finished_at"]
    got = _ok(c2.get(f"{P}/scenarios/{out['id']}", headers=hb))
    for key in ("table", "map", "cells", "on_demand", "date", "spec", "created_at"):
        assert got[key] == out[key], key
    rows = {r["metric"]: r for r in got["table"]}
    assert rows["bus_trips"]["difference"] < 0
    # The restarted process analyses with the kept uploads.
    acc = _ok(c2.post(f"{P}/access", json={"resolution": 7, "departures": 1}, headers=hb))
    assert acc["reached_cells"] > 0 and {s["kind"] for s in acc["shares"]} == {"clinic", "hospital"}
    assert_error(c2.get(f"{P}/scenarios/not-a-uuid", headers=hb), 404, "not_found")
    # A scenario started with an upload another planner has just replaced: a 409, not a 500.
    svc = planning_of(c2.app)
    principal = Principal(bob.id, bob.email, frozenset({"city_planner"}))
    with pytest.raises(ApiError) as err:
        svc.start_scenario(services_of(c2).engine, spec, principal, uuid.uuid4(), None)
    assert err.value.status_code == 409
