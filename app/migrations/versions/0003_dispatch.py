"""dispatch: dispatch_zone_states (zone snapshots) and dispatch_rides (ride history)

Revision ID: 0003_dispatch
Revises: 0002_feeds
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_dispatch"
down_revision: str | None = "0002_feeds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dispatch_zone_states",
        sa.Column("zone_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("zone", sa.JSON(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("zone_id"),
    )
    op.create_table(
        "dispatch_rides",
        sa.Column("ride_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("zone_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("vehicle_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("booked_at", sa.Float(), nullable=False),
        sa.Column("ride", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ride_id"),
    )
    op.create_index("ix_dispatch_rides_user_id", "dispatch_rides", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dispatch_rides_user_id", table_name="dispatch_rides")
    op.drop_table("dispatch_rides")
    op.drop_table("dispatch_zone_states")
