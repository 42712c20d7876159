"""The dispatchers' audit log: every action taken from the dispatcher console, with who did it.

One row per attempt (refusals too: a dispatcher who tried to move a ride and was refused is
part of what happened), never updated or deleted by the application.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow


class DispatchAuditEntry(SQLModel, table=True):
    """A dispatcher's action: ``actor`` did ``action`` on ``target_kind`` ``target_id`` (for
    ``reason``) at ``at``; ``outcome`` is ``done`` or the refusal's code."""

    __tablename__ = "dispatch_audit"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow,
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True),
    )
    actor_id: str = Field(max_length=128, index=True)
    actor_email: str | None = Field(default=None, max_length=320)
    action: str = Field(max_length=40)
    target_kind: str = Field(max_length=16)
    target_id: str = Field(max_length=160, index=True)
    reason: str = Field(default="", max_length=500)
    outcome: str = Field(default="done", max_length=64)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
