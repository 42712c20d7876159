"""The current entities of one GTFS-Realtime producer, across FULL_DATASET and DIFFERENTIAL.

The spec (``FeedHeader.incrementality``) defines ``FULL_DATASET`` — a message is the whole
realtime picture of its producer and replaces the previous one — and leaves ``DIFFERENTIAL``
"currently unsupported, behaviour unspecified". Tsunagu implements the semantics that the
consumers which do support it (OpenTripPlanner, the draft of google/transit#84) share, keyed
by ``FeedEntity.id``:

* a **FULL_DATASET** message replaces every entity of the producer (``is_deleted`` entities in
  it are meaningless there: they are ignored with a notice);
* a **DIFFERENTIAL** message upserts: each entity it carries replaces the whole entity of the
  same id (its TripUpdate, VehiclePosition and Alert parts together), or is added; an
  ``is_deleted`` entity removes the entity of that id (an unknown id is a no-op with a notice);
  entities it does not mention stay as they were;
* a DIFFERENTIAL message whose header ``timestamp`` is older than the state's is ignored with a
  notice (delivered out of order, it would bring back superseded data);
* every entity remembers when it was last stated; :meth:`ProducerState.expire` drops those not
  restated within a maximum age, so a producer that goes silent leaves no stale predictions.

The state's :meth:`~ProducerState.snapshot` is a FULL_DATASET :class:`RealtimeFeed` of the
current entities (what the overlay is computed from, and what is spooled for other workers).
"""

from __future__ import annotations

from dataclasses import dataclass

from gtfs.realtime.messages import Alert, RealtimeFeed, TripUpdate, VehiclePosition

FULL_DATASET = "FULL_DATASET"
DIFFERENTIAL = "DIFFERENTIAL"


@dataclass(frozen=True)
class _Entity:
    trip_update: TripUpdate | None
    vehicle: VehiclePosition | None
    alert: Alert | None
    received_at: float  # POSIX seconds when the producer last stated this entity


@dataclass(frozen=True)
class MergeResult:
    """What one message changed."""

    incrementality: str
    upserted: int = 0
    deleted: int = 0
    ignored: bool = False  # the whole message was ignored (see notices)
    notices: tuple[str, ...] = ()


def _entities(feed: RealtimeFeed, received_at: float) -> dict[str, _Entity]:
    """The message's entities by id (parts sharing an id are one entity), in message order."""
    parts: dict[str, list[object | None]] = {}
    for tu in feed.trip_updates:
        parts.setdefault(tu.entity_id, [None, None, None])[0] = tu
    for v in feed.vehicles:
        parts.setdefault(v.entity_id, [None, None, None])[1] = v
    for a in feed.alerts:
        parts.setdefault(a.entity_id, [None, None, None])[2] = a
    return {
        k: _Entity(p[0], p[1], p[2], received_at)  # type: ignore[arg-type]
        for k, p in parts.items()
    }


class ProducerState:
    """The entities one producer has stated and not withdrawn (not thread-safe: the caller
    serialises access)."""

    def __init__(self) -> None:
        self._entities: dict[str, _Entity] = {}
        self.timestamp: int | None = None  # newest header timestamp applied
        self.version = "2.0"
        self._snapshot: RealtimeFeed | None = None

    def __len__(self) -> int:
        return len(self._entities)

    def apply(self, feed: RealtimeFeed, received_at: float) -> MergeResult:
        """Apply one message (its header's ``incrementality`` says how)."""
        mode = feed.incrementality
        notices: list[str] = []
        if mode == DIFFERENTIAL:
            if (
                feed.timestamp is not None
                and self.timestamp is not None
                and feed.timestamp < self.timestamp
            ):
                return MergeResult(
                    mode,
                    ignored=True,
                    notices=(
                        f"DIFFERENTIAL message of {feed.timestamp} is older than the state "
                        f"({self.timestamp}): ignored",
                    ),
                )
            new = _entities(feed, received_at)
            deleted = 0
            for entity_id in feed.deleted_entity_ids:
                if self._entities.pop(entity_id, None) is None and entity_id not in new:
                    notices.append(f"is_deleted entity {entity_id!r} is not in the state: no-op")
                else:
                    deleted += 1
            self._entities.update(new)
            upserted = len(new)
        else:
            self._entities = _entities(feed, received_at)
            upserted, deleted = len(self._entities), 0
            notices.extend(
                f"is_deleted entity {e!r} in a FULL_DATASET message: ignored"
                for e in feed.deleted_entity_ids
            )
        self.version = feed.gtfs_realtime_version or self.version
        if feed.timestamp is not None:
            self.timestamp = max(feed.timestamp, self.timestamp or feed.timestamp)
        self._snapshot = None
        return MergeResult(mode, upserted, deleted, False, tuple(notices))

    def expire(self, before: float) -> int:
        """Drop the entities last stated before ``before``; returns how many."""
        stale = [k for k, e in self._entities.items() if e.received_at < before]
        for k in stale:
            del self._entities[k]
        if stale:
            self._snapshot = None
        return len(stale)

    def oldest(self) -> float | None:
        """When the least recently stated entity was stated (None when empty)."""
        return min((e.received_at for e in self._entities.values()), default=None)

    def received_at(self) -> dict[str, float]:
        """When each entity was last stated, by entity id."""
        return {k: e.received_at for k, e in self._entities.items()}

    def snapshot(self) -> RealtimeFeed:
        """The current entities as one FULL_DATASET feed (cached until the next change)."""
        if self._snapshot is None:
            ents = self._entities.values()
            self._snapshot = RealtimeFeed(
                gtfs_realtime_version=self.version,
                incrementality=FULL_DATASET,
                timestamp=self.timestamp,
                trip_updates=tuple(e.trip_update for e in ents if e.trip_update is not None),
                vehicles=tuple(e.vehicle for e in ents if e.vehicle is not None),
                alerts=tuple(e.alert for e in ents if e.alert is not None),
            )
        return self._snapshot

    @classmethod
    def restore(
        cls, snapshot: RealtimeFeed, received_at: dict[str, float], default: float
    ) -> ProducerState:
        """A state from a spooled snapshot and its entities' times (``default`` when unknown)."""
        st = cls()
        st.apply(snapshot, default)
        st._entities = {
            k: _Entity(e.trip_update, e.vehicle, e.alert, received_at.get(k, default))
            for k, e in st._entities.items()
        }
        return st
