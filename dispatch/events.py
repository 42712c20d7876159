"""The port through which the dispatcher publishes live events (ETAs, plans, ride status).

The app wires it to its event bus; topics are ``fleet.vehicle.<vehicle_id>`` (plans, positions)
and ``user.<user_id>.ride`` (a rider's own ride: status, pick-up window, ETAs).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class EventSink(Protocol):
    """Where dispatcher events go. Must not block for long: it is called under a zone lock."""

    def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class NullEventSink:
    """Drops every event (batch runs, benches)."""

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        return None


class MemoryEventSink:
    """Keeps every event in order (tests, the simulator)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((topic, payload))

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.events]


def vehicle_topic(vehicle_id: str) -> str:
    return f"fleet.vehicle.{vehicle_id}"


def user_ride_topic(user_id: str) -> str:
    return f"user.{user_id}.ride"
