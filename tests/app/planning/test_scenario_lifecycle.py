"""Scenarios' lifecycle beyond a run: a run whose process died is marked interrupted (one a live
process still runs is not), and scenarios are deleted by their author or an administrator,
with the deletion audited (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.identity.principal import Principal
from app.models.planning import PlanningScenario
from app.planning.service import INTERRUPTED_REASON, PlanningService, planning_of
from tests.app.conftest import TestUser, assert_error, both_backends, services_of
from tests.conftest import REPO

P = "/api/v1/planning"

# A process that starts a scenario (as the API does before running it), says its id, then
# runs "forever" (until the test kills it).
_RUNNER = textwrap.dedent(
    """
    import sys, time
    from app.db import create_db_engine
    from app.identity.principal import Principal
    from app.planning.service import PlanningService

    engine = create_db_engine(sys.argv[1])
    who = Principal(sys.argv[2], "runner@example.org", frozenset({"city_planner"}))
    svc = PlanningService()  # kept: it holds the run lock, as the app's does
    sid = svc.start_scenario(engine, {"name": sys.argv[3]}, who, None, None)
    print(sid, flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A database of this test's own: other processes write scenarios into it."""
    return str(request.getfixturevalue("empty_database_url")) if backend == "postgres" else ""


def _runner(url: str, user_id: str, name: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, url, user_id, name],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, f"the runner exited with {proc.wait()}"
    return proc, str(uuid.UUID(line))


def _status(client: TestClient, headers: dict[str, str]) -> dict[str, tuple[str, Any]]:
    r = client.get(f"{P}/scenarios", headers=headers)
    assert r.status_code == 200, r.text
    return {s["id"]: (s["status"], s["error"]) for s in r.json()["scenarios"]}


@both_backends
def test_a_run_whose_process_died_is_interrupted_one_still_running_is_not(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    c1 = make_app_client()
    url = services_of(c1).engine.url.render_as_string(hide_password=False)
    alice = make_user(roles=["city_planner"])
    live, live_id = _runner(url, alice.id, "live")
    dead, dead_id = _runner(url, alice.id, "dead")
    try:
        dead.kill()  # SIGKILL: nothing of it runs any clean-up
        dead.wait(30)
        # The next start of an app on the database (a restart after the crash) finds the dead
        # run for what it is; the other process's run is still running.
        c2 = make_app_client()
        h = auth(alice, c2)
        got = _status(c2, h)
        assert got[dead_id] == ("interrupted", INTERRUPTED_REASON)
        assert got[live_id] == ("running", None)
        one = c2.get(f"{P}/scenarios/{dead_id}", headers=h).json()
        assert (
            one["status"] == "interrupted" and one["finished_at"] and one["spec"]["name"] == "dead"
        )
        # Asking again changes nothing: the live run keeps running while its process lives.
        assert _status(c1, auth(alice, c1))[live_id] == ("running", None)
        live.terminate()
        live.wait(30)
        # The live one's process is gone now: the same look marks it too.
        assert c2.get(f"{P}/scenarios/{live_id}", headers=h).json()["status"] == "interrupted"
    finally:
        for p in (live, dead):
            if p.poll() is None:
                p.kill()
                p.wait(30)


@both_backends
def test_a_run_in_this_process_is_not_interrupted_and_finishes(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    engine = services_of(app_client).engine
    alice = make_user(roles=["city_planner"])
    who = Principal(alice.id, alice.email, frozenset({"city_planner"}))
    svc = planning_of(app_client.app)
    sid = svc.start_scenario(engine, {"name": "mine"}, who, None, None)
    # Another service object of the same process (as a second app would have) sees it live.
    assert PlanningService().mark_interrupted(engine) == []
    assert _status(app_client, auth(alice))[str(sid)] == ("running", None)
    svc.finish_scenario(engine, sid, {"date": "2020-04-01", "table": []})
    assert _status(app_client, auth(alice))[str(sid)] == ("done", None)
    # Its lock went with the run: nothing is left to mark.
    assert svc.mark_interrupted(engine) == []


@both_backends
def test_delete_by_author_or_admin_only_audited(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    engine = services_of(app_client).engine
    svc = planning_of(app_client.app)
    alice, bob = make_user(roles=["city_planner"]), make_user(roles=["city_planner"])
    admin = make_user(roles=["admin"])
    resident = make_user()

    def made(user: TestUser, name: str) -> str:
        who = Principal(user.id, user.email, frozenset({"city_planner"}))
        sid = svc.start_scenario(engine, {"name": name}, who, None, None)
        svc.finish_scenario(engine, sid, {"date": "2020-04-01", "table": [{"metric": "x"}]})
        return str(sid)

    a1, a2 = made(alice, "a1"), made(alice, "a2")
    ha, hb, hadmin = auth(alice), auth(bob), auth(admin)
    # Another planner may look but not delete; a resident may not even look.
    err = assert_error(app_client.delete(f"{P}/scenarios/{a1}", headers=hb), 403, "forbidden")
    assert err["details"]["created_by"] == alice.id
    assert_error(app_client.delete(f"{P}/scenarios/{a1}", headers=auth(resident)), 403)
    assert_error(app_client.delete(f"{P}/scenarios/{a1}"), 401)
    assert set(_status(app_client, hb)) == {a1, a2}

    r = app_client.delete(f"{P}/scenarios/{a1}", headers=ha)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == a1 and r.json()["deleted_by"] == alice.id
    assert set(_status(app_client, hb)) == {a2}
    assert_error(app_client.get(f"{P}/scenarios/{a1}", headers=ha), 404, "not_found")
    assert_error(app_client.delete(f"{P}/scenarios/{a1}", headers=ha), 404, "not_found")
    assert_error(app_client.delete(f"{P}/scenarios/not-a-uuid", headers=ha), 404, "not_found")
    assert_error(app_client.delete(f"{P}/scenarios/{uuid.uuid4()}", headers=ha), 404)
    # An administrator deletes anyone's.
    r = app_client.delete(f"{P}/scenarios/{a2}", headers=hadmin)
    assert r.status_code == 200 and r.json()["deleted_by"] == admin.id
    assert _status(app_client, ha) == {}
    # The audit: who deleted each, when, and what it was, kept in the row; the comparison gone.
    with Session(engine) as db:
        rows = {str(s.id): s for s in db.exec(select(PlanningScenario)).all()}
    for sid, user in ((a1, alice), (a2, admin)):
        row = rows[sid]
        assert row.status == "deleted" and row.result is not None
        audit = row.result["deleted"]
        assert (audit["by"], audit["by_email"], audit["status_before"]) == (
            user.id,
            user.email,
            "done",
        )
        assert audit["at"] and "table" not in row.result
        assert row.error is not None and user.email in row.error


@both_backends
def test_a_scenario_deleted_while_running_stays_deleted(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Callable[..., dict[str, str]]
) -> None:
    engine = services_of(app_client).engine
    svc = planning_of(app_client.app)
    alice = make_user(roles=["city_planner"])
    who = Principal(alice.id, alice.email, frozenset({"city_planner"}))
    sid = svc.start_scenario(engine, {"name": "long"}, who, None, None)
    r = app_client.delete(f"{P}/scenarios/{sid}", headers=auth(alice))
    assert r.status_code == 200, r.text
    svc.finish_scenario(engine, sid, {"date": "2020-04-01", "table": []})  # the run ends later
    assert_error(app_client.get(f"{P}/scenarios/{sid}", headers=auth(alice)), 404)
    with Session(engine) as db:
        row = db.get(PlanningScenario, sid)
        assert row is not None and row.status == "deleted"
    # Not marked interrupted either (its run lock went with finish).
    assert svc.mark_interrupted(engine) == []
