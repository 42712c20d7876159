"""Fares v1 lookup checked against a brute-force scan of the raw files."""

from __future__ import annotations

import csv
import io
import random
import zipfile
from pathlib import Path

from gtfs import read_feed
from gtfs.fares import FareTable


def _rows(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as zf:
        return list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8-sig"))))


def test_muroran_zone_fares_match_brute_force(gtfs_dir: Path) -> None:
    path = gtfs_dir / "jp_donan_bus_muroran.zip"
    prices = {r["fare_id"]: float(r["price"]) for r in _rows(path, "fare_attributes.txt")}
    rules = _rows(path, "fare_rules.txt")
    zone = {s["stop_id"]: s["zone_id"] for s in _rows(path, "stops.txt")}
    by_zone: dict[str, str] = {}
    for sid, z in zone.items():
        by_zone.setdefault(z, sid)
    table = FareTable(read_feed(path))
    rng = random.Random(7)
    checked = 0
    for rule in rng.sample(rules, 40):
        a, b = by_zone.get(rule["origin_id"]), by_zone.get(rule["destination_id"])
        if a is None or b is None:
            continue
        expected = min(
            prices[r["fare_id"]]
            for r in rules
            if r["route_id"] in ("", rule["route_id"])
            and r["origin_id"] in ("", zone[a])
            and r["destination_id"] in ("", zone[b])
            and not r.get("contains_id")
        )
        fare = table.fare(rule["route_id"], a, b)
        assert fare is not None and fare.price == expected and fare.currency == "JPY"
        checked += 1
    assert checked >= 20
    assert table.fare("no-such-route", "x", "y") is None


def test_kumagaya_flat_fare(gtfs_dir: Path) -> None:
    table = FareTable(read_feed(gtfs_dir / "jp_kumagaya_yuyubus.zip"))
    fare = table.fare("any", "a", "b")
    assert fare is not None and fare.price == 200 and fare.fare_id == "JPY_200"
