"""The :class:`EventBus` interface shared by the in-process and Redis back-ends.

Two kinds of traffic:

* **Fan-out events** (``publish`` / ``subscribe``): every current subscriber whose pattern
  matches the topic gets a copy, in every process that shares the bus. Nothing is stored:
  a subscriber only sees events published while it is subscribed.
* **Durable work queues** (``enqueue`` / ``read`` / ``ack`` / ``reclaim``, or ``consume`` which
  loops over them): each message goes to exactly one consumer of a consumer group and stays
  *pending* until acked. A message left pending by a consumer that died is handed to another
  consumer once it has been idle ``min_idle_ms`` (Redis ``XAUTOCLAIM``), so nothing is lost.
  A new group starts at the beginning of the stream, so work enqueued before the first worker
  started is still done.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from app.events.model import Event, Message
from app.events.subscription import Fanout, Subscription
from app.events.topics import check_pattern, check_topic

__all__ = ["EventBus", "EventBusClosedError"]

DEFAULT_RECLAIM_IDLE_MS = 60_000
DEFAULT_MAX_DELIVERIES = 5
DEAD_LETTER_SUFFIX = ".dead"
log = logging.getLogger("tsunagu.events")


def _reraise_swallowed_cancellation() -> None:
    """Raise ``CancelledError`` if this task was asked to cancel yet is still running.

    redis-py (8.1 on Python 3.11) now and then swallows a cancellation delivered during a
    blocking stream read (2 of 300 cancels of an ``XREADGROUP BLOCK`` loop here): the read
    returns and the task runs on with its cancellation pending (``Task.cancelling()``).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_MESSAGE_ID_RE = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


class EventBusClosedError(RuntimeError):
    """The bus was used before ``start()`` or after ``close()``."""


class EventBus(abc.ABC):
    """Publish/subscribe events and durable work queues (see the module docstring)."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._fanout = Fanout(queue_size)

    # --- lifecycle --------------------------------------------------------------------------
    @abc.abstractmethod
    async def start(self) -> None:
        """Connect (idempotent). After it returns, published events reach ``subscribe``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every subscription and the connections (idempotent)."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Whether ``start()`` has run and ``close()`` has not."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """Whether the bus is started and its back-end answers (for /healthz)."""

    # --- fan-out events -------------------------------------------------------------------
    @abc.abstractmethod
    async def publish(self, topic: str, data: dict[str, Any]) -> Event:
        """Publish ``data`` on ``topic`` to all subscribers (all processes); return the event."""

    def subscribe(self, patterns: list[str]) -> Subscription:
        """Subscribe to topics matching any of ``patterns`` (glob: ``fleet.*``).

        The subscription is live when this returns. Use it as an async context manager and
        async iterator; close it (or leave the ``async with``) to unsubscribe.

        Raises
        ------
        EventBusClosedError
            If the bus is not started.
        """
        if not self.is_open:
            raise EventBusClosedError("event bus is not started")
        return self._fanout.add(patterns)

    @property
    def subscriber_count(self) -> int:
        """Number of open local subscriptions."""
        return len(self._fanout)

    # --- work queues ----------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue(self, stream: str, data: dict[str, Any]) -> str:
        """Append a message to the work queue ``stream``; return its id."""

    @abc.abstractmethod
    async def read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[Message]:
        """Up to ``count`` never-delivered messages for ``consumer`` of ``group``.

        Waits at most ``block_ms`` for one (0 = do not wait). The messages become pending
        (owned by ``consumer``) until acked.
        """

    @abc.abstractmethod
    async def ack(self, stream: str, group: str, message_id: str) -> bool:
        """Mark a message done; ``False`` if it was not pending in ``group``."""

    @abc.abstractmethod
    async def reclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[Message]:
        """Take over up to ``count`` messages pending for at least ``min_idle_ms`` in ``group``.

        They become pending for ``consumer`` (idle time restarts), like Redis ``XAUTOCLAIM``.
        """

    @abc.abstractmethod
    async def pending(self, stream: str, group: str) -> int:
        """Number of messages delivered to ``group`` and not yet acked."""

    async def consume(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        count: int = 10,
        block_ms: int = 1000,
        reclaim_idle_ms: int | None = DEFAULT_RECLAIM_IDLE_MS,
        max_deliveries: int | None = DEFAULT_MAX_DELIVERIES,
    ) -> AsyncIterator[Message]:
        """Yield messages for ``consumer`` forever: reclaimed stale ones first, then new ones.

        The caller must ``ack`` each message once handled; an un-acked message is redelivered
        to some consumer of the group after ``reclaim_idle_ms`` (``None`` disables reclaim).
        A message already delivered ``max_deliveries`` times (it keeps killing its consumers)
        is not retried again but moved to the dead-letter queue ``{stream}.dead`` (payload
        ``{"stream", "group", "id", "deliveries", "data"}``) and acked. Stop by breaking out of
        the loop or cancelling the task.
        """
        while True:
            # Between reads: a cancellation a read swallowed still stops the loop.
            _reraise_swallowed_cancellation()
            if reclaim_idle_ms is not None:
                for msg in await self.reclaim(
                    stream, group, consumer, min_idle_ms=reclaim_idle_ms, count=count
                ):
                    if max_deliveries is not None and msg.deliveries > max_deliveries:
                        await self._dead_letter(msg, group)
                        continue
                    yield msg
            for msg in await self.read(stream, group, consumer, count=count, block_ms=block_ms):
                yield msg

    async def _dead_letter(self, msg: Message, group: str) -> None:
        await self.enqueue(
            msg.stream + DEAD_LETTER_SUFFIX,
            {
                "stream": msg.stream,
                "group": group,
                "id": msg.id,
                "deliveries": msg.deliveries,
                "data": msg.data,
            },
        )
        await self.ack(msg.stream, group, msg.id)
        log.warning(
            "dead-lettered message %s of %s/%s after %d deliveries",
            msg.id,
            msg.stream,
            group,
            msg.deliveries,
        )

    # --- helpers for the back-ends -----------------------------------------------------------
    @staticmethod
    def _check_topic(topic: str) -> str:
        return check_topic(topic)

    @staticmethod
    def _check_name(kind: str, name: str) -> str:
        """Stream, group and consumer names follow the topic alphabet."""
        try:
            return check_topic(name)
        except ValueError:
            raise ValueError(f"invalid {kind} name {name!r}") from None

    @staticmethod
    def _check_message_id(message_id: str) -> str:
        if not isinstance(message_id, str) or not _MESSAGE_ID_RE.match(message_id):
            raise ValueError(f"invalid message id {message_id!r}")
        return message_id

    @staticmethod
    def _check_patterns(patterns: list[str]) -> list[str]:
        return [check_pattern(p) for p in patterns]
