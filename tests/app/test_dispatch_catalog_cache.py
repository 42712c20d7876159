"""The zone catalog cached per process (issue #10): a ``/plan`` with FLEX legs reads the
catalog from memory, every writer of the catalog rows makes its change seen at once in its own
process, another process sharing the database and the bus sees it through the bus, and a change
nobody announced is seen within ``CATALOG_RECHECK_S``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.dispatch import store
from app.dispatch.store import (
    catalog_zones,
    delete_zone,
    insert_zone,
    save_zones,
    take_zone_state,
    zone_instance,
)
from dispatch.dispatcher import Dispatcher
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.zone import ServiceZone
from tests.app.conftest import ZONE, services_of
from tests.app.test_dispatch_cluster import fresh_pg_url
from tests.app.test_dispatch_persistence import _store_engine

__all__ = ["fresh_pg_url"]  # the cluster tests' fixture: a fresh database per test

GEOMETRY: dict[str, Any] = ZONE["geometry"]  # type: ignore[assignment]


@contextmanager
def catalog_reads(engine: Any) -> Iterator[list[str]]:
    """The statements reading the catalog table that ``engine`` runs meanwhile."""
    seen: list[str] = []

    def spy(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if "dispatch_zone_states" in sql and sql.lstrip().upper().startswith("SELECT"):
            seen.append(sql)

    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Long enough that only an invalidation, never the re-check, can explain a change seen.
    monkeypatch.setattr(store, "CATALOG_RECHECK_S", 600.0)
    return _store_engine("", tmp_path)


def ids(engine: Any) -> list[str]:
    return catalog_zones(engine, definitions=False)[0]


def test_the_catalog_is_read_once_then_answered_from_memory(engine: Any) -> None:
    insert_zone(engine, ServiceZone.from_geojson("z1", GEOMETRY))
    first, zones = catalog_zones(engine)
    assert first == ["z1"] and [z.zone_id for z in zones] == ["z1"]
    with catalog_reads(engine) as seen:
        again, new = catalog_zones(engine, {"z1"})
        _, whole = catalog_zones(engine)
    assert seen == [] and again == ["z1"] and new == []
    assert [z.zone_id for z in whole] == ["z1"]  # definitions of the cache, parsed anew
    assert whole[0] is not zones[0]


def test_every_writer_makes_its_change_seen_at_once(engine: Any) -> None:
    insert_zone(engine, ServiceZone.from_geojson("z1", GEOMETRY))
    assert ids(engine) == ["z1"]
    # insert_zone
    insert_zone(engine, ServiceZone.from_geojson("z2", GEOMETRY), source="flex")
    assert ids(engine) == ["z1", "z2"]
    # save_zones: a zone the dispatcher adds, a definition it changes, a zone it removes
    d = Dispatcher(StraightLineTravelTimes(1.3), clock=lambda: 9 * 3600.0)
    d.add_zone(ServiceZone.from_geojson("z3", GEOMETRY))
    save_zones(engine, d)
    assert ids(engine) == ["z1", "z2", "z3"]
    d.zone_state("z3").zone.min_notice_s = 1234.0
    save_zones(engine, d, ["z3"])
    (z3,) = catalog_zones(engine, {"z1", "z2"})[1]
    assert z3.min_notice_s == 1234.0
    d.remove_zone("z3")
    save_zones(engine, d)
    assert ids(engine) == ["z1", "z2"]
    # delete_zone (the owner removing an unpublished flex zone)
    epoch, _ = take_zone_state(engine, "z2")
    _, instance = zone_instance(engine, "z2")
    assert delete_zone(engine, "z2", epoch, instance)
    assert ids(engine) == ["z1"]


def test_a_change_nobody_announced_is_seen_after_the_recheck(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost bus message (or a restore, or SQL by hand): the cache is read again at the latest
    ``CATALOG_RECHECK_S`` after its last read."""
    monkeypatch.setattr(store, "CATALOG_RECHECK_S", 0.3)
    insert_zone(engine, ServiceZone.from_geojson("z1", GEOMETRY))
    assert ids(engine) == ["z1"]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM dispatch_zone_states WHERE zone_id = 'z1'"))
    assert ids(engine) == ["z1"]  # not told: still cached
    time.sleep(0.4)
    assert ids(engine) == []


def test_a_read_racing_a_change_is_not_kept(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows read before a writer's commit and stored after its invalidation would hide the
    change until the re-check: such a read answers its caller but is not kept."""
    cache = store._catalog_cache(engine)
    real = cache.read

    insert_zone(engine, ServiceZone.from_geojson("z1", GEOMETRY))
    cache.invalidate()
    generation = cache.generation
    # The change commits between the read's generation and its store.
    orig_session = store.Session

    class RacingSession(orig_session):  # type: ignore[misc, valid-type]
        def __exit__(self, *exc: Any) -> None:
            super().__exit__(*exc)
            monkeypatch.setattr(store, "Session", orig_session)
            insert_zone(engine, ServiceZone.from_geojson("z2", GEOMETRY))

    monkeypatch.setattr(store, "Session", RacingSession)
    assert list(real(engine)[0]) == ["z1"]
    monkeypatch.setattr(store, "Session", orig_session)
    assert cache.generation > generation
    assert ids(engine) == ["z1", "z2"]


# --- two processes on one PostgreSQL and one Redis -----------------------------------------------
@pytest.mark.postgres
@pytest.mark.redis
def test_flex_plans_read_the_catalog_once_and_see_the_other_process_changes(
    fresh_pg_url: str,
    redis_url: str,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.app.test_dispatch_cluster import DEMO_ZONE, gateway, owners, wait_for
    from tests.app.test_plan_on_demand import MURORAN_STATION, PLAN, daytime, far_from_stops

    monkeypatch.setattr(store, "CATALOG_RECHECK_S", 600.0)  # only the bus can tell
    common = {
        "database_url": fresh_pg_url,
        "redis_url": redis_url,
        "redis_prefix": f"tsunagu-test:catalog-{uuid.uuid4().hex[:8]}:",
        "dispatch_reply_timeout_s": 30.0,
        "dispatch_lease_ttl_s": 10.0,
        "dispatch_catalog_interval_s": 1.0,
        "dispatch_reopt_interval_s": 0.0,
        "demo": True,
        "demo_riders_per_hour": 0.0,
    }
    a = make_app_client(**common)
    b = make_app_client(**common)
    wait_for(lambda: len(owners([a, b], DEMO_ZONE)) == 1)
    owner = owners([a, b], DEMO_ZONE)[0]
    asker = [a, b][1 - owner]
    other = [a, b][owner]
    origin, metres = far_from_stops(other)
    day, hhmm = daytime()
    h = auth(make_user(client=asker), asker)
    params = {
        "fromPlace": origin,
        "toPlace": MURORAN_STATION,
        "maxWalkDistance": int(metres) - 100,
        "mode": "TRANSIT,WALK,FLEX",
        "date": day,
        "time": hhmm,
    }

    def flex_plan() -> None:
        r = asker.get(PLAN, params=params, headers=h)
        body = r.json()
        assert r.status_code == 200 and body["plan"]["itineraries"], body.get("onDemand")
        assert body["plan"]["itineraries"][0]["legs"][0]["mode"] == "FLEX"

    flex_plan()
    with catalog_reads(services_of(asker).engine) as seen:
        flex_plan()
    assert seen == []

    def asker_zones() -> set[str]:
        zones = asker.portal.call(gateway(asker).zones)  # type: ignore[union-attr]
        return {z.zone_id for z in zones}

    assert asker_zones() == {DEMO_ZONE}
    # A zone added through the other process reaches the asker's plans (the zones /plan uses).
    boss = make_user(roles=("dispatcher",), client=other)
    r = other.post(
        "/api/v1/fleet/zones", json={**ZONE, "zone_id": "extra"}, headers=auth(boss, other)
    )
    assert r.status_code == 201, r.text
    wait_for(lambda: asker_zones() == {DEMO_ZONE, "extra"}, timeout=10.0)
    flex_plan()
