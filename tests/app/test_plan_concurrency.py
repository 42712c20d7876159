"""Trip plans computed at once are bounded per process (``plan_threads``), and the GIL switch
interval is shortened (#10): unbounded, a process under load ran ~30 plans in worker threads
and its event loop (replies, the zone owner's commands) waited seconds for the GIL."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app, shorten_gil_switch
from routing.planner import Planner
from tests.app.conftest import services_of, settings_for

DAY = "2020-06-01"  # a Monday inside the Muroran feed


class _Gauge:
    """Counts the plans running at once (each held for a moment, so they overlap)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def wrap(self, plan: Any) -> Any:
        def counted(planner: Planner, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                time.sleep(0.2)
                return plan(planner, *args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1

        return counted


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("plan-threads")) / "data"


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(data_dir, demo=True, plan_threads=1))) as c:
        yield c


@pytest.fixture
def gauge(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Gauge]:
    g = _Gauge()
    monkeypatch.setattr(Planner, "plan", g.wrap(Planner.plan))
    yield g


def _plan_at_once(client: TestClient, n: int) -> list[int]:
    params = {"fromPlace": "0016_A", "toPlace": "0082_C", "date": DAY, "time": "08:00"}
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(client.get, "/api/v1/plan", params=params) for _ in range(n)]
        return [f.result().status_code for f in futures]


def test_plans_at_once_never_exceed_plan_threads(client: TestClient, gauge: _Gauge) -> None:
    # Six plans asked at once with plan_threads=1: one at a time, the rest waited.
    assert _plan_at_once(client, 6) == [200] * 6
    assert gauge.peak == 1


def test_the_bound_is_what_holds_plans_back(client: TestClient, gauge: _Gauge) -> None:
    limiter = services_of(client).plan_limiter
    assert limiter is not None and limiter.total_tokens == 1
    limiter.total_tokens = 3
    try:
        assert _plan_at_once(client, 6) == [200] * 6
    finally:
        limiter.total_tokens = 1
    assert gauge.peak == 3  # side by side up to the bound, not beyond


def test_settings_bound_plan_threads(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="plan_threads"):
        settings_for(data_dir, plan_threads=0)


def test_gil_switch_interval_follows_settings(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sys.getswitchinterval()
    try:
        create_app(settings_for(data_dir, gil_switch_interval_ms=2.5))
        assert sys.getswitchinterval() == pytest.approx(0.0025)
        shorten_gil_switch(1.0)
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)
