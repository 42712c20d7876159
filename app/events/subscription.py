"""Local fan-out: bounded per-subscriber queues that never block the publisher.

Both back-ends deliver events through :class:`Fanout` (the Redis back-end after the event came
back from Redis pub/sub). **Slow-subscriber policy: drop-oldest.** Each subscription holds at
most ``maxsize`` undelivered events; when a new one arrives on a full queue the oldest is
discarded and :attr:`Subscription.dropped` is incremented. Live events (positions, alerts)
are superseded by newer ones, so keeping the newest is the useful choice, and a publisher is
never slowed by a consumer it does not know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

from app.events.model import Event
from app.events.topics import check_pattern, matches

__all__ = ["Fanout", "Subscription"]

DEFAULT_QUEUE_SIZE = 1000


class _Closed:
    """Sentinel put into a queue to end iteration."""


_CLOSED = _Closed()


class Subscription:
    """An open subscription: an async iterator of matching :class:`Event` s.

    Use as ``async with bus.subscribe(["fleet.*"]) as sub: async for event in sub: ...``. The
    subscription is live as soon as ``subscribe`` returns (before ``__aenter__``), so an event
    published right after ``subscribe`` is not missed.
    """

    def __init__(self, fanout: Fanout, patterns: tuple[str, ...], maxsize: int) -> None:
        self.patterns = patterns
        self.dropped = 0
        self._fanout = fanout
        self._queue: asyncio.Queue[Event | _Closed] = asyncio.Queue(maxsize=maxsize)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def wants(self, topic: str) -> bool:
        return any(matches(p, topic) for p in self.patterns)

    def offer(self, item: Event | _Closed) -> None:
        """Enqueue without ever blocking: on a full queue drop the oldest event."""
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except asyncio.QueueEmpty:  # pragma: no cover - raced by a consumer
                    pass

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or ``None`` if the subscription is closed.

        Raises
        ------
        TimeoutError
            If ``timeout`` seconds pass without an event.
        """
        if self._closed and self._queue.empty():
            return None
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(item, _Closed):
            return None
        return item

    def close(self) -> None:
        """Unregister; iteration ends after the events already queued. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fanout.remove(self)
        self.offer(_CLOSED)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Fanout:
    """The set of local subscriptions of one bus, and delivery of an event to the matching ones."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subs: set[Subscription] = set()

    def add(self, patterns: Iterable[str]) -> Subscription:
        checked = tuple(check_pattern(p) for p in patterns)
        if not checked:
            raise ValueError("subscribe needs at least one topic pattern")
        sub = Subscription(self, checked, self.queue_size)
        self._subs.add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def deliver(self, event: Event) -> int:
        """Queue ``event`` for every matching subscription; return how many received it."""
        n = 0
        for sub in list(self._subs):
            if sub.wants(event.topic):
                sub.offer(event)
                n += 1
        return n

    def close_all(self) -> None:
        for sub in list(self._subs):
            sub.close()

    def __len__(self) -> int:
        return len(self._subs)
