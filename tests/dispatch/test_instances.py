"""Readers of the shared Cordeau DARP and Li & Lim PDPTW instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatch.instances import read_best_known, read_cordeau, read_lilim


def _header(path: Path) -> list[str]:
    return path.read_text().split("\n", 1)[0].split()


def test_every_cordeau_instance_parses(shared_data: Path) -> None:
    files = sorted((shared_data / "darp" / "cordeau2006_a").glob("*.txt"))
    assert len(files) == 24
    best = read_best_known(shared_data / "darp" / "best_known.csv")
    for f in files:
        p = read_cordeau(f)
        k, n, t_max, q, l_max = _header(f)
        assert (p.n_vehicles, p.n_requests, p.n_nodes) == (int(k), int(n), 2 * int(n) + 2)
        assert f.stem.endswith(f"{k}-{n}")
        assert np.all(p.max_ride == float(l_max)) and np.all(p.max_duration == float(t_max))
        assert np.all(p.capacity == int(q))
        assert np.all(p.delivery == p.pickup + int(n))
        assert p.load[p.pickup].sum() == -p.load[p.delivery].sum() == int(n)
        if f.stem in best:
            assert (best[f.stem].requests, best[f.stem].vehicles) == (p.n_requests, p.n_vehicles)


def test_every_lilim_instance_parses(shared_data: Path) -> None:
    files = sorted((shared_data / "darp" / "lilim_100").glob("*.txt"))
    assert len(files) == 21
    best = read_best_known(shared_data / "darp" / "best_known.csv")
    for f in files:
        p = read_lilim(f)
        k, q, _speed = _header(f)
        assert p.n_vehicles == int(k) and np.all(p.capacity == int(q))
        assert p.n_requests == best[f.stem].requests and p.n_vehicles == best[f.stem].vehicles
        assert p.n_nodes == 2 * p.n_requests + 1
        assert np.all(p.load[p.pickup, 0] > 0) and np.all(p.load[p.delivery, 0] < 0)
        assert np.array_equal(p.load[p.pickup], -p.load[p.delivery])
        assert p.vehicle_fixed_cost > p.cost.sum() / 10


def test_best_known_rows(shared_data: Path) -> None:
    best = read_best_known(shared_data / "darp" / "best_known.csv")
    assert best["a2-16"].cost == pytest.approx(294.248)
    assert best["lc101"].best_vehicles == 10
    assert best["a2-16"].best_vehicles is None


@pytest.mark.parametrize(
    ("reader", "text"),
    [
        (read_cordeau, ""),
        (read_cordeau, "2 16 480 3 30\n0 0 0 0 0 0 480\n"),
        (read_lilim, "25 200\n"),
        (read_lilim, "25 200 1\n0 40 50 0 0 1236 0 0 0\n1 45 68 -10 912 967 90 11 0\n"),
        (read_lilim, "25 200 1\n0 40 50 0 0 1236 0 0 0\n5 45 68 10 912 967 90 0 1\n"),
    ],
)
def test_malformed_files_raise(tmp_path: Path, reader: object, text: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(ValueError):
        reader(f)  # type: ignore[operator]
