"""dispatch_zone_items: a zone's live state row by row (vehicles, rides, versions and demand)

Revision ID: 0006_dispatch_zone_items
Revises: 0005_idempotency_keys
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_dispatch_zone_items"
down_revision: str | None = "0005_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dispatch_zone_items",
        sa.Column("zone_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("item_id", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", "item_id"),
    )


def downgrade() -> None:
    op.drop_table("dispatch_zone_items")
