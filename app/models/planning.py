"""The planners' work (issue #14): their uploaded destinations and census grids, and the
scenarios they ran with their comparisons, so a restart of the server loses none of it.

Scenarios and uploads are shared by every city planner, as the planning API always treated
them (one set of destinations for the city's planners; every planner lists every scenario):
each row records who created it. An upload is kept as the text the planner sent, parsed again
when the service first needs it, so what is analysed is exactly what was uploaded.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)


class PlanningUpload(SQLModel, table=True):
    """A planner's upload: ``kind`` ``destinations`` (CSV or GeoJSON of points) or
    ``population`` (census mesh CSV). The newest of each kind is the one analyses use."""

    __tablename__ = "planning_uploads"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=16, index=True)
    owner_id: str = Field(max_length=128)
    owner_email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))
    #: The uploaded text as the planner sent it (UTF-8, at most the API's upload limit).
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    #: What the API answered about it (counts, kinds).
    summary: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )


class PlanningScenario(SQLModel, table=True):
    """A scenario: its definition (``spec``: name, edits, unit costs, analysis, as JSON), its
    ``status`` (``running``, ``done``, ``failed``) and, once done, its comparison with the
    published network (``result``: table, difference map, on-demand figures, date)."""

    __tablename__ = "planning_scenarios"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    status: str = Field(default="running", max_length=16)
    created_by: str = Field(max_length=128, index=True)
    created_by_email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    spec: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    error: str | None = Field(default=None, max_length=1000)
    #: The service day analysed (the spec's date, or the feed's busiest day), once done.
    analysis_date: date | None = None
    #: The uploads it was run with (kept while a scenario refers to them).
    destinations_id: uuid.UUID | None = Field(
        default=None, foreign_key="planning_uploads.id", index=True
    )
    population_id: uuid.UUID | None = Field(
        default=None, foreign_key="planning_uploads.id", index=True
    )
