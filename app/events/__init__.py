"""Live events: fan-out publish/subscribe and durable work queues, in-process or over Redis.

``create_event_bus(settings)`` picks the back-end: Redis when ``settings.redis_url`` is set
(events reach every process), in-process otherwise. Who may subscribe to which topics is
decided in :mod:`app.events.visibility`.

Topic conventions (dotted; letters, digits, ``_``, ``-``, ``:`` per word):

* ``public.alerts`` — service alerts (``POST /api/v1/events/alerts``);
* ``user.{user_id}.ride`` and other ``user.{user_id}.*`` — one rider's own updates;
* ``fleet.vehicle.{vehicle_id}`` — vehicle positions and plans; ``dispatch.*`` — requests;
* ``feeds.*`` — feed import / realtime status for operators.

Usage::

    bus = create_event_bus(settings)
    await bus.start()
    async with bus.subscribe(["fleet.*"]) as sub:
        async for event in sub: ...
    await bus.publish("fleet.vehicle.v1", {"lat": 42.31, "lon": 140.97})
    await bus.enqueue("reoptimise", {"zone": "muroran"})
    async for msg in bus.consume("reoptimise", "optimisers", "worker-1"):
        ...  # handle, then
        await bus.ack("reoptimise", "optimisers", msg.id)
"""

from __future__ import annotations

from app.events.bus import EventBus, EventBusClosedError
from app.events.memory import InProcessEventBus
from app.events.model import Event, Message
from app.events.redis_bus import RedisEventBus
from app.events.subscription import Subscription
from app.events.topics import InvalidTopicError, matches
from app.settings import Settings

__all__ = [
    "Event",
    "EventBus",
    "EventBusClosedError",
    "InProcessEventBus",
    "InvalidTopicError",
    "Message",
    "RedisEventBus",
    "Subscription",
    "create_event_bus",
    "matches",
]


def create_event_bus(settings: Settings) -> EventBus:
    """The bus for ``settings``: Redis if ``redis_url`` is set, else in-process. Not started."""
    if settings.redis_url:
        return RedisEventBus(
            settings.redis_url,
            prefix=settings.redis_prefix,
            maxlen=settings.event_stream_maxlen,
            queue_size=settings.event_subscriber_queue,
        )
    return InProcessEventBus(
        maxlen=settings.event_stream_maxlen, queue_size=settings.event_subscriber_queue
    )
