"""The demo city at a glance (``GET /api/v1/demo``): its two clocks, on-demand zone and riders.

Public, like ``/api/v1/network``: the frontend explains that on-demand rides run now while
transit timetables are those of the feed's demo service date.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from app.api.schemas import PUBLIC, OpenModel
from app.dispatch.demo_fleet import demo_summary
from app.services import ServicesDep

router = APIRouter(prefix="/demo", tags=["demo"], responses=PUBLIC)


class DemoTransit(OpenModel):
    network: str | None = Field(
        None, description="the city (network) the demo zone lies in; its date and time zone"
    )
    service_date: str | None
    service_date_rule: str | None
    timezone: str | None
    note: str


class DemoOnDemand(OpenModel):
    """``enabled``; with the demo fleet also ``now``, ``clock``, ``zone_id``, ``geometry``,
    ``service_hours``, ``vehicles``, ``riders``..."""

    enabled: bool


class DemoSummary(OpenModel):
    enabled: bool
    city: str
    transit: DemoTransit
    on_demand: DemoOnDemand = Field(description="The on-demand clock, zone, fleet and riders.")


@router.get("", response_model=DemoSummary)
async def demo(services: ServicesDep) -> dict[str, Any]:
    """Transit service date, on-demand clock (wall or accelerated), zone, fleet and riders."""
    return demo_summary(services)
