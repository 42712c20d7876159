"""emissions_taken_trips: planned itineraries residents took

Revision ID: e0001_taken_trips
Revises:
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e0001_taken_trips"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emissions_taken_trips",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("co2_g", sa.Integer(), nullable=False),
        sa.Column("car_distance_m", sa.Float(), nullable=False),
        sa.Column("car_co2_g", sa.Integer(), nullable=False),
        sa.Column("legs", sa.JSON(), nullable=False),
        sa.Column("factors", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "fingerprint", name="uq_emissions_taken_trips_user_fp"),
    )
    op.create_index(
        "ix_emissions_taken_trips_user_month",
        "emissions_taken_trips",
        ["user_id", "month"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_emissions_taken_trips_user_month", table_name="emissions_taken_trips")
    op.drop_table("emissions_taken_trips")
