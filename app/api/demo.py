"""The demo city at a glance (``GET /api/v1/demo``): its two clocks, on-demand zone and riders.

Public, like ``/api/v1/network``: the frontend explains that on-demand rides run now while
transit timetables are those of the feed's demo service date.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.demo_fleet import demo_summary
from app.services import ServicesDep

router = APIRouter(prefix="/demo", tags=["demo"])


@router.get("")
async def demo(services: ServicesDep) -> dict[str, Any]:
    """Transit service date, on-demand clock (wall or accelerated), zone, fleet and riders."""
    return demo_summary(services)
