"""Reader of ``darp/best_known.csv``: proven optima / best known values per instance."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BestKnown:
    """One row: the instance's best known cost (distance) and, for Li & Lim, vehicles."""

    set: str
    instance: str
    requests: int
    vehicles: int
    cost: float
    best_vehicles: int | None
    status: str


def read_best_known(path: str | Path) -> dict[str, BestKnown]:
    """Rows of ``best_known.csv`` keyed by instance name (e.g. ``"a2-16"``, ``"lc101"``)."""
    out: dict[str, BestKnown] = {}
    with Path(path).open(newline="") as fh:
        for row in csv.DictReader(fh):
            bv = row["best_known_vehicles"].strip()
            out[row["instance"]] = BestKnown(
                set=row["set"],
                instance=row["instance"],
                requests=int(row["requests"]),
                vehicles=int(row["vehicles"]),
                cost=float(row["best_known_cost"]),
                best_vehicles=int(bv) if bv else None,
                status=row["status"],
            )
    return out
