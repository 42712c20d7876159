"""A database listing a published feed whose files are on another data dir (#13, found in CI:
a test published the Muroran feed in the session's database and its files went with its
tmp dir). Apps starting on it serve the other networks, say which feed is missing (/readyz,
/network), and a dispatch zone's vehicle and booking survive every restart.

The lost van was not the feed's doing, only its timing: every app of a test stays open, and
each saved "every zone" periodically — deleting the rows of every zone it did not serve. The
app a test opens first (before the zone existed) deleted the zone's vehicle and rides once its
10 s save came round; the missing feed made each start slow enough (its build failing and
logged every 5 s by every app) for that to happen before the third restart.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.dispatch.store import save_zones
from app.models.dispatch import ZoneItemRecord, ZoneStateRecord
from tests.app.conftest import both_backends, services_of
from tests.app.test_dispatch_persistence import _book, _setup
from tests.app.test_rides_api import A, B, forget_saved_dispatch

__all__ = ["forget_saved_dispatch"]  # autouse: each test starts with no saved zone
DEMO_ZIP = Path(__file__).resolve().parents[2] / "app" / "demo_data" / "jp_donan_bus_muroran.zip"


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A database of this test's own (it publishes a feed and leaves it without files)."""
    return str(request.getfixturevalue("empty_database_url"))


def _publish_elsewhere(make_app_client: Callable[..., TestClient], other: Path) -> int:
    """Publish the Muroran feed from an app on ``other`` (another data dir), then lose it."""
    c0 = make_app_client(data_dir=other)
    reg = services_of(c0).feeds
    v = reg.upload_file("muroran", DEMO_ZIP)
    reg.publish("muroran", v.id)
    shutil.rmtree(other / "feeds")
    assert v.id is not None
    return v.id


@both_backends
def test_missing_feed_files_are_named_and_no_vehicle_is_lost(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    vid = _publish_elsewhere(make_app_client, tmp_path / "other")
    c1 = make_app_client(dispatch_persist_interval_s=0.2, feeds_sync_interval_s=0.2)
    ready = c1.get("/readyz")
    assert ready.status_code == 503, ready.text
    feeds = ready.json()["checks"]["feeds"]
    assert feeds["ok"] is False and feeds["networks"] == []
    assert [(m["feed_id"], m["version_id"]) for m in feeds["missing"]] == [("muroran", vid)]
    assert str(vid) in feeds["missing"][0]["path"]
    assert c1.get("/api/v1/network").json()["missing"][0]["feed_id"] == "muroran"
    # An app that serves no zone is open beside the others the whole time (as in CI).
    idle = make_app_client(dispatch_persist_interval_s=0.2)
    boss, alice = make_user(roles=("dispatcher",), client=c1), make_user(client=c1)
    hb, ha = auth(boss, c1), auth(alice, c1)
    _setup(c1, hb)
    kept = _book(c1, ha, A, B)
    engine = services_of(c1).engine
    for restart in range(4):
        # Let every open app's periodic save and feed sync run a few times.
        idle.get("/api/v1/network")
        time.sleep(0.8)
        with Session(engine) as db:
            assert db.get(ZoneStateRecord, "muroran") is not None, restart
            items = {r.item_id for r in db.exec(select(ZoneItemRecord))}
            assert {"v:van-1", f"r:{kept}"} <= items, (restart, items)
        c = make_app_client(dispatch_persist_interval_s=0.2, feeds_sync_interval_s=0.2)
        d = services_of(c).dispatcher
        assert [z.zone_id for z in d.zones()] == ["muroran"], restart
        assert kept in {s.ride_id for s in d.vehicle("van-1").plan}, restart
        assert services_of(c).feeds.missing[0]["version_id"] == vid


@both_backends
def test_a_removed_zone_is_still_forgotten_by_its_own_process(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    """Saves delete only the zones their process served: a zone removed by the process that
    restored it is gone from the database, not restored at the next start."""
    c1 = make_app_client()
    _setup(c1, auth(make_user(roles=("dispatcher",), client=c1), c1))
    c2 = make_app_client()  # restores the zone, then removes it (a flex feed withdrawn)
    d2, engine = services_of(c2).dispatcher, services_of(c2).engine
    assert [z.zone_id for z in d2.zones()] == ["muroran"]
    d2.remove_zone("muroran")
    save_zones(engine, d2)
    with Session(engine) as db:
        assert db.get(ZoneStateRecord, "muroran") is None
        assert db.exec(select(ZoneItemRecord)).all() == []
