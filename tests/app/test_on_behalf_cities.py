"""Booking on a resident's behalf with two cities published (#13): a dispatcher's telephone
booking (``POST /dispatcher/residents/{id}/rides``) and a watcher's (``POST /rides/on-behalf/
{id}``) are booked in the city holding the places; places in two cities answer 422
``different_networks`` as ``GET /plan`` does (it used to be a 409 ``outside_zone``), and the
refusal is audited; places in no city are still the dispatcher's ``outside_zone``. The health
service's own watch-over booking route (in the main process) and a resident's own quote and
booking answer the same."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.app.conftest import TestUser, assert_error
from tests.app.test_dispatcher_cities import _centre, fleets
from tests.app.test_feeds_regions import two_cities

__all__ = ["fleets", "two_cities"]  # the fixtures, used by name

D = "/api/v1/dispatcher"


def _places(c: TestClient) -> dict[str, dict[str, float]]:
    """A point inside each city's on-demand zone (the fixture's squares round the centres)."""
    boxes = {n["network"]: n["bbox"] for n in c.get("/api/v1/network").json()["networks"]}
    out = {}
    for city in ("kawasaki", "sample"):
        lon, lat = _centre(boxes[city])
        out[city] = {"lat": lat - 0.005, "lon": lon - 0.005}
        out[f"{city}2"] = {"lat": lat + 0.005, "lon": lon + 0.005}
    return out


def _request(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
    return {"origin": a, "destination": b, "earliest_pickup": time.time() + 1200}


def _audit(c: TestClient, h: dict[str, str], target: str) -> list[dict[str, Any]]:
    r = c.get(f"{D}/audit", params={"target_id": target}, headers=h)
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


def test_a_telephone_booking_is_in_the_city_of_its_places(
    fleets: dict[str, Any],
    make_user: Callable[..., TestUser],
) -> None:
    c, h = fleets["client"], fleets["h"]
    p = _places(c)
    caller = make_user(display_name="Neva Caller", client=c)
    url = f"{D}/residents/{caller.id}/rides"
    # In Nevada (not the default network, Kawasaki): booked on Nevada's van, the city audited.
    body = {"request": _request(p["sample"], p["sample2"]), "reason": "called at 9:02"}
    r = c.post(url, json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["ride"]["vehicle_id"] == "sample-van"
    assert r.json()["audit"]["details"]["city"] == "sample"
    # Pick-up in Kawasaki, drop-off in Nevada: two cities, as /plan answers them.
    cross = {"request": _request(p["kawasaki"], p["sample"]), "reason": "called at 9:05"}
    err = assert_error(c.post(url, json=cross, headers=h), 422, "different_networks")
    assert err["details"]["networks"] == ["kawasaki", "sample"]
    refused = _audit(c, h, caller.id)[0]
    assert (refused["action"], refused["outcome"]) == ("book_on_behalf", "different_networks")
    assert refused["reason"] == "called at 9:05"
    # Places in no city: no zone holds them (the dispatcher's own refusal, unchanged).
    nowhere = {"request": _request({"lat": 0.0, "lon": 0.0}, {"lat": 0.01, "lon": 0.01})}
    assert_error(c.post(url, json=nowhere, headers=h), 409, "outside_zone")
    assert _audit(c, h, caller.id)[0]["outcome"] == "outside_zone"


def test_a_watchers_booking_is_in_the_city_of_its_places(
    fleets: dict[str, Any],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    c, h = fleets["client"], fleets["h"]
    p = _places(c)
    resident, watcher = make_user(client=c), make_user(client=c)
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    consent = {
        "recipient": {"type": "user", "id": watcher.id},
        "purpose": "watch_over",
        "expires_at": expires,
    }
    r = c.post("/api/v1/health/me/consents", json=consent, headers=auth(resident, c))
    assert r.status_code == 201, r.text
    url = f"/api/v1/rides/on-behalf/{resident.id}"
    hw = auth(watcher, c)
    r = c.post(url, json=_request(p["sample"], p["sample2"]), headers=hw)
    assert r.status_code == 201, r.text
    assert r.json()["vehicle_id"] == "sample-van"
    done = _audit(c, h, resident.id)[0]
    assert (done["action"], done["outcome"]) == ("watch_book_ride", "done")
    assert done["details"]["city"] == "sample"
    err = assert_error(
        c.post(url, json=_request(p["sample"], p["kawasaki2"]), headers=hw),
        422,
        "different_networks",
    )
    assert err["details"]["networks"] == ["sample", "kawasaki"]
    refused = _audit(c, h, resident.id)[0]
    assert (refused["action"], refused["outcome"]) == ("watch_book_ride", "different_networks")
    # Without consent the refusal comes first, whatever the places.
    stranger = auth(make_user(client=c), c)
    assert_error(c.post(url, json=_request(p["sample"], p["kawasaki"]), headers=stranger), 403)
    # The health service's own watch-over route (in this process, on the same gateway).
    watch = f"/api/v1/health/watch/{resident.id}/rides"
    r = c.post(watch, json=_request(p["kawasaki"], p["kawasaki2"]), headers=hw)
    assert r.status_code == 201 and r.json()["vehicle_id"] == "kawasaki-van", r.text
    err = assert_error(
        c.post(watch, json=_request(p["kawasaki"], p["sample2"]), headers=hw),
        422,
        "different_networks",
    )
    assert err["details"]["networks"] == ["kawasaki", "sample"]
    assert_error(c.post(watch, json=_request(p["sample"], p["kawasaki"]), headers=stranger), 403)


def test_a_residents_own_quote_and_booking_are_in_one_city(
    fleets: dict[str, Any],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    """``POST /rides/quote`` and ``POST /rides`` (a request in one step) answer places in two
    cities as ``/plan`` does; within one city they are quoted and booked as before."""
    c = fleets["client"]
    p = _places(c)
    h = auth(make_user(client=c), c)
    cross = _request(p["kawasaki"], p["sample2"])
    err = assert_error(c.post("/api/v1/rides/quote", json=cross, headers=h), 422)
    assert err["code"] == "different_networks"
    assert err["details"]["networks"] == ["kawasaki", "sample"]
    assert_error(
        c.post("/api/v1/rides", json={"request": cross}, headers=h), 422, "different_networks"
    )
    q = c.post("/api/v1/rides/quote", json=_request(p["sample"], p["sample2"]), headers=h)
    assert q.status_code == 200, q.text
    r = c.post("/api/v1/rides", json={"quote_id": q.json()["quote_id"]}, headers=h)
    assert r.status_code == 201 and r.json()["vehicle_id"] == "sample-van", r.text
