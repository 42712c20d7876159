"""A dispatcher's console action scaled out whose answer from the zone's owner is lost (issue
#10): its outcome is recorded like a booking's and answered, not 503 ``dispatch_busy``.

* The owner saved the action but died before recording it or replying: the asker finds it
  in the zone's save (a reassigned ride, a no-show, a vehicle out of service).
* The owner was busy (the asker answered 503, the action queued): a retry with the same
  ``Idempotency-Key`` is answered the first attempt's outcome once it is handled, and the
  action is applied once (a second "out of service" would be refused ``out_of_service``;
  the idempotency layer records no 503, so the retry reaches the gateway).

Real Redis and PostgreSQL, two in-process apps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatch.scale_out import zone_stream
from tests.app.conftest import A, B, assert_error
from tests.app.test_dispatch_cluster import (
    FLEET,
    RIDES,
    Cluster,
    cluster,
    fresh_pg_url,
    gateway,
    owner_and_asker,
    reply_lost,
    wait_for,
    warm_kernels,
)

# The cluster tests' fixtures: a fresh database per test, apps of one cluster, warm kernels.
__all__ = ["cluster", "fresh_pg_url", "warm_kernels"]

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

D = "/api/v1/dispatcher"


def _second_van(client: TestClient, hb: dict[str, str], zid: str) -> str:
    vid = f"{zid}-van1"
    body = {"vehicle_id": vid, "zone_id": zid, "depot": B, "shift_end": time.time() + 3e4}
    r = client.post(f"{FLEET}/vehicles", json=body, headers=hb)
    assert r.status_code == 201, r.text
    return vid


def test_console_action_saved_but_not_recorded_answers_the_saved_state(
    cluster: Cluster, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    a, b, hb, ha, zid = owner_and_asker(cluster, make_user, auth)
    van1 = _second_van(b, hb, zid)
    ride = b.post(RIDES, json={"request": {"origin": A, "destination": B}}, headers=ha).json()
    rid = ride["ride_id"]
    other = f"{zid}-van0" if ride["vehicle_id"] == van1 else van1
    worker = gateway(a).worker
    silenced: list[str] = []
    no_reply = reply_lost(b)

    async def dies_before_recording(zone_id: str, done: list[Any]) -> None:
        # Saved (the worker saves before on_batch), acked, but neither recorded nor replied.
        for mid, data, _ in done:
            await worker.queue.ack(zone_stream(zone_id), "dispatch", mid)
            silenced.append(str(data.get("op")))
            no_reply(str(data.get("corr", "")))

    worker.on_batch = dies_before_recording
    hd = hb  # the fleet manager is a dispatcher too
    r = b.post(f"{D}/rides/{rid}/reassign", json={"vehicle_id": other}, headers=hd)
    assert r.status_code == 200, r.text
    assert r.json()["ride"]["vehicle_id"] == other
    assert r.json()["audit"]["outcome"] == "done"
    r = b.post(
        f"{D}/vehicles/{ride['vehicle_id']}/service",
        json={"action": "out_of_service", "reason": "flat tyre"},
        headers=hd,
    )
    assert r.status_code == 200, r.text
    assert r.json()["vehicle"]["in_service"] is False
    r = b.post(f"{D}/rides/{rid}/cancel", json={"reason": "called in"}, headers=hd)
    assert r.status_code == 200, r.text
    assert r.json()["ride"]["status"] == "cancelled"
    assert silenced == ["reassign", "vehicle_service", "cancel"]


def test_console_action_retried_with_its_key_answers_the_first_outcome(
    cluster: Cluster, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    a, b, hb, _, zid = owner_and_asker(cluster, make_user, auth)
    van = f"{zid}-van0"
    worker = gateway(a).worker
    lock = worker._lock(zid)
    a.portal.call(lock.acquire)  # type: ignore[union-attr]
    gateway(b).reply_timeout_s = 1.0  # the owner is held: nobody answers in time
    h = {**hb, "Idempotency-Key": "out-1"}
    body = {"action": "out_of_service", "reason": "driver ill"}
    assert_error(b.post(f"{D}/vehicles/{van}/service", json=body, headers=h), 503, "dispatch_busy")
    # Retried while the first is still queued: it waits for that one, sends nothing more.
    assert_error(b.post(f"{D}/vehicles/{van}/service", json=body, headers=h), 503, "dispatch_busy")
    a.portal.call(lock.release)  # type: ignore[union-attr]
    gateway(b).reply_timeout_s = 30.0

    def service_outcomes() -> list[dict[str, Any]]:
        return [o for o in worker.outcomes if o.get("vehicle_id") == van and "moved" in o]

    wait_for(lambda: bool(service_outcomes()))
    # The retry, from either process: the first attempt's outcome, not a second action
    # (which the owner would refuse: the van is out of service already).
    for client in (b, a):
        r = client.post(f"{D}/vehicles/{van}/service", json=body, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["vehicle"]["in_service"] is False
    assert len(service_outcomes()) == 1, worker.outcomes
