"""Contract tests of the event bus, run against both back-ends: in-process and real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from app.events import (
    Event,
    EventBus,
    EventBusClosedError,
    InProcessEventBus,
    InvalidTopicError,
    Message,
    RedisEventBus,
    Subscription,
    create_event_bus,
)
from tests.app.conftest import settings_for

BusFactory = Callable[..., Awaitable[EventBus]]

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]
# Bound of a wait for an event or message that is due (Redis delivers asynchronously, and the
# machine may stall for seconds): a liveness bound, never a speed claim.
DUE_S = 30.0


def _delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait for ``condition`` (asynchronous delivery); fails only after a generous timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture(params=BACKENDS)
async def make_bus(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[BusFactory]:
    """Build started buses of the parametrised back-end; all share one Redis prefix."""
    made: list[EventBus] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    async def factory(**kwargs: int) -> EventBus:
        bus: EventBus
        if request.param == "redis":
            bus = RedisEventBus(url, prefix=redis_prefix, **kwargs)
        else:
            bus = InProcessEventBus(**kwargs)
        await bus.start()
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.close()
    if url:
        _delete_prefix(url, redis_prefix)


@pytest.fixture
async def bus(make_bus: BusFactory) -> EventBus:
    return await make_bus()


async def _drain(sub: Subscription, expect: int = 0, settle: float = 0.2) -> list[Event]:
    """The ``expect`` events due (each within ``DUE_S``), plus any extra arriving within
    ``settle``."""
    out: list[Event] = []
    while True:
        try:
            event = await sub.get(DUE_S if len(out) < expect else settle)
        except TimeoutError:
            return out
        if event is None:
            return out
        out.append(event)


# --- publish / subscribe ---------------------------------------------------------------------
async def test_pattern_subscription_receives_matching_topics(bus: EventBus) -> None:
    async with bus.subscribe(["fleet.*", "public.alerts"]) as sub:
        await bus.publish("fleet.vehicle.v1", {"lat": 42.31, "lon": 140.97})
        await bus.publish("fleet.v2", {"n": 2})
        await bus.publish("public.alerts", {"title": "運休"})
        await bus.publish("public.other", {"n": 4})
        await bus.publish("fleetx.v3", {"n": 5})
        got = await _drain(sub, 3)
    assert [e.topic for e in got] == ["fleet.vehicle.v1", "fleet.v2", "public.alerts"]
    assert got[0].data == {"lat": 42.31, "lon": 140.97}
    assert got[2].data == {"title": "運休"}


async def test_no_cross_talk_between_topics(bus: EventBus) -> None:
    a = bus.subscribe(["user.alice.*"])
    b = bus.subscribe(["user.bob.*"])
    for i in range(5):
        await bus.publish("user.alice.trip", {"i": i})
        await bus.publish("user.bob.trip", {"i": i})
    got_a, got_b = await _drain(a, 5), await _drain(b, 5)
    assert [e.topic for e in got_a] == ["user.alice.trip"] * 5
    assert [e.topic for e in got_b] == ["user.bob.trip"] * 5
    assert [e.data["i"] for e in got_a] == list(range(5))  # order kept
    a.close()
    b.close()


async def test_published_event_is_json_and_ids_unique(bus: EventBus) -> None:
    async with bus.subscribe(["public.*"]) as sub:
        sent = [await bus.publish("public.alerts", {"k": i}) for i in range(20)]
        got = await _drain(sub, 20)
    assert len({e.id for e in sent}) == 20
    assert got == sent  # the subscriber sees exactly what publish returned
    raw = json.loads(json.dumps(sent[0].to_dict()))
    assert Event.from_dict(raw) == sent[0]
    assert raw["time"].endswith("Z")


async def test_every_subscriber_gets_a_copy(make_bus: BusFactory) -> None:
    bus = await make_bus()
    subs = [bus.subscribe(["dispatch.*"]) for _ in range(3)]
    await bus.publish("dispatch.request.r1", {"status": "assigned"})
    for sub in subs:
        event = await sub.get(DUE_S)
        assert event is not None and event.topic == "dispatch.request.r1"
        sub.close()


async def test_invalid_topics_are_rejected(bus: EventBus) -> None:
    for topic in ["", "fleet.*", "a..b", "has space", "x" * 300, ".lead"]:
        with pytest.raises(InvalidTopicError):
            await bus.publish(topic, {})
    for pattern in ["", "a b", "fleet.", "a,b"]:
        with pytest.raises(InvalidTopicError):
            bus.subscribe([pattern])
    with pytest.raises(ValueError, match="at least one"):
        bus.subscribe([])


async def test_bus_survives_subscriber_disconnect(bus: EventBus) -> None:
    stays = bus.subscribe(["fleet.*"])

    async def reader() -> None:
        async with bus.subscribe(["fleet.*"]) as sub:
            async for _ in sub:
                pass

    task = asyncio.create_task(reader())
    await _until(lambda: bus.subscriber_count == 2)
    await bus.publish("fleet.v1", {"n": 1})
    task.cancel()  # a client going away mid-stream
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.subscriber_count == 1
    await bus.publish("fleet.v1", {"n": 2})
    got = await _drain(stays, 2)
    assert [e.data["n"] for e in got] == [1, 2]
    assert await bus.ping()
    stays.close()
    assert bus.subscriber_count == 0


async def test_slow_subscriber_drops_oldest_and_never_blocks(make_bus: BusFactory) -> None:
    bus = await make_bus(queue_size=3)
    slow = bus.subscribe(["feeds.*"])  # never reads while we publish

    async def publish_all() -> None:
        for i in range(50):
            await bus.publish("feeds.status", {"i": i})

    # The publisher is never held up (generous bound: the machine may be loaded).
    await asyncio.wait_for(publish_all(), 60.0)
    await _until(lambda: slow.dropped == 47)  # Redis delivers asynchronously
    got = await _drain(slow, 3)
    assert [e.data["i"] for e in got] == [47, 48, 49]  # newest kept
    assert slow.dropped == 47
    slow.close()


async def test_close_ends_subscriptions_and_ping(make_bus: BusFactory) -> None:
    bus = await make_bus()
    sub = bus.subscribe(["public.*"])
    collected: list[Event] = []

    async def collect() -> None:
        async for e in sub:
            collected.append(e)

    task = asyncio.create_task(collect())
    await bus.publish("public.a", {})
    await _until(lambda: len(collected) == 1)
    assert await bus.ping()
    await bus.close()
    await asyncio.wait_for(task, 30.0)  # iteration ended, no hang
    assert len(collected) == 1
    assert not await bus.ping()
    with pytest.raises(EventBusClosedError):
        await bus.publish("public.a", {})
    with pytest.raises(EventBusClosedError):
        await bus.enqueue("jobs", {})
    with pytest.raises(EventBusClosedError):
        bus.subscribe(["public.*"])
    await bus.close()  # idempotent


# --- work queues -----------------------------------------------------------------------------
async def test_enqueue_read_ack(bus: EventBus) -> None:
    ids = [await bus.enqueue("trips", {"n": i, "name": "室蘭"}) for i in range(3)]
    msgs = await bus.read("trips", "planner", "w1", count=10, block_ms=100)
    assert [m.id for m in msgs] == ids
    assert [m.data["n"] for m in msgs] == [0, 1, 2]
    assert msgs[0].data["name"] == "室蘭"
    assert await bus.pending("trips", "planner") == 3
    assert await bus.read("trips", "planner", "w1", block_ms=0) == []  # no redelivery
    for m in msgs:
        assert await bus.ack("trips", "planner", m.id)
    assert await bus.pending("trips", "planner") == 0
    assert not await bus.ack("trips", "planner", ids[0])  # already done
    assert not await bus.ack("trips", "planner", "1-0")  # never existed
    with pytest.raises(ValueError, match="message id"):
        await bus.ack("trips", "planner", "nonsense")


async def test_read_blocks_until_work_arrives(bus: EventBus) -> None:
    await bus.read("late", "g", "w", block_ms=0)  # create the group first

    async def later() -> None:
        await asyncio.sleep(0.1)
        await bus.enqueue("late", {"x": 1})

    task = asyncio.create_task(later())
    msgs = await bus.read("late", "g", "w", block_ms=int(DUE_S * 1000))
    await task
    assert [m.data for m in msgs] == [{"x": 1}]
    assert await bus.read("late", "g", "w", block_ms=50) == []  # times out empty


async def test_group_created_late_sees_earlier_work_and_groups_are_independent(
    bus: EventBus,
) -> None:
    await bus.enqueue("jobs", {"n": 1})
    await bus.enqueue("jobs", {"n": 2})
    a = await bus.read("jobs", "emissions", "w", block_ms=0)
    b = await bus.read("jobs", "health", "w", block_ms=0)
    assert [m.data["n"] for m in a] == [1, 2]
    assert [m.data["n"] for m in b] == [1, 2]


async def test_dead_consumer_message_is_reclaimed(bus: EventBus) -> None:
    mid = await bus.enqueue("quotes", {"request": "r1"})
    (msg,) = await bus.read("quotes", "dispatch", "dying", block_ms=100)
    assert msg.id == mid
    # 'dying' crashes without acking. Too fresh to steal yet:
    assert await bus.reclaim("quotes", "dispatch", "rescuer", min_idle_ms=60_000) == []
    # Idle for a second: the rescuer takes it over, and with it a fresh idle time, so a third
    # consumer asking right after cannot steal it again. "Right after" is checked, not
    # assumed: when a stall of the loaded machine put a second between the two calls, the
    # third may rightly have taken it, and the rescuer reclaims it from there and tries again.
    loop = asyncio.get_running_loop()
    for _attempt in range(20):
        await asyncio.sleep(1.05)
        started = loop.time()
        reclaimed = await bus.reclaim("quotes", "dispatch", "rescuer", min_idle_ms=1_000)
        assert [(m.id, m.data) for m in reclaimed] == [(mid, {"request": "r1"})]
        stolen = await bus.reclaim("quotes", "dispatch", "third", min_idle_ms=1_000)
        if loop.time() - started < 0.9:
            assert stolen == []  # now owned by the rescuer with a fresh idle time
            break
    else:
        pytest.fail("every attempt was stalled for a second: the check never ran")
    assert await bus.pending("quotes", "dispatch") == 1
    assert await bus.ack("quotes", "dispatch", mid)
    assert await bus.pending("quotes", "dispatch") == 0


async def test_deliveries_are_counted(bus: EventBus) -> None:
    await bus.enqueue("q", {"n": 1})
    (first,) = await bus.read("q", "g", "a", block_ms=100)
    assert first.deliveries == 1
    counts = []
    for consumer in ("b", "c"):
        await asyncio.sleep(0.06)
        (again,) = await bus.reclaim("q", "g", consumer, min_idle_ms=50)
        assert again.id == first.id and again.data == {"n": 1}
        counts.append(again.deliveries)
    assert counts == [2, 3]


async def test_poison_message_goes_to_dead_letter_queue(bus: EventBus) -> None:
    """A message that kills every consumer is retried max_deliveries times, then parked."""
    poison = await bus.enqueue("jobs", {"bad": True})
    await bus.read("jobs", "g", "victim-0", block_ms=100)  # delivery 1, consumer dies
    for i in range(1, 3):  # deliveries 2 and 3 also die
        await asyncio.sleep(0.06)
        (msg,) = await bus.reclaim("jobs", "g", f"victim-{i}", min_idle_ms=50)
        assert msg.id == poison
    await asyncio.sleep(0.06)
    good = await bus.enqueue("jobs", {"bad": False})
    seen = []
    async for msg in bus.consume(
        "jobs", "g", "survivor", block_ms=100, reclaim_idle_ms=50, max_deliveries=3
    ):
        seen.append(msg.id)
        await bus.ack("jobs", "g", msg.id)
        break
    assert seen == [good]  # the poison message was not handed out a fourth time
    assert await bus.pending("jobs", "g") == 0
    (dead,) = await bus.read("jobs.dead", "ops", "human", block_ms=100)
    assert dead.data == {
        "stream": "jobs",
        "group": "g",
        "id": poison,
        "deliveries": 4,
        "data": {"bad": True},
    }


async def test_consume_reclaims_then_reads_new(bus: EventBus) -> None:
    first = await bus.enqueue("work", {"n": 1})
    await bus.read("work", "g", "dead", block_ms=100)  # delivered, never acked
    await asyncio.sleep(0.1)
    second = await bus.enqueue("work", {"n": 2})
    seen: list[str] = []
    async for msg in bus.consume("work", "g", "alive", block_ms=100, reclaim_idle_ms=50):
        seen.append(msg.id)
        await bus.ack("work", "g", msg.id)
        if len(seen) == 2:
            break
    assert seen == [first, second]
    assert await bus.pending("work", "g") == 0


async def test_two_consumers_share_without_duplicates(bus: EventBus) -> None:
    sent = {await bus.enqueue("bulk", {"n": i}) for i in range(60)}
    done: dict[str, list[str]] = {"w1": [], "w2": []}
    acked = [0]

    async def worker(name: str) -> None:
        async for msg in bus.consume("bulk", "g", name, count=5, block_ms=100):
            done[name].append(msg.id)
            await asyncio.sleep(0)  # handling work lets the other worker run
            await bus.ack("bulk", "g", msg.id)
            acked[0] += 1

    tasks = [asyncio.create_task(worker(n)) for n in done]
    # Until every ack has come back (not a fixed pause: an ack still on its way to Redis when
    # the workers are cancelled would leave its message pending).
    await _until(lambda: acked[0] >= 60 or any(t.done() for t in tasks), 60)
    for t in tasks:
        t.cancel()
    # Bounded: a worker that outlived its cancellation fails here, not at the suite's timeout.
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    all_ids = done["w1"] + done["w2"]
    assert len(all_ids) == len(set(all_ids)) == 60  # nothing twice, nothing lost
    assert set(all_ids) == sent
    assert done["w1"] and done["w2"]  # the work was shared
    assert await bus.pending("bulk", "g") == 0


async def test_cancelling_a_consumer_stops_it_even_when_a_read_swallowed_it() -> None:
    """redis-py now and then swallows a cancellation delivered in a blocking read (the read
    returns, the task runs on): ``consume`` must stop anyway, or stopping a worker hangs."""
    reading = asyncio.Event()

    class SwallowingBus(InProcessEventBus):
        async def read(
            self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
        ) -> list[Message]:
            reading.set()
            with contextlib.suppress(asyncio.CancelledError):  # as redis-py sometimes does
                await asyncio.sleep(block_ms / 1000)
            return []

    bus = SwallowingBus()
    await bus.start()

    async def worker() -> None:
        async for _ in bus.consume("q", "g", "c", block_ms=100, reclaim_idle_ms=None):
            pass

    task = asyncio.create_task(worker())
    await reading.wait()  # the worker is inside a read: the cancellation lands there
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=DUE_S)
    assert done and task.cancelled()
    await bus.close()


async def test_invalid_queue_names_rejected(bus: EventBus) -> None:
    with pytest.raises(ValueError, match="stream"):
        await bus.enqueue("bad name", {})
    with pytest.raises(ValueError, match="group"):
        await bus.read("ok", "bad*group", "c", block_ms=0)
    with pytest.raises(ValueError, match="consumer"):
        await bus.read("ok", "g", "", block_ms=0)


async def test_in_process_stream_is_trimmed_to_maxlen() -> None:
    bus = InProcessEventBus(maxlen=5)
    await bus.start()
    ids = [await bus.enqueue("s", {"n": i}) for i in range(10)]
    msgs = await bus.read("s", "g", "c", count=100, block_ms=0)
    assert [m.id for m in msgs] == ids[5:]
    await bus.close()


# --- Redis only: several processes share one bus -------------------------------------------
@pytest.mark.redis
async def test_redis_events_reach_other_bus_instances(redis_url: str, redis_prefix: str) -> None:
    """Two buses = two processes: an event published on one reaches the other's subscriber."""
    one = RedisEventBus(redis_url, prefix=redis_prefix)
    two = RedisEventBus(redis_url, prefix=redis_prefix)
    other = RedisEventBus(redis_url, prefix=redis_prefix + "other:")
    for b in (one, two, other):
        await b.start()
    try:
        sub_two = two.subscribe(["public.*"])
        sub_other = other.subscribe(["*"])
        sent = await one.publish("public.alerts", {"title": "delay"})
        assert await sub_two.get(DUE_S) == sent
        assert await _drain(sub_other) == []  # another prefix = another deployment
        # A queue filled on one is consumed on the other.
        mid = await one.enqueue("jobs", {"n": 1})
        (msg,) = await two.read("jobs", "g", "c", block_ms=int(DUE_S * 1000))
        assert msg.id == mid
    finally:
        for b in (one, two, other):
            await b.close()
        _delete_prefix(redis_url, redis_prefix)


@pytest.mark.redis
async def test_redis_prefix_is_literal_not_a_glob(redis_url: str, redis_prefix: str) -> None:
    glob_like = RedisEventBus(redis_url, prefix=redis_prefix + "[ab]:")
    plain = RedisEventBus(redis_url, prefix=redis_prefix + "a:")  # '[ab]' as a glob matches it
    for b in (glob_like, plain):
        await b.start()
    try:
        sub_glob, sub_plain = glob_like.subscribe(["*"]), plain.subscribe(["*"])
        await plain.publish("public.a", {"from": "plain"})
        await glob_like.publish("public.a", {"from": "glob"})
        assert [e.data["from"] for e in await _drain(sub_plain, 1)] == ["plain"]
        assert [e.data["from"] for e in await _drain(sub_glob, 1)] == ["glob"]
    finally:
        for b in (glob_like, plain):
            await b.close()


@pytest.mark.redis
async def test_redis_group_recreated_when_stream_deleted(redis_url: str, redis_prefix: str) -> None:
    import redis

    bus = RedisEventBus(redis_url, prefix=redis_prefix)
    await bus.start()
    try:
        await bus.enqueue("jobs", {"n": 1})
        assert len(await bus.read("jobs", "g", "c", block_ms=0)) == 1
        client = redis.Redis.from_url(redis_url)
        client.delete(f"{redis_prefix}q:jobs")  # e.g. an operator flushed it
        client.close()
        assert await bus.read("jobs", "g", "c", block_ms=0) == []
        await bus.enqueue("jobs", {"n": 2})
        assert [m.data for m in await bus.read("jobs", "g", "c", block_ms=0)] == [{"n": 2}]
    finally:
        await bus.close()
        _delete_prefix(redis_url, redis_prefix)


@pytest.mark.redis
async def test_redis_listener_survives_lost_connection(redis_url: str, redis_prefix: str) -> None:
    """Redis drops the pub/sub connection (restart, failover): events flow again after."""
    import redis

    bus = RedisEventBus(redis_url, prefix=redis_prefix)
    await bus.start()
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        sub = bus.subscribe(["public.*"])
        await bus.publish("public.a", {"n": 1})
        assert (await sub.get(DUE_S)).data == {"n": 1}  # type: ignore[union-attr]
        ours = [
            c for c in admin.client_list() if c["name"] == f"{redis_prefix}bus" and c["psub"] != "0"
        ]
        assert len(ours) == 1
        admin.client_kill_filter(_id=ours[0]["id"])
        got = None
        deadline = asyncio.get_running_loop().time() + 60  # liveness bound (reconnect backoff)
        i = 0
        while got is None and asyncio.get_running_loop().time() < deadline:
            # Pub/sub is at-most-once: publish until the listener is back.
            await bus.publish("public.a", {"n": 100 + i})
            i += 1
            with contextlib.suppress(TimeoutError):
                got = await sub.get(0.1)
        assert got is not None and got.data["n"] >= 100
        assert await bus.ping()
        sub.close()
    finally:
        admin.close()
        await bus.close()


@pytest.mark.redis
async def test_redis_unreachable_fails_start_cleanly() -> None:
    bus = RedisEventBus("redis://127.0.0.1:1/0")
    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        await bus.start()
    assert not await bus.ping()


def test_create_event_bus_picks_backend(redis_url: str, tmp_path: Path) -> None:
    assert isinstance(create_event_bus(settings_for(tmp_path)), InProcessEventBus)
    bus = create_event_bus(
        settings_for(tmp_path, redis_url=redis_url, redis_prefix="p:", event_stream_maxlen=7)
    )
    assert isinstance(bus, RedisEventBus)
    assert bus.prefix == "p:" and bus.maxlen == 7
