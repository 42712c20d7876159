"""In-process event bus: one Python process, asyncio only (development, tests, single node).

Same semantics as :mod:`app.events.redis_bus`, including pending messages, acks and reclaim
of messages left idle by a dead consumer, so code written against one runs on the other.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from app.events.bus import EventBus, EventBusClosedError
from app.events.model import Event, Message

__all__ = ["InProcessEventBus"]


@dataclass(slots=True)
class _Pending:
    consumer: str
    since: float  # time.monotonic() of the last delivery
    deliveries: int = 1


@dataclass(slots=True)
class _Group:
    cursor: int  # absolute index of the next never-delivered entry
    pending: dict[str, _Pending] = field(default_factory=dict)  # insertion = delivery order


@dataclass(slots=True)
class _Stream:
    entries: deque[tuple[str, dict[str, Any]]] = field(default_factory=deque)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: int = 0  # absolute index of entries[0]; grows as the stream is trimmed
    groups: dict[str, _Group] = field(default_factory=dict)
    last_ms: int = 0
    last_seq: int = -1
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class InProcessEventBus(EventBus):
    """:class:`EventBus` held in this process's memory.

    Parameters
    ----------
    maxlen
        Streams keep at most this many entries (oldest trimmed, as ``XADD MAXLEN``).
    queue_size
        Bound of each subscriber's queue (drop-oldest, see :mod:`app.events.subscription`).
    """

    def __init__(self, *, maxlen: int = 100_000, queue_size: int = 1000) -> None:
        super().__init__(queue_size)
        self.maxlen = maxlen
        self._streams: dict[str, _Stream] = {}
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._started = False
        self._fanout.close_all()
        for s in self._streams.values():
            s.arrived.set()  # wake blocked readers; they see the bus closed

    @property
    def is_open(self) -> bool:
        return self._started

    async def ping(self) -> bool:
        return self._started

    def _require_started(self) -> None:
        if not self._started:
            raise EventBusClosedError("event bus is not started")

    async def publish(self, topic: str, data: dict[str, Any]) -> Event:
        self._require_started()
        event = Event.new(self._check_topic(topic), data)
        self._fanout.deliver(event)
        return event

    # --- work queues ------------------------------------------------------------------------
    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[self._check_name("stream", name)] = _Stream()
        return stream

    def _group(self, stream: _Stream, name: str) -> _Group:
        group = stream.groups.get(name)
        if group is None:
            # Like XGROUP CREATE ... 0: a new group sees the whole retained stream.
            group = stream.groups[self._check_name("group", name)] = _Group(cursor=stream.base)
        return group

    async def enqueue(self, stream: str, data: dict[str, Any]) -> str:
        self._require_started()
        s = self._stream(stream)
        now_ms = int(time.time() * 1000)
        if now_ms > s.last_ms:
            s.last_ms, s.last_seq = now_ms, 0
        else:
            s.last_seq += 1
        mid = f"{s.last_ms}-{s.last_seq}"
        s.entries.append((mid, data))
        s.by_id[mid] = data
        while len(s.entries) > self.maxlen:
            old, _ = s.entries.popleft()
            del s.by_id[old]
            s.base += 1
        s.arrived.set()
        s.arrived = asyncio.Event()
        return mid

    async def read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[Message]:
        self._require_started()
        self._check_name("consumer", consumer)
        s = self._stream(stream)
        g = self._group(s, group)
        deadline = time.monotonic() + block_ms / 1000
        while True:
            arrived = s.arrived  # grabbed before checking, so no enqueue can slip between
            g.cursor = max(g.cursor, s.base)
            start = g.cursor - s.base
            taken = [s.entries[i] for i in range(start, min(start + count, len(s.entries)))]
            if taken:
                g.cursor += len(taken)
                now = time.monotonic()
                for mid, _ in taken:
                    g.pending[mid] = _Pending(consumer, now)
                return [Message(mid, stream, data) for mid, data in taken]
            remaining = deadline - time.monotonic()
            if block_ms <= 0 or remaining <= 0:
                return []
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except TimeoutError:
                return []
            self._require_started()

    async def ack(self, stream: str, group: str, message_id: str) -> bool:
        self._require_started()
        self._check_message_id(message_id)
        g = self._group(self._stream(stream), group)
        return g.pending.pop(message_id, None) is not None

    async def reclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[Message]:
        self._require_started()
        self._check_name("consumer", consumer)
        s = self._stream(stream)
        g = self._group(s, group)
        now = time.monotonic()
        out: list[Message] = []
        for mid in list(g.pending):
            if len(out) >= count:
                break
            p = g.pending[mid]
            if (now - p.since) * 1000 < min_idle_ms:
                continue
            data = s.by_id.get(mid)
            if data is None:  # trimmed away meanwhile: drop it, as XAUTOCLAIM does
                del g.pending[mid]
                continue
            # Re-insert so that pending order stays delivery order.
            del g.pending[mid]
            g.pending[mid] = _Pending(consumer, now, p.deliveries + 1)
            out.append(Message(mid, stream, data, p.deliveries + 1))
        return out

    async def pending(self, stream: str, group: str) -> int:
        self._require_started()
        return len(self._group(self._stream(stream), group).pending)
