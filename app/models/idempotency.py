"""Idempotency keys: the recorded answer of a state-changing request sent with an
``Idempotency-Key`` header (``app.idempotency``).

One row per (principal, method, path, key), its primary key the SHA-256 of those four, so a
retry in any process finds the first attempt's row. While the first attempt runs the row has
no ``status`` and an ``owner`` holding it until ``locked_until`` (renewed while it runs; a
crashed process's row is taken over after it); then it holds the answer until ``expires_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow


def _ts(nullable: bool = False) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class IdempotencyRecord(SQLModel, table=True):
    """A request's idempotency key and, once it finished, its answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.Index("ix_idempotency_keys_expires_at", "expires_at"),)

    #: SHA-256 (hex) of ``[principal, method, path, key]``.
    id: str = Field(primary_key=True, max_length=64)
    principal: str = Field(max_length=128)
    method: str = Field(max_length=8)
    path: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    key: str = Field(max_length=255)
    #: SHA-256 of the request (query string, content type, body): a key reused with another
    #: request is recognised.
    request_hash: str = Field(max_length=64)
    #: The answer's status code; None while the first attempt runs.
    status: int | None = None
    #: The answer's headers worth replaying, ``[[name, value], ...]``.
    headers: list[list[str]] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    body: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary))
    #: The attempt running the request (a random token), and until when it holds the row.
    owner: str = Field(max_length=32)
    locked_until: dt.datetime = Field(sa_column=_ts())
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: dt.datetime = Field(sa_column=_ts())
