"""dispatch_audit: the dispatchers' audit log; users.phone: residents found by telephone

Revision ID: 0007_dispatch_audit_phone
Revises: 0006_dispatch_zone_items
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_dispatch_audit_phone"
down_revision: str | None = "0006_dispatch_zone_items"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dispatch_audit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("actor_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("target_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dispatch_audit_at", "dispatch_audit", ["at"], unique=False)
    op.create_index("ix_dispatch_audit_actor_id", "dispatch_audit", ["actor_id"], unique=False)
    op.create_index("ix_dispatch_audit_target_id", "dispatch_audit", ["target_id"], unique=False)
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch.create_index("ix_users_phone", ["phone"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_phone")
        batch.drop_column("phone")
    op.drop_index("ix_dispatch_audit_target_id", table_name="dispatch_audit")
    op.drop_index("ix_dispatch_audit_actor_id", table_name="dispatch_audit")
    op.drop_index("ix_dispatch_audit_at", table_name="dispatch_audit")
    op.drop_table("dispatch_audit")
