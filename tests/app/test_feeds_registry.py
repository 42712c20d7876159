"""The feed lifecycle on the registry itself, on SQLite and on the real PostgreSQL.

Upload → validate → compile → publish (hot swap) → rollback; a broken upload never disturbs the
served network; a restart serves the published network from compiled.npz without compiling;
publishing under concurrent queries loses none and tears none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app import db
from app.errors import ApiError
from app.feeds.registry import FeedRegistry
from tests.app.test_feeds_samples import (
    V2_STOP_NAME,
    not_a_zip,
    sample_v2,
    traversal_zip,
    with_errors,
    without_stops,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database with no feed versions: a SQLite file, or the session's real
    PostgreSQL database (``pg_database_url``) with ``feed_versions`` emptied first — tests run
    one at a time, and "what is published" must be this test's own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'feeds.db'}"
    else:
        url = str(request.getfixturevalue("pg_database_url"))
    eng = db.create_db_engine(url)
    db.upgrade_database(eng)
    with eng.begin() as conn:
        conn.execute(sa.text("DELETE FROM feed_versions"))
    yield eng
    with eng.begin() as conn:  # leave no published feed behind for other tests' app starts
        conn.execute(sa.text("DELETE FROM feed_versions"))
    eng.dispose()


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> FeedRegistry:
    return FeedRegistry(engine, tmp_path / "data")


def _served_stop_names(reg: FeedRegistry) -> set[str]:
    tt = reg.network.timetable
    assert tt is not None
    return set(tt.stop_names.tolist())


def test_lifecycle_upload_publish_rollback_restart(
    registry: FeedRegistry, engine: Engine, gtfs_dir: Path, tmp_path: Path
) -> None:
    reg = registry
    assert reg.network.empty
    v1 = reg.upload_file("sample", gtfs_dir / "google_sample.zip", uploaded_by="op@example.org")
    assert v1.status == "valid" and v1.id is not None
    assert v1.error_count == 0 and v1.warning_count >= 0
    assert v1.counts["stops"] == 9 and v1.counts["trips"] > 0
    assert v1.service_start is not None and v1.service_end is not None
    assert len(v1.sha256) == 64
    vdir = reg.store.version_dir(v1.id)
    assert {p.name for p in vdir.iterdir()} >= {"original.zip", "report.json", "compiled.npz"}
    report = reg.report("sample", v1.id)
    assert report["report"]["summary"]["counts"]["errors"] == 0

    net1 = reg.publish("sample", v1.id)
    assert reg.network is net1 and not net1.empty
    assert [(p.feed_id, p.version_id) for p in net1.versions] == [("sample", v1.id)]
    assert net1.service_date is not None

    v2 = reg.upload_file("sample", sample_v2(gtfs_dir, tmp_path))
    assert v2.status == "valid"
    # Uploading does not publish: v1 still serves.
    assert V2_STOP_NAME not in _served_stop_names(reg)
    net2 = reg.publish("sample", v2.id)  # type: ignore[arg-type]
    assert net2.generation == net1.generation + 1
    assert V2_STOP_NAME in _served_stop_names(reg)
    statuses = {v.id: v.status for v in reg.list_versions("sample")}
    assert statuses == {v1.id: "archived", v2.id: "published"}

    # Rollback (no version given) goes back to the previously published one.
    reg.rollback("sample")
    assert V2_STOP_NAME not in _served_stop_names(reg)
    assert {v.id: v.status for v in reg.list_versions("sample")} == {
        v1.id: "published",
        v2.id: "archived",
    }
    # ... and forward again to an explicit version.
    reg.rollback("sample", v2.id)
    assert V2_STOP_NAME in _served_stop_names(reg)

    # A restart serves the published network from compiled.npz, compiling nothing.
    compiled_before = reg.compiles
    assert compiled_before == 2  # one compile per upload, none per publish
    again = FeedRegistry(engine, tmp_path / "data")
    net = again.load_published()
    assert again.compiles == 0
    assert [(p.feed_id, p.version_id) for p in net.versions] == [("sample", v2.id)]
    assert V2_STOP_NAME in _served_stop_names(again)
    assert net.rt_keys is not None and net.timetable is not None
    assert net.rt_keys.trip_direction.shape == (net.timetable.n_trips,)
    np.testing.assert_array_equal(
        net.timetable.st_arrival,  # type: ignore[union-attr]
        reg.network.timetable.st_arrival,  # type: ignore[union-attr]
    )


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda g, t: not_a_zip(t), "not_a_zip"),
        (lambda g, t: traversal_zip(t), "unsafe_zip_entry"),
    ],
    ids=["not-a-zip", "dotdot-entry"],
)
def test_unreadable_upload_is_422_and_network_keeps_serving(
    registry: FeedRegistry, gtfs_dir: Path, tmp_path: Path, make: object, code: str
) -> None:
    reg = registry
    v1 = reg.upload_file("sample", gtfs_dir / "google_sample.zip")
    reg.publish("sample", v1.id)  # type: ignore[arg-type]
    served = reg.network
    with pytest.raises(ApiError) as err:
        reg.upload_file("sample", make(gtfs_dir, tmp_path))  # type: ignore[operator]
    assert err.value.status_code == 422 and err.value.code == "feed_unreadable"
    assert err.value.details["code"] == code
    bad_id = err.value.details["version"]["id"]
    assert reg.get_version("sample", bad_id).status == "invalid"
    assert reg.report("sample", bad_id)["report"]["failure"]["code"] == code
    # Nothing escaped the version directory.
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data" / "evil.txt").exists()
    assert reg.network is served
    with pytest.raises(ApiError) as err2:
        reg.publish("sample", bad_id)
    assert err2.value.status_code == 409
    assert reg.network is served


@pytest.mark.parametrize("make", [with_errors, without_stops], ids=["fk-errors", "no-stops"])
def test_error_notices_block_publishing(
    registry: FeedRegistry, gtfs_dir: Path, tmp_path: Path, make: object
) -> None:
    reg = registry
    v1 = reg.upload_file("sample", gtfs_dir / "google_sample.zip")
    reg.publish("sample", v1.id)  # type: ignore[arg-type]
    served = reg.network
    bad = reg.upload_file("sample", make(gtfs_dir, tmp_path))  # type: ignore[operator]
    assert bad.status == "invalid" and bad.error_count > 0
    assert "ERROR" in bad.summary
    assert not reg.store.compiled_path(bad.id).exists()  # type: ignore[arg-type]
    with pytest.raises(ApiError) as err:
        reg.publish("sample", bad.id)  # type: ignore[arg-type]
    assert err.value.status_code == 409 and err.value.code == "feed_has_errors"
    assert err.value.details["error_count"] == bad.error_count
    assert err.value.details["summary"]["ERROR"]
    assert reg.network is served
    assert {v.status for v in reg.list_versions("sample")} == {"published", "invalid"}


def test_bad_requests(registry: FeedRegistry, gtfs_dir: Path) -> None:
    reg = registry
    with pytest.raises(ApiError) as e1:
        reg.upload_file("../etc", gtfs_dir / "google_sample.zip")
    assert e1.value.code == "invalid_feed_id"
    with pytest.raises(ApiError) as e2:
        reg.publish("sample", 12345)
    assert e2.value.status_code == 404
    v = reg.upload_file("sample", gtfs_dir / "google_sample.zip")
    with pytest.raises(ApiError) as e3:
        reg.publish("other", v.id)  # type: ignore[arg-type]
    assert e3.value.status_code == 404
    with pytest.raises(ApiError) as e4:
        reg.rollback("sample")
    assert e4.value.status_code == 409 and e4.value.code == "nothing_to_roll_back"


def test_two_feeds_of_one_region_form_one_network(
    registry: FeedRegistry, engine: Engine, gtfs_dir: Path, tmp_path: Path
) -> None:
    reg = registry
    a = reg.upload_file("sample", gtfs_dir / "google_sample.zip", network="usa")
    b = reg.upload_file("bullrunner", gtfs_dir / "us_bullrunner.zip", network="usa")
    assert a.status == b.status == "valid", (a.summary, b.summary)
    assert a.region == b.region == "usa"
    reg.publish("sample", a.id)  # type: ignore[arg-type]
    net = reg.publish("bullrunner", b.id)  # type: ignore[arg-type]
    assert net.name == "usa" and list(reg.networks) == ["usa"] and reg.network is net
    assert {p.feed_id for p in net.versions} == {"sample", "bullrunner"}
    tt = net.timetable
    assert tt is not None
    assert set(tt.feed_ids) == {"sample", "bullrunner"}
    assert tt.n_stops == a.counts["stops"] + b.counts["stops"]
    # A restart loads the merged network from its cached compiled.npz.
    again = FeedRegistry(engine, tmp_path / "data")
    net2 = again.load_published()
    assert again.compiles == 0 and net2.timetable is not None
    assert net2.timetable.n_stops == tt.n_stops


def test_regions_are_separate_networks_and_keep_their_ids(
    registry: FeedRegistry, engine: Engine, gtfs_dir: Path, tmp_path: Path
) -> None:
    """Feeds of different regions are served apart; publishing, replacing or withdrawing one
    region's feed leaves the other region's network (the same object, its ids) untouched."""
    reg = registry
    a = reg.upload_file("sample", gtfs_dir / "google_sample.zip")
    b = reg.upload_file("kawasaki", gtfs_dir / "jp_mlit_sample_kawasaki.zip")
    assert a.region == "sample" and b.region == "kawasaki"
    first = reg.publish("sample", a.id)  # type: ignore[arg-type]
    tt_a = first.timetable
    assert tt_a is not None
    ids_a = tt_a.stop_ids.tolist()
    assert "FUR_CREEK_RES" in ids_a and reg.network is first
    second = reg.publish("kawasaki", b.id)  # type: ignore[arg-type]
    assert sorted(reg.networks) == ["kawasaki", "sample"]
    assert reg.networks["sample"] is first  # not rebuilt, not merged
    assert second.name == "kawasaki" and [p.feed_id for p in second.versions] == ["kawasaki"]
    assert second.timetable is not None and "1510-51" in second.timetable.stop_ids.tolist()
    assert "FUR_CREEK_RES" not in second.timetable.stop_ids.tolist()
    assert second.generation != first.generation  # realtime caches key by generation
    # The default network is the larger region; each region is located by its area.
    big = max((first, second), key=lambda n: n.timetable.n_stops)  # type: ignore[union-attr]
    assert reg.network is big
    lat, lon = float(tt_a.stop_lat[0]), float(tt_a.stop_lon[0])
    assert reg.network_at(lat, lon) is first
    assert reg.network_at(0.0, 0.0) is None
    assert reg.network_named("kawasaki") is second
    with pytest.raises(ApiError) as e:
        reg.network_named("nowhere")
    assert e.value.status_code == 404 and e.value.code == "unknown_network"
    # Ids as published before the second region: not one changed.
    assert reg.networks["sample"].timetable.stop_ids.tolist() == ids_a  # type: ignore[union-attr]
    # A restart serves both regions again from their artifacts, without compiling.
    again = FeedRegistry(engine, tmp_path / "data")
    again.load_published()
    assert again.compiles == 0 and sorted(again.networks) == ["kawasaki", "sample"]
    assert again.networks["sample"].timetable.stop_ids.tolist() == ids_a  # type: ignore[union-attr]
    # Withdrawing one region leaves the other served as it was.
    gone = reg.withdraw("kawasaki")
    assert gone.timetable is None and gone.name == "kawasaki"
    assert list(reg.networks) == ["sample"] and reg.network is first


def test_a_feed_moves_region_at_publish_and_collisions_prefix_within_a_region(
    registry: FeedRegistry, gtfs_dir: Path
) -> None:
    """Publishing with ``network=`` merges the feed into that region; two feeds of one region
    sharing ids are told apart by prefixes, the other regions' ids stay as they were."""
    reg = registry
    a = reg.upload_file("sample", gtfs_dir / "google_sample.zip")
    b = reg.upload_file("copy", gtfs_dir / "google_sample.zip")
    k = reg.upload_file("kawasaki", gtfs_dir / "jp_mlit_sample_kawasaki.zip")
    reg.publish("kawasaki", k.id)  # type: ignore[arg-type]
    kawasaki_ids = reg.networks["kawasaki"].timetable.stop_ids.tolist()  # type: ignore[union-attr]
    reg.publish("sample", a.id)  # type: ignore[arg-type]
    alone = reg.publish("copy", b.id)  # type: ignore[arg-type]
    assert alone.name == "copy" and "FUR_CREEK_RES" in alone.timetable.stop_ids.tolist()  # type: ignore[union-attr]
    merged = reg.publish("copy", b.id, network="sample")  # type: ignore[arg-type]
    assert merged.name == "sample" and sorted(reg.networks) == ["kawasaki", "sample"]
    ids = merged.timetable.stop_ids.tolist()  # type: ignore[union-attr]
    assert "sample:FUR_CREEK_RES" in ids and "copy:FUR_CREEK_RES" in ids
    assert reg.get_version("copy", b.id).region == "sample"  # type: ignore[arg-type]
    assert reg.networks["kawasaki"].timetable.stop_ids.tolist() == kawasaki_ids  # type: ignore[union-attr]
    # A later upload of the feed stays in its region unless told otherwise.
    b2 = reg.upload_file("copy", gtfs_dir / "google_sample.zip")
    assert b2.region == "sample"
    with pytest.raises(ApiError) as e:
        reg.publish("copy", b2.id, network="bad name")  # type: ignore[arg-type]
    assert e.value.status_code == 422 and e.value.code == "invalid_network"


def test_published_feed_without_files_is_reported_not_served(
    registry: FeedRegistry, engine: Engine, gtfs_dir: Path, tmp_path: Path
) -> None:
    """A database listing a published feed whose files are on another data dir: the other
    regions are served, the missing one is named (``missing``), and the sync loop does not
    rebuild every interval; once the files are back it is served."""
    reg = registry
    a = reg.upload_file("sample", gtfs_dir / "google_sample.zip")
    b = reg.upload_file("kawasaki", gtfs_dir / "jp_mlit_sample_kawasaki.zip")
    reg.publish("sample", a.id)  # type: ignore[arg-type]
    reg.publish("kawasaki", b.id)  # type: ignore[arg-type]
    moved = tmp_path / "moved"
    reg.store.version_dir(a.id).rename(moved)  # type: ignore[arg-type]
    other = FeedRegistry(engine, tmp_path / "data")
    other.load_published()
    assert list(other.networks) == ["kawasaki"]
    assert [(m["feed_id"], m["version_id"], m["network"]) for m in other.missing] == [
        ("sample", a.id, "sample")
    ]
    assert str(a.id) in other.missing[0]["path"]
    generation = other.network.generation
    assert other.sync_with_database() is False  # nothing changed: no rebuild, no log storm
    assert other.network.generation == generation
    # Publishing a version whose files are gone is refused, and changes nothing.
    with pytest.raises(ApiError) as e:
        other.publish("sample", a.id)  # type: ignore[arg-type]
    assert e.value.status_code == 409 and e.value.code == "feed_files_missing"
    assert list(other.networks) == ["kawasaki"]
    moved.rename(reg.store.version_dir(a.id))  # type: ignore[arg-type]
    assert other.sync_with_database() is True
    assert sorted(other.networks) == ["kawasaki", "sample"] and other.missing == []


def test_hot_swap_under_concurrent_queries(
    registry: FeedRegistry, gtfs_dir: Path, tmp_path: Path
) -> None:
    """Threads query while versions are published back and forth: every query completes on one
    consistent snapshot (the version the snapshot names is the data it holds)."""
    reg = registry
    v1 = reg.upload_file("sample", gtfs_dir / "google_sample.zip")
    v2 = reg.upload_file("sample", sample_v2(gtfs_dir, tmp_path))
    reg.publish("sample", v1.id)  # type: ignore[arg-type]
    stop = threading.Event()
    done = [0] * 4
    failures: list[str] = []
    generations: set[int] = set()

    def query(k: int) -> None:
        while not stop.is_set():
            net = reg.network  # grab once per query
            tt = net.timetable
            if tt is None:
                failures.append("network vanished")
                return
            (pv,) = net.versions
            time.sleep(0.001)  # the query "runs" while publishes happen
            has_v2 = V2_STOP_NAME in tt.stop_names.tolist()
            if has_v2 != (pv.version_id == v2.id):
                failures.append(f"torn snapshot: version {pv.version_id}, v2 data {has_v2}")
            assert net.service_date is not None
            rt = reg.realtime.state(net, net.service_date)
            if rt is None or rt.arrival.shape != tt.st_arrival.shape:
                failures.append("realtime overlay does not fit its network")
            generations.add(net.generation)
            done[k] += 1

    threads = [threading.Thread(target=query, args=(k,)) for k in range(len(done))]

    def wait_for(cond: Callable[[], bool]) -> None:
        # Liveness bound only (a loaded CI machine may be slow): no speed is asserted.
        deadline = time.monotonic() + 60
        while not cond() and not failures and time.monotonic() < deadline:
            time.sleep(0.005)

    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(n > 0 for n in done))
        for i in range(12):
            net = reg.publish("sample", (v2 if i % 2 == 0 else v1).id)  # type: ignore[arg-type]
            if i % 4 == 0:  # now and then, let the queries catch up with the swap
                wait_for(lambda: net.generation in generations)  # noqa: B023
    finally:
        stop.set()
        for t in threads:
            t.join(60)  # liveness bound: a query may be slow on a loaded machine
    assert not failures, failures[:5]
    assert all(n > 0 for n in done)
    assert len(generations) >= 3  # the queries really did straddle several swaps


def test_other_processes_adopt_a_publish(
    registry: FeedRegistry, engine: Engine, gtfs_dir: Path, tmp_path: Path
) -> None:
    """Worker B (same database and data dir) serves what worker A published, compiling nothing."""
    a = registry
    b = FeedRegistry(engine, tmp_path / "data")
    b.load_published()
    v1 = a.upload_file("sample", gtfs_dir / "google_sample.zip")
    v2 = a.upload_file("sample", sample_v2(gtfs_dir, tmp_path))
    assert b.sync_with_database() is False  # nothing published yet
    a.publish("sample", v1.id)  # type: ignore[arg-type]
    assert b.sync_with_database() is True
    assert [p.version_id for p in b.network.versions] == [v1.id]
    assert b.sync_with_database() is False
    a.publish("sample", v2.id)  # type: ignore[arg-type]
    assert b.sync_with_database() is True
    assert V2_STOP_NAME in _served_stop_names(b)
    assert b.compiles == 0


def test_publishes_are_serialised_across_processes(
    registry: FeedRegistry, engine: Engine, gtfs_dir: Path, tmp_path: Path
) -> None:
    """A publish waits for the cluster-wide ``feeds-publish`` lock: two workers publishing
    versions of one feed at once used to archive what each saw and both stay published."""
    a = registry
    b = FeedRegistry(engine, tmp_path / "data")
    v1 = a.upload_file("sample", gtfs_dir / "google_sample.zip")
    v2 = a.upload_file("sample", sample_v2(gtfs_dir, tmp_path))
    done = threading.Event()
    errors: list[BaseException] = []

    def publish(reg: FeedRegistry, vid: int) -> None:
        try:
            reg.publish("sample", vid)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    with db.startup_lock(engine, "feeds-publish"):  # another worker is publishing
        t = threading.Thread(target=publish, args=(b, v2.id))
        t.start()
        assert not done.wait(1.0), "the publish did not wait for the other worker's"
    t.join(60)
    assert errors == [] and done.is_set()
    a.publish("sample", v1.id)  # type: ignore[arg-type]
    published = [v.id for v in a.list_versions("sample") if v.status == "published"]
    assert published == [v1.id]  # one published version; the earlier one is archived
    b.sync_with_database()
    assert [p.version_id for p in b.network.versions] == [v1.id]
