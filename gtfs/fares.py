"""GTFS fares v1 (fare_attributes + fare_rules), as used by GTFS-JP feeds.

A rule matches a ride when each of its ``route_id``, ``origin_id`` (the boarding stop's
``zone_id``) and ``destination_id`` (the alighting stop's) is blank or equal; the fare of a
ride is the cheapest matching fare (as OpenTripPlanner does). ``contains_id`` rules (zones
passed through) are not used for single rides. A feed without fare_rules but with exactly one
fare applies it to every ride (GTFS: "if there is only one fare, it applies to all rides").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gtfs.feed import Feed


@dataclass(frozen=True)
class Fare:
    fare_id: str
    price: float
    currency: str


class FareTable:
    """Cheapest-matching-fare lookup in O(1) per ride (8 wildcard combinations)."""

    def __init__(self, feed: Feed) -> None:
        fa = feed.table("fare_attributes")
        self._fares: dict[str, Fare] = {}
        if not fa.empty and {"fare_id", "price"} <= set(fa.columns):
            price = feed.numbers("fare_attributes", "price")[0]
            cur = feed.column("fare_attributes", "currency_type").astype(str).to_numpy()
            for fid, p, c in zip(fa["fare_id"].astype(str), price, cur, strict=True):
                if not np.isnan(p):
                    self._fares.setdefault(fid, Fare(fid, float(p), str(c)))
        stops = feed.stops
        self._zone: dict[str, str] = (
            dict(zip(stops["stop_id"].astype(str), stops["zone_id"].astype(str), strict=True))
            if {"stop_id", "zone_id"} <= set(stops.columns)
            else {}
        )
        fr = feed.table("fare_rules")
        self._best: dict[tuple[str, str, str], Fare] = {}
        if not fr.empty and "fare_id" in fr.columns:
            cols = {
                c: feed.column("fare_rules", c).astype(str)
                for c in ("route_id", "origin_id", "destination_id", "contains_id")
            }
            rules = pd.DataFrame({"fare_id": fr["fare_id"].astype(str), **cols})
            rules = rules[(rules["contains_id"] == "") & rules["fare_id"].isin(list(self._fares))]
            price_of = pd.Series({f: x.price for f, x in self._fares.items()}, dtype=float)
            rules = rules.assign(price=rules["fare_id"].map(price_of))
            best = rules.sort_values("price", kind="stable").drop_duplicates(
                ["route_id", "origin_id", "destination_id"]
            )
            for fid, r, o, d in zip(
                best["fare_id"],
                best["route_id"],
                best["origin_id"],
                best["destination_id"],
                strict=True,
            ):
                self._best[(r, o, d)] = self._fares[fid]
        elif len(self._fares) == 1:
            self._best[("", "", "")] = next(iter(self._fares.values()))

    @property
    def fares(self) -> dict[str, Fare]:
        return dict(self._fares)

    def zone_of(self, stop_id: str) -> str:
        return self._zone.get(stop_id, "")

    def fare(self, route_id: str, from_stop_id: str, to_stop_id: str) -> Fare | None:
        """Cheapest fare of one ride on ``route_id`` between two stops, or None."""
        o, d = self.zone_of(from_stop_id), self.zone_of(to_stop_id)
        found: list[Fare] = []
        for r_, o_, d_ in itertools.product((route_id, ""), (o, ""), (d, "")):
            hit = self._best.get((r_, o_, d_))
            if hit is not None:
                found.append(hit)
        return min(found, key=lambda f: f.price) if found else None
