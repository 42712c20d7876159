"""At most N /plan requests are computed at once per process; others wait (#10)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.middleware import ConcurrencyLimitMiddleware, plan_concurrency


def _app(limit: int) -> tuple[ConcurrencyLimitMiddleware, dict[str, int]]:
    seen = {"running": 0, "peak": 0, "other_peak": 0, "other_running": 0}

    async def plan(request: Request) -> PlainTextResponse:
        seen["running"] += 1
        seen["peak"] = max(seen["peak"], seen["running"])
        await asyncio.sleep(0.02)  # lets every other request arrive meanwhile
        seen["running"] -= 1
        return PlainTextResponse("plan")

    async def other(request: Request) -> PlainTextResponse:
        seen["other_running"] += 1
        seen["other_peak"] = max(seen["other_peak"], seen["other_running"])
        await asyncio.sleep(0.02)
        seen["other_running"] -= 1
        return PlainTextResponse("other")

    inner = Starlette(routes=[Route("/api/v1/plan", plan), Route("/api/v1/stops", other)])
    return ConcurrencyLimitMiddleware(inner, limits={"/api/v1/plan": limit}), seen


async def _burst(app: ConcurrencyLimitMiddleware, path: str, n: int) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        rs = await asyncio.gather(*(c.get(path) for _ in range(n)))
    return [r.status_code for r in rs]


def test_plans_beyond_the_limit_wait_and_all_are_answered() -> None:
    app, seen = _app(2)
    assert asyncio.run(_burst(app, "/api/v1/plan", 10)) == [200] * 10
    assert seen["peak"] == 2


def test_other_paths_are_not_limited() -> None:
    app, seen = _app(1)
    assert asyncio.run(_burst(app, "/api/v1/stops", 6)) == [200] * 6
    assert seen["other_peak"] == 6


def test_the_limiter_serves_a_second_event_loop() -> None:
    app, seen = _app(1)
    for _ in range(2):  # a semaphore of the first loop must not be reused in the second
        assert asyncio.run(_burst(app, "/api/v1/plan", 4)) == [200] * 4
    assert seen["peak"] == 1


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyLimitMiddleware(lambda *a: None, limits={"/api/v1/plan": 0})  # type: ignore[arg-type]
    assert plan_concurrency() >= 2
