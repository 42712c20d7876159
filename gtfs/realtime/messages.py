"""Parse GTFS-Realtime ``FeedMessage`` protobufs into plain, typed dataclasses.

The three entity kinds of the spec are kept: :class:`TripUpdate` (with its stop-time updates),
:class:`VehiclePosition` and :class:`Alert`. Optional protobuf fields become ``None`` (never a
silent 0), so downstream code can tell "delay 0" from "no delay given".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as pb


class RealtimeParseError(ValueError):
    """The bytes are not a GTFS-Realtime FeedMessage."""


@dataclass(frozen=True)
class TripDescriptor:
    """Which trip an entity is about (spec: ``TripDescriptor``)."""

    trip_id: str | None = None
    route_id: str | None = None
    direction_id: int | None = None
    start_time: str | None = None  # "HH:MM:SS", may exceed 24:00:00
    start_date: str | None = None  # "YYYYMMDD"
    schedule_relationship: str = "SCHEDULED"


@dataclass(frozen=True)
class StopTimeEvent:
    """Either a delay (s) relative to the schedule or an absolute POSIX time, or both."""

    delay: int | None = None
    time: int | None = None
    uncertainty: int | None = None


@dataclass(frozen=True)
class StopTimeUpdate:
    stop_sequence: int | None = None
    stop_id: str | None = None
    arrival: StopTimeEvent | None = None
    departure: StopTimeEvent | None = None
    schedule_relationship: str = "SCHEDULED"  # SCHEDULED | SKIPPED | NO_DATA | UNSCHEDULED


@dataclass(frozen=True)
class TripUpdate:
    entity_id: str
    trip: TripDescriptor
    stop_time_updates: tuple[StopTimeUpdate, ...] = ()
    vehicle_id: str | None = None
    timestamp: int | None = None
    delay: int | None = None  # trip-level delay (spec: StopTimeUpdates take precedence)


@dataclass(frozen=True)
class VehiclePosition:
    entity_id: str
    vehicle_id: str | None
    latitude: float
    longitude: float
    bearing: float | None = None
    speed: float | None = None  # m/s
    timestamp: int | None = None
    trip: TripDescriptor | None = None
    stop_id: str | None = None
    current_stop_sequence: int | None = None
    current_status: str | None = None
    occupancy_status: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class InformedEntity:
    agency_id: str | None = None
    route_id: str | None = None
    route_type: int | None = None
    direction_id: int | None = None
    trip: TripDescriptor | None = None
    stop_id: str | None = None


@dataclass(frozen=True)
class Alert:
    entity_id: str
    active_periods: tuple[tuple[int | None, int | None], ...] = ()  # (start, end) POSIX
    informed_entities: tuple[InformedEntity, ...] = ()
    cause: str = "UNKNOWN_CAUSE"
    effect: str = "UNKNOWN_EFFECT"
    header_text: dict[str, str] = field(default_factory=dict)  # language ("" = default) -> text
    description_text: dict[str, str] = field(default_factory=dict)
    url: dict[str, str] = field(default_factory=dict)

    def is_active(self, when: int) -> bool:
        """Spec: no active period means "always active"."""
        if not self.active_periods:
            return True
        return any(
            (s is None or s <= when) and (e is None or when <= e) for s, e in self.active_periods
        )

    def text(self, language: str = "") -> str:
        """Header text in ``language``, else the untagged text, else any text."""
        for key in (language, ""):
            if key in self.header_text:
                return self.header_text[key]
        return next(iter(self.header_text.values()), "")


@dataclass(frozen=True)
class RealtimeFeed:
    """One parsed ``FeedMessage``."""

    gtfs_realtime_version: str
    incrementality: str
    timestamp: int | None
    trip_updates: tuple[TripUpdate, ...] = ()
    vehicles: tuple[VehiclePosition, ...] = ()
    alerts: tuple[Alert, ...] = ()
    deleted_entity_ids: tuple[str, ...] = ()

    @property
    def feed_time(self) -> dt.datetime | None:
        if self.timestamp is None:
            return None
        return dt.datetime.fromtimestamp(self.timestamp, tz=dt.UTC)


# --- protobuf -> dataclasses ------------------------------------------------------------------
def _opt(msg: object, name: str) -> object | None:
    return getattr(msg, name) if msg.HasField(name) else None  # type: ignore[attr-defined]


def _trip(t: pb.TripDescriptor) -> TripDescriptor:
    return TripDescriptor(
        trip_id=t.trip_id or None,
        route_id=t.route_id or None,
        direction_id=t.direction_id if t.HasField("direction_id") else None,
        start_time=t.start_time or None,
        start_date=t.start_date or None,
        schedule_relationship=pb.TripDescriptor.ScheduleRelationship.Name(t.schedule_relationship),
    )


def _event(stu: pb.TripUpdate.StopTimeUpdate, name: str) -> StopTimeEvent | None:
    if not stu.HasField(name):
        return None
    e = getattr(stu, name)
    return StopTimeEvent(
        delay=e.delay if e.HasField("delay") else None,
        time=e.time if e.HasField("time") else None,
        uncertainty=e.uncertainty if e.HasField("uncertainty") else None,
    )


def _translated(ts: pb.TranslatedString) -> dict[str, str]:
    return {tr.language: tr.text for tr in ts.translation}


def _trip_update(entity_id: str, tu: pb.TripUpdate) -> TripUpdate:
    stus = tuple(
        StopTimeUpdate(
            stop_sequence=s.stop_sequence if s.HasField("stop_sequence") else None,
            stop_id=s.stop_id or None,
            arrival=_event(s, "arrival"),
            departure=_event(s, "departure"),
            schedule_relationship=pb.TripUpdate.StopTimeUpdate.ScheduleRelationship.Name(
                s.schedule_relationship
            ),
        )
        for s in tu.stop_time_update
    )
    return TripUpdate(
        entity_id=entity_id,
        trip=_trip(tu.trip),
        stop_time_updates=stus,
        vehicle_id=(tu.vehicle.id or None) if tu.HasField("vehicle") else None,
        timestamp=tu.timestamp if tu.HasField("timestamp") else None,
        delay=tu.delay if tu.HasField("delay") else None,
    )


def _vehicle(entity_id: str, v: pb.VehiclePosition) -> VehiclePosition:
    pos = v.position
    return VehiclePosition(
        entity_id=entity_id,
        vehicle_id=(v.vehicle.id or None) if v.HasField("vehicle") else None,
        label=(v.vehicle.label or None) if v.HasField("vehicle") else None,
        latitude=float(pos.latitude),
        longitude=float(pos.longitude),
        bearing=float(pos.bearing) if pos.HasField("bearing") else None,
        speed=float(pos.speed) if pos.HasField("speed") else None,
        timestamp=v.timestamp if v.HasField("timestamp") else None,
        trip=_trip(v.trip) if v.HasField("trip") else None,
        stop_id=v.stop_id or None,
        current_stop_sequence=(
            v.current_stop_sequence if v.HasField("current_stop_sequence") else None
        ),
        current_status=(
            pb.VehiclePosition.VehicleStopStatus.Name(v.current_status)
            if v.HasField("current_status")
            else None
        ),
        occupancy_status=(
            pb.VehiclePosition.OccupancyStatus.Name(v.occupancy_status)
            if v.HasField("occupancy_status")
            else None
        ),
    )


def _alert(entity_id: str, a: pb.Alert) -> Alert:
    return Alert(
        entity_id=entity_id,
        active_periods=tuple(
            (
                p.start if p.HasField("start") else None,
                p.end if p.HasField("end") else None,
            )
            for p in a.active_period
        ),
        informed_entities=tuple(
            InformedEntity(
                agency_id=e.agency_id or None,
                route_id=e.route_id or None,
                route_type=e.route_type if e.HasField("route_type") else None,
                direction_id=e.direction_id if e.HasField("direction_id") else None,
                trip=_trip(e.trip) if e.HasField("trip") else None,
                stop_id=e.stop_id or None,
            )
            for e in a.informed_entity
        ),
        cause=pb.Alert.Cause.Name(a.cause),
        effect=pb.Alert.Effect.Name(a.effect),
        header_text=_translated(a.header_text),
        description_text=_translated(a.description_text),
        url=_translated(a.url),
    )


def decode_feed_message(data: bytes) -> pb.FeedMessage:
    """Decode raw bytes into the bindings' ``FeedMessage`` (raises :class:`RealtimeParseError`)."""
    msg = pb.FeedMessage()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeWarning) as exc:
        raise RealtimeParseError(f"not a GTFS-Realtime FeedMessage: {exc}") from exc
    if not msg.IsInitialized() or not msg.header.gtfs_realtime_version:
        raise RealtimeParseError("not a GTFS-Realtime FeedMessage: header missing")
    return msg


def parse_feed(data: bytes) -> RealtimeFeed:
    """Parse a serialized GTFS-Realtime ``FeedMessage``."""
    msg = decode_feed_message(data)
    tus: list[TripUpdate] = []
    vps: list[VehiclePosition] = []
    alerts: list[Alert] = []
    deleted: list[str] = []
    for ent in msg.entity:
        if ent.is_deleted:
            deleted.append(ent.id)
            continue
        if ent.HasField("trip_update"):
            tus.append(_trip_update(ent.id, ent.trip_update))
        if ent.HasField("vehicle"):
            vps.append(_vehicle(ent.id, ent.vehicle))
        if ent.HasField("alert"):
            alerts.append(_alert(ent.id, ent.alert))
    h = msg.header
    return RealtimeFeed(
        gtfs_realtime_version=h.gtfs_realtime_version,
        incrementality=pb.FeedHeader.Incrementality.Name(h.incrementality),
        timestamp=h.timestamp if h.HasField("timestamp") else None,
        trip_updates=tuple(tus),
        vehicles=tuple(vps),
        alerts=tuple(alerts),
        deleted_entity_ids=tuple(deleted),
    )


def read_feed_file(path: str | Path) -> RealtimeFeed:
    """Parse a ``.pb`` file."""
    return parse_feed(Path(path).read_bytes())


# --- dataclasses -> protobuf (the inverse of parse_feed) ------------------------------------
def _copy(out: object, src: object, names: tuple[str, ...], prefix: str = "") -> None:
    """Set each optional scalar ``out.name`` from ``src.<prefix>name`` when it is not None."""
    for name in names:
        value = getattr(src, prefix + name)
        if value is not None:
            setattr(out, name, value)


def _set_trip(out: pb.TripDescriptor, t: TripDescriptor) -> None:
    _copy(out, t, ("trip_id", "route_id", "direction_id", "start_time", "start_date"))
    out.schedule_relationship = pb.TripDescriptor.ScheduleRelationship.Value(
        t.schedule_relationship
    )


def _set_event(out: pb.TripUpdate.StopTimeEvent, e: StopTimeEvent) -> None:
    out.SetInParent()  # an event with no field set is still "present"
    _copy(out, e, ("delay", "time", "uncertainty"))


def _set_translated(out: pb.TranslatedString, texts: dict[str, str]) -> None:
    for lang, text in texts.items():
        tr = out.translation.add()
        tr.text = text
        if lang:
            tr.language = lang


def _set_trip_update(out: pb.TripUpdate, tu: TripUpdate) -> None:
    _set_trip(out.trip, tu.trip)
    _copy(out.vehicle, tu, ("id",), prefix="vehicle_")
    _copy(out, tu, ("timestamp", "delay"))
    for s in tu.stop_time_updates:
        o = out.stop_time_update.add()
        _copy(o, s, ("stop_sequence", "stop_id"))
        if s.arrival is not None:
            _set_event(o.arrival, s.arrival)
        if s.departure is not None:
            _set_event(o.departure, s.departure)
        o.schedule_relationship = pb.TripUpdate.StopTimeUpdate.ScheduleRelationship.Value(
            s.schedule_relationship
        )


def _set_vehicle(out: pb.VehiclePosition, v: VehiclePosition) -> None:
    _copy(out.vehicle, v, ("id",), prefix="vehicle_")
    _copy(out.vehicle, v, ("label",))
    out.position.latitude = v.latitude
    out.position.longitude = v.longitude
    _copy(out.position, v, ("bearing", "speed"))
    _copy(out, v, ("timestamp", "stop_id", "current_stop_sequence"))
    if v.trip is not None:
        _set_trip(out.trip, v.trip)
    if v.current_status is not None:
        out.current_status = pb.VehiclePosition.VehicleStopStatus.Value(v.current_status)
    if v.occupancy_status is not None:
        out.occupancy_status = pb.VehiclePosition.OccupancyStatus.Value(v.occupancy_status)


def _set_alert(out: pb.Alert, a: Alert) -> None:
    for start, end in a.active_periods:
        p = out.active_period.add()
        if start is not None:
            p.start = start
        if end is not None:
            p.end = end
    for e in a.informed_entities:
        ie = out.informed_entity.add()
        _copy(ie, e, ("agency_id", "route_id", "route_type", "direction_id", "stop_id"))
        if e.trip is not None:
            _set_trip(ie.trip, e.trip)
    out.cause = pb.Alert.Cause.Value(a.cause)
    out.effect = pb.Alert.Effect.Value(a.effect)
    _set_translated(out.header_text, a.header_text)
    _set_translated(out.description_text, a.description_text)
    _set_translated(out.url, a.url)


def encode_feed(feed: RealtimeFeed) -> bytes:
    """Serialize ``feed`` as a ``FeedMessage`` (``parse_feed(encode_feed(f)) == f``).

    The parts of one entity id (a TripUpdate, a VehiclePosition and an Alert may share one
    ``FeedEntity``) are written into the same entity, in first-seen order; the ids of
    ``deleted_entity_ids`` become ``is_deleted`` entities.
    """
    msg = pb.FeedMessage()
    msg.header.gtfs_realtime_version = feed.gtfs_realtime_version
    msg.header.incrementality = pb.FeedHeader.Incrementality.Value(feed.incrementality)
    if feed.timestamp is not None:
        msg.header.timestamp = feed.timestamp
    entities: dict[str, pb.FeedEntity] = {}

    def entity(entity_id: str) -> pb.FeedEntity:
        e = entities.get(entity_id)
        if e is None:
            e = entities[entity_id] = msg.entity.add()
            e.id = entity_id
        return e

    for tu in feed.trip_updates:
        _set_trip_update(entity(tu.entity_id).trip_update, tu)
    for v in feed.vehicles:
        _set_vehicle(entity(v.entity_id).vehicle, v)
    for a in feed.alerts:
        _set_alert(entity(a.entity_id).alert, a)
    for entity_id in feed.deleted_entity_ids:
        e = msg.entity.add()
        e.id = entity_id
        e.is_deleted = True
    return bytes(msg.SerializeToString())
