"""Redis event bus: events fan out to every process through pub/sub, work queues are streams.

* ``publish`` → ``PUBLISH {prefix}ev:{topic}``. Each process holds **one** pub/sub connection
  with ``PSUBSCRIBE {prefix}ev:*`` and hands events to its local subscribers (pattern matching
  happens locally, so thousands of SSE clients cost one Redis connection, not thousands).
  An event published by this process also comes back through Redis, so local and remote
  subscribers see exactly one copy, in the same order.
* Work queues: ``XADD {prefix}q:{stream} MAXLEN ~ maxlen``; groups are created with
  ``XGROUP CREATE ... 0 MKSTREAM``; ``XREADGROUP``, ``XACK``, ``XAUTOCLAIM``, ``XPENDING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from app.events.bus import EventBus, EventBusClosedError
from app.events.model import Event, Message

__all__ = ["RedisEventBus"]

log = logging.getLogger("tsunagu.events")

_FIELD = "d"  # each stream entry holds its JSON payload in one field


def _glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis glob pattern (a prefix may hold ``*`` or ``[``)."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


class RedisEventBus(EventBus):
    """:class:`EventBus` over a Redis server shared by every process of the deployment.

    Parameters
    ----------
    url
        ``redis://host:port/db``.
    prefix
        Prefix of every key and channel, so several deployments or test runs share a server.
    maxlen
        Approximate bound of each work-queue stream (``XADD MAXLEN ~``).
    queue_size
        Bound of each local subscriber's queue (drop-oldest).
    """

    def __init__(
        self, url: str, *, prefix: str = "tsunagu:", maxlen: int = 100_000, queue_size: int = 1000
    ) -> None:
        super().__init__(queue_size)
        self.url = url
        self.prefix = prefix
        self.maxlen = maxlen
        self._channel_prefix = f"{prefix}ev:"
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._groups: set[tuple[str, str]] = set()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._redis is not None:
            return
        # The name lets operators spot (and tests kill) this bus's connections in CLIENT LIST.
        client = aioredis.Redis.from_url(
            self.url,
            decode_responses=True,
            client_name=re.sub(r"[^A-Za-z0-9:_.-]", "_", f"{self.prefix}bus"),
        )
        try:
            await client.ping()
            pubsub = client.pubsub()
            await pubsub.psubscribe(_glob_escape(self._channel_prefix) + "*")
            # Wait for the server's confirmation: from here on no published event is missed.
            while True:
                msg = await pubsub.get_message(timeout=5.0)
                if msg is None:
                    raise RedisError("no PSUBSCRIBE confirmation from Redis")
                if msg["type"] == "psubscribe":
                    break
        except BaseException:
            await client.aclose()
            raise
        self._redis, self._pubsub = client, pubsub
        self._listener = asyncio.create_task(self._listen(), name="tsunagu-events-listener")

    async def close(self) -> None:
        self._fanout.close_all()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None

    @property
    def is_open(self) -> bool:
        return self._redis is not None

    async def ping(self) -> bool:
        if self._redis is None or self._listener is None or self._listener.done():
            return False
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise EventBusClosedError("event bus is not started")
        return self._redis

    async def _listen(self) -> None:
        """Hand every event from Redis to the local subscribers; survive connection loss."""
        delay = 0.1
        while True:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                # redis-py reconnects and re-subscribes on the next read.
                log.warning("event listener lost Redis (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if msg is None or msg.get("type") != "pmessage":
                continue
            try:
                event = Event.from_dict(json.loads(msg["data"]))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring malformed event on %s", msg.get("channel"))
                continue
            self._fanout.deliver(event)

    # --- fan-out ----------------------------------------------------------------------------
    async def publish(self, topic: str, data: dict[str, Any]) -> Event:
        event = Event.new(self._check_topic(topic), data)
        payload = json.dumps(event.to_dict(), separators=(",", ":"))
        await self._client().publish(self._channel_prefix + topic, payload)
        return event

    # --- work queues ------------------------------------------------------------------------
    def _key(self, stream: str) -> str:
        return f"{self.prefix}q:{self._check_name('stream', stream)}"

    async def _ensure_group(self, stream: str, group: str, *, force: bool = False) -> str:
        key = self._key(stream)
        if force or (stream, group) not in self._groups:
            try:
                # id 0: a new group also gets work enqueued before its first worker started.
                await self._client().xgroup_create(
                    key, self._check_name("group", group), id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add((stream, group))
        return key

    async def _with_group(self, stream: str, group: str, op: Any) -> Any:
        """Run ``op(key)``; if the stream or group vanished (NOGROUP), recreate it once."""
        key = await self._ensure_group(stream, group)
        try:
            return await op(key)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            key = await self._ensure_group(stream, group, force=True)
            return await op(key)

    @staticmethod
    def _message(stream: str, mid: str, fields: dict[str, str] | None) -> Message | None:
        if not fields or _FIELD not in fields:
            return None  # entry trimmed away while pending
        return Message(mid, stream, json.loads(fields[_FIELD]))

    async def enqueue(self, stream: str, data: dict[str, Any]) -> str:
        payload = json.dumps(data, separators=(",", ":"))
        mid = await self._client().xadd(
            self._key(stream), {_FIELD: payload}, maxlen=self.maxlen, approximate=True
        )
        return str(mid)

    async def enqueue_recorded(
        self, stream: str, data: dict[str, Any], record: tuple[str, str, str]
    ) -> str:
        """Enqueue ``data`` and set ``record`` = (hash key, field, value; the key is used as
        given) in one MULTI/EXEC transaction: both happen or neither, so a record never
        speaks for a message that is not in the stream (a booking shown pending that no
        owner will ever handle) whatever fails in between."""
        payload = json.dumps(data, separators=(",", ":"))
        key, field, value = record
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.hset(key, field, value)
            pipe.xadd(self._key(stream), {_FIELD: payload}, maxlen=self.maxlen, approximate=True)
            _, mid = await pipe.execute()
        return str(mid)

    async def read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[Message]:
        self._check_name("consumer", consumer)

        async def op(key: str) -> Any:
            return await self._client().xreadgroup(
                group, consumer, {key: ">"}, count=count, block=block_ms if block_ms > 0 else None
            )

        reply = await self._with_group(stream, group, op)
        out: list[Message] = []
        for _key, entries in reply or []:
            for mid, fields in entries:
                msg = self._message(stream, mid, fields)
                if msg is not None:
                    out.append(msg)
        return out

    async def ack(self, stream: str, group: str, message_id: str) -> bool:
        self._check_message_id(message_id)

        async def op(key: str) -> Any:
            return await self._client().xack(key, group, message_id)

        return int(await self._with_group(stream, group, op)) > 0

    async def reclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[Message]:
        self._check_name("consumer", consumer)
        out: list[Message] = []
        start = "0-0"
        while len(out) < count:

            async def op(key: str, start: str = start) -> Any:
                return await self._client().xautoclaim(
                    key, group, consumer, min_idle_ms, start_id=start, count=count - len(out)
                )

            reply = await self._with_group(stream, group, op)
            start, entries = reply[0], reply[1]
            for mid, fields in entries:
                msg = self._message(stream, mid, fields)
                if msg is not None:
                    out.append(msg)
            if start == "0-0":
                break
        if not out:
            return out
        # XAUTOCLAIM counted the delivery; read the counts back (one round trip).
        key = self._key(stream)
        async with self._client().pipeline(transaction=False) as pipe:
            for msg in out:
                pipe.xpending_range(key, group, min=msg.id, max=msg.id, count=1)
            counts = await pipe.execute()
        return [
            dataclasses.replace(msg, deliveries=int(info[0]["times_delivered"])) if info else msg
            for msg, info in zip(out, counts, strict=True)
        ]

    async def pending(self, stream: str, group: str) -> int:
        async def op(key: str) -> Any:
            return await self._client().xpending(key, group)

        info = await self._with_group(stream, group, op)
        return int(info["pending"])
