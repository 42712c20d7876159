"""GTFS-Flex v2: on-demand zones, stop groups, pickup/drop-off windows and booking rules.

What the dispatcher needs from a feed: *where* (a zone polygon or a group of stops), *when*
(service ids and daily windows) and *how to book* (the booking rule: notice periods, phone).

Read from ``locations.geojson`` (zones as shapely polygons), ``location_groups.txt``,
``location_group_stops.txt``, ``booking_rules.txt`` and the flex rows of ``stop_times.txt``
(``location_id`` / ``location_group_id`` or, as in feeds written against the pre-adoption
draft, a ``stop_id`` naming a GeoJSON location; ``start/end_pickup_drop_off_window``;
``pickup_booking_rule_id`` / ``drop_off_booking_rule_id``, also spelled
``dropoff_booking_rule_id`` / ``start_pickup_dropoff_window`` in that draft).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gtfs.arrays import first_index
from gtfs.calendar import ServiceDays, service_days
from gtfs.feed import Feed
from gtfs.notices import Notice, NoticeSink
from gtfs.times import int_column, parse_times

_ALIASES = {
    "drop_off_booking_rule_id": ("drop_off_booking_rule_id", "dropoff_booking_rule_id"),
    "pickup_booking_rule_id": ("pickup_booking_rule_id",),
    "start_pickup_drop_off_window": ("start_pickup_drop_off_window", "start_pickup_dropoff_window"),
    "end_pickup_drop_off_window": ("end_pickup_drop_off_window", "end_pickup_dropoff_window"),
}


@dataclass(frozen=True)
class BookingRule:
    """One row of booking_rules.txt (durations in minutes, times in seconds of day)."""

    booking_rule_id: str
    booking_type: int  # 0 real time, 1 up to same-day with notice, 2 up to prior day(s)
    prior_notice_duration_min: int | None = None
    prior_notice_duration_max: int | None = None
    prior_notice_last_day: int | None = None
    prior_notice_last_time: int | None = None
    prior_notice_start_day: int | None = None
    prior_notice_start_time: int | None = None
    prior_notice_service_id: str = ""
    message: str = ""
    pickup_message: str = ""
    drop_off_message: str = ""
    phone_number: str = ""
    info_url: str = ""
    booking_url: str = ""

    def allows(self, booked_at: dt.datetime, pickup_at: dt.datetime) -> bool:
        """Whether a booking made at ``booked_at`` may ask for ``pickup_at`` (same time zone).

        Days before (types 2) are counted on calendar days, as the spec does when
        ``prior_notice_service_id`` is absent.
        """
        if booked_at > pickup_at:
            return False
        notice_min = (pickup_at - booked_at).total_seconds() / 60.0
        if self.booking_type == 0:
            return True
        if self.booking_type == 1:
            if (
                self.prior_notice_duration_min is not None
                and notice_min < self.prior_notice_duration_min
            ):
                return False
            return not (
                self.prior_notice_duration_max is not None
                and notice_min > self.prior_notice_duration_max
            )
        # Type 2: by a deadline some days before the service day.
        day = pickup_at.date()
        if self.prior_notice_last_day is not None:
            deadline = dt.datetime.combine(
                day - dt.timedelta(days=self.prior_notice_last_day), dt.time(0), pickup_at.tzinfo
            ) + dt.timedelta(seconds=self.prior_notice_last_time or 0)
            if booked_at > deadline:
                return False
        if self.prior_notice_start_day is not None:
            opens = dt.datetime.combine(
                day - dt.timedelta(days=self.prior_notice_start_day), dt.time(0), pickup_at.tzinfo
            ) + dt.timedelta(seconds=self.prior_notice_start_time or 0)
            if booked_at < opens:
                return False
        return True


@dataclass(frozen=True)
class FlexZone:
    """A GeoJSON location: an area (Polygon / MultiPolygon) served on demand."""

    zone_id: str
    name: str
    geometry: BaseGeometry
    properties: dict[str, Any] = field(default_factory=dict)

    def contains(self, lat: float, lon: float) -> bool:
        return bool(self.geometry.covers(shapely.Point(lon, lat)))


@dataclass(frozen=True)
class FlexWindow:
    """A daily window (GTFS seconds of the service day) with its trip and service."""

    start_s: int
    end_s: int
    trip_id: str
    service_id: str = ""


@dataclass(frozen=True)
class FlexService:
    """On-demand service at one zone or stop group for one route and booking rules.

    ``windows`` are the daily pickup/drop-off windows (sorted), each active on the days of
    its trip's service; ``service_ids`` is the union.
    """

    location_id: str
    kind: str  # "zone" (GeoJSON location) or "group" (location group of stops)
    zone: FlexZone | None
    stop_ids: tuple[str, ...]  # the stops of a group; empty for a zone
    route_id: str
    service_ids: tuple[str, ...]
    windows: tuple[FlexWindow, ...]
    pickup: bool
    drop_off: bool
    pickup_booking_rule: BookingRule | None
    drop_off_booking_rule: BookingRule | None


@dataclass
class FlexNetwork:
    """Everything flex in one feed."""

    zones: dict[str, FlexZone] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    booking_rules: dict[str, BookingRule] = field(default_factory=dict)
    services: list[FlexService] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    calendar: ServiceDays | None = None

    def windows_on(self, service: FlexService, day: dt.date) -> list[FlexWindow]:
        """The windows of ``service`` whose GTFS service runs on ``day`` (a service day)."""
        cal = self.calendar
        if cal is None:
            return []
        col = (day - cal.start).days
        if not 0 <= col < cal.days.shape[1]:
            return []
        running = set(cal.service_ids[cal.days[:, col]].tolist())
        return [w for w in service.windows if w.service_id in running]

    @property
    def flex_trip_ids(self) -> set[str]:
        return {w.trip_id for s in self.services for w in s.windows}

    def services_at(self, lat: float, lon: float) -> list[FlexService]:
        """The zone services whose polygon covers the point."""
        return [s for s in self.services if s.zone is not None and s.zone.contains(lat, lon)]


def _opt_int(v: float) -> int | None:
    return None if np.isnan(v) else int(v)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    for alias in _ALIASES.get(name, (name,)):
        if alias in df.columns:
            return df[alias].astype(str)
    return pd.Series([""] * len(df), index=df.index, dtype=object)


def _zones(feed: Feed, sink: NoticeSink) -> dict[str, FlexZone]:
    data = feed.files.get("locations.geojson")
    if data is None:
        return {}
    try:
        doc = json.loads(data.decode("utf-8-sig"))
        features = doc["features"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        sink.add(
            "invalid_geojson", 1, [{"filename": "locations.geojson", "message": str(exc)[:200]}]
        )
        return {}
    zones: dict[str, FlexZone] = {}
    for i, feat in enumerate(features):
        try:
            zid = str(feat.get("id") or feat.get("properties", {}).get("id") or "")
            geom = shape(feat["geometry"])
            if not zid or geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid:
                raise ValueError(f"feature {i}: needs an id and a valid (Multi)Polygon")
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            shapely.errors.ShapelyError,
        ) as exc:
            sink.add(
                "invalid_geojson",
                1,
                [{"filename": "locations.geojson", "featureIndex": i, "message": str(exc)[:200]}],
            )
            continue
        props = dict(feat.get("properties") or {})
        zones[zid] = FlexZone(zid, str(props.get("stop_name", zid)), geom, props)
    return zones


def _booking_rules(feed: Feed) -> dict[str, BookingRule]:
    br = feed.table("booking_rules")
    if br.empty or "booking_rule_id" not in br.columns:
        return {}

    def num(col: str) -> np.ndarray:
        return int_column(br, col, -(2**31), np.int64).astype(np.float64)

    def t(col: str) -> np.ndarray:
        return parse_times(_col(br, col))[0]

    nums = {
        c: num(c)
        for c in (
            "prior_notice_duration_min",
            "prior_notice_duration_max",
            "prior_notice_last_day",
            "prior_notice_start_day",
        )
    }
    for v in nums.values():
        v[v == -(2**31)] = np.nan
    last_t, start_t = t("prior_notice_last_time"), t("prior_notice_start_time")
    btype = int_column(br, "booking_type", 0, np.int64)
    rules = {}
    for i, rid in enumerate(_col(br, "booking_rule_id")):
        rules[rid] = BookingRule(
            booking_rule_id=rid,
            booking_type=int(btype[i]),
            prior_notice_duration_min=_opt_int(nums["prior_notice_duration_min"][i]),
            prior_notice_duration_max=_opt_int(nums["prior_notice_duration_max"][i]),
            prior_notice_last_day=_opt_int(nums["prior_notice_last_day"][i]),
            prior_notice_last_time=int(last_t[i]) if last_t[i] >= 0 else None,
            prior_notice_start_day=_opt_int(nums["prior_notice_start_day"][i]),
            prior_notice_start_time=int(start_t[i]) if start_t[i] >= 0 else None,
            **{
                k: str(_col(br, k).iloc[i])
                for k in (
                    "prior_notice_service_id",
                    "message",
                    "pickup_message",
                    "drop_off_message",
                    "phone_number",
                    "info_url",
                    "booking_url",
                )
            },
        )
    return rules


def read_flex(feed: Feed) -> FlexNetwork:
    """Build the feed's :class:`FlexNetwork` (empty for a fixed-route feed)."""
    flex_cols = {"location_id", "location_group_id", "start_pickup_drop_off_window"}
    flex_cols |= {"start_pickup_dropoff_window"}
    if (
        "locations.geojson" not in feed.files
        and not feed.has("location_groups")
        and not feed.has("booking_rules")
        and not (flex_cols & set(feed.stop_times.columns))
    ):
        return FlexNetwork()
    sink = NoticeSink()
    zones = _zones(feed, sink)
    groups: dict[str, tuple[str, ...]] = {}
    lgs = feed.table("location_group_stops")
    if not lgs.empty and {"location_group_id", "stop_id"} <= set(lgs.columns):
        for gid, g in lgs.groupby(lgs["location_group_id"].astype(str), sort=False):
            groups[str(gid)] = tuple(g["stop_id"].astype(str))
    lg = feed.table("location_groups")
    if not lg.empty and "location_group_id" in lg.columns:
        for gid in lg["location_group_id"].astype(str):
            groups.setdefault(gid, ())
    rules = _booking_rules(feed)
    st = feed.stop_times
    services: list[FlexService] = []
    if not st.empty and "trip_id" in st.columns:
        loc = _col(st, "location_id")
        grp = _col(st, "location_group_id")
        sid = _col(st, "stop_id")
        loc = loc.where(loc != "", sid.where(sid.isin(list(zones)), ""))
        start, _ = parse_times(_col(st, "start_pickup_drop_off_window"))
        end, _ = parse_times(_col(st, "end_pickup_drop_off_window"))
        is_flex = ((loc != "") | (grp != "")).to_numpy() & (start >= 0) & (end >= 0)
        if is_flex.any():
            trips = feed.trips
            ti = first_index(trips["trip_id"].astype(str), st["trip_id"].astype(str))
            rows = pd.DataFrame(
                {
                    "location_id": np.where(loc != "", loc, grp),
                    "kind": np.where(loc != "", "zone", "group"),
                    "trip_id": st["trip_id"].astype(str).to_numpy(),
                    "route_id": np.where(
                        ti >= 0, trips["route_id"].astype(str).to_numpy()[np.maximum(ti, 0)], ""
                    ),
                    "service_id": np.where(
                        ti >= 0, trips["service_id"].astype(str).to_numpy()[np.maximum(ti, 0)], ""
                    ),
                    "start": start,
                    "end": end,
                    "pickup": int_column(st, "pickup_type", 0, np.int64) != 1,
                    "drop_off": int_column(st, "drop_off_type", 0, np.int64) != 1,
                    "pick_rule": _col(st, "pickup_booking_rule_id").to_numpy(),
                    "drop_rule": _col(st, "drop_off_booking_rule_id").to_numpy(),
                }
            )[is_flex]
            keys = ["location_id", "kind", "route_id", "pick_rule", "drop_rule"]
            for key, g in rows.groupby(keys, sort=True):
                lid, kind, rid, pr, dr = (str(k) for k in key)
                w = g.drop_duplicates(["trip_id", "start", "end"]).sort_values(
                    ["start", "end", "trip_id"]
                )
                services.append(
                    FlexService(
                        location_id=lid,
                        kind=kind,
                        zone=zones.get(lid) if kind == "zone" else None,
                        stop_ids=groups.get(lid, ()) if kind == "group" else (),
                        route_id=rid,
                        service_ids=tuple(sorted(g["service_id"].unique())),
                        windows=tuple(
                            FlexWindow(int(s), int(e), str(t), str(v))
                            for s, e, t, v in zip(
                                w["start"], w["end"], w["trip_id"], w["service_id"], strict=True
                            )
                        ),
                        pickup=bool(g["pickup"].any()),
                        drop_off=bool(g["drop_off"].any()),
                        pickup_booking_rule=rules.get(pr),
                        drop_off_booking_rule=rules.get(dr),
                    )
                )
    return FlexNetwork(zones, groups, rules, services, sink.notices(), service_days(feed))
