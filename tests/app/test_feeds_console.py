"""What the operator console needs of the feed API (issue #13): the user's file name in read
failures, withdrawing a feed's only version, publishing over errors that do not break routing
(with a recorded reason) while others still block, and a map preview before publishing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gtfs.compiled import CompiledTimetable
from tests.app.conftest import TestUser, assert_error, services_of
from tests.app.test_feeds_samples import rewrite_zip, with_errors

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def op(make_user: Callable[..., TestUser], auth: Auth) -> dict[str, str]:
    return auth(make_user(roles=("operator",)))


def _upload(c: TestClient, h: dict[str, str], feed_id: str, path: Path, name: str = "") -> Any:
    with path.open("rb") as f:
        return c.post(
            f"/api/v1/feeds/{feed_id}/versions",
            files={"file": (name or path.name, f, "application/zip")},
            headers=h,
        )


def test_a_non_zip_upload_is_reported_with_the_users_file_name(
    app_client: TestClient, op: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"timetable as a spreadsheet\n" * 20)
    err = assert_error(_upload(app_client, op, "city", bad, "時刻表 2026.xlsx"), 422)
    assert err["code"] == "feed_unreadable"
    assert "時刻表 2026.xlsx is not a zip archive" in err["message"], err["message"]
    assert "original.zip" not in str(err)


def test_the_first_published_version_can_be_withdrawn(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    gtfs_dir: Path,
) -> None:
    c = make_app_client(demo=False)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    v1 = _upload(c, op, "sample", gtfs_dir / "google_sample.zip").json()
    assert c.post(f"/api/v1/feeds/sample/versions/{v1['id']}/publish", headers=op).is_success
    assert [p["feed_id"] for p in c.get("/api/v1/network").json()["published"]] == ["sample"]
    # Rollback has nothing earlier to go to; withdrawing stops serving it all the same.
    assert_error(c.post("/api/v1/feeds/sample/rollback", headers=op), 409, "nothing_to_roll_back")
    r = c.post("/api/v1/feeds/sample/withdraw", headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["network"]["published"] == []
    assert c.get("/api/v1/network").json()["published"] == []
    versions = c.get("/api/v1/feeds/sample/versions", headers=op).json()["versions"]
    assert [v["status"] for v in versions] == ["archived"]
    assert_error(c.post("/api/v1/feeds/sample/withdraw", headers=op), 409, "feed_not_published")
    # And it can be published again.
    assert c.post(f"/api/v1/feeds/sample/versions/{v1['id']}/publish", headers=op).is_success


def test_publish_over_colour_errors_with_a_reason_routing_errors_still_block(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    gtfs_dir: Path,
    tmp_path: Path,
) -> None:
    c = make_app_client(demo=False)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    # A route_text_color of "0", as a real city's 115 routes have it.
    colour = rewrite_zip(
        gtfs_dir / "google_sample.zip",
        tmp_path / "colour.zip",
        replace={"routes.txt": ("Airport - Bullfrog,,3,,,", "Airport - Bullfrog,,3,,,0")},
    )
    v = _upload(c, op, "city", colour).json()
    assert v["status"] == "invalid" and v["summary"]["ERROR"] == {"invalid_color": 1}, v
    err = assert_error(c.post(f"/api/v1/feeds/city/versions/{v['id']}/publish", headers=op), 409)
    assert err["code"] == "feed_has_errors" and err["details"]["overridable"] is True
    # The preview is there before publishing: routes and stops.
    pre = c.get(f"/api/v1/feeds/city/versions/{v['id']}/preview", headers=op)
    assert pre.status_code == 200, pre.text
    kinds = {f["properties"]["kind"] for f in pre.json()["features"]}
    assert kinds == {"route", "stop"}
    assert c.get("/api/v1/network").json()["published"] == []
    reason = "Text colours fixed by the operator next week; timetable needed now."
    r = c.post(
        f"/api/v1/feeds/city/versions/{v['id']}/publish",
        json={"override_reason": reason},
        headers=op,
    )
    assert r.status_code == 200, r.text
    assert [p["feed_id"] for p in r.json()["network"]["published"]] == ["city"]
    got = c.get(f"/api/v1/feeds/city/versions/{v['id']}", headers=op).json()
    assert got["status"] == "published"
    assert got["summary"]["override"]["reason"] == reason
    assert got["summary"]["override"]["by"].endswith("@example.org")
    assert got["summary"]["override"]["errors"] == {"invalid_color": 1}

    # Broken references break routing: no reason publishes them, and nothing changes.
    broken = _upload(c, op, "city", with_errors(gtfs_dir, tmp_path)).json()
    err = assert_error(
        c.post(
            f"/api/v1/feeds/city/versions/{broken['id']}/publish",
            json={"override_reason": "please"},
            headers=op,
        ),
        409,
        "feed_errors_block_routing",
    )
    assert "foreign_key_violation" in err["details"]["blocking"]
    assert_error(
        c.get(f"/api/v1/feeds/city/versions/{broken['id']}/preview", headers=op),
        409,
        "feed_not_compiled",
    )
    assert c.get("/api/v1/network").json()["published"][0]["version_id"] == v["id"]


def test_preview_shows_flex_zones(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    gtfs_dir: Path,
) -> None:
    c = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    v = _upload(c, op, "cobb", gtfs_dir / "us_cobblinc_flex.zip").json()
    fc = c.get(f"/api/v1/feeds/cobb/versions/{v['id']}/preview", headers=op).json()
    zones = [f for f in fc["features"] if f["properties"]["kind"] == "flex_zone"]
    assert len(zones) == 3 and all("Polygon" in f["geometry"]["type"] for f in zones)
    assert c.get("/api/v1/network").json()["published"] == []  # a look, not a publish


def test_stop_ids_stay_the_feeds_own_when_a_second_city_is_published(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    gtfs_dir: Path,
) -> None:
    """`0262` became `muroran:0262` once a second feed was published: ids that no other
    published feed uses now stay as the feed wrote them."""
    c = make_app_client(demo=False)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    a = _upload(c, op, "sample", gtfs_dir / "google_sample.zip").json()
    assert c.post(f"/api/v1/feeds/sample/versions/{a['id']}/publish", headers=op).is_success
    assert c.get("/api/v1/stops/FUR_CREEK_RES").status_code == 200
    b = _upload(c, op, "kawasaki", gtfs_dir / "jp_mlit_sample_kawasaki.zip").json()
    assert b["status"] == "valid", b
    assert c.post(f"/api/v1/feeds/kawasaki/versions/{b['id']}/publish", headers=op).is_success
    assert sorted(p["feed_id"] for p in c.get("/api/v1/network").json()["published"]) == [
        "kawasaki",
        "sample",
    ]
    for stop in ("FUR_CREEK_RES", "1510-51"):
        r = c.get(f"/api/v1/stops/{stop}")
        assert r.status_code == 200 and r.json()["stopId"] == stop, r.text
    # The prefixed form a client may have kept from before names the same, unprefixed stop.
    assert c.get("/api/v1/stops/sample:FUR_CREEK_RES").json()["stopId"] == "FUR_CREEK_RES"
    assert_error(c.get("/api/v1/stops/kawasaki:FUR_CREEK_RES"), 404)
    # Each city keeps its own map and search (the resident picks one).
    feeds = {f["feed_id"]: f["bbox"] for f in c.get("/api/v1/network").json()["feeds"]}
    assert set(feeds) == {"sample", "kawasaki"}
    assert feeds["sample"][0] < -100 and feeds["kawasaki"][0] > 139  # Nevada, Kawasaki
    assert c.get("/api/v1/stops", params={"q": "駅", "feed": "sample"}).json()["stops"] == []
    assert c.get("/api/v1/stops", params={"q": "駅", "feed": "kawasaki"}).json()["stops"]
    assert_error(c.get("/api/v1/stops", params={"q": "駅", "feed": "nowhere"}), 404, "unknown_feed")
    for feed, west_of_100 in (("sample", True), ("kawasaki", False)):
        gj = c.get("/api/v1/network/geojson", params={"feed": feed}).json()
        kinds = {f["properties"]["kind"] for f in gj["features"]}
        assert kinds == {"route", "stop"}, (feed, kinds)
        lons = [
            f["geometry"]["coordinates"][0]
            for f in gj["features"]
            if f["properties"]["kind"] == "stop"
        ]
        assert lons and all((lon < -100) == west_of_100 for lon in lons), feed
    assert_error(c.get("/api/v1/network/geojson", params={"feed": "nowhere"}), 404)
    # Two feeds of one region sharing ids (the same sample under two names) are told apart
    # by prefixes there; the other region's ids stay its own.
    d = _upload(c, op, "copy", gtfs_dir / "google_sample.zip").json()
    r = c.post(
        f"/api/v1/feeds/copy/versions/{d['id']}/publish",
        json={"network": "sample"},
        headers=op,
    )
    assert r.is_success and r.json()["network"]["network"] == "sample", r.text
    assert c.get("/api/v1/stops/copy:FUR_CREEK_RES").status_code == 200
    assert c.get("/api/v1/stops/1510-51").json()["stopId"] == "1510-51"


def test_preview_recompiles_an_artifact_of_an_older_format(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Auth,
    gtfs_dir: Path,
) -> None:
    """A compiled artifact from before trip_bikes (format 1) is recompiled, not read without it
    (it would answer bikes=true with no trip) and not a 500."""
    c = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    op = auth(make_user(roles=("operator",), client=c), client=c)
    v = _upload(c, op, "cobb", gtfs_dir / "us_cobblinc_flex.zip").json()
    url = f"/api/v1/feeds/cobb/versions/{v['id']}/preview"
    before = c.get(url, headers=op).json()
    path = services_of(c).feeds.store.compiled_path(int(v["id"]))
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["__header__"]))
    header["format_version"] = 1
    arrays["__header__"] = np.array(json.dumps(header))
    del arrays["trip_bikes"]
    with path.open("wb") as f:
        np.savez_compressed(f, **arrays)
    r = c.get(url, headers=op)
    assert r.status_code == 200, r.text
    assert r.json() == before and before["features"]
    CompiledTimetable.load(path)  # rewritten in the current format (else ValueError)
