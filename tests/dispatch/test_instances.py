"""Readers of the shared Cordeau DARP (2006 'a', 2003 'pr') and Li & Lim PDPTW instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatch.instances import read_best_known, read_cordeau, read_cordeau_pr, read_lilim
from dispatch.optimize.hybrid import solve
from dispatch.problem import check


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


#: Cordeau & Laporte (2003), Table 1: vehicles K and requests n of pr01..pr10.
PR_SIZES = {
    "pr01": (3, 24),
    "pr02": (5, 48),
    "pr03": (7, 72),
    "pr04": (9, 96),
    "pr05": (11, 120),
    "pr06": (13, 144),
    "pr07": (4, 36),
    "pr08": (6, 72),
    "pr09": (8, 108),
    "pr10": (10, 144),
}


def test_every_pr_instance_parses_to_the_published_sizes(shared_data: Path) -> None:
    files = sorted((shared_data / "darp" / "cordeau2003_pr").glob("*.txt"))
    assert [f.stem for f in files] == list(PR_SIZES)
    best = read_best_known(shared_data / "darp" / "best_known.csv")
    for f in files:
        k, two_n, t_max, q, l_max = _header(f)
        assert (int(k), int(two_n) // 2) == PR_SIZES[f.stem]
        p = read_cordeau_pr(f)
        assert (p.n_vehicles, p.n_requests) == PR_SIZES[f.stem]
        assert p.n_nodes == int(two_n) + 1  # no end-depot row
        assert np.all(p.start_node == 0) and np.all(p.end_node == 0)
        assert np.all(p.shift_end == p.late[0])
        assert np.all(p.max_ride == float(l_max)) and np.all(p.max_duration == float(t_max))
        assert (t_max, q, l_max) == ("480", "6", "90") and np.all(p.capacity == int(q))
        assert np.all(p.delivery == p.pickup + p.n_requests)
        assert np.all(p.load[p.pickup, 0] > 0)
        assert np.array_equal(p.load[p.pickup], -p.load[p.delivery])
        assert (best[f.stem].vehicles, best[f.stem].requests) == PR_SIZES[f.stem]


def test_pr01_solved_and_checked_feasible(shared_data: Path) -> None:
    p = read_cordeau_pr(shared_data / "darp" / "cordeau2003_pr" / "pr01.txt")
    sol = solve(p, time_limit_s=2.0, seed=0)
    assert not sol.unserved
    assert check(p, sol) == []  # the bench's independent feasibility check
    best = read_best_known(shared_data / "darp" / "best_known.csv")["pr01"].cost
    assert best * 0.999 <= sol.cost <= best * 1.1
    assert all(0 not in route for route in sol.routes)  # the depot only at both ends


PR_HEAD = "1 4 480 6 90\n0 0 0 0 0 0 1440\n"
PR_TAIL = "3 2 0 10 -1 0 1440\n4 0 2 10 -1 0 1440\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("1 4 480 6\n", r"line 1: expected 'K 2n T Q L'"),
        ("1 5 480 6 90\n", r"line 1: 2n = 5 is odd"),
        ("1.5 4 480 6 90\n", r"line 1: .*whole numbers"),
        (PR_HEAD + "1 1 0 10 one 0 1440\n2 2 2 10 1 0 1440\n" + PR_TAIL, r"line 3: .*numbers"),
        (PR_HEAD + "1 1 0 10 1 0 1440\n2 2 2 10 1 0\n" + PR_TAIL, r"line 4: expected"),
        (PR_HEAD + "1 1 0 10 1 0 1440\n7 2 2 10 1 0 1440\n" + PR_TAIL, r"line 4: node id 7"),
        (PR_HEAD + "1 1 0 10 1 0 1440\n" + PR_TAIL, r"5 node lines.*found 4.*ends at line 5"),
        (
            PR_HEAD + "1 1 0 10 1 0 1440\n\n2 2 2 10 1 0 1440\n" + PR_TAIL + "5 0 0 0 0 0 9\n",
            r"line 8 is the first one too many",
        ),
    ],
)
def test_malformed_pr_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_cordeau_pr(f)


def test_well_formed_pr_file_reads(tmp_path: Path) -> None:
    f = tmp_path / "tiny.txt"
    f.write_text(PR_HEAD + "1 1 0 10 1 0 1440\n2 2 2 10 1 0 1440\n" + PR_TAIL)
    p = read_cordeau_pr(f)
    assert (p.n_vehicles, p.n_requests, p.n_nodes) == (1, 2, 5)
    assert p.cost[0, 1] == pytest.approx(1.0) and p.meta["format"] == "cordeau_pr"


def test_cordeau_a_errors_name_the_line_too(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(
        "1 1 480 3 30\n0 0 0 0 0 0 480\n1 x 0 3 1 0 480\n2 0 0 3 -1 0 480\n3 0 0 0 0 0 480\n"
    )
    with pytest.raises(ValueError, match=r"bad.txt, line 3"):
        read_cordeau(f)
