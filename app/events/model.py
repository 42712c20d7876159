"""The two things that travel on the bus: fan-out :class:`Event` and queued work :class:`Message`."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Event", "Message", "new_event_id"]


def new_event_id() -> str:
    """A unique id that sorts by creation time: 13 digits of epoch ms + 12 random hex digits."""
    return f"{int(time.time() * 1000):013d}-{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class Event:
    """A fan-out event: delivered to every current subscriber whose pattern matches ``topic``.

    Attributes
    ----------
    id
        Unique, time-sortable id (see :func:`new_event_id`).
    topic
        Concrete dotted topic name, e.g. ``public.alerts``.
    time
        ISO 8601 UTC timestamp of publication.
    data
        JSON-serialisable payload.
    """

    id: str
    topic: str
    time: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, topic: str, data: dict[str, Any]) -> Event:
        return cls(
            id=new_event_id(),
            topic=topic,
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            data=data,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "time": self.time, "data": self.data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        return cls(
            id=str(raw["id"]), topic=str(raw["topic"]), time=str(raw["time"]), data=raw["data"]
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of a durable work queue, delivered to one consumer of a group until acked.

    Attributes
    ----------
    id
        Stream entry id (``<ms>-<seq>``, as Redis streams); pass it to ``ack``.
    stream
        Name of the work queue.
    data
        JSON-serialisable payload given to ``enqueue``.
    deliveries
        How many times it has been handed to a consumer (1 on first delivery; reclaims count).
    """

    id: str
    stream: str
    data: dict[str, Any]
    deliveries: int = 1
